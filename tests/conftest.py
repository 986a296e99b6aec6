"""Shared fixtures: run the scripts as a user would, on small synthetic or real data."""
import contextlib
import importlib.util
import io
import os
import shutil
import subprocess
import sys
import traceback

import pytest
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REAL_SEM = os.path.join(ROOT, '..', 'shared', 'sem')
sys.path.insert(0, ROOT)

from semcnn.files.errors import run_main  # noqa: E402
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
    return checked(proc, check)


def call(script, *args, cwd, check=True):
    """Run a top-level script's main() in this process, as `python script args` in `cwd` would,
    and return what `run` returns (returncode, stdout, stderr). For tests of what a script does:
    the 2-5 s a new process spends importing torch and the libraries is paid once. `run` (a
    process of its own) stays for what only a process shows: the command line itself, the file
    rules and locks of another platform, a process killed, torchrun."""
    module = _script(script)
    out, err, code = io.StringIO(), io.StringIO(), 0
    deterministic = torch.are_deterministic_algorithms_enabled()   # a run may switch it on
    with contextlib.chdir(cwd), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            run_main(module.main, module.get_args_parser().parse_args(list(map(str, args))))
        except SystemExit as e:   # as the interpreter ends a process: a message means 1
            code = e.code if isinstance(e.code, int) else int(e.code is not None)
            if isinstance(e.code, str):
                print(e.code, file=sys.stderr)
        except Exception:   # noqa: BLE001 - what a process would print before dying
            traceback.print_exc()
            code = 1
        finally:
            torch.use_deterministic_algorithms(deterministic)
    return checked(subprocess.CompletedProcess([script, *map(str, args)], code, out.getvalue(),
                                               err.getvalue()), check)


def checked(proc, check):
    if check and proc.returncode != 0:
        raise AssertionError(f'{proc.args} failed ({proc.returncode}):\n{proc.stderr[-3000:]}')
    return proc


_scripts = {}


def _script(script):
    """The top-level script as a module, loaded once (under its own name: test.py is not the
    standard library's test package), and known by that name to worker processes that unpickle
    its functions (aug_img.py's)."""
    if script not in _scripts:
        name = 'script_' + os.path.splitext(os.path.basename(script))[0]
        spec = importlib.util.spec_from_file_location(name, os.path.join(ROOT, script))
        _scripts[script] = sys.modules[name] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(_scripts[script])
    return _scripts[script]


def windows_env(held=()):
    """The environment of a process under Windows' file rules, emulated on Linux by
    tests/windows/sitecustomize.py; `held`: files that another program has open. On Windows
    the test is skipped: there every test runs under the real rules."""
    if sys.platform == 'win32':
        pytest.skip("emulates Windows' file rules on Linux; on Windows the whole suite has them")
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
    """`cwd` set up to read other/data: the same crops, its own runs/ folder (a link; a copy
    where links need privileges, as on Windows without Developer Mode)."""
    try:
        (cwd / 'data').symlink_to(other / 'data', target_is_directory=True)
    except OSError:
        shutil.copytree(other / 'data', cwd / 'data')
    return cwd


@pytest.fixture(scope='session')
def trained(tmp_path_factory):
    """A finished one-epoch run on synthetic data, shared by the tests that only read it."""
    cwd = cut_example(tmp_path_factory.mktemp('trained'))
    call('train.py', *TINY, cwd=cwd)
    return cwd
