"""Faults: killed runs, resumed runs, a loss gone NaN, a full disk, two runs on one folder."""
import builtins
import errno
import os
import shutil
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest
import torch

from conftest import (ROOT, RUNTIME, TINY, assert_clean_error, call, cut_example, run,
                      sharing_data, windows_env)
from synthetic_sem import write_source
from engine import Training, train_one_epoch
from semcnn.files.errors import UserError
from semcnn.files import locks
from semcnn.files.locks import exclusive, reading
from semcnn.training.checkpoint import Checkpoint

RUN = os.path.join('runs', 'example', 'cpu')


@pytest.fixture(scope='module')
def crops(tmp_path_factory):
    return cut_example(tmp_path_factory.mktemp('faults'))


def start(script, *args, cwd, env=None):
    return subprocess.Popen([sys.executable, os.path.join(ROOT, script), *map(str, args)],
                            cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True, env=env)


def wait_for(condition, proc, timeout=300):
    deadline = time.monotonic() + timeout
    while not condition():
        assert proc.poll() is None, f'ended early: {proc.stderr.read()[-2000:]}'
        assert time.monotonic() < deadline, 'timed out'
        time.sleep(0.02)


def epochs_in_history(run_dir):
    try:
        return len(pd.read_csv(run_dir / 'history.csv'))
    except (FileNotFoundError, pd.errors.EmptyDataError):
        return 0


DETERMINISTIC = [*TINY, '--set', 'epochs=2', '--set', 'scheduler=cosine',
                 '--set', 'deterministic=true', '--set', 'augment=true', '--set', 'jitter=0.1']


@pytest.mark.slow
def test_killed_and_resumed_run_ends_with_the_same_weights(crops, tmp_path):
    call('train.py', *DETERMINISTIC, cwd=crops)
    cwd = sharing_data(tmp_path, crops)
    proc = start('train.py', *DETERMINISTIC, cwd=cwd)
    wait_for(lambda: epochs_in_history(cwd / RUN) >= 1, proc)
    proc.kill()   # SIGKILL; on Windows TerminateProcess
    proc.wait()
    killed_at = Checkpoint.load(str(cwd / RUN / 'last.pt')).epoch
    assert killed_at < 2, 'the run finished before it was killed'
    call('train.py', *DETERMINISTIC, '--resume', cwd=cwd)
    whole = Checkpoint.load(str(crops / RUN / 'last.pt'))
    resumed = Checkpoint.load(str(cwd / RUN / 'last.pt'))
    assert resumed.epoch == 2
    for name, value in whole.model.items():
        assert torch.equal(value, resumed.model[name]), name
    for a, b in zip(whole.history, resumed.history):
        assert (a['train_loss'], a['val_acc']) == (b['train_loss'], b['val_acc'])
    assert not [p for p in (cwd / RUN).iterdir() if '.tmp' in p.name]


def test_killed_aug_img_leaves_no_dataset_and_the_next_run_completes(tmp_path):
    write_source(str(tmp_path / 'source'), classes=3, frames=40, width=640, height=480, bar=32)
    proc = start('aug_img.py', 'source', 6000, '-p', 64, '-n', 'big', '--workers', 1,
                 cwd=tmp_path)
    data = tmp_path / 'data'
    wait_for(lambda: data.is_dir() and any('.partial-' in p.name for p in data.iterdir()), proc)
    time.sleep(0.3)                                      # crops are being written
    proc.kill()   # SIGKILL; on Windows TerminateProcess
    proc.wait()
    assert not (data / 'big').exists()                  # never taken for a finished dataset
    run('aug_img.py', 'source', 300, '-p', 64, '-n', 'big', cwd=tmp_path)
    assert (data / 'big' / 'manifest.csv').is_file()
    assert sorted(p.name for p in data.iterdir()) == ['.big.lock', '.latest', 'big']   # cleared


@pytest.mark.slow
@pytest.mark.parametrize('rules', ['posix', 'windows'])
def test_a_second_run_on_the_same_folder_is_refused(crops, tmp_path, rules, monkeypatch):
    cwd = sharing_data(tmp_path, crops)
    env = windows_env() if rules == 'windows' else None   # there: filelock, no fcntl
    proc = start('train.py', *TINY, '--set', 'epochs=200', cwd=cwd, env=env)
    try:
        wait_for(lambda: (cwd / RUN / 'config.json').exists(), proc)
        for script, extra in (('train.py', ['--force']), ('test.py', [])):
            second = run(script, *TINY, *extra, cwd=cwd, check=False, env=env)
            assert_clean_error(second, 'runs/example/cpu', f'in use by process {proc.pid}')
        # nor may the dataset it reads be replaced under it
        second = run('aug_img.py', crops / 'source', 60, '-p', 32, '-n', 'example', '--force',
                     cwd=cwd, check=False, env=env)
        assert_clean_error(second, 'data/example', 'in use by')   # a reader: pid on Windows only
        assert proc.poll() is None                      # the first run goes on undisturbed
    finally:
        proc.kill()
        proc.wait()
    if rules == 'windows':
        monkeypatch.setattr(locks, 'fcntl', None)
    # the killed run's locks are released, the dataset's (a reader's) as well as the run's
    with exclusive(str(cwd / RUN)), exclusive(str(cwd / 'data' / 'example')):
        pass


class NaNAfter(torch.nn.Module):
    """Logits that turn NaN at the given call: what a diverging network produces."""

    def __init__(self, calls):
        super().__init__()
        self.calls, self.weight = calls, torch.nn.Parameter(torch.zeros(3))

    def forward(self, x):
        self.calls -= 1
        logits = self.weight.expand(len(x), 3)
        return logits * float('nan') if self.calls < 0 else logits


def test_a_loss_gone_nan_stops_training_with_a_message():
    model = NaNAfter(calls=5)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    t = Training(model, model, torch.nn.CrossEntropyLoss(), optimizer,
                 torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0),
                 torch.amp.GradScaler('cpu', enabled=False), None, torch.device('cpu'))
    batches = [(torch.zeros(4, 1, 8, 8), torch.zeros(4, dtype=torch.long), [])] * 8
    with pytest.raises(UserError, match='loss became nan.*last good checkpoint is kept'):
        train_one_epoch(t, batches, 'epoch')


def test_diverging_run_writes_no_checkpoint(crops, tmp_path):
    cwd = sharing_data(tmp_path, crops)
    proc = call('train.py', *TINY, '--set', 'lr=1e30', '--set', 'optimizer=sgd', cwd=cwd,
                check=False)
    assert_clean_error(proc, 'loss became')
    assert not (cwd / RUN / 'last.pt').exists() and not (cwd / RUN / 'best.pt').exists()


FILE_SIZE_LIMIT = pytest.mark.skipif(sys.platform == 'win32',
                                     reason='a full disk is emulated with RLIMIT_FSIZE (POSIX)')


def limited(script, *args, cwd, max_bytes):
    """Run a script whose files may not grow past max_bytes (as if the disk were full)."""
    def limit():
        import resource   # POSIX only: imported here so that the suite collects on Windows
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)   # a refused write raises, not kills
        resource.setrlimit(resource.RLIMIT_FSIZE, (max_bytes, max_bytes))
    return subprocess.run([sys.executable, os.path.join(ROOT, script), *map(str, args)],
                          cwd=cwd, capture_output=True, text=True, timeout=600,
                          preexec_fn=limit)


def no_temporaries(folder):
    return not [p for p in folder.rglob('*') if '.tmp' in p.name or '.partial-' in p.name]


@FILE_SIZE_LIMIT
def test_full_disk_while_cutting_crops(source, tmp_path):
    proc = limited('aug_img.py', 'source', 60, '-p', 48, '-n', 'full', cwd=tmp_path,
                   max_bytes=2000)
    assert_clean_error(proc, 'cannot write', 'nothing half-written')
    assert not (tmp_path / 'data' / 'full').exists()
    assert no_temporaries(tmp_path / 'data')


@FILE_SIZE_LIMIT
def test_full_disk_while_saving_a_checkpoint(crops, tmp_path):
    cwd = sharing_data(tmp_path, crops)
    proc = limited('train.py', *TINY, cwd=cwd, max_bytes=100_000)   # a checkpoint is ~45 MB
    assert_clean_error(proc, 'cannot write', 'best.pt')
    assert not (cwd / RUN / 'best.pt').exists() and not (cwd / RUN / 'last.pt').exists()
    assert no_temporaries(cwd / RUN)
    call('train.py', *TINY, '--force', cwd=cwd)           # with room again, it just works


@FILE_SIZE_LIMIT
def test_full_disk_while_writing_test_results(trained, tmp_path):
    cwd = tmp_path
    shutil.copytree(trained / 'data', cwd / 'data')
    shutil.copytree(trained / 'runs', cwd / 'runs')
    before = sorted(p.name for p in (cwd / RUN).iterdir())
    proc = limited('test.py', *RUNTIME, cwd=cwd, max_bytes=3000)
    assert_clean_error(proc, 'cannot write')
    assert no_temporaries(cwd / RUN)
    for name in before:                                  # the run itself is untouched
        assert (cwd / RUN / name).stat().st_size > 0


def test_a_dataset_on_read_only_storage_is_read_without_a_lock(tmp_path, monkeypatch):
    real_open = builtins.open

    def read_only(path, *args, **kwargs):
        if str(path).endswith('.lock'):
            raise OSError(errno.EROFS, 'Read-only file system', str(path))
        return real_open(path, *args, **kwargs)
    monkeypatch.setattr(builtins, 'open', read_only)
    with reading(str(tmp_path / 'data' / 'shared')):      # nobody can replace it there
        pass
    with pytest.raises(UserError, match='cannot write .*lock: Read-only'):
        with exclusive(str(tmp_path / 'runs' / 'mine')):  # but a run must write
            pass
