"""Composition/state results of test.py, predict.py on whole unlabelled frames, Grad-CAM."""
import json
import os

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from conftest import RUNTIME, TINY, assert_clean_error, call, run
from synthetic_sem import write_source
from semcnn.evaluation.gradcam import GradCAM
from semcnn.training.model import build_model

RUN = os.path.join('runs', 'example', 'cpu')
TEXT = {'Label': str, 'Prediction': str, 'Composition': str, 'State': str}   # '333' is a name
CLASSES = ['333', '333_cycled', '523', '523_cycled']


@pytest.fixture(scope='module')
def factored(tmp_path_factory):
    """A one-epoch run on 4 synthetic classes named <composition>[_<state>], tested."""
    cwd = tmp_path_factory.mktemp('factored')
    for style, name in zip(write_source(str(cwd / 'synthetic'), classes=4, frames=6, width=160,
                                        height=120, bar=16), CLASSES):
        os.renames(cwd / 'synthetic' / style, cwd / 'source' / name)
    run('aug_img.py', 'source', 60, '-p', 32, '-n', 'example', cwd=cwd)
    call('train.py', *TINY, cwd=cwd)
    call('test.py', *RUNTIME, cwd=cwd)
    return cwd


def test_results_split_composition_and_state(factored):
    run_dir = factored / RUN
    results = json.loads((run_dir / 'results.json').read_text())
    table = pd.read_csv(run_dir / 'predictions.csv', dtype=TEXT)
    for factor, values in (('composition', ['333', '523']), ('state', ['cycled', 'pristine'])):
        crops = results[factor]['crops']
        assert crops['classes'] == values
        assert np.sum(crops['confusion']) == len(table)
        column = factor.capitalize()
        truth = table['Label'].map(lambda c: c.split('_')[0] if factor == 'composition'
                                   else (c.split('_')[1] if '_' in c else 'pristine'))
        assert crops['accuracy'] == pytest.approx((table[column] == truth).mean())
        assert set(crops['recall']) <= set(values)
        assert results[factor]['frames']['n'] == results['frames']['n']
        assert (run_dir / f'confusion_matrix_{factor}.png').read_bytes()[:4] == b'\x89PNG'
    assert results['lowest_recall']['class'] in CLASSES


def test_predict_tiles_whole_frames_without_labels(factored, tmp_path):
    frames = tmp_path / 'new frames é'                 # spaces and non-ASCII must work
    frames.mkdir()
    for i, cls in enumerate(CLASSES[:2]):
        src = factored / 'source' / cls / 'frame_000.png'
        (frames / f'unlabelled µm {i}.png').write_bytes(src.read_bytes())   # non-ASCII
    (frames / 'notes.txt').write_text('sidecar, not an image')
    (frames / 'broken.jpg').write_bytes(b'not a jpeg')
    out = tmp_path / 'out'
    proc = call('predict.py', frames, *RUNTIME, '--out', out, cwd=factored)
    assert 'broken.jpg' in proc.stderr and 'Traceback' not in proc.stderr
    per_frame = pd.read_csv(out / 'frames.csv', dtype=TEXT)
    tiles = pd.read_csv(out / 'tiles.csv', dtype=TEXT)
    # every image file given gets a row: one that cannot be read, without a verdict
    broken = per_frame[per_frame['Frame'].str.endswith('broken.jpg')]
    assert broken['Status'].tolist() == ['no verdict'] and broken['Tiles'].tolist() == [0]
    assert broken['Prediction'].isna().all() and broken['Warnings'].notna().all()
    per_frame = per_frame.drop(broken.index)
    assert len(per_frame) == 2
    assert list(per_frame.columns[:8]) == ['Frame', 'Status', 'Prediction', 'Composition',
                                           'State', 'Confidence', 'Agreement', 'Tiles']
    assert (out / 'frames.csv').read_bytes().startswith('\ufeff'.encode())   # Excel: UTF-8
    assert per_frame['Frame'].str.contains('unlabelled µm').all()
    # the status says what the Warnings column says
    warned = per_frame['Warnings'].notna()
    assert (per_frame['Status'] == np.where(warned, 'warned', 'ok')).all()
    summary = pd.read_csv(out / 'summary.csv')
    assert summary.iloc[-1]['Prediction'] == 'all' and summary.iloc[-1]['Frames'] == 3
    assert summary.iloc[-1]['no verdict'] == 1
    assert (out / 'overview.png').read_bytes()[:4] == b'\x89PNG'
    assert list(tiles.columns[:10]) == ['Frame', 'x', 'y', 'width', 'height', 'Material',
                                        'Prediction', 'Composition', 'State', 'Novelty']
    # 160 x 120 frame, 16-row bar cut: 160 x 104 covered by 5 x 4 tiles of 32 px
    assert per_frame['Tiles'].tolist() == [20, 20] and len(tiles) == 40
    assert tiles['y'].max() + 32 == 104 and tiles['x'].max() + 32 == 160
    probs = [f'P({c})' for c in CLASSES]
    np.testing.assert_allclose(per_frame[probs].sum(axis=1), 1, atol=1e-4)
    np.testing.assert_allclose(per_frame['Confidence'].astype(float),
                               per_frame[probs].max(axis=1), atol=1e-4)   # the verdict's own P
    for frame, group in tiles.groupby('Frame'):
        row = per_frame[per_frame['Frame'] == frame].iloc[0]
        # a frame's vote: its tiles that show material and are not novel
        voting = group[(group['Material'].astype(str) == 'True')
                       & (group['Novelty'].astype(float) <= 1)]
        np.testing.assert_allclose(voting[probs].mean(), row[probs].astype(float), atol=1e-5)
        assert row['Agreement'] == pytest.approx(
            (voting['Prediction'] == row['Prediction']).mean(), abs=1e-4)
    assert per_frame['Composition'].isin(['333', '523']).all()


def test_predict_makes_colour_frames_gray_for_a_gray_model(factored, tmp_path):
    gray = np.asarray(Image.open(factored / 'source' / CLASSES[0] / 'frame_001.png').convert('L'))
    colour = np.stack([gray, gray // 2, gray], axis=2)        # tinted: really colour
    Image.fromarray(colour).save(tmp_path / 'tinted.png')
    out = tmp_path / 'out'
    proc = call('predict.py', tmp_path / 'tinted.png', *RUNTIME, '--out', out, cwd=factored)
    assert '1 colour frame(s) converted to gray' in proc.stdout
    assert len(pd.read_csv(out / 'frames.csv')) == 1


def test_predict_explains_frames_it_cannot_use(factored, tmp_path):
    small = tmp_path / 'small.png'
    Image.fromarray(np.zeros((20, 20), np.uint8)).save(small)
    assert_clean_error(call('predict.py', small, *RUNTIME, cwd=factored, check=False),
                       'none of the')
    assert_clean_error(call('predict.py', tmp_path / 'missing', *RUNTIME, cwd=factored,
                            check=False), 'missing')


def test_gradcam_map_lies_where_the_evidence_is():
    # one feature map = the image; the class-0 score is its mean, class 1 its negative
    conv = torch.nn.Conv2d(3, 1, 1, bias=False)
    head = torch.nn.Linear(1, 2, bias=False)
    with torch.no_grad():
        conv.weight.fill_(1.0)
        head.weight.copy_(torch.tensor([[1.0], [-1.0]]))
    model = torch.nn.Sequential(conv, torch.nn.ReLU(inplace=True), torch.nn.AdaptiveAvgPool2d(1),
                                torch.nn.Flatten(), head)
    x = torch.zeros(1, 3, 16, 16)
    x[:, :, 2:6, 9:13] = 1.0                                  # the evidence: one bright patch
    maps, probs = GradCAM(model, 16, layer_name='0')(x, torch.tensor([0]))
    assert probs[0].argmax() == 0
    assert torch.all(maps[0, 2:6, 9:13] == 1)                # the patch, in full
    assert float(maps[0].sum()) == 16.0                       # and nothing else


def test_gradcam_map_has_the_input_shape():
    torch.manual_seed(0)
    model = build_model({'model': 'resnet18', 'pretrained': False}, 3).eval()
    cam = GradCAM(model, 64)
    assert cam.layer_name == 'net.layer4'          # 2 x 2 at 64 px
    assert GradCAM(model, 32).layer_name == 'net.layer3'   # layer4 is 1 x 1 at 32 px
    x = torch.rand(2, 1, 64, 64)
    maps, probs = cam(x)
    assert maps.shape == (2, 64, 64)
    assert float(maps.std()) > 0                   # a map, not a constant
    assert float(maps.min()) >= 0 and float(maps.max()) <= 1
    assert torch.allclose(probs.sum(1), torch.ones(2))
    assert all(p.grad is None for p in model.parameters())   # no gradients left behind


def test_gradcam_command_writes_overlays_of_correct_test_crops(factored):
    proc = call('gradcam.py', *RUNTIME, '--per-class', 1, cwd=factored)
    pngs = sorted((factored / RUN / 'gradcam').glob('*.png'))
    table = pd.read_csv(factored / RUN / 'predictions.csv', dtype=TEXT)
    assert len(pngs) == table[table['Result']]['Label'].nunique()
    assert 'layer net.layer3' in proc.stdout       # 32-pixel crops: the last map above 1 x 1
    with Image.open(pngs[0]) as im:
        assert im.format == 'PNG' and im.size[0] > 300


def test_a_verdict_below_the_minimum_confidence_is_kept_with_a_warning(factored, tmp_path):
    frame = factored / 'source' / CLASSES[0] / 'frame_000.png'
    call('predict.py', frame, *RUNTIME, '--out', tmp_path / 'sure', cwd=factored)
    call('predict.py', frame, *RUNTIME, '--out', tmp_path / 'strict', '--min-confidence', 1,
         cwd=factored)
    sure, strict = (pd.read_csv(tmp_path / name / 'frames.csv', dtype=TEXT,
                                keep_default_na=False) for name in ('sure', 'strict'))
    assert 'uncertain' not in sure['Warnings'][0] or float(sure['Confidence'][0]) < 0.5
    assert strict['Warnings'][0].startswith('uncertain: P ')
    assert strict['Prediction'][0] == sure['Prediction'][0] != ''
