"""Scores of predicted class probabilities: per crop, per source frame, per composition and state.

A source frame's verdict is the mean of its crops' probabilities (the manifest of aug_img.py
says which frame each crop was cut from). Class names of the form `<composition>[_<state>]`
(e.g. 811, 811_formation, 811_cycled; no suffix = pristine) also give a composition task and a
state task: a factor's probability is the sum of the probabilities of its classes.
"""
import csv
import os

import numpy as np
from sklearn.metrics import confusion_matrix

PRISTINE = 'pristine'


def class_factors(classes):
    """{'composition': [...], 'state': [...]}, one entry per class, when every name reads
    <composition>[_<state>] and both factors take at least two values; otherwise None."""
    compositions, states = [], []
    for name in classes:
        composition, sep, state = name.partition('_')
        if not composition or (sep and (not state or '_' in state)):
            return None
        compositions.append(composition)
        states.append(state if sep else PRISTINE)
    if len(set(compositions)) < 2 or len(set(states)) < 2:
        return None
    return {'composition': compositions, 'state': states}


def factor_probabilities(probs, per_class):
    """(values, probabilities of each value): class probabilities summed within each value."""
    values = sorted(set(per_class))
    members = np.array([[v == c for v in values] for c in per_class], dtype=probs.dtype)
    return values, probs @ members


def score(true, pred, names):
    """Accuracy, recall per class and confusion matrix (rows: true) of index arrays."""
    true, pred = np.asarray(true), np.asarray(pred)
    matrix = confusion_matrix(true, pred, labels=list(range(len(names))))
    support = matrix.sum(1)
    recall = {n: float(matrix[i, i] / support[i]) for i, n in enumerate(names) if support[i]}
    return {'accuracy': float((true == pred).mean()), 'n': int(len(true)),
            'recall': recall, 'confusion': matrix.tolist(), 'classes': list(names)}


def read_frame_of_crop(data_dir, split):
    """{'<class>/<crop file>': '<class>/<frame file>'} from data_dir/manifest.csv, or None
    when there is no manifest (a dataset not cut by aug_img.py)."""
    path = os.path.join(data_dir, 'manifest.csv')
    if not os.path.isfile(path):
        return None
    frame_of = {}
    with open(path, newline='', encoding='utf-8') as f:
        for row in csv.DictReader(f):
            if row['split'] == split:
                crop = row['file'].replace('\\', '/').split('/', 1)[1]   # drop '<split>/'
                frame_of[crop] = f"{row['class']}/{os.path.basename(row['source'])}"
    return frame_of


def vote_frames(frames, probs, labels=None):
    """Per frame, in order of first appearance: (frame, label (None without labels), number of
    crops, mean probs, share of its crops whose own prediction equals the frame's verdict)."""
    order = list(dict.fromkeys(frames))
    index = {f: i for i, f in enumerate(order)}
    group = np.array([index[f] for f in frames])
    counts = np.bincount(group, minlength=len(order))
    mean = np.zeros((len(order), probs.shape[1]))
    np.add.at(mean, group, probs)
    mean /= counts[:, None]
    label = None
    if labels is not None:
        label = np.zeros(len(order), dtype=int)
        label[group] = labels
    agree = np.bincount(group, weights=probs.argmax(1) == mean.argmax(1)[group],
                        minlength=len(order)) / counts
    return order, label, counts, mean, agree


def evaluate_split(probs, labels, classes, frames=None):
    """All scores of one labelled split: 'crops', 'frames' (when `frames` names each crop's
    source), and 'composition' / 'state' with the same levels when the class names factor."""
    levels = {'crops': (probs, labels)}
    if frames is not None:
        _, frame_labels, _, frame_probs, _ = vote_frames(frames, probs, labels)
        levels['frames'] = (frame_probs, frame_labels)
    results = {level: score(y, p.argmax(1), classes) for level, (p, y) in levels.items()}
    factors = class_factors(classes)
    for factor, per_class in (factors or {}).items():
        results[factor] = {}
        for level, (p, y) in levels.items():
            values, factor_p = factor_probabilities(p, per_class)
            true = [values.index(per_class[i]) for i in y]
            results[factor][level] = score(true, factor_p.argmax(1), values)
    worst = min(results['crops']['recall'].items(), key=lambda item: item[1])
    results['lowest_recall'] = {'class': worst[0], 'recall': worst[1]}
    return results


def factor_columns(probs, classes):
    """{'Composition': [...], 'State': [...]}: each row's most probable value of each factor
    (empty when the class names do not factor)."""
    factors = class_factors(classes)
    columns = {}
    for factor, per_class in (factors or {}).items():
        values, factor_p = factor_probabilities(probs, per_class)
        columns[factor.capitalize()] = [values[i] for i in factor_p.argmax(1)]
    return columns


def add_probabilities(table, probs, classes):
    """Append one 'P(<class>)' column per class to a DataFrame."""
    for i, cls in enumerate(classes):
        table[f'P({cls})'] = np.round(probs[:, i], 6)
    return table
