"""Frames at other magnifications: each frame's physical scale, and frames brought to the
training scale (aug_img.py, predict.py); TIFFs through tifffile (16-bit colour, pixel-size tags)."""
import shutil

import numpy as np
import pandas as pd
import pytest
import tifffile
from PIL import Image

from conftest import RUNTIME, TINY, call, run
from synthetic_sem import write_source
from semcnn.data.images import rescale_pixels
from semcnn.files.frames import read_image, save_crop
from semcnn.files.manifest import read_manifest, training_scale
from semcnn.files.scale import CALIBRATIONS, Scale, frame_scale, plan

X500 = CALIBRATIONS['sne-4500m'] / 500   # um per pixel of the real frames (0.266)


def sidecar(frame, magnification, model='SNE-4500M Plus'):
    """The real frames' sidecar lines that matter here, beside `frame`."""
    with open(f'{frame}.txt', 'w', encoding='utf-8') as f:
        f.write(f'[Image Info]\nModel : {model}\nMagnification : x{magnification} \n'
                'Pixel Size : 0.7\n')


def test_a_16_bit_colour_tiff_keeps_its_values(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 65536, (20, 30, 3)).astype(np.uint16)
    save_crop(str(tmp_path / 'own.tif'), rgb, 'tif')
    tifffile.imwrite(tmp_path / 'planar.tif', np.moveaxis(rgb, -1, 0), photometric='rgb',
                     planarconfig='separate')
    for name in ('own.tif', 'planar.tif'):
        back = read_image(str(tmp_path / name))
        assert back.dtype == np.uint16 and back.max() > 255 and np.array_equal(back, rgb)


def test_a_multi_page_tiff_gives_its_first_page(tmp_path):
    pages = np.stack([np.full((8, 8), 10, np.uint8), np.full((8, 8), 200, np.uint8)])
    tifffile.imwrite(tmp_path / 'stack.tif', pages)
    assert np.array_equal(read_image(str(tmp_path / 'stack.tif')), pages[0])


@pytest.mark.parametrize('write, expected', [
    (dict(resolution=(1e4 / 0.5, 1e4 / 0.5), resolutionunit='CENTIMETER'), 0.5),
    (dict(imagej=True, resolution=(4.0, 4.0), metadata={'unit': 'micron'}), 0.25),
    (dict(extratags=[(34682, 's', 0, '[Scan]\nPixelWidth=1.3e-07\n', True)]), 0.13),
    (dict(extratags=[(50431, 'B', 0, b'PixelSizeX=2.0e-06\r\n', True)]), 2.0),
    (dict(resolution=(72.0, 72.0), resolutionunit='INCH'), None),   # a print size, no scale
])
def test_a_tiff_pixel_size_tag_gives_the_frame_its_scale(tmp_path, write, expected):
    path = str(tmp_path / 'frame.tif')
    tifffile.imwrite(path, np.zeros((16, 16), np.uint8), **write)
    found = frame_scale(path)
    assert found.um_per_px == pytest.approx(expected) if expected else not found.known
    if expected:
        assert found.source.startswith('TIFF tag')


def test_a_calibrated_sidecar_gives_the_scale_and_its_pixel_size_line_does_not(tmp_path):
    frame = str(tmp_path / 'a.jpg')
    sidecar(frame, 1000)
    assert frame_scale(frame).um_per_px == pytest.approx(X500 / 2)
    assert 'x1000' in frame_scale(frame).source
    assert frame_scale(frame, given=0.4) == Scale(0.4, '--pixel-size')   # the user's word wins
    sidecar(frame, 1000, model='Other SEM')      # magnification, but no calibration for it
    assert not frame_scale(frame).known
    assert not frame_scale(str(tmp_path / 'none.jpg')).known


def test_the_training_scale_is_that_of_most_training_crops(tmp_path):
    def scale_of(values):
        pd.DataFrame({'split': 'train', 'um_per_px': values}).to_csv(tmp_path / 'manifest.csv',
                                                                     index=False)
        return training_scale(str(tmp_path))
    assert scale_of(['0.266'] * 3 + ['']) == pytest.approx(0.266)
    assert scale_of(['0.266'] + [''] * 9) is None   # one tagged TIFF among frames of unknown scale
    assert scale_of([''] * 4) is None


def test_frames_near_the_training_scale_are_resampled_far_ones_are_refused():
    assert plan(Scale(0.266, 's'), None) == plan(Scale(), None)     # nothing known: as it is
    assert plan(Scale(0.2661, 's'), 0.266).factor == 1                # the same scale
    assert plan(Scale(0.532, 's'), 0.266).factor == pytest.approx(2)  # enlarged, quietly
    assert plan(Scale(0.532, 's'), 0.266).warning is None
    assert plan(Scale(0.266 / 2.0003, 's'), 0.266).warning is None   # 2 times, to rounding
    finer = plan(Scale(0.266 / 3, 's'), 0.266)                        # 3 times finer
    assert finer.factor == pytest.approx(1 / 3) and 'finer' in finer.warning
    far = plan(Scale(2.66, 's'), 0.266)
    assert far.problem and '10 times coarser' in far.problem and 'image it at 0.266' in far.problem
    assert 'scale unknown' in plan(Scale(), 0.266).warning


def test_rescaling_averages_areas_when_it_shrinks():
    checker = np.indices((8, 8)).sum(0) % 2 * 200
    assert np.array_equal(rescale_pixels(checker.astype(np.uint8), 0.5),
                          np.full((4, 4), 100, np.uint8))
    assert rescale_pixels(np.zeros((10, 20, 3), np.uint16), 2).shape == (20, 40, 3)


@pytest.fixture(scope='module')
def scaled(tmp_path_factory):
    """A tiny run trained on synthetic frames at x500 of the real instrument, and the same
    frames shrunk to half size with their sidecar saying x250, or without any sidecar."""
    cwd = tmp_path_factory.mktemp('scaled')
    write_source(str(cwd / 'source'), classes=2, frames=6, width=320, height=240, bar=16)
    frames = sorted((cwd / 'source').glob('*/*.png'))
    for frame in frames:
        sidecar(str(frame), 500)
    run('aug_img.py', 'source', 60, '-p', 48, '-n', 'example', cwd=cwd)
    call('train.py', *TINY, '--set', 'epochs=2', cwd=cwd)
    for folder, magnification in (('half', 250), ('bare', None), ('far', 25)):
        (cwd / folder).mkdir()
        for frame in frames[:3] + frames[-3:]:
            name = cwd / folder / f'{frame.parent.name}_{frame.name}'
            image = Image.open(frame)
            if folder != 'bare':
                image = image.resize((160, 120), Image.BOX)
            image.save(name)
            if magnification:
                sidecar(str(name), magnification)
    return cwd


def predicted(cwd, folder, *extra):
    out = cwd / 'out' / folder
    proc = call('predict.py', folder, *RUNTIME, '--out', out, *extra, cwd=cwd)
    return pd.read_csv(out / 'frames.csv', keep_default_na=False, dtype=str), proc


def test_the_dataset_records_its_scale_and_the_run_keeps_it(scaled):
    rows = read_manifest(str(scaled / 'data' / 'example'))
    assert {r['um_per_px'] for r in rows} == {f'{X500:.6g}'}
    assert all('SNE-4500M Plus calibration' in r['scale_source'] for r in rows)


def test_a_frame_at_half_the_magnification_is_brought_to_the_training_scale(scaled):
    original, _ = predicted(scaled, 'bare', '--pixel-size', f'{X500}')
    half, proc = predicted(scaled, 'half')
    assert list(half['Scale um/px']) == [f'{2 * X500:.4g}'] * 6
    assert half['Warnings'].str.contains('scale').sum() == 0          # resampled quietly
    assert (half['Tiles'] == original['Tiles']).all()                 # cut as the originals
    assert (half['Prediction'] == original['Prediction']).mean() >= 5 / 6


def test_a_frame_of_unknown_scale_gets_a_warning_and_one_far_off_no_verdict(scaled):
    bare, proc = predicted(scaled, 'bare')
    (scaled / 'mixed_far').mkdir()
    assert bare['Warnings'].str.contains('scale unknown').all()
    assert (bare['Scale um/px'] == '').all()
    assert 'scale unknown' in proc.stderr
    for name in ('far', 'bare'):     # 6 frames 20 times coarser, beside 6 of unknown scale
        for frame in (scaled / name).glob('*.png'):
            shutil.copy(frame, scaled / 'mixed_far' / frame.name.replace('.png', f'_{name}.png'))
            if name == 'far':
                sidecar(str(scaled / 'mixed_far' / frame.name.replace('.png', '_far.png')), 25)
    table, proc = predicted(scaled, 'mixed_far')
    far = table[table['Frame'].str.endswith('_far.png')]
    assert len(far) == 6 and (far['Prediction'] == '').all() and (far['Agreement'] == '').all()
    assert far['Warnings'].str.contains('20 times coarser').all()   # x25 at half size
    assert far['Warnings'].str.contains('too far to resample').all()
    assert (table[table['Frame'].str.endswith('_bare.png')]['Prediction'] != '').all()


def test_aug_img_brings_frames_of_mixed_scales_to_the_most_common_one(scaled):
    source = scaled / 'mixed'
    for frame in sorted((scaled / 'source').glob('*/*.png')):
        (source / frame.parent.name).mkdir(parents=True, exist_ok=True)
        target = source / frame.parent.name / frame.name
        image = Image.open(frame)
        magnified = frame.name.endswith('0.png')              # one frame of six at x1000
        if magnified:
            image = image.resize((640, 480), Image.BILINEAR)
        image.save(target)
        sidecar(str(target), 1000 if magnified else 500)
    proc = run('aug_img.py', 'mixed', 60, '-p', 48, '-n', 'mixed', cwd=scaled)
    assert f'scale: {X500:.4g} um/pixel' in proc.stdout
    assert '2 frames at other scales resampled' in proc.stdout
    rows = read_manifest(str(scaled / 'data' / 'mixed'))
    assert {r['um_per_px'] for r in rows} == {f'{X500:.6g}'}
    big = [r for r in rows if r['source'].endswith('0.png')]
    assert big and max(int(r['y']) for r in big) <= 240 - 8 - 48   # in the frame brought to x500
