"""Shortcut audit of a dataset: how well the class can be told WITHOUT looking at the material.

    python audit.py --dataset example
    python audit.py --dataset reproduce --per-frame 4

Two questions, each answered by a random forest (scikit-learn) cross-validated by frame (no frame
in both the fitting and the scoring folds):
- grey levels: each crop described only by its grey-level histogram and percentiles, mean and
  standard deviation (no spatial information: no particle, edge or crack can be seen);
- acquisition metadata: each frame described only by the numbers of its sidecar file
  (`<frame>.jpg.txt`: brightness, contrast, focus, detector, date, ...), when the frames have one.

Per class: the share of its crops (frames) that the forest names correctly, against chance.
Per pair of classes: the accuracy of a forest fitted on those two classes only. A pair told apart
(>= 99 %) by grey levels or by metadata is flagged: a CNN's accuracy on that pair can come from
the imaging session instead of the material, and proves nothing about the material until it
survives the shifts of `test.py --shifts`.

Writes runs/<dataset>/audit.json and runs/<dataset>/audit_pairs.csv; prints a summary.
"""
import argparse
import itertools
import os

import numpy as np
import pandas as pd
from sklearn.ensemble import RandomForestClassifier
from sklearn.model_selection import StratifiedGroupKFold, cross_val_predict
from tqdm import tqdm

from semcnn.files.atomic import write_csv_atomic, write_json_atomic
from semcnn.files.errors import fail, run_main
from semcnn.files.frames import UnreadableImage, read_image, unit_scale
from semcnn.files.locks import reading
from semcnn.files.manifest import read_manifest
from semcnn.files.paths import DATA_ROOT, RUNS_ROOT
from semcnn.files.sidecar import acquisition_numbers, read_sidecar

SEPARATED = 0.99   # a pair told apart this well without the material is flagged
PERCENTILES = (1, 5, 10, 25, 50, 75, 90, 95, 99)
BINS = 32


def get_args_parser():
    p = argparse.ArgumentParser(description='Shortcut audit: grey levels and acquisition '
                                            'metadata alone, cross-validated by frame.')
    p.add_argument('--dataset', required=True, help='data/<dataset>/ cut by aug_img.py')
    p.add_argument('--per-frame', type=int, default=6,
                   help='crops read per frame (evenly spaced over its crops; default 6)')
    p.add_argument('--folds', type=int, default=5, help='cross-validation folds (default 5)')
    p.add_argument('--seed', type=int, default=0)
    return p


def grey_features(pixels):
    """Grey-level histogram (BINS bins), percentiles, mean and standard deviation of an image,
    on a 0..1 scale: nothing about where a pixel is."""
    x = unit_scale(pixels).ravel()
    hist = np.histogram(x, bins=BINS, range=(0, 1))[0] / x.size
    return np.concatenate([hist, np.percentile(x, PERCENTILES), [x.mean(), x.std()]])


def sample_crops(rows, per_frame):
    """Up to per_frame evenly spaced manifest rows of each frame."""
    by_frame = {}
    for row in rows:
        by_frame.setdefault((row['class'], row['source']), []).append(row)
    picked = []
    for crops in by_frame.values():
        step = max(1, len(crops) // per_frame)
        picked += crops[::step][:per_frame]
    return picked


def cross_validate(features, labels, groups, folds, seed):
    """Out-of-fold predictions of a random forest, folds drawn by group (frame)."""
    smallest = min(np.bincount(labels)[np.unique(labels)])
    folds = min(folds, smallest)
    if folds < 2:
        return None
    forest = RandomForestClassifier(n_estimators=100, random_state=seed)
    split = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    return cross_val_predict(forest, features, labels, groups=groups, cv=split)


def audit(features, labels, groups, classes, folds, seed, desc):
    """{'accuracy', 'chance', 'recall' per class, 'pairs' {(a, b): accuracy}} or None."""
    pred = cross_validate(features, labels, groups, folds, seed)
    if pred is None:
        return None
    counts = np.bincount(labels, minlength=len(classes))
    result = {'accuracy': float((pred == labels).mean()), 'n': int(len(labels)),
              'chance': float(counts.max() / counts.sum()),
              'recall': {c: float((pred[labels == i] == i).mean())
                         for i, c in enumerate(classes) if counts[i]},
              'pairs': {}}
    present = [i for i in range(len(classes)) if counts[i]]
    for a, b in tqdm(list(itertools.combinations(present, 2)), desc=desc, leave=False,
                     unit='pair'):
        mask = (labels == a) | (labels == b)
        pair_pred = cross_validate(features[mask], labels[mask], groups[mask], folds, seed)
        if pair_pred is not None:
            result['pairs'][f'{classes[a]} vs {classes[b]}'] = float(
                (pair_pred == labels[mask]).mean())
    return result


def metadata_table(frames):
    """Frames x numeric sidecar keys (keys that most frames have), or None without sidecars."""
    numbers = [acquisition_numbers(read_sidecar(f)) for f in frames]
    keys = sorted({k for n in numbers for k in n})
    keys = [k for k in keys if sum(k in n for n in numbers) >= 0.9 * len(frames)]
    if not keys:
        return None, []
    table = np.array([[n.get(k, np.nan) for k in keys] for n in numbers], dtype=np.float64)
    medians = np.nanmedian(table, axis=0)
    table = np.where(np.isnan(table), medians, table)
    varying = table.max(axis=0) > table.min(axis=0)
    if not varying.any():   # every frame imaged alike: nothing to learn from
        return None, []
    return table[:, varying], [k for k, v in zip(keys, varying) if v]


def main(args):
    data_dir = os.path.join(DATA_ROOT, args.dataset)
    if args.per_frame < 1 or args.folds < 2:
        fail(f'--per-frame {args.per_frame} / --folds {args.folds}: give at least 1 / 2')
    with reading(data_dir):
        rows = read_manifest(data_dir)
        if rows is None:
            fail(f'{data_dir}/manifest.csv: no manifest; cut the dataset with aug_img.py first')
        picked = sample_crops(rows, args.per_frame)
        features = []
        for row in tqdm(picked, desc='grey levels', unit='crop'):
            path = os.path.join(data_dir, row['file'])
            try:
                features.append(grey_features(read_image(path)))
            except UnreadableImage as e:
                fail(f'{path}: {e}; the dataset is damaged: cut it again with aug_img.py --force')
    classes = sorted({row['class'] for row in rows})
    index = {c: i for i, c in enumerate(classes)}
    labels = np.array([index[row['class']] for row in picked])
    frame_names = [row['source'] for row in picked]
    frame_ids = {f: i for i, f in enumerate(dict.fromkeys(frame_names))}
    groups = np.array([frame_ids[f] for f in frame_names])
    results = {'dataset': args.dataset, 'crops': len(picked), 'frames': len(frame_ids),
               'separated_at': SEPARATED}
    results['grey_levels'] = audit(np.array(features), labels, groups, classes, args.folds,
                                   args.seed, 'grey-level pairs')
    frames = list(frame_ids)
    frame_labels = np.array([index[next(r['class'] for r in picked if r['source'] == f)]
                             for f in frames])
    table, keys = metadata_table(frames)
    results['metadata_keys'] = keys
    results['metadata'] = (audit(table, frame_labels, np.arange(len(frames)), classes,
                                 args.folds, args.seed, 'metadata pairs')
                           if table is not None else None)
    out = os.path.join(RUNS_ROOT, args.dataset)
    os.makedirs(out, exist_ok=True)
    pairs = pair_table(results)
    write_json_atomic(results, os.path.join(out, 'audit.json'))
    write_csv_atomic(pairs, os.path.join(out, 'audit_pairs.csv'))
    print('\n'.join(summary(results, pairs)))
    print(f'outputs in {out}/audit.json, {out}/audit_pairs.csv')


def pair_table(results):
    """One row per class pair: accuracy from grey levels, from metadata, and the flag."""
    rows = {}
    for source in ('grey_levels', 'metadata'):
        for pair, accuracy in ((results[source] or {}).get('pairs') or {}).items():
            rows.setdefault(pair, {'pair': pair})[source] = round(accuracy, 4)
    table = pd.DataFrame(list(rows.values()), columns=['pair', 'grey_levels', 'metadata'])
    table['flagged'] = (table[['grey_levels', 'metadata']] >= SEPARATED).any(axis=1)
    return table.sort_values(['flagged', 'grey_levels'], ascending=False)


def summary(results, pairs):
    lines = [f"shortcut audit of {results['dataset']}: {results['crops']} crops of "
             f"{results['frames']} frames, cross-validated by frame"]
    for source, what in (('grey_levels', 'grey levels alone (crops)'),
                         ('metadata', 'acquisition metadata alone (frames)')):
        r = results[source]
        if r is None:
            lines.append(f'  {what}: not available (no sidecar files, no setting that differs '
                         'between frames, or too few frames)')
            continue
        lines.append(f"  {what}: {100 * r['accuracy']:.1f}% right (chance {100 * r['chance']:.1f}%)"
                     '; per class: ' + ', '.join(f'{c} {100 * v:.0f}%'
                                                  for c, v in r['recall'].items()))
    for source, what in (('grey_levels', 'grey levels'), ('metadata', 'acquisition metadata')):
        told = pairs[pairs[source] >= SEPARATED]
        lines.append(f'  {len(told)} of {len(pairs)} class pairs told apart (>= '
                     f'{100 * SEPARATED:.0f}%) by {what} alone'
                     + (': ' + ', '.join(f'{p} {100 * a:.1f}%' for p, a in
                                         zip(told['pair'], told[source])) if len(told) else ''))
    lines.append('  Accuracy on a flagged pair proves nothing about the material until it survives '
                 'test.py --shifts (audit_pairs.csv lists every pair).')
    return lines


if __name__ == '__main__':
    run_main(main, get_args_parser().parse_args())
