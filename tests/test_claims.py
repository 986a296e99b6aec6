"""The documented promises about honest evaluation (docs/changes.md), each tested by what the
scripts do.

A trap dataset makes a broken promise visible in the outputs: its validation labels are swapped
(so validation accuracy is highest before the network has learned much, while training accuracy
keeps rising) and its test crops are made much brighter than the training crops (so statistics
taken from the wrong split cannot pass for the training split's). tests/CLAIMS.md lists which
test guards each documented promise.
"""
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from conftest import ROOT, TINY, call, run, sharing_data
from dataset import SEMDataset
from synthetic_sem import write_source
from semcnn.data.loaders import channel_stats
from semcnn.training.checkpoint import Checkpoint, load_trained
from semcnn.training.inference import predict_batch
from semcnn.training.model import SEMClassifier

TRAP_RUN = ['--dataset', 'trap', *TINY, '--set', 'model=semnet', '--set', 'epochs=6',
            '--set', 'lr=0.003', '--set', 'intensity=none', '--set', 'normalize=true']


def crops_of(folder):
    """uint8 pixels of every crop under `folder` (split/class/crop.tif), in a stable order."""
    return [np.asarray(Image.open(os.path.join(d, f)))
            for d, _, files in sorted(os.walk(folder)) for f in sorted(files)]


@pytest.fixture(scope='module')
def trap(tmp_path_factory):
    cwd = tmp_path_factory.mktemp('trap')
    write_source(str(cwd / 'source'), classes=2, frames=6, width=160, height=120, bar=16)
    run('aug_img.py', 'source', 80, '-p', 32, '-n', 'trap', cwd=cwd)
    data = cwd / 'data' / 'trap'
    a, b = data / 'validate' / 'synthA', data / 'validate' / 'synthB'
    a.rename(data / 'validate' / 'swap')
    b.rename(a)
    (data / 'validate' / 'swap').rename(b)
    for path in (data / 'test').rglob('*.tif'):   # brighter than anything trained on
        pixels = np.asarray(Image.open(path))
        Image.fromarray((pixels // 4 + 180).astype(np.uint8)).save(path)
    call('train.py', *TRAP_RUN, cwd=cwd)
    return cwd, cwd / 'runs' / 'trap' / 'cpu'


def test_best_checkpoint_is_the_validation_peak_not_the_training_peak(trap):
    _, run_dir = trap
    history = pd.read_csv(run_dir / 'history.csv')
    val_peak = int(history.loc[history['val_acc'].idxmax(), 'epoch'])
    train_peak = int(history.loc[history['train_acc'].idxmax(), 'epoch'])
    assert val_peak < train_peak, history   # the trap works: the two peaks differ
    best = Checkpoint.load(str(run_dir / 'best.pt'))
    assert best.epoch == val_peak
    assert best.best_val_acc == pytest.approx(history['val_acc'].max())
    last = Checkpoint.load(str(run_dir / 'last.pt'))   # and training ran to the end
    assert last.epoch == 6 and list(history['epoch']) == [1, 2, 3, 4, 5, 6]


def test_normalisation_comes_from_the_training_split_only(trap):
    cwd, run_dir = trap
    data = cwd / 'data' / 'trap'
    train = np.stack(crops_of(data / 'train')) / 255.0
    test = np.stack(crops_of(data / 'test')) / 255.0
    assert abs(test.mean() - train.mean()) > 0.2   # the trap works: the splits differ
    for name in ('best.pt', 'last.pt'):
        weights = Checkpoint.load(str(run_dir / name)).model
        mean, std = weights['mean'].flatten(), weights['std'].flatten()
        assert mean.tolist() == pytest.approx([train.mean()] * 3, abs=1e-4)
        assert std.tolist() == pytest.approx([train.std()] * 3, abs=1e-4)


def test_test_split_is_scored_with_the_training_normalisation(trap):
    """test.py does not re-normalise with the test split's statistics (the original did)."""
    cwd, run_dir = trap
    call('test.py', '--dataset', 'trap', '--set', 'num_workers=0', '--set', 'device=cpu',
         cwd=cwd)
    best = Checkpoint.load(str(run_dir / 'best.pt'))
    model, classes = load_trained(best.config, 'best.pt', best, torch.device('cpu'))
    table = pd.read_csv(run_dir / 'predictions.csv').set_index('Image Name')
    for name in table.index[::7]:
        pixels = np.asarray(Image.open(cwd / 'data' / 'trap' / 'test' / name))
        x = torch.from_numpy(pixels / np.float32(255))[None, None]
        # the model normalises with its stored (training) statistics, as test.py must
        p = predict_batch(model, x, best.config['tta']).softmax(1)[0]
        for i, c in enumerate(classes):
            assert table.loc[name, f'P({c})'] == pytest.approx(float(p[i]), abs=1e-4)


def test_t_and_r_split_frames_as_they_split_crops(tmp_path):
    """-t is the test share and -r the validation share of the rest, for frames and crops
    alike (the original used -r for the test crops)."""
    write_source(str(tmp_path / 'source'), classes=2, frames=20, width=160, height=120, bar=16)
    run('aug_img.py', 'source', 100, '-p', 32, '-t', 15, '-r', 25, '-n', 'ds', cwd=tmp_path)
    manifest = pd.read_csv(tmp_path / 'data' / 'ds' / 'manifest.csv')
    frames = manifest.groupby(['class', 'split'])['source'].nunique().unstack()
    crops = manifest.groupby(['class', 'split']).size().unstack()
    assert (frames['test'] == 3).all()           # 15 % of 20 frames
    assert (frames['validate'] == 4).all()       # 25 % of the other 17, rounded
    assert (frames['train'] == 13).all()
    assert (crops['test'] == 15).all() and (crops['validate'] == 21).all()
    assert (crops['train'] == 64).all()


COUNT_DECODES = """
import os, runpy, sys
from semcnn.files import frames
log, read = os.environ['DECODE_LOG'], frames.read_image
def counted(path, *args, **kwargs):
    with open(log, 'a', encoding='utf-8') as f:
        f.write(os.path.relpath(path) + '\\n')
    return read(path, *args, **kwargs)
frames.read_image = counted
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name='__main__')
"""


def test_each_frame_is_decoded_once_however_many_crops_it_gives(tmp_path):
    write_source(str(tmp_path / 'source'), classes=2, frames=6, width=160, height=120, bar=16)
    log = tmp_path / 'decodes.txt'
    proc = subprocess.run([sys.executable, '-c', COUNT_DECODES, os.path.join(ROOT, 'aug_img.py'),
                           'source', '300', '-p', '32', '-n', 'ds'],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300,
                          env={**os.environ, 'DECODE_LOG': str(log), 'PYTHONPATH': ROOT})
    assert proc.returncode == 0, proc.stderr
    decoded = log.read_text().splitlines()
    assert sorted(decoded) == sorted(set(decoded))    # no frame twice ...
    assert len(decoded) == 12                          # ... and every frame of both classes
    assert len(pd.read_csv(tmp_path / 'data' / 'ds' / 'manifest.csv')) == 600


def test_without_normalisation_the_model_sees_the_crops_as_they_are(trap, tmp_path):
    """normalize=false (the paper's setting): mean 0 and std 1 are stored, and nothing is
    computed from any split."""
    cwd, _ = trap
    mine = sharing_data(tmp_path, cwd)
    call('train.py', *TRAP_RUN, '--set', 'normalize=false', '--set', 'epochs=1', cwd=mine)
    weights = Checkpoint.load(str(mine / 'runs' / 'trap' / 'cpu' / 'best.pt')).model
    assert weights['mean'].flatten().tolist() == [0.0] * 3
    assert weights['std'].flatten().tolist() == [1.0] * 3


def test_input_treatments_normalise_as_the_readme_says():
    """none: (x - mean) / std with the stored training statistics, per channel; standardize:
    each crop to mean 0, std 1; equalize: each crop's grey levels by their rank (mean 0 and
    std 1 too; test_shifts.py checks it ignores changes of the grey-level curve)."""
    torch.manual_seed(0)
    gray = torch.rand(2, 1, 16, 16) * 0.5 + 0.2
    colour = torch.rand(2, 3, 16, 16)
    stored = SEMClassifier(torch.nn.Identity(), mean=(0.3, 0.4, 0.5), std=(0.2, 0.1, 0.4))
    torch.testing.assert_close(stored.treat(gray), (gray - 0.3) / 0.2)
    torch.testing.assert_close(
        stored.treat(colour), (colour - torch.tensor([0.3, 0.4, 0.5]).view(1, 3, 1, 1))
        / torch.tensor([0.2, 0.1, 0.4]).view(1, 3, 1, 1))
    for intensity in ('standardize', 'equalize'):
        out = SEMClassifier(torch.nn.Identity(), intensity=intensity).treat(gray)
        assert out.mean(dim=(1, 2, 3)).abs().max() < 1e-4
        assert (out.std(dim=(1, 2, 3)) - 1).abs().max() < 0.02


def test_channel_statistics_are_those_of_the_training_crops(tmp_path):
    """Mean and std over every pixel of every crop (the first `limit` evenly spaced crops when
    there are more), without the training augmentation."""
    rng = np.random.default_rng(0)
    crops = [rng.integers(0, 256, (8, 8), dtype=np.uint8) for _ in range(6)]
    for i, pixels in enumerate(crops):
        folder = tmp_path / 'train' / ('a' if i < 3 else 'b')
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels).save(folder / f'{i}.png')
    split = SEMDataset(str(tmp_path), 'train', input_size=8, augment=True, jitter=0.3)
    every = np.stack(crops) / 255.0
    mean, std = channel_stats(split)
    assert mean == pytest.approx([every.mean()] * 3, abs=1e-6)
    assert std == pytest.approx([every.std()] * 3, abs=1e-6)
    mean, std = channel_stats(split, limit=3)                      # crops 0, 2, 4
    assert mean == pytest.approx([every[::2].mean()] * 3, abs=1e-6)
    assert std == pytest.approx([every[::2].std()] * 3, abs=1e-6)
