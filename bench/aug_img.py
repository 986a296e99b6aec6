"""Crops per second of aug_img.py on the real frames.

    python bench/aug_img.py                  # size 1600 -p 224 on ../shared/sem, all cores
    python bench/aug_img.py --size 400 --pixel half --repeat 3 --workdir /scratch

Runs the command as a user would (a fresh process writing data/bench/ in a temporary folder) and
prints one table row per run. By default it writes beside the project (disk) and in /dev/shm
(memory) to separate the CPU's share from the disk's. Target on the 2-core development machine:
at least 2,500 crops/s for size 1600 -p 224.
"""
import argparse
import contextlib
import os
import subprocess
import sys
import tempfile
import time

import pandas as pd

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def time_one_run(args, cwd):
    cmd = [sys.executable, os.path.join(ROOT, 'aug_img.py'), os.path.abspath(args.source),
           str(args.size), '-p', args.pixel, '-n', 'bench', '--format', args.format]
    os.sync()   # nothing of an earlier run is still being written back while this one is timed
    start = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    seconds = time.perf_counter() - start
    manifest = pd.read_csv(os.path.join(cwd, 'data', 'bench', 'manifest.csv'))
    return dict(frames=manifest['source'].nunique(), crops=len(manifest),
                seconds=round(seconds, 2), crops_per_s=round(len(manifest) / seconds))


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--source', default=os.path.join(ROOT, '..', 'shared', 'sem'))
    p.add_argument('--size', type=int, default=1600)
    p.add_argument('--pixel', default='224')
    p.add_argument('--format', default='tif')
    p.add_argument('--repeat', type=int, default=2)
    p.add_argument('--workdir', action='append', default=None,
                   help='folder to write in (repeatable; default: beside the project, and '
                        '/dev/shm when present)')
    args = p.parse_args()
    if not os.path.isdir(args.source):
        sys.exit(f'{args.source}: no such folder; point --source at a folder of class folders')
    workdirs = args.workdir or [os.path.dirname(ROOT)] + ['/dev/shm'] * os.path.isdir('/dev/shm')
    rows = []
    # Runs are deleted only at the end: deleting a gigabyte of crops keeps the disk busy for
    # seconds, and the next run would be timed against that.
    with contextlib.ExitStack() as cleanup:
        for workdir in workdirs:
            for run in range(args.repeat):
                cwd = cleanup.enter_context(tempfile.TemporaryDirectory(dir=workdir))
                rows.append(dict(written_to=os.path.abspath(workdir), run=run + 1,
                                 **time_one_run(args, cwd), cores=os.cpu_count(),
                                 format=args.format))
    print(pd.DataFrame(rows).to_string(index=False))


if __name__ == '__main__':
    main()
