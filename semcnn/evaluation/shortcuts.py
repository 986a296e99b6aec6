"""The shortcut audit: how well the classes are told apart without looking at the material.

Random forests on grey levels alone, or on acquisition metadata alone, cross-validated by frame.
audit.py runs it on a dataset; report.py shows its table."""
import itertools

import numpy as np
import pandas as pd
from tqdm import tqdm

from semcnn.files.frames import unit_scale
from semcnn.files.sidecar import acquisition_numbers, read_sidecar


SEPARATED = 0.99   # a pair told apart this well without the material is flagged
PERCENTILES = (1, 5, 10, 25, 50, 75, 90, 95, 99)
BINS = 32


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
    from sklearn.ensemble import RandomForestClassifier   # only here: slow to import
    from sklearn.model_selection import StratifiedGroupKFold, cross_val_predict
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
