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
import os

import numpy as np
from tqdm import tqdm

from semcnn.evaluation.shortcuts import (SEPARATED, audit, grey_features, metadata_table,
                                         pair_table, sample_crops, summary)
from semcnn.files.atomic import write_csv_atomic, write_json_atomic
from semcnn.files.errors import fail, run_main
from semcnn.files.frames import UnreadableImage, read_image
from semcnn.files.locks import reading
from semcnn.files.manifest import read_manifest
from semcnn.files.paths import DATA_ROOT, RUNS_ROOT


def get_args_parser():
    p = argparse.ArgumentParser(description='Shortcut audit: grey levels and acquisition '
                                            'metadata alone, cross-validated by frame.')
    p.add_argument('--dataset', required=True, help='data/<dataset>/ cut by aug_img.py')
    p.add_argument('--per-frame', type=int, default=6,
                   help='crops read per frame (evenly spaced over its crops; default 6)')
    p.add_argument('--folds', type=int, default=5, help='cross-validation folds (default 5)')
    p.add_argument('--seed', type=int, default=0,
                   help='seed of the folds and classifiers (default 0)')
    return p


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


if __name__ == '__main__':
    run_main(main, get_args_parser().parse_args())
