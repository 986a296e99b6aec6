"""Frames at other magnifications: does a trained run answer them as it answers the originals?

    python bench/scale_check.py --dataset reproduce --version cpu30
    python bench/scale_check.py --dataset reproduce --version cpu30 --source ../shared/sem

Takes the run's test frames (its manifest's test split) and writes four copies of each under
runs/<dataset>/<version>/scale_check/: the original; the whole frame shrunk to half size with
its sidecar saying x250 (the same field, half the pixels: as if imaged at x250); its central half
(without the data bar) enlarged twice with its sidecar saying x1000 (as if imaged at x1000); and
the original without its sidecar (no scale information). predict.py answers each set; the table
gives frame accuracy, material-tile accuracy and the frames with a scale warning per set.
Needs sidecars with the instrument's model and magnification (the frames of ../shared/sem).
"""
import argparse
import os
import shutil
import sys

import numpy as np
import pandas as pd
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from semcnn.evaluation.steps import run_step  # noqa: E402
from semcnn.files.atomic import write_csv_atomic  # noqa: E402
from semcnn.files.errors import fail, run_main  # noqa: E402
from semcnn.files.frames import cut_bar, read_image  # noqa: E402
from semcnn.files.manifest import read_manifest  # noqa: E402
from semcnn.files.paths import DATA_ROOT, RUNS_ROOT  # noqa: E402
from semcnn.files.sidecar import sidecar_path  # noqa: E402


def with_magnification(sidecar_text, magnification):
    """The sidecar's lines with every 'Magnification : ...' saying x<magnification>."""
    return ''.join(f'Magnification : x{magnification} \n'
                   if line.split(':')[0].strip().lower() == 'magnification' else line
                   for line in sidecar_text.splitlines(keepends=True))


def write_sets(frames, out):
    """{set: folder} of the four copies of `frames` ({'<class>/<file>': path})."""
    folders = {name: os.path.join(out, name) for name in
               ('original', 'half_x250', 'centre_x1000', 'no_scale')}
    for folder in folders.values():
        shutil.rmtree(folder, ignore_errors=True)
        os.makedirs(folder)
    for name, path in frames.items():
        flat = name.replace('/', '__')
        with open(sidecar_path(path), encoding='utf-8', errors='replace') as f:
            text = f.read()
        image = Image.open(path)
        image.save(os.path.join(folders['original'], flat), quality=95)
        image.save(os.path.join(folders['no_scale'], flat), quality=95)
        with open(os.path.join(folders['original'], flat + '.txt'), 'w', encoding='utf-8') as f:
            f.write(text)
        half = image.resize((image.width // 2, image.height // 2), Image.BOX)
        half.save(os.path.join(folders['half_x250'], flat), quality=95)
        with open(os.path.join(folders['half_x250'], flat + '.txt'), 'w', encoding='utf-8') as f:
            f.write(with_magnification(text, 250))
        pixels, _ = cut_bar(read_image(path))
        h, w = pixels.shape[:2]
        centre = Image.fromarray(np.ascontiguousarray(pixels[h // 4:h // 4 + h // 2,
                                                             w // 4:w // 4 + w // 2]))
        centre.resize((w, h), Image.BICUBIC).save(os.path.join(folders['centre_x1000'], flat),
                                                  quality=95)
        with open(os.path.join(folders['centre_x1000'], flat + '.txt'), 'w',
                  encoding='utf-8') as f:
            f.write(with_magnification(text, 1000))
    return folders


def score(where, truth):
    frames = pd.read_csv(os.path.join(where, 'frames.csv'), keep_default_na=False, dtype=str)
    tiles = pd.read_csv(os.path.join(where, 'tiles.csv'), keep_default_na=False, dtype=str)
    label = {f: truth[os.path.basename(f)] for f in frames['Frame']}
    material = tiles[tiles['Material'] == 'True']
    return {'frames': len(frames),
            'frame accuracy %': 100 * np.mean([p == label[f] for f, p in
                                               zip(frames['Frame'], frames['Prediction'])]),
            'material tiles': len(material),
            'tile accuracy %': 100 * np.mean([p == label[f] for f, p in
                                              zip(material['Frame'], material['Prediction'])]),
            'scale warnings': int(frames['Warnings'].str.contains('scale').sum()),
            'no verdict': int((frames['Prediction'] == '').sum())}


def main(args):
    rows = [r for r in read_manifest(os.path.join(DATA_ROOT, args.dataset)) or ()
            if r['split'] == 'test']
    if not rows:
        fail(f'{DATA_ROOT}/{args.dataset}: no manifest with a test split; cut it with aug_img.py')
    frames = {f"{r['class']}/{os.path.basename(r['source'])}":
              os.path.join(args.source, r['class'], os.path.basename(r['source']))
              if args.source else r['source'] for r in rows}
    missing = [p for p in frames.values() if not os.path.isfile(p) or not sidecar_path(p)]
    if missing:
        fail(f'{missing[0]}: not found, or without its sidecar; give --source, the folder of '
             'class folders the dataset was cut from')
    out = os.path.join(RUNS_ROOT, args.dataset, args.version, 'scale_check')
    folders = write_sets(frames, out)
    truth = {name.replace('/', '__'): name.split('/')[0] for name in frames}
    table = []
    for name, folder in folders.items():
        where = os.path.join(out, f'predict_{name}')
        run_step('predict.py', [folder, '--dataset', args.dataset, '--version', args.version,
                                '--out', where], os.path.join(out, 'predict.log'))
        table.append({'set': name, **score(where, truth)})
    table = pd.DataFrame(table).round(2)
    write_csv_atomic(table, os.path.join(out, 'table.csv'))
    print(table.to_string(index=False))


if __name__ == '__main__':
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--dataset', required=True)
    p.add_argument('--version', required=True)
    p.add_argument('--source', default=None, help='the folder of class folders the dataset was '
                                                  'cut from (default: as the manifest says)')
    run_main(main, p.parse_args())
