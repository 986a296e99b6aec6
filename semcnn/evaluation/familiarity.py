"""What the training frames were like, and how a new frame differs from them.

train.py stores record() in the checkpoint: the acquisition settings of the training frames (the
manifest's sidecar columns that change what a pixel shows: sidecar.COMPARED) and the range of the
grey-level mean and standard deviation of the training crops. predict.py holds each new frame
against it (frame_warnings): a model answers whatever it is shown, so a frame at another
magnification, from another detector, or with grey levels no training crop had, is answered
with a warning beside the verdict.
"""
import numpy as np

from semcnn.data.images import unit_range
from semcnn.files.manifest import read_manifest
from semcnn.files.sidecar import COMPARED

GREY_QUANTILES = (0.005, 0.995)   # the training range: all but the most extreme 1 % of crops,
GREY_MARGIN = 0.1                 # widened by a tenth of its width on each side: a frame is a
                                  # median over its tiles, so its values vary less than a crop's,
                                  # but a session's frames drift (seen on ../shared/sem: 2 of 174
                                  # test frames just outside the unwidened range)
SAMPLE = 2000                     # training crops measured (evenly spaced)


def grey_statistics(pixels):
    """(mean, standard deviation) of an image's grey levels on a 0..1 scale (colour: over all
    its channels)."""
    x = unit_range(pixels)
    return float(x.mean()), float(x.std(correction=0))


def grey_range(dataset):
    """{'mean': [low, high], 'std': [low, high]} over up to SAMPLE training crops."""
    step = max(1, len(dataset) // SAMPLE)
    stats = np.array([grey_statistics(dataset.pixels(i)) for i in range(0, len(dataset), step)])
    ranges = {}
    for k, name in enumerate(('mean', 'std')):
        low, high = np.quantile(stats[:, k], GREY_QUANTILES)
        margin = GREY_MARGIN * (high - low)
        ranges[name] = [round(float(low - margin), 4), round(float(high + margin), 4)]
    return ranges


def acquisition_seen(data_dir):
    """{setting: sorted values} of the training frames, from the manifest's sidecar columns;
    {} when the manifest has none (a dataset cut before they were written, or no sidecars)."""
    rows = [r for r in read_manifest(data_dir) or () if r['split'] == 'train']
    seen = {}
    for column in COMPARED:
        values = {r.get(column) or '' for r in rows} - {''}
        if values:
            seen[column] = sorted(values, key=_sort_key)
    return seen


def record(dataset, data_dir):
    """What the checkpoint keeps about the training frames."""
    return {'acquisition': acquisition_seen(data_dir), 'grey': grey_range(dataset)}


def _sort_key(value):
    number = _number(value)
    return (0, number, '') if number is not None else (1, 0.0, str(value))


def _number(value):
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _same(a, b):
    x, y = _number(a), _number(b)
    if x is not None and y is not None:
        return abs(x - y) <= 1e-6 * max(1.0, abs(y))
    return str(a).strip().lower() == str(b).strip().lower()


def _show(value):
    number = _number(value)
    return f'{number:g}' if number is not None else str(value)


def frame_warnings(familiar, settings, grey):
    """Warnings (short texts, one per difference) for a frame with acquisition `settings`
    (sidecar.acquisition(); '' where unknown) and grey statistics `grey` (mean, std; None when
    nothing of it shows material), held against the checkpoint's record `familiar`."""
    warnings = []
    for column, seen in familiar['acquisition'].items():
        value = settings.get(column, '')
        if value != '' and not any(_same(value, s) for s in seen):
            warnings.append(f"{column.replace('_', ' ')} {_show(value)} (training: "
                            f"{', '.join(_show(s) for s in seen)})")
    for (name, what), value in zip((('mean', 'grey-level mean'), ('std', 'grey-level spread')),
                                   grey or ()):
        low, high = familiar['grey'][name]
        if not low <= value <= high:
            warnings.append(f'{what} {value:.3f} outside the training range {low:.3f}-{high:.3f}')
    return warnings


def warning_kind(warning):
    """The kind of a warning for the terminal's count: its words up to the first colon or
    before the first number (not a file name or a decoder's message)."""
    words = []
    for word in warning.split():
        if any(c.isdigit() for c in word):
            break
        words.append(word)
        if word.endswith(':'):
            break
    return ' '.join(words).rstrip(':') or warning
