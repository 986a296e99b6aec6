"""data/<name>/manifest.csv: one row per crop that aug_img.py cut, and the reading of it.

Columns: split, class, source (the frame's path), x, y, width, height (the crop in the frame
without its data bar), bar (rows of data bar cut), file (the crop, relative to data/<name>),
material (share of the crop's pixels that show cathode material, semcnn/data/material.py), then the
frame's acquisition settings from its sidecar file (sidecar.ACQUISITION_COLUMNS; empty when
unknown). Datasets cut by an older aug_img.py lack the last columns; readers take what is there.
"""
import csv
import os

from semcnn.files.sidecar import ACQUISITION_COLUMNS

MANIFEST_COLUMNS = (['split', 'class', 'source', 'x', 'y', 'width', 'height', 'bar', 'file',
                     'material'] + ACQUISITION_COLUMNS)


def read_manifest(data_dir):
    """The rows of data_dir/manifest.csv as dicts, or None when there is none."""
    path = os.path.join(data_dir, 'manifest.csv')
    if not os.path.isfile(path):
        return None
    with open(path, newline='', encoding='utf-8') as f:
        return list(csv.DictReader(f))


def crop_name(row):
    """'<class>/<crop file>': the name SEMDataset gives the row's crop."""
    return row['file'].replace('\\', '/').split('/', 1)[1]   # drop '<split>/'


def frame_name(row):
    """'<class>/<frame file>': how the tables name the row's source frame."""
    return f"{row['class']}/{os.path.basename(row['source'])}"
