"""Acquisition shifts: the operations, the per-crop input treatment, the session augmentation, and
an evaluation that tells a model reading grey levels from one reading the material."""
import argparse
import json
import os

import numpy as np
import pytest
import torch
from torch import nn

from config import get_config, open_run
from conftest import RUNTIME, call
from dataset import SEMDataset
from semcnn.data import acquisition
from semcnn.data.augment import Augment, SessionAugment
from semcnn.data.loaders import PreloadedBatches, make_loader
from semcnn.evaluation.scores import evaluate_split
from semcnn.evaluation.shifts import SHIFTS, evaluate_shifts, remap_targets
from semcnn.files.frames import save_crop
from semcnn.training.checkpoint import Checkpoint, load_trained
from semcnn.training.inference import predict
from semcnn.training.model import build_model


def test_equalized_model_sees_the_same_crop_under_increasing_grey_level_changes():
    """Any increasing change that keeps distinct grey levels distinct (it may not merge two of
    the 256 levels) gives the same input to the network."""
    equalized = build_model({'model': 'semnet_s4', 'intensity': 'equalize'}, 3, pretrained=False)
    raw = build_model({'model': 'semnet_s4'}, 3, pretrained=False)
    crops = torch.randint(3, 20, (4, 1, 64, 64)) * 10 / 255.0   # 17 grey levels
    stretched = acquisition.gain_offset(crops, [1.4] * 4, [0.05] * 4)
    changed = [stretched, acquisition.gamma(stretched, [1.1] * 4),
               acquisition.remap(crops, acquisition.histograms(crops),
                                 acquisition.quantiles(torch.ones(256)).expand(4, -1))]
    plain = equalized.treat(crops)
    assert plain.std() > 0.9                                 # the crop is still there
    for shifted in changed:
        assert torch.allclose(equalized.treat(shifted), plain, atol=1e-5)
        assert not torch.allclose(raw.treat(shifted), raw.treat(crops), atol=1e-3)
    standardized = build_model({'model': 'semnet_s4', 'intensity': 'standardize'}, 3,
                               pretrained=False)
    assert torch.allclose(standardized.treat(stretched), standardized.treat(crops), atol=1e-4)


def test_remap_keeps_pixel_order_and_takes_the_target_distribution():
    x = torch.rand(1, 1, 50, 50) * 0.5
    target = torch.rand(20000) * 0.3 + 0.6          # a bright, narrow session
    hist = acquisition.histograms(target.view(1, 1, 1, -1))
    out = acquisition.remap(x, acquisition.histograms(x), acquisition.quantiles(hist[0])[None])
    order = x.flatten().argsort()
    assert (out.flatten()[order].diff() >= 0).all()           # ranks kept
    assert 0.58 <= out.min() and out.max() <= 0.91
    assert abs(out.mean().item() - 0.75) < 0.02


def test_remap_targets_the_same_composition_in_another_state():
    classes = ['333', '333_cycled', '333_formation', '811', '811_cycled']
    assert [classes[t] for t in remap_targets(classes)] == [
        '333_cycled', '333_formation', '333', '811_cycled', '811']
    assert remap_targets(['a', 'b', 'c']) == [1, 2, 0]


def test_blur_illumination_and_noise_change_what_they_should():
    x = torch.zeros(2, 1, 21, 21)
    x[:, :, 10, 10] = 1
    out = acquisition.blur(x, [0.0, 2.0])
    assert torch.equal(out[0], x[0])                             # sigma 0: untouched
    assert out[1, 0, 10, 10] < 0.1 and abs(out[1].sum() - 1) < 1e-4   # spread, nothing lost
    flat = torch.full((1, 1, 8, 8), 0.5)
    ramp = acquisition.illumination(flat, [0.2], [0.0])          # left to right
    assert torch.allclose(ramp[0, 0, :, 0], torch.tensor(0.4)) and torch.allclose(
        ramp[0, 0, :, -1], torch.tensor(0.6))
    noisy = acquisition.noise(torch.full((1, 1, 64, 64), 0.5), [0.05],
                              torch.Generator().manual_seed(0))
    assert abs(noisy.std().item() - 0.05) < 0.01


def test_sharpen_and_rescale_change_what_they_should():
    edge = torch.full((2, 1, 16, 16), 0.3)
    edge[..., 8:] = 0.7
    out = acquisition.sharpen(edge, [0.0, 1.0], [1.0, 1.0])
    assert torch.equal(out[0], edge[0])                          # amount 0: untouched
    row = out[1, 0, 8]
    assert row[7] < 0.3 - 0.05 and row[8] > 0.7 + 0.05          # overshoot: a crisper edge
    assert torch.allclose(row[:4], torch.tensor(0.3)) and torch.allclose(row[-4:],
                                                                         torch.tensor(0.7))
    square = torch.zeros(3, 1, 32, 32)
    square[..., 12:20, 12:20] = 1                                # 8 x 8 in the centre
    zoomed = acquisition.rescale(square, [1.0, 2.0, 0.5])
    assert torch.equal(zoomed[0], square[0])                     # factor 1: untouched
    assert (zoomed[1] > 0.5).sum() == 16 * 16                    # magnified twice
    assert (zoomed[1, 0, 16] > 0.5).nonzero().flatten().tolist() == list(range(8, 24))
    assert (zoomed[2, 0, 12:20, 12:20] > 0.5).sum() == 4 * 4     # half: 4 x 4 in the centre
    assert zoomed.min() >= 0 and zoomed.max() <= 1


@pytest.mark.parametrize('more', [{}, {'sharpen': 1.0, 'scale': 0.2}])
def test_session_augment_is_seeded_bounded_and_off_by_default(more):
    x = torch.rand(8, 1, 32, 32)
    augment = SessionAugment(gamma=0.3, blur=1.0, illumination=0.3, noise=0.05, **more)
    first = augment.apply(x, augment.draw(8, torch.Generator().manual_seed(3)))
    again = augment.apply(x, augment.draw(8, torch.Generator().manual_seed(3)))
    assert torch.equal(first, again) and first.min() >= 0 and first.max() <= 1
    untouched = [torch.equal(a, b) for a, b in zip(first, x)]
    assert 0 < sum(untouched) < 8          # some changed, some left clean for BatchNorm
    assert not SessionAugment()


def test_sharpen_and_scale_leave_the_draws_of_older_recipes_as_they_were():
    """A recipe without sharpen or scale is augmented as before they existed: its results
    (RESULTS.md) stay reproducible."""
    old, new = SessionAugment(blur=1.0), SessionAugment(blur=1.0, scale=0.1)
    u_old, seed_old = old.draw(8, torch.Generator().manual_seed(5))
    u_new, seed_new = new.draw(8, torch.Generator().manual_seed(5))
    expected = torch.Generator().manual_seed(5)
    assert torch.equal(u_old, torch.rand(6, 8, generator=expected))
    assert seed_old == int(torch.randint(2 ** 62, (), generator=expected))
    assert torch.equal(u_new[:6], u_old) and seed_new == seed_old and u_new.shape == (9, 8)


def test_preloaded_training_batches_get_the_session_augmentation(tmp_path):
    images = torch.randint(0, 256, (32, 1, 16, 16), dtype=torch.uint8)
    data = (images, torch.zeros(32, dtype=torch.long), [str(i) for i in range(32)])
    plain = PreloadedBatches(data, 8, shuffle=False, drop_last=False)
    noisy = PreloadedBatches(data, 8, shuffle=False, drop_last=False,
                             augmentation=Augment(session=SessionAugment(noise=0.2)))
    (x, _, _), (y, _, _) = next(iter(plain)), next(iter(noisy))
    assert not torch.equal(x, y) and y.min() >= 0 and y.max() <= 1


def test_checkpoint_decides_the_input_treatment_at_test_time(tmp_path, monkeypatch):
    """A run trained on equalized crops is tested on equalized crops, whatever its version says
    today (cpu30_legacy: none)."""
    monkeypatch.chdir(tmp_path)
    cfg = {**get_config('x', 'cpu30_legacy'), 'intensity': 'equalize'}
    model = build_model(cfg, 3, pretrained=False)
    run_dir = tmp_path / 'runs' / 'x' / 'cpu30_legacy'
    run_dir.mkdir(parents=True)
    Checkpoint(model.state_dict(), ['a', 'b', 'c'], cfg).save(str(run_dir / 'best.pt'))
    args = argparse.Namespace(dataset='x', version='cpu30_legacy', checkpoint='best', set=[])
    opened, path, checkpoint = open_run(args, 'x', 'cpu30_legacy')
    loaded, _ = load_trained(opened, path, checkpoint, torch.device('cpu'))
    assert opened['intensity'] == loaded.intensity == 'equalize'


# -- the evaluation tells a grey-level reader from a material reader -------------------------

# The classes of `confounded`, in the order of their folders: 0 'bright', 1 'dark'.

class GreyLevelReader(nn.Module):
    """'bright' when a crop is bright: what a model that learnt the session does."""

    def forward(self, x):
        mean = x.mean(dim=(1, 2, 3))
        return torch.stack([mean - 0.5, 0.5 - mean], 1) * 50


class StripeReader(nn.Module):
    """'bright' when a crop's stripes run across (horizontal): it reads the material."""

    def forward(self, x):
        down = (x[:, :, 1:] - x[:, :, :-1]).abs().mean(dim=(1, 2, 3))    # horizontal stripes
        across = (x[..., 1:] - x[..., :-1]).abs().mean(dim=(1, 2, 3))    # vertical stripes
        return torch.stack([down - across, across - down], 1) * 50


def stripes(rng, horizontal, mean):
    """A 64 x 64 crop of stripes (period 8) around `mean`, with a little noise."""
    phase = rng.uniform(0, 2 * np.pi)
    wave = np.sin(np.arange(64) * 2 * np.pi / 8 + phase)
    image = np.broadcast_to(wave[:, None] if horizontal else wave[None, :], (64, 64))
    image = image * 0.15 + mean + rng.normal(0, 0.02, (64, 64))
    return (np.clip(image, 0, 1) * 255).round().astype(np.uint8)


@pytest.fixture(scope='module')
def confounded(tmp_path_factory):
    """Two classes that differ in stripe direction AND in brightness (one session each)."""
    root = tmp_path_factory.mktemp('confounded')
    rng = np.random.default_rng(0)
    for split, count in (('train', 20), ('test', 24)):
        for label, (horizontal, mean) in {'dark': (False, 0.3), 'bright': (True, 0.62)}.items():
            os.makedirs(root / split / label)
            for i in range(count):
                save_crop(str(root / split / label / f'frame{i % 4}_{i}.tif'),
                          stripes(rng, horizontal, mean), 'tif')
    return str(root)


def shift_table(model, root):
    test = SEMDataset(root, 'test', input_size=64)
    frames = [name.split('_')[0] for name, _ in test.samples]     # 4 frames per class
    reference = SEMDataset(root, 'train', test.classes, input_size=64)
    cfg = {'eval_batch_size': 16, 'num_workers': 0, 'tta': False, 'preload': False}
    logits, labels, _ = predict(model, make_loader(test, cfg, False, torch.device('cpu')),
                                torch.device('cpu'))
    plain = evaluate_split(logits.softmax(1).numpy(), labels.numpy(), test.classes, frames)
    assert plain['crops']['accuracy'] == plain['frames']['accuracy'] == 1.0   # both read it
    return evaluate_shifts(model, test, reference, frames, None, cfg, torch.device('cpu'), None,
                           plain)


def test_shift_evaluation_fails_a_model_that_reads_grey_levels(confounded):
    table = shift_table(GreyLevelReader(), confounded)
    assert set(table) == {'plain', *SHIFTS}
    assert table['remap']['crops'] <= 0.1                    # it follows the grey levels
    assert min(row['crops'] for row in table.values()) <= 0.6
    assert min(row['crops'] for row in table.values() if row is not table['plain']) < 0.95


def test_shift_evaluation_passes_a_model_that_reads_the_material(confounded):
    table = shift_table(StripeReader(), confounded)
    for name, row in table.items():
        assert row['crops'] >= 0.95 and row['frames'] >= 0.95, (name, row)


def test_test_script_reports_shifts_next_to_plain_accuracy(trained):
    proc = call('test.py', *RUNTIME, '--shifts', cwd=trained)
    assert 'under acquisition shifts' in proc.stdout and 'remap' in proc.stdout
    run_dir = trained / 'runs' / 'example' / 'cpu'
    with open(run_dir / 'results.json', encoding='utf-8') as f:
        shifts = json.load(f)['shifts']
    assert list(shifts) == ['plain', *SHIFTS]
    assert all({'crops', 'frames'} <= set(row) for row in shifts.values())
    assert (run_dir / 'shifts.csv').exists()
    call('test.py', *RUNTIME, cwd=trained)                          # without: no stale table left
    assert not (run_dir / 'shifts.csv').exists()


def test_validation_split_is_scored_apart_on_a_sample_of_crops(trained):
    """Recipes are compared on validation frames and their shifted copies, never on the test
    split; --shift-crops scores the shifts (and the plain row beside them) on a sample."""
    call('test.py', *RUNTIME, '--split', 'validate', '--shifts', '--shift-crops', 3, cwd=trained)
    with open(trained / 'runs' / 'example' / 'cpu' / 'validate' / 'results.json',
              encoding='utf-8') as f:
        results = json.load(f)
    assert results['split'] == 'validate'
    assert {row['n'] for row in results['shifts'].values()} == {9}   # 3 crops x 3 classes
    assert results['crops']['n'] > 9                                # the plain score: all
