"""data/<name>/manifest.csv: one row per crop that aug_img.py cut, and the reading of it.

Columns: split, class, source (the frame's path), x, y, width, height (the crop in the frame
without its data bar), bar (rows of data bar cut), file (the crop, relative to data/<name>),
material (share of the crop's pixels that show cathode material, semcnn/data/material.py), then the
frame's acquisition settings from its sidecar file (sidecar.ACQUISITION_COLUMNS; empty when
unknown), then um_per_px (the crop's scale: its frame was brought to it; empty when the frame's
scale is unknown) and scale_source (where the frame's scale came from; semcnn/files/scale.py).
x and y are in the frame at that scale. Datasets cut by an older aug_img.py lack the last
columns; readers take what is there.
"""
import csv
import os

from semcnn.files.atomic import CSV_ENCODING
from semcnn.files.sidecar import ACQUISITION_COLUMNS

MANIFEST_COLUMNS = (['split', 'class', 'source', 'x', 'y', 'width', 'height', 'bar', 'file',
                     'material'] + ACQUISITION_COLUMNS + ['um_per_px', 'scale_source'])


def read_manifest(data_dir):
    """The rows of data_dir/manifest.csv as dicts, or None when there is none."""
    path = os.path.join(data_dir, 'manifest.csv')
    if not os.path.isfile(path):
        return None
    with open(path, newline='', encoding=CSV_ENCODING) as f:
        return list(csv.DictReader(f))


def training_scale(data_dir):
    """The um per pixel of data_dir's training crops, or None when the manifest gives none: no
    frame's scale known, a dataset cut before scales were recorded, or most training crops of
    unknown scale (aug_img.py cuts those as if at the others' scale; a few tagged TIFFs among
    them do not make theirs the scale of the run)."""
    values = [r.get('um_per_px') or '' for r in read_manifest(data_dir) or ()
              if r['split'] == 'train']
    known = set(values) - {''}
    if len(known) != 1 or 2 * sum(map(bool, values)) <= len(values):
        return None
    return float(known.pop())


def crop_name(row):
    """'<class>/<crop file>': the name SEMDataset gives the row's crop."""
    return row['file'].replace('\\', '/').split('/', 1)[1]   # drop '<split>/'


def frame_name(row):
    """'<class>/<frame file>': how the tables name the row's source frame."""
    return f"{row['class']}/{os.path.basename(row['source'])}"
