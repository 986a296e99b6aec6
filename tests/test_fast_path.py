"""The fast path: bf16 autocast agrees with fp32, and torchrun (2 processes, gloo, CPU) trains
what one process trains, with one set of outputs."""
import os
import subprocess
import sys

import pandas as pd
import pytest
import torch

from conftest import ROOT, TINY, call, cut_example, run, sharing_data
from engine import build_training, train_step
from semcnn.training.device import amp_dtype, autocast
from semcnn.training.inference import predict_batch
from semcnn.training.model import build_model

CPU = torch.device('cpu')


def tiny_cfg(**changes):
    cfg = {'model': 'semnet', 'pretrained': False, 'channels_last': True, 'compile': False,
           'optimizer': 'adamw', 'lr': 1e-3, 'weight_decay': 0.0, 'momentum': 0.9,
           'fused': False, 'amp': 'none', 'loss': 'cross_entropy', 'label_smoothing': 0.0,
           'scheduler': 'none', 'warmup_epochs': 0.0, 'epochs': 1}
    return {**cfg, **changes}


def quadrant_images(n=64):
    """A learnable toy task: class c has a bright square in quadrant c."""
    torch.manual_seed(5)
    x, y = torch.rand(n, 1, 32, 32) * 0.3, torch.arange(n) % 4
    for i, c in enumerate(y.tolist()):
        row, col = divmod(c, 2)
        x[i, 0, row * 16:(row + 1) * 16, col * 16:(col + 1) * 16] += 0.5
    return x, y


def training_curve(cfg, x, y, steps=30):
    torch.manual_seed(0)
    t = build_training(cfg, build_model(cfg, 4), CPU, steps_per_epoch=steps)
    t.model.train()
    losses = []
    for step in range(steps):
        batch = slice((step % 4) * 16, (step % 4 + 1) * 16)
        logits, loss = train_step(t, x[batch], y[batch])
        losses.append(loss.item())
    return logits, torch.tensor(losses)


def test_bf16_training_follows_the_fp32_curve():
    x, y = quadrant_images()
    logits32, plain = training_curve(tiny_cfg(lr=3e-3), x, y)
    logits16, fast = training_curve(tiny_cfg(lr=3e-3, amp='bf16'), x, y)
    assert logits32.dtype == torch.float32 and logits16.dtype == torch.bfloat16
    assert plain[-1] < 0.1 * plain[0]                         # it learned
    assert (fast - plain).abs().max() < 0.01 + 0.05 * plain.max()


def test_bf16_prediction_agrees_with_fp32():
    torch.manual_seed(1)
    model = build_model(tiny_cfg(), 4).eval()
    x = torch.rand(8, 1, 32, 32)
    plain = predict_batch(model, x, tta=True).softmax(1)
    with autocast(CPU, torch.bfloat16):
        fast = predict_batch(model, x, tta=True).softmax(1)
    assert fast.dtype == torch.float32
    assert (fast - plain).abs().max() < 0.02


def test_fused_optimizer_makes_the_same_steps():
    x, y = quadrant_images()
    _, plain = training_curve(tiny_cfg(lr=3e-3), x, y, steps=10)
    _, fused = training_curve(tiny_cfg(lr=3e-3, fused=True), x, y, steps=10)
    assert torch.allclose(plain, fused, rtol=1e-4, atol=1e-5)


def test_amp_modes_per_device():
    assert amp_dtype({'amp': 'auto'}, CPU) is None        # fp32 on a CPU unless asked
    assert amp_dtype({'amp': 'none'}, CPU) is None
    assert amp_dtype({'amp': 'bf16'}, CPU) == torch.bfloat16
    assert amp_dtype({'amp': 'fp16'}, CPU) == torch.float16


@pytest.fixture(scope='module')
def dataset(tmp_path_factory):
    return cut_example(tmp_path_factory.mktemp('ddp'), size=80)


DDP_RUN = [*TINY, '--set', 'preload=true', '--set', 'augment=true', '--set', 'batch_size=32']


def torchrun(script, *args, cwd):
    return subprocess.run([sys.executable, '-m', 'torch.distributed.run', '--standalone',
                           '--nproc_per_node=2', os.path.join(ROOT, script), *map(str, args)],
                          cwd=cwd, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_two_processes_compute_the_steps_of_one(tmp_path):
    """Without BatchNorm (which normalises each process's share by itself), torchrun's two
    processes make the same updates, augmentation included, and count each crop once."""
    run('tests/ddp_steps.py', tmp_path / 'one.pt', cwd=tmp_path)
    proc = torchrun('tests/ddp_steps.py', tmp_path / 'two.pt', cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    one, two = (torch.load(tmp_path / f'{n}.pt', weights_only=True) for n in ('one', 'two'))
    assert torch.allclose(one['metrics'], two['metrics'], atol=1e-5)
    for name, value in one['weights'].items():
        assert torch.allclose(value, two['weights'][name], atol=1e-5), name
    val_acc = two['metrics'][:, 3].double()
    assert torch.allclose(val_acc * 45, (val_acc * 45).round(), atol=1e-9)   # of 45 crops


@pytest.mark.slow
def test_torchrun_train_py_writes_one_set_of_outputs(dataset, tmp_path):
    call('train.py', *DDP_RUN, cwd=dataset)
    proc = torchrun('train.py', *DDP_RUN, cwd=sharing_data(tmp_path, dataset))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert 'x 2 processes' in proc.stdout
    assert proc.stdout.count('epoch   1/1') == 1             # only rank 0 reports
    one, two = (cwd / 'runs' / 'example' / 'cpu' for cwd in (dataset, tmp_path))
    assert sorted(p.name for p in two.iterdir()) == sorted(p.name for p in one.iterdir())
    h1, h2 = pd.read_csv(one / 'history.csv'), pd.read_csv(two / 'history.csv')
    # the same run but for BatchNorm statistics of half batches
    assert abs(h1['train_loss'][0] - h2['train_loss'][0]) < 0.05 * h1['train_loss'][0]


def test_global_batch_must_split_over_the_processes(dataset, tmp_path):
    proc = torchrun('train.py', *TINY, '--set', 'batch_size=15',
                    cwd=sharing_data(tmp_path, dataset))
    assert proc.returncode != 0
    # each process says it in a line of its own (torchrun then adds its report of failures)
    errors = [line for line in proc.stderr.splitlines() if 'error:' in line]
    assert len(errors) == 2, proc.stderr[-3000:]
    assert all(line.startswith('error:') and line.count('error:') == 1
               and line.endswith('choose a multiple of 2') for line in errors)
    assert not (tmp_path / 'runs').exists()
