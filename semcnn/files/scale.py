"""A frame's physical scale: micrometres per pixel, and where that number came from.

Tiles and crops are cut in pixels, so a model only answers for frames at the scale it was
trained at. frame_scale() finds a frame's scale, first found wins:
1. the user's word (`--pixel-size UM` of aug_img.py and predict.py);
2. the TIFF's own tags: Thermo Fisher/FEI (`[Scan] PixelWidth`, metres), Zeiss SmartSEM (CZ_SEM
   `ap_image_pixel_size`), Tescan (`PixelSizeX`, metres), ImageJ/Fiji (a resolution in pixels
   per micron or nm), or a resolution whose unit is cm, mm or um (not inch: a dpi is a
   printing size, not a scale);
3. the sidecar's magnification, for an instrument whose pixel size at a magnification is known
   (CALIBRATIONS); the sidecar's `Pixel Size` line is not the saved image's scale (the same on
   every frame of ../shared/sem, whatever the magnification) and is never used;
4. else unknown (None).
"""
import re
from dataclasses import dataclass

import tifffile

from semcnn.files.errors import fail
from semcnn.files.sidecar import acquisition, read_sidecar

# Micrometres per pixel at x1 of the saved frame, per instrument model (the sidecar's 'Model',
# matched at its start, case-insensitive): pixel size = value / magnification. SNE-4500M (SEC
# tabletop, the frames of ../shared/sem, saved at 1280 x 960): its data bar's scale bar reads
# 100 um over 376 pixels at x500 (the bar's end ticks at columns 808 and 1184 on every frame),
# 0.266 um per pixel.
CALIBRATIONS = {'sne-4500m': 100 / 376 * 500}

UNITS_UM = {'m': 1e6, 'cm': 1e4, 'mm': 1e3, 'um': 1.0, 'µm': 1.0, 'micron': 1.0,
            'microns': 1.0, 'nm': 1e-3, 'pm': 1e-6}


@dataclass(frozen=True)
class Scale:
    um_per_px: float = None    # None: unknown
    source: str = 'unknown'    # how it was found, for the tables and the terminal

    @property
    def known(self):
        return self.um_per_px is not None


def check_pixel_size(given):
    """The user's --pixel-size (None, or micrometres per pixel above 0): one error line if not."""
    if given is not None and not 0 < given < float('inf'):
        fail(f'--pixel-size {given}: give the micrometres per pixel, above 0')


def frame_scale(path, given=None):
    """The Scale of the frame at `path`; `given` (um per pixel, the user's word) wins."""
    if given is not None:
        return Scale(float(given), '--pixel-size')
    if path.lower().endswith(('.tif', '.tiff')):
        found = tiff_scale(path)
        if found is not None:
            return Scale(found[0], f'TIFF tag ({found[1]})')
    return sidecar_scale(read_sidecar(path))


def sidecar_scale(values):
    """Scale from a sidecar's magnification and its instrument's calibration, or unknown."""
    model = next((v for k, v in values.items() if k.strip().lower() == 'model'), '')
    per_x1 = next((um for name, um in CALIBRATIONS.items()
                   if model.strip().lower().startswith(name)), None)
    magnification = acquisition(values)['magnification']
    if per_x1 is None or magnification in ('', None) or float(magnification) <= 0:
        return Scale()
    return Scale(per_x1 / float(magnification),
                 f'sidecar x{float(magnification):g}, {model.strip()} calibration')


def _um(value, unit):
    """A length in micrometres, or None for a unit not in UNITS_UM or a value <= 0."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    # the micro sign as ImageJ escapes it, or written as the Greek mu
    unit = str(unit).strip().lower().replace('\\u00b5', 'µ').replace('\u03bc', 'µ')
    factor = UNITS_UM.get(unit)
    return value * factor if factor and value > 0 else None


TESCAN_TAG = 50431
TESCAN_PIXEL = re.compile(rb'PixelSizeX\s*=\s*([0-9.eE+-]+)')
RESOLUTION_UNITS = {3: 'cm', 4: 'mm', 5: 'um'}   # TIFF ResolutionUnit (4, 5: tifffile's)


def tiff_scale(path):
    """(um per pixel, which tag) from a TIFF's tags, or None when none gives a scale."""
    try:
        with tifffile.TiffFile(path) as tif:
            page = tif.pages.first
            fei = tif.fei_metadata or {}
            width = _um((fei.get('Scan') or {}).get('PixelWidth'), 'm')
            if width:
                return width, 'FEI PixelWidth'
            zeiss = (tif.sem_metadata or {}).get('ap_image_pixel_size') or ()
            if len(zeiss) == 3 and _um(zeiss[1], zeiss[2]):
                return _um(zeiss[1], zeiss[2]), 'Zeiss Image Pixel Size'
            tescan = page.tags.get(TESCAN_TAG)
            if tescan is not None and isinstance(tescan.value, (bytes, str)):
                raw = tescan.value if isinstance(tescan.value, bytes) else tescan.value.encode()
                match = TESCAN_PIXEL.search(raw)
                if match and _um(match.group(1).decode(), 'm'):
                    return _um(match.group(1).decode(), 'm'), 'Tescan PixelSizeX'
            resolution = page.tags.get('XResolution')
            if resolution is None:
                return None
            numerator, denominator = resolution.value
            if not numerator or not denominator:
                return None
            per_unit = numerator / denominator            # pixels per unit
            unit = (tif.imagej_metadata or {}).get('unit')
            if unit is None:
                code = page.tags.get('ResolutionUnit')
                unit = RESOLUTION_UNITS.get(int(code.value) if code is not None else 2)
            length = _um(1 / per_unit, unit) if unit else None
            return (length, f'resolution, {unit}') if length else None
    except (OSError, ValueError, TypeError, KeyError, IndexError, tifffile.TiffFileError):
        return None   # a damaged or unusual file gives no scale; read_image says the rest


# How far a frame's scale may be from the training scale. Within QUIET times either way it is
# resampled and answered as any frame; up to LIMIT times it is resampled with a warning (an
# enlarged frame has no detail finer than its own pixels; a shrunk one loses what lies between
# the training pixels); beyond, no verdict. The measured case: frames of ../shared/sem shrunk to
# half size (twice the um per pixel) or their central half enlarged twice (RESULTS.md).
QUIET = 2.0
LIMIT = 4.0
SAME = 0.02   # scales within 2 % are the same: no resampling


@dataclass(frozen=True)
class Plan:
    factor: float = 1.0        # scale each side of the frame by this before tiling
    warning: str = None        # to show beside the verdict
    problem: str = None        # no verdict, and why


def plan(frame, trained_um):
    """How to bring a frame of Scale `frame` to the training scale `trained_um` (None: the
    training frames' scale is unknown, and nothing can be done or checked)."""
    if trained_um is None:
        return Plan()
    if not frame.known:
        return Plan(warning=f'scale unknown: read as if at the training scale {trained_um:.4g} '
                            'um/pixel (give --pixel-size, a TIFF pixel-size tag or a sidecar)')
    factor = frame.um_per_px / trained_um
    times = max(factor, 1 / factor)
    what = (f'scale {frame.um_per_px:.4g} um/pixel ({frame.source}), {times:.2g} times '
            f"{'coarser' if factor > 1 else 'finer'} than the training frames' "
            f'{trained_um:.4g}')
    if times > LIMIT * (1 + SAME):
        return Plan(problem=f'{what}: more than {LIMIT:g} times, too far to resample; image it '
                            f'at {trained_um:.4g} um/pixel')
    if times <= 1 + SAME:
        return Plan()
    return Plan(factor, warning=f'{what}: resampled' if times > QUIET * (1 + SAME) else None)


def common_scale(scales):
    """The most common known um per pixel among `scales` (counted to 3 significant digits, so
    that one instrument setting counts once; the value of its first frame), or None when none
    is known."""
    groups = {}
    for scale in scales:
        if scale.known:
            groups.setdefault(f'{scale.um_per_px:.3g}', []).append(scale.um_per_px)
    if not groups:
        return None
    return max(groups.values(), key=lambda members: (len(members), -members[0]))[0]
