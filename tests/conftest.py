"""Shared fixtures: run the scripts as a user would, on small synthetic or real data."""
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REAL_SEM = os.path.join(ROOT, '..', 'shared', 'sem')
sys.path.insert(0, ROOT)

from synthetic_sem import write_source  # noqa: E402

# A tiny but real run: 32-pixel crops, ResNet-18 from scratch, one epoch, on the CPU.
TINY = ['--set', 'model=resnet18', '--set', 'pretrained=false', '--set', 'input_size=32',
        '--set', 'batch_size=16', '--set', 'epochs=1', '--set', 'num_workers=0',
        '--set', 'device=cpu', '--set', 'scheduler=none']
# test.py, predict.py and gradcam.py take the run's own settings: only how it runs may be set
RUNTIME = ['--set', 'num_workers=0', '--set', 'device=cpu']


def run(script, *args, cwd, check=True, env=None):
    """Run a top-level script in `cwd` (where data/ and runs/ go); return the finished process."""
    proc = subprocess.run([sys.executable, os.path.join(ROOT, script), *map(str, args)],
                          cwd=cwd, capture_output=True, text=True, timeout=600, env=env)
    if check and proc.returncode != 0:
        raise AssertionError(f'{script} {args} failed ({proc.returncode}):\n{proc.stderr[-3000:]}')
    return proc


def windows_env(held=()):
    """The environment of a process under Windows' file rules, emulated on Linux by
    tests/windows/sitecustomize.py; `held`: files that another program has open."""
    return {**os.environ, 'PYTHONPATH': os.path.join(ROOT, 'tests', 'windows'),
            'SEM_WINDOWS_HELD': os.pathsep.join(held)}


def assert_clean_error(proc, *words):
    """A user error: non-zero exit, one 'error:' line naming the problem, no traceback."""
    assert proc.returncode != 0, proc.stdout
    assert 'Traceback' not in proc.stderr, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith('error:')]
    assert len(lines) == 1, proc.stderr
    for word in words:
        assert word in lines[0], lines[0]


@pytest.fixture
def source(tmp_path):
    """tmp_path/source with 3 synthetic classes of 6 frames, 160 x 120 with a 16-row bar."""
    write_source(str(tmp_path / 'source'), classes=3, frames=6, width=160, height=120, bar=16)
    return tmp_path / 'source'


def cut_example(cwd, size=60):
    """cwd/data/example: 32-pixel crops (`size` per class) of 3 synthetic classes of 6 frames."""
    write_source(str(cwd / 'source'), classes=3, frames=6, width=160, height=120, bar=16)
    run('aug_img.py', 'source', size, '-p', 32, '-n', 'example', cwd=cwd)
    return cwd


def sharing_data(cwd, other):
    """`cwd` set up to read other/data: the same crops, its own runs/ folder."""
    (cwd / 'data').symlink_to(other / 'data')
    return cwd


@pytest.fixture(scope='session')
def trained(tmp_path_factory):
    """A finished one-epoch run on synthetic data, shared by the tests that only read it."""
    cwd = cut_example(tmp_path_factory.mktemp('trained'))
    run('train.py', *TINY, cwd=cwd)
    return cwd
