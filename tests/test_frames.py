"""Reading frames and finding the data bar, on synthetic frames and on every real frame."""
import glob
import os

import numpy as np
import pytest
from PIL import Image

from conftest import REAL_SEM
from synthetic_sem import CLASS_STYLES, make_frame
from semcnn.files.frames import detect_bar, read_image, save_crop


def frame_with_bar(bar, dark_above=0, seed=0):
    rng = np.random.default_rng(seed)
    pixels = make_frame(rng, CLASS_STYLES['synthA'], 320, 240, bar).copy()
    if dark_above:
        # a dark specimen region just above the bar: dim, but not the bar's flat black
        top = 240 - bar - dark_above
        pixels[top:240 - bar] = rng.integers(0, 40, (dark_above, 320))
    return pixels


@pytest.mark.parametrize('bar', [0, 12, 32, 50])
def test_bar_height_is_found(bar):
    assert detect_bar(frame_with_bar(bar)) == bar


def test_dark_specimen_above_the_bar_is_not_cut():
    assert detect_bar(frame_with_bar(32, dark_above=26)) == 32


def test_bar_in_16_bit_and_rgb_frames():
    gray = frame_with_bar(20)
    assert detect_bar(gray.astype(np.uint16) * 257) == 20
    assert detect_bar(np.dstack([gray] * 3)) == 20


def test_gray_jpeg_saved_as_rgb_reads_as_one_channel(tmp_path):
    gray = frame_with_bar(20)
    Image.fromarray(np.dstack([gray] * 3)).save(tmp_path / 'f.jpg', quality=95)
    pixels = read_image(str(tmp_path / 'f.jpg'))
    assert pixels.ndim == 2 and pixels.dtype == np.uint8
    assert np.abs(pixels.astype(int) - gray).mean() < 3        # the stored luminance


def test_colour_jpeg_stays_colour(tmp_path):
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 255, (60, 80, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / 'c.jpg')
    assert read_image(str(tmp_path / 'c.jpg')).shape == (60, 80, 3)


@pytest.mark.parametrize('shape, dtype', [((30, 41), np.uint8), ((30, 41), np.uint16),
                                          ((30, 41, 3), np.uint8)])
def test_tiff_writer_round_trip(shape, dtype, tmp_path):
    rng = np.random.default_rng(2)
    pixels = rng.integers(0, np.iinfo(dtype).max, (40, 50) + shape[2:], dtype=dtype)
    save_crop(str(tmp_path / 'c.tif'), pixels[5:5 + shape[0], 3:3 + shape[1]], 'tif')  # a view
    pixels = pixels[5:5 + shape[0], 3:3 + shape[1]]
    back = np.asarray(Image.open(tmp_path / 'c.tif'))
    assert back.dtype == dtype
    np.testing.assert_array_equal(back, pixels)


@pytest.mark.skipif(not os.path.isdir(REAL_SEM), reason='real SEM frames (../shared/sem) absent')
def test_every_real_frame_has_a_64_row_bar():
    files = sorted(glob.glob(os.path.join(REAL_SEM, '*', '*.jpg')))
    assert files
    heights = {f: detect_bar(read_image(f)) for f in files}
    assert {h for h in heights.values()} == {64}, {f: h for f, h in heights.items() if h != 64}
