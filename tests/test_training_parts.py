"""The pieces of the from-scratch recipes: preloaded batches, batch augmentation, schedule."""
import numpy as np
import pytest
import torch

from config import check_values, gen_default
from conftest import run
from dataset import SEMDataset
from utils import schedule_fn
from semcnn.data.augment import Augment
from semcnn.data.images import dihedral
from semcnn.data.loaders import PreloadedBatches, make_loader, preload
from semcnn.files.errors import UserError
from semcnn.training.model import build_model


@pytest.fixture(scope='module')
def crops(tmp_path_factory):
    cwd = tmp_path_factory.mktemp('crops')
    from synthetic_sem import write_source
    write_source(str(cwd / 'source'), classes=3, frames=6, width=160, height=120, bar=16)
    run('aug_img.py', 'source', 60, '-p', 32, '-n', 'example', cwd=cwd)
    return str(cwd / 'data' / 'example')


def test_preloaded_batches_are_the_crops_read_from_files(crops):
    dataset = SEMDataset(crops, 'validate', input_size=24)   # resized, like a real recipe
    cfg = {'batch_size': 8, 'eval_batch_size': 8, 'num_workers': 0, 'preload': False}
    from_files = list(make_loader(dataset, cfg, False, torch.device('cpu')))
    preloaded = list(make_loader(dataset, {**cfg, 'preload': True}, False, torch.device('cpu')))
    assert len(from_files) == len(preloaded)
    for (x1, y1, n1), (x2, y2, n2) in zip(from_files, preloaded):
        assert n1 == n2 and torch.equal(y1, y2)
        assert x2.dtype == torch.float32 and x2.shape == x1.shape
        assert (x1 - x2).abs().max() <= 0.5 / 255 + 1e-6    # stored as 8 bits


def test_training_batches_shuffle_augment_and_drop_the_last_partial_batch(crops):
    data = preload(SEMDataset(crops, 'train', input_size=32), 0)
    batches = PreloadedBatches(data, 16, shuffle=True, drop_last=True,
                               augmentation=Augment(flip_turn=True))
    batches.generator.manual_seed(0)
    first = [names for _, _, names in batches]
    batches.generator.manual_seed(0)
    again = [names for _, _, names in batches]
    assert first == again                                   # seeded: a resumed epoch repeats
    assert len(first) == len(data[2]) // 16 and all(len(n) == 16 for n in first)
    assert sum(first, []) != sorted(sum(first, []))        # shuffled


def test_batch_flip_turn_gives_each_image_one_of_its_eight_versions():
    x = torch.rand(64, 1, 8, 8)
    flip = Augment(flip_turn=True)
    out = flip.apply(x, flip.draw(len(x), torch.Generator().manual_seed(1)))
    found = set()
    for before, after in zip(x, out):
        matches = [k for k in range(8) if torch.equal(dihedral(before, k), after)]
        assert len(matches) == 1
        found.add(matches[0])
    assert found == set(range(8))                           # all 8 occur in 64 draws


def test_jitter_changes_brightness_and_contrast_per_image_within_range():
    x = torch.rand(32, 1, 16, 16) * 0.5 + 0.25
    jitter = Augment(jitter=0.2)
    out = jitter.apply(x, jitter.draw(len(x), torch.Generator().manual_seed(0)))
    assert out.min() >= 0 and out.max() <= 1
    ratio = out.std(dim=(1, 2, 3)) / x.std(dim=(1, 2, 3))
    assert 0.79 < ratio.min() < ratio.max() < 1.21 and ratio.std() > 0.01
    assert (out.mean(dim=(1, 2, 3)) - x.mean(dim=(1, 2, 3))).abs().max() <= 0.1 + 1e-6


def test_schedule_warms_up_then_follows_a_cosine_to_zero():
    cfg = {'scheduler': 'cosine', 'warmup_epochs': 1.0, 'epochs': 3}
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([param], lr=1.0)
    scheduler = schedule_fn(cfg, optimizer, steps_per_epoch=10)
    lrs = []
    for _ in range(30):
        lrs.append(optimizer.param_groups[0]['lr'])
        optimizer.step()
        scheduler.step()
    np.testing.assert_allclose(lrs[:10], np.arange(1, 11) / 10)
    assert lrs[10] == pytest.approx(1.0) and lrs[20] == pytest.approx(0.5)
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:])) and lrs[-1] < 0.01
    flat = schedule_fn({**cfg, 'scheduler': 'none', 'warmup_epochs': 0.0}, optimizer, 10)
    assert flat.lr_lambdas[0](0) == flat.lr_lambdas[0](29) == 1.0
    # a warm-up of half a step's worth never overshoots the learning rate
    short = schedule_fn({**cfg, 'scheduler': 'none', 'warmup_epochs': 0.5}, optimizer, 3)
    assert max(short.lr_lambdas[0](step) for step in range(9)) == 1.0


@pytest.mark.parametrize('name, stem_side', [('semnet', 56), ('semnet_s4', 28)])
def test_semnet_takes_gray_crops_and_has_no_imagenet_weights(name, stem_side):
    model = build_model({'model': name, 'pretrained': False}, 12)
    assert model(torch.rand(2, 1, 112, 112)).shape == (2, 12)
    # the stem: all but the four stages (two conv/BN/ReLU triples each) and the 4-module head;
    # the first stage then runs at half (semnet) or a quarter (semnet_s4) of the input side
    stem = torch.nn.Sequential(*list(model.net)[:-(4 * 2 * 3 + 4)])
    assert stem(torch.rand(1, 3, 112, 112)).shape[-1] == stem_side
    with pytest.raises(UserError, match='pretrained=false'):
        check_values({**gen_default('example'), 'model': name, 'pretrained': True})


def test_channels_last_layout_gives_the_same_predictions():
    torch.manual_seed(0)
    model = build_model({'model': 'semnet', 'pretrained': False}, 5, (0.4,) * 3, (0.2,) * 3)
    x = torch.rand(3, 1, 48, 48)
    with torch.no_grad():
        before = model.eval()(x)
        after = model.use_channels_last()(x)
    assert model.net[0].weight.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(after, before, rtol=1e-4, atol=1e-5)


CLASSES = ['333', '333_cycled', '333_formation', '811', '811_cycled', '811_formation']


def test_a_factored_head_gives_each_class_its_composition_times_its_state():
    model = build_model({'model': 'semnet_s4', 'head': 'factored'}, CLASSES,
                        pretrained=False).eval()
    with torch.no_grad():
        probs = model(torch.rand(5, 1, 64, 64)).softmax(1)
    # rows: composition 333, 811; columns: cycled, formation, pristine (the names' order)
    table = probs[:, [1, 2, 0, 4, 5, 3]].view(5, 2, 3)
    composition, state = table.sum(2), table.sum(1)
    assert torch.allclose(probs.sum(1), torch.ones(5), atol=1e-5)
    assert torch.allclose(table, composition[:, :, None] * state[:, None, :], atol=1e-5)


def test_a_factored_head_needs_class_names_that_read_composition_and_state():
    with pytest.raises(UserError, match='head=factored.*<composition>'):
        build_model({'model': 'semnet_s4', 'head': 'factored'}, ['cat', 'dog', 'cow'],
                    pretrained=False)
