"""The scripts under Windows' file rules (many microscope PCs run Windows), emulated on Linux by
tests/windows/sitecustomize.py: no fcntl, no fsync of a read-only descriptor, no replacing or
removing a file that is open. test_faults.py refuses a second run under them too."""
import os
import subprocess
import sys

import filelock
import pytest

from conftest import RUNTIME, TINY, assert_clean_error, call, run, windows_env, write_source
from semcnn.files import locks
from semcnn.files.errors import UserError

RUN = os.path.join('runs', 'example', 'cpu')


def run_on_windows(script, *args, cwd, held=(), check=True):
    proc = run(script, *args, cwd=cwd, check=check, env=windows_env(held))
    if check:
        assert 'no file locks' not in proc.stderr      # filelock's kernel lock stands in
    return proc


def test_the_emulation_applies_the_windows_rules(tmp_path):
    probe = tmp_path / 'probe.txt'
    probe.write_text('x')
    code = f"""
import errno, os
try:
    import fcntl
except ImportError:
    print('no fcntl')
with open({str(probe)!r}, 'rb') as f:
    try:
        os.fsync(f.fileno())
    except OSError as e:
        print('fsync read-only', errno.errorcode[e.errno])
    try:
        os.replace({str(probe)!r}, {str(probe)!r} + '.new')
    except PermissionError:
        print('replace refused while open')
with open({str(probe)!r}, 'r+b') as f:
    os.fsync(f.fileno())
print('fsync read-write ok')
"""
    out = subprocess.run([sys.executable, '-c', code], env=windows_env(), capture_output=True,
                         text=True).stdout.splitlines()
    assert out == ['no fcntl', 'fsync read-only EBADF', 'replace refused while open',
                   'fsync read-write ok']


@pytest.fixture
def no_fcntl(monkeypatch):
    """locks.py as on Windows, in this process: filelock's kernel lock instead of fcntl."""
    monkeypatch.setattr(locks, 'fcntl', None)
    monkeypatch.setattr(locks, 'READER_WAIT_S', 0.1)


def test_without_fcntl_readers_share_a_folder_and_keep_a_writer_out(tmp_path, no_fcntl):
    folder = str(tmp_path / 'ds')
    with locks.reading(folder), locks.reading(folder):
        with pytest.raises(UserError, match=f'ds is in use by process {os.getpid()}'):
            with locks.exclusive(folder):
                pass
    with locks.exclusive(folder):
        with pytest.raises(UserError, match=f'ds is in use by process {os.getpid()}'):
            with locks.reading(folder):
                pass
    with locks.exclusive(folder):   # all let go: the folder is free again
        pass


def test_without_fcntl_or_a_kernel_lock_runs_go_on_with_one_warning(tmp_path, no_fcntl,
                                                                    monkeypatch, capsys):
    monkeypatch.setattr(filelock, 'FileLock', filelock.SoftFileLock)   # never a soft lock
    monkeypatch.setattr(locks, '_warned_no_locks', [])
    for _ in range(2):
        with locks.exclusive(str(tmp_path / 'ds')), locks.reading(str(tmp_path / 'other')):
            pass
    assert capsys.readouterr().err.count('no file locks') == 1
    assert not list(tmp_path.iterdir())               # no marker file left to go stale


def test_without_any_lock_aug_img_cuts_into_a_fresh_folder(source, no_fcntl, monkeypatch):
    monkeypatch.setattr(filelock, 'FileLock', filelock.SoftFileLock)
    monkeypatch.setattr(locks, '_warned_no_locks', [])
    cwd = source.parent                               # no data/ there yet
    proc = call('aug_img.py', 'source', 20, '-p', 32, '-n', 'fresh', '--workers', 1, cwd=cwd)
    assert proc.stderr.count('no file locks') == 1
    assert (cwd / 'data' / 'fresh' / 'manifest.csv').is_file()


@pytest.mark.slow
def test_every_script_runs_end_to_end_under_windows_file_rules(tmp_path):
    write_source(str(tmp_path / 'source'), classes=2, frames=6, width=160, height=120, bar=16)
    run_on_windows('aug_img.py', 'source', 60, '-p', 32, '-n', 'example', cwd=tmp_path)
    run_on_windows('aug_img.py', 'source', 60, '-p', 32, '-n', 'example', '--force',
                   cwd=tmp_path)                           # replacing a dataset, too
    run_on_windows('train.py', *TINY, cwd=tmp_path)
    run_on_windows('test.py', *RUNTIME, cwd=tmp_path)
    run = tmp_path / RUN
    assert (run / 'predictions.csv').is_file() and (run / 'report.md').is_file()
    run_on_windows('test.py', *RUNTIME, cwd=tmp_path)      # its outputs replaced in place
    run_on_windows('predict.py', 'source/synthA', *RUNTIME, cwd=tmp_path)
    assert (run / 'predict' / 'frames.csv').is_file()
    run_on_windows('gradcam.py', '--per-class', 1, *RUNTIME, cwd=tmp_path)
    assert len(list((run / 'gradcam').glob('*.png'))) == 2
    run_on_windows('audit.py', '--dataset', 'example', '--per-frame', 2, cwd=tmp_path)
    assert (tmp_path / 'runs' / 'example' / 'audit.json').is_file()
    run_on_windows('train.py', *TINY, '--force', cwd=tmp_path)   # a run replaced


@pytest.mark.slow
def test_an_output_another_program_holds_open_is_named_and_left_as_it_was(trained):
    run_on_windows('test.py', *RUNTIME, cwd=trained)
    table = os.path.join(RUN, 'predictions.csv')
    before = (trained / table).read_bytes()
    proc = run_on_windows('test.py', *RUNTIME, cwd=trained, held=[table], check=False)
    assert_clean_error(proc, f'close {table} in the program that has it open')
    assert (trained / table).read_bytes() == before
    assert not [p for p in (trained / RUN).iterdir() if p.name.startswith('.')]   # no temp left
