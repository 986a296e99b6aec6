"""Novelty: a tile unlike the training material does not vote, and a frame of another material
gets no verdict, by its nearest training crops in the network's own features."""
import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from conftest import RUNTIME, TINY, call, run
from synthetic_sem import write_source
from semcnn.evaluation.novelty import (features, kth_distance, limit_over_frames, novelty_of,
                                       predict_with_features, training_sample)
from semcnn.evaluation.scores import vote_frames
from semcnn.training.checkpoint import Checkpoint
from semcnn.training.inference import predict_batch
from semcnn.training.model import build_model


def test_the_kth_neighbour_distance_is_the_kth_smallest():
    bank = torch.nn.functional.normalize(torch.randn(50, 8), dim=1)
    query = torch.nn.functional.normalize(torch.randn(7, 8), dim=1)
    expected = torch.cdist(query, bank).sort(1).values[:, 2]
    assert torch.allclose(kth_distance(query, bank, k=3, chunk=4), expected)
    record = {'bank': bank.half(), 'k': 1, 'threshold': 0.5}
    assert novelty_of(record, bank[:3]) == pytest.approx([0, 0, 0], abs=0.01)   # seen: near 0


@pytest.mark.parametrize('tta', [False, True])
def test_one_pass_gives_the_predictions_and_the_plain_features(tta):
    torch.manual_seed(0)
    model = build_model({'model': 'semnet', 'pretrained': False}, 5).eval()
    model.temperature = 0.5
    x = torch.rand(3, 1, 64, 64)
    logits, feats = predict_with_features(model, x, tta)
    assert torch.allclose(logits, predict_batch(model, x, tta), atol=1e-5)
    assert torch.allclose(feats, features(model, x), atol=1e-5)


class Split:
    """A training split of `n` crops ordered by class, as SEMDataset lists them."""
    def __init__(self, n):
        self.n = n

    def without_augmentation(self):
        return list(range(self.n))


def test_the_training_sample_reaches_every_class_evenly():
    # 12 classes of 1,280 crops: a sample of 4,000 once stopped at 12,000 and left 811 out
    picked = np.array(training_sample(Split(12 * 1280), limit=4000).indices)
    assert len(picked) == 4000 and picked.max() >= 12 * 1280 - 4
    assert np.bincount(picked // 1280).tolist() == pytest.approx([4000 / 12] * 12, abs=1)
    assert training_sample(Split(30), limit=4000).indices == list(range(30))   # all, once


def test_novel_tiles_do_not_vote_and_a_mostly_novel_frame_gets_no_verdict():
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.9, 0.1], [0.8, 0.2], [0.1, 0.9], [0.1, 0.9]])
    frames = ['a', 'a', 'a', 'b', 'b', 'b']
    novelty = np.array([0.3, 1.5, 0.4, 1.2, 1.4, 0.2])
    votes = vote_frames(frames, probs, novelty=novelty, frame_limit=0.35)
    assert votes.probs[0].tolist() == pytest.approx([0.9, 0.1])   # the novel tile left out
    assert votes.agreement[0] == 1.0 and votes.novel.tolist() == [1, 2]
    assert not votes.has_verdict[1]                                # 2 of 3 novel: median 1.2
    assert votes.reason(1) == ('no verdict: unlike the training material (2 of its 3 material '
                               'tiles novel, median novelty 1.20)')
    # a verdict kept, but its material is less usual than that of any validation frame
    assert votes.unusual(0).startswith('unusual material: median novelty 0.40') and \
        votes.unusual(1) == ''
    assert vote_frames(frames, probs, novelty=novelty, frame_limit=0.9).unusual(0) == ''
    assert vote_frames(frames, probs).has_verdict.all()           # without novelty: as before


def test_the_frame_limit_comes_from_frames_with_enough_material():
    # frame a: four material crops; frame b: one material crop of 16 (a foil edge, too few
    # for a verdict) whose novelty 0.95 would lift the limit to 1
    frames = ['a'] * 4 + ['b'] * 16
    material = [True] * 4 + [True] + [False] * 15
    novelty = [0.4, 0.5, 0.6, 0.5, 0.95] + [2.0] * 15
    assert limit_over_frames(np.array(novelty), frames, np.array(material)) == pytest.approx(0.55)
    assert limit_over_frames(np.array(novelty[4:]), frames[4:], np.array(material[4:])) == 1.0


@pytest.fixture(scope='module')
def others(tmp_path_factory):
    """A short run on synthetic cathode-like frames, then predict.py on two of them and on
    frames of other textures: stripes, a checkerboard and photographs."""
    cwd = tmp_path_factory.mktemp('novelty')
    write_source(str(cwd / 'source'), classes=3, frames=8, width=320, height=240, bar=16)
    run('aug_img.py', 'source', 120, '-p', 48, '-n', 'example', cwd=cwd)
    call('train.py', *TINY, '--set', 'epochs=8', cwd=cwd)
    (cwd / 'new').mkdir()
    yy, xx = np.mgrid[0:240, 0:320]
    textures = {'stripes': 127 + 100 * np.sin(xx / 3.0),
                'checker': (xx // 20 + yy // 20) % 2 * 200 + 20}
    from sklearn.datasets import load_sample_images   # photographs scikit-learn ships
    for i, photo in enumerate(load_sample_images().images):
        textures[f'photo{i}'] = np.asarray(Image.fromarray(photo).convert('L').resize((320, 240)))
    for name, pixels in textures.items():
        Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(cwd / 'new' / f'{name}.png')
    for cls in ('synthA', 'synthC'):
        (cwd / 'new' / f'normal_{cls}.png').write_bytes(
            (cwd / 'source' / cls / 'frame_007.png').read_bytes())
    call('predict.py', 'new', *RUNTIME, '--out', cwd / 'out', cwd=cwd)
    table = pd.read_csv(cwd / 'out' / 'frames.csv', keep_default_na=False, dtype=str)
    table.index = [name.split('/')[-1][:-4] for name in table['Frame']]
    return cwd, table


def test_frames_of_other_materials_rank_above_normal_ones_and_lose_their_verdict(others):
    """A one-minute network's features are weak: every other texture ranks above every normal
    frame, the checkerboard (most of its tiles novel) gets no verdict, and the stripes and one
    photograph keep theirs with an 'unusual material' warning; the flower photograph, mostly
    smooth petals, ranks just above the normal frames and gets neither. RESULTS.md has the real
    recipe's numbers."""
    _, table = others
    strange = table[~table.index.str.startswith('normal')]
    unlike = strange['Warnings'].str.contains('no verdict: unlike the training material')
    unusual = strange['Warnings'].str.contains('unusual material')
    assert (unlike | unusual).sum() >= 3, strange[['Prediction', 'Novelty', 'Warnings']]
    assert unlike.sum() >= 1 and (strange.loc[unlike, 'Prediction'] == '').all()
    assert (strange.loc[unusual & ~unlike, 'Prediction'] != '').all()   # warned, verdict kept
    normal = table[table.index.str.startswith('normal')]
    assert (normal['Prediction'] != '').all() and (normal['Warnings'] == '').all()
    assert normal['Novelty'].astype(float).max() < strange['Novelty'].astype(float).min()


def test_the_novelty_record_flags_about_one_validation_crop_in_a_hundred(others):
    cwd, _ = others
    best = Checkpoint.load(str(cwd / 'runs' / 'example' / 'cpu' / 'best.pt'))
    record = best.novelty
    assert record['k'] == 10 and record['bank'].dtype == torch.float16
    assert record['validation_flagged'] <= 0.03 and 0 < record['frame_limit'] <= 1
    tiles = pd.read_csv(cwd / 'out' / 'tiles.csv')
    assert 'Novelty' in tiles.columns and (tiles['Novelty'] >= 0).all()
