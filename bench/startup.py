"""How long each command takes to answer what needs no work: `--help`, and a refused `--set` (a
value of the wrong type, and one of the right type that makes no sense), in a new process each
time, as a user types them. Target: under 2 s each on a 2-core machine (issue 31).

    python bench/startup.py                   # every command, 5 runs each, the median
    python bench/startup.py --runs 9 --scripts train.py

Runs in an empty folder: a refused value must stop before any data is looked for. Time it
alone: this machine's speed varies several-fold with load. Also prints the bare `import torch`
for scale (what a script that needs torch pays at least).
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

import pandas as pd

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from semcnn.files.errors import run_main  # noqa: E402

SCRIPTS = ('aug_img.py', 'train.py', 'test.py', 'predict.py', 'gradcam.py', 'audit.py',
           'transfer.py')
# (column, arguments, exit status it must give): a wrong type, then a right type of no sense
CASES = (('--help s', ['--help'], 0),
         ('bad type s', ['--set', 'epochs=ten'], 2),
         ('bad value s', ['--set', 'optimizer=adamx'], 2))
TAKES_SET = ('train.py', 'test.py', 'predict.py', 'gradcam.py')


def get_args_parser():
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--runs', type=int, default=5, help='runs of each command; the median is kept')
    p.add_argument('--scripts', nargs='+', default=list(SCRIPTS))
    return p


def seconds(command, status, runs, cwd):
    """Median wall time of `command` over `runs` runs; checks it exits with `status`."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        proc = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
        times.append(time.perf_counter() - started)
        if proc.returncode != status:
            raise SystemExit(f'{" ".join(command)}: exit {proc.returncode}, expected {status}\n'
                             f'{proc.stderr[-2000:]}')
    return statistics.median(times)


def main(args):
    rows = []
    with tempfile.TemporaryDirectory() as empty:
        rows.append({'command': 'python -c "import torch"',
                     '--help s': seconds([sys.executable, '-c', 'import torch'], 0, args.runs,
                                         empty)})
        for script in args.scripts:
            row = {'command': f'python {script}'}
            for column, extra, status in CASES:
                if column == '--help s' or script in TAKES_SET:
                    row[column] = seconds([sys.executable, os.path.join(ROOT, script), *extra],
                                          status, args.runs, empty)
            rows.append(row)
    print(pd.DataFrame(rows).set_index('command').round(2).to_string(na_rep='-'))


if __name__ == '__main__':
    run_main(main, get_args_parser().parse_args())
