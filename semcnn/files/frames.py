"""Reading SEM frames and finding the instrument's data bar.

One job: turn an image file into a numpy array of its pixels (uint8 or uint16; H x W for gray
content, H x W x 3 for colour) and tell how many bottom rows are the data bar. Used by aug_img.py
to cut crops and by dataset.py to read them back. TIFFs are read with tifffile (16-bit colour
kept, the first page of a multi-page file); other formats, and TIFFs tifffile cannot decode
(palette, inverted gray, compressions that need imagecodecs), with Pillow.
"""
import functools
import os
import struct

import numpy as np
import tifffile
from PIL import Image

IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.tif', '.tiff', '.bmp')

# A bar row is "solid" when nearly all of it is near-black; the band below the bar's top is
# allowed text rows that are only partly black. Measured on the real frames (../shared/sem):
# specimen rows reach at most 85 % near-black, bar rows never fall below 56 %. Near-black is up
# to 10 % of full scale: JPEG noise lifts a black band to 15-25 of 255 when a frame is saved
# again at a lower quality (at 4 %, 182 of 195 frames shrunk to half size and saved at JPEG
# quality 75 lost their bar; at 10 %, none, and all 583 originals keep their 64 rows).
DARK_LEVEL = 0.10          # near-black: at most 10 % of full scale (25 of 255)
SOLID_ROW = 0.98           # share of near-black pixels that makes a row solid bar background
BAR_ROW = 0.40             # a row with less than this share of near-black pixels ends the bar
MAX_BAR_SHARE = 0.25       # the bar is searched for in the bottom quarter only


class UnreadableImage(Exception):
    """The file is not an image this pipeline can decode; the message says why."""


def white(pixels):
    """The value of white in pixels as read_image gives them: 65535 (16-bit) or 255 (8-bit)."""
    return 65535 if pixels.dtype.itemsize == 2 else 255


def unit_scale(pixels):
    """Pixels as read_image gives them, as float32 in [0, 1]."""
    return pixels.astype(np.float32) * np.float32(1 / white(pixels))


def is_image_name(name):
    """True for a visible file with an image extension, in any letter case."""
    return not name.startswith('.') and os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


def _gray_plane(ycbcr):
    """The Y plane of a decoded YCbCr frame when it holds gray content (Cb, Cr flat at 128).

    Returns None for colour content. The data bar's text carries a little chroma from JPEG
    ringing, so only the part above the bottom quarter is looked at. The histogram and the band
    copy stay in Pillow's C code: converting the 3-band image to numpy costs more than decoding.
    """
    hist = ycbcr.histogram(mask=_upper_mask(ycbcr.size))       # 256 bins each for Y, Cb, Cr
    cb, cr = hist[256:512], hist[512:768]
    off_neutral = sum(sum(h[:128 - 4]) + sum(h[128 + 5:]) for h in (cb, cr))   # beyond 128 +- 4
    if off_neutral > 0.01 * sum(cb):
        return None
    return np.asarray(ycbcr.getchannel(0))


@functools.lru_cache(maxsize=8)
def _upper_mask(size):
    """Mask of the part of a frame above the bottom quarter, where no data bar can be."""
    width, height = size
    mask = Image.new('L', size, 0)
    mask.paste(255, (0, 0, width, max(1, int(height * (1 - MAX_BAR_SHARE)))))
    return mask


def _to_array(im):
    """Pixels of an opened PIL image as uint8/uint16, gray (H, W) or colour (H, W, 3)."""
    mode = im.mode
    if mode in ('I;16', 'I;16L', 'I;16B', 'I;16N', 'I', 'F'):
        return _pixels(np.asarray(im))
    if mode in ('1', 'L'):
        return np.asarray(im.convert('L'))
    if mode == 'LA':
        return np.asarray(im.getchannel('L'))
    return _pixels(np.asarray(im.convert('RGB')))   # RGB, RGBA, P, PA, CMYK, YCbCr, ...


def _pixels(a):
    """A decoded array (H x W, or H x W x samples) as read_image gives it: uint8 or uint16,
    gray (H, W) or colour (H, W, 3); alpha dropped, gray stored as RGB kept as one channel."""
    if a.ndim == 3:
        a = a[..., 0] if a.shape[2] < 3 else a[..., :3]   # gray + alpha, RGB, RGBA
    if a.dtype == bool:
        return a.astype(np.uint8) * 255
    if a.dtype.kind == 'f':
        raise UnreadableImage(f'{a.dtype.itemsize * 8}-bit float pixels are not supported; save '
                              'it as 8- or 16-bit')
    if a.dtype.kind not in 'ui' or a.dtype.itemsize > 2 or a.dtype.kind == 'i':
        if a.size and (a.min() < 0 or a.max() > 65535):
            raise UnreadableImage(f'{a.dtype.itemsize * 8}-bit integer pixels outside 0..65535; '
                                  'save it as 8- or 16-bit')
        a = a.astype(np.uint16)
    if a.ndim == 3 and (a[..., 0] == a[..., 1]).all() and (a[..., 0] == a[..., 2]).all():
        return np.ascontiguousarray(a[..., 0])   # gray stored as RGB: lossless to keep one channel
    return np.ascontiguousarray(a)


def _read_tiff(path):
    """The first page of a TIFF through tifffile, or None when tifffile cannot read it as gray
    or RGB (Pillow then tries)."""
    try:
        with tifffile.TiffFile(path) as tif:
            page = tif.pages.first
            if page.photometric not in (tifffile.PHOTOMETRIC.MINISBLACK,
                                        tifffile.PHOTOMETRIC.RGB):
                return None
            a = page.asarray()
            if page.axes.startswith('S'):                 # planar: samples first
                a = np.moveaxis(a, 0, -1)
    except (tifffile.TiffFileError, ValueError, OSError, KeyError, IndexError, TypeError,
            NotImplementedError):
        return None
    return _pixels(a) if a.ndim in (2, 3) else None


def read_image(path):
    """Decode an image file; raise UnreadableImage with a short reason when it cannot be used."""
    try:
        if os.path.getsize(path) == 0:
            raise UnreadableImage('empty file (0 bytes)')
        if path.lower().endswith(('.tif', '.tiff')):
            pixels = _read_tiff(path)
            if pixels is not None:
                return pixels
        with Image.open(path) as im:
            if im.format == 'JPEG' and im.mode == 'RGB':
                # Decode without colour conversion: a gray frame saved as a colour JPEG then
                # gives its exact stored gray values (the Y plane), one channel, in one decode.
                im.draft('YCbCr', im.size)
                im.load()
                gray = _gray_plane(im)
                if gray is not None:
                    return gray
                # Colour after all: decode again, letting libjpeg convert to RGB exactly as
                # every other reader does (Pillow's own YCbCr->RGB differs by +-1).
                with Image.open(path) as rgb:
                    return np.asarray(rgb.convert('RGB'))
            im.load()
            return _to_array(im)
    except UnreadableImage:
        raise
    except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError) as e:
        raise UnreadableImage(f'cannot decode ({e})') from None


def image_size(path):
    """(width, height) from the header alone; raise UnreadableImage if it is not an image."""
    try:
        if os.path.getsize(path) == 0:
            raise UnreadableImage('empty file (0 bytes)')
        with Image.open(path) as im:
            return im.size
    except UnreadableImage:
        raise
    except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError) as e:
        raise UnreadableImage(f'not an image ({e})') from None


def detect_bar(pixels):
    """Height in rows of the dark data bar at the bottom of a frame (0 when there is none).

    The bar is a black band with white text. Its top is the highest "solid" row (nearly all
    near-black) in the bottom quarter such that no row between it and the bottom is clearly
    specimen. A specimen that is merely dark above the bar never has solid rows, so it is not cut
    (a plain "dark rows at the bottom" rule over-cuts such frames by 14 to 26 rows).
    """
    height = pixels.shape[0]
    lowest = height - int(height * MAX_BAR_SHARE)
    bottom = pixels[lowest:]
    gray = bottom.max(axis=2) if bottom.ndim == 3 else bottom
    dark_share = (gray <= DARK_LEVEL * white(pixels)).mean(axis=1)
    top = height
    for row in range(len(dark_share) - 1, -1, -1):
        if dark_share[row] < BAR_ROW:
            break
        if dark_share[row] >= SOLID_ROW:
            top = lowest + row
    return height - top


def cut_bar(pixels, bar=None):
    """(the frame without its data bar, rows cut): `bar` rows (at most the frame), or detected."""
    rows = detect_bar(pixels) if bar is None else min(bar, pixels.shape[0])
    return pixels[:pixels.shape[0] - rows], rows


def save_crop(path, pixels, fmt):
    """Write one crop losslessly as 'tif' (fast, below) or 'png' (smaller, slower)."""
    if fmt == 'tif':
        pixels = np.ascontiguousarray(pixels, dtype=pixels.dtype.newbyteorder('<'))
        with open(path, 'wb') as f:
            f.write(tiff_header(pixels.shape, pixels.dtype.itemsize))
            f.write(pixels.data)
    else:
        Image.fromarray(pixels).save(path, format=fmt.upper(), compress_level=1)


@functools.lru_cache(maxsize=64)
def tiff_header(shape, itemsize):
    """Header of an uncompressed little-endian baseline TIFF whose pixel data follows it.

    Crops are written by the ten thousand; Pillow's TIFF writer spends about 0.3 ms per file
    building its header in Python, and all crops of a frame share this one. Any TIFF reader
    (Pillow, ImageJ/Fiji, tifffile, libtiff) opens the result. Gray (H, W) or RGB (H, W, 3),
    8- or 16-bit.
    """
    height, width = shape[:2]
    samples = 1 if len(shape) == 2 else shape[2]
    bits = itemsize * 8
    entries = 9
    bits_offset = 8 + 2 + entries * 12 + 4         # BitsPerSample needs room when RGB
    data_offset = bits_offset + (2 * samples if samples > 2 else 0)
    bits_value = struct.pack('<HH', bits, 0) if samples == 1 else struct.pack('<I', bits_offset)
    tags = [
        (256, 4, 1, struct.pack('<I', width)),            # ImageWidth
        (257, 4, 1, struct.pack('<I', height)),           # ImageLength
        (258, 3, samples, bits_value),                    # BitsPerSample
        (259, 3, 1, struct.pack('<HH', 1, 0)),            # Compression: none
        (262, 3, 1, struct.pack('<HH', 1 if samples == 1 else 2, 0)),  # BlackIsZero / RGB
        (273, 4, 1, struct.pack('<I', data_offset)),      # StripOffsets
        (277, 3, 1, struct.pack('<HH', samples, 0)),      # SamplesPerPixel
        (278, 4, 1, struct.pack('<I', height)),           # RowsPerStrip: one strip
        (279, 4, 1, struct.pack('<I', height * width * samples * itemsize)),  # StripByteCounts
    ]
    head = [b'II*\x00', struct.pack('<I', 8), struct.pack('<H', entries)]
    head += [struct.pack('<HHI', tag, kind, count) + value for tag, kind, count, value in tags]
    head.append(struct.pack('<I', 0))                     # no next IFD
    if samples > 2:
        head.append(struct.pack('<' + 'H' * samples, *([bits] * samples)))
    return b''.join(head)
