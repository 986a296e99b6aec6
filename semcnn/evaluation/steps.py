"""The pipeline's commands run as a user runs them: one subprocess each, its output to a log.

bench/reproduce.py and transfer.py chain aug_img.py, train.py, test.py and predict.py this way,
so that what they measure is what the commands do (the package imports none of them).
"""
import os
import subprocess
import sys
import time

from semcnn.files.errors import fail

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run_step(script, args, log):
    """Run the command `script` (a file at the top of the project) with `args` in the current
    folder (where its data/ and runs/ are), its output appended to `log`; return its wall
    seconds. A failure stops the caller with one line that names the log."""
    args = [str(a) for a in args]
    print('  $ python ' + ' '.join([script, *args]), flush=True)
    start = time.perf_counter()
    with open(log, 'a', encoding='utf-8') as out:
        proc = subprocess.run([sys.executable, os.path.join(ROOT, script), *args], stdout=out,
                              stderr=subprocess.STDOUT)
    if proc.returncode:
        fail(f'{script} failed (exit {proc.returncode}); see {log}')
    return time.perf_counter() - start
