"""The scripts on a platform without fcntl (Windows, where many microscope PCs run)."""
import os
import subprocess
import sys

import pytest

from conftest import ROOT, RUNTIME, TINY, write_source

# Run a script as `python script.py ...` would, with the fcntl module missing.
NO_FCNTL = ("import runpy, sys; sys.modules['fcntl'] = None; script = sys.argv.pop(1); "
            "sys.argv[0] = script; sys.path.insert(0, sys.argv[0].rsplit('/', 1)[0]); "
            "runpy.run_path(script, run_name='__main__')")


def run_without_fcntl(script, *args, cwd):
    proc = subprocess.run([sys.executable, '-c', NO_FCNTL, os.path.join(ROOT, script),
                           *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    warnings = [line for line in proc.stderr.splitlines() if 'no file locks' in line]
    assert len(warnings) == 1, proc.stderr       # said once, however many folders it locks
    return proc


@pytest.mark.slow
def test_scripts_run_and_warn_once_without_fcntl(tmp_path):
    proc = subprocess.run([sys.executable, '-c', "import sys; sys.modules['fcntl'] = None; "
                           "import fcntl"], capture_output=True, text=True)
    assert 'ModuleNotFoundError' in proc.stderr    # the simulation does hide fcntl
    write_source(str(tmp_path / 'source'), classes=2, frames=6, width=160, height=120, bar=16)
    run_without_fcntl('aug_img.py', 'source', 60, '-p', 32, '-n', 'example', cwd=tmp_path)
    run_without_fcntl('train.py', *TINY, cwd=tmp_path)
    run_without_fcntl('test.py', *RUNTIME, cwd=tmp_path)
    assert (tmp_path / 'runs' / 'example' / 'cpu' / 'predictions.csv').is_file()
    run_without_fcntl('predict.py', 'source/synthA', *RUNTIME, cwd=tmp_path)
    assert (tmp_path / 'runs' / 'example' / 'cpu' / 'predict' / 'frames.csv').is_file()
