"""Scores of predicted class probabilities: per crop, per source frame, per composition and state.

A source frame's verdict is the mean of the probabilities of its crops that show cathode material
(semcnn/data/material.py; the manifest of aug_img.py says which frame each crop was cut from); a
frame with too few of them gets no verdict. Class names of the form `<composition>[_<state>]`
(e.g. 811, 811_formation, 811_cycled; no suffix = pristine) also give a composition task and a
state task: a factor's probability is the sum of the probabilities of its classes.
"""
import dataclasses

import numpy as np
import pandas as pd

from semcnn.data.material import tiles_needed
from semcnn.files.manifest import crop_name, frame_name, read_manifest

PRISTINE = 'pristine'


def read_class_name(name):
    """(composition, state) of a class name <composition>[_<state>] (no suffix: pristine), or
    None when the name does not read so."""
    composition, sep, state = name.partition('_')
    if not composition or (sep and (not state or '_' in state)):
        return None
    return composition, state if sep else PRISTINE


def class_factors(classes):
    """{'composition': [...], 'state': [...]}, one entry per class, when every name reads
    <composition>[_<state>] and both factors take at least two values; otherwise None."""
    compositions, states = [], []
    for name in classes:
        factors = read_class_name(name)
        if factors is None:
            return None
        compositions.append(factors[0])
        states.append(factors[1])
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
    from sklearn.metrics import confusion_matrix   # only here: it takes a second to import
    matrix = confusion_matrix(true, pred, labels=list(range(len(names))))
    support = matrix.sum(1)
    recall = {n: float(matrix[i, i] / support[i]) for i, n in enumerate(names) if support[i]}
    return {'accuracy': float((true == pred).mean()), 'n': int(len(true)),
            'recall': recall, 'confusion': matrix.tolist(), 'classes': list(names)}


def read_crop_sources(data_dir, split):
    """{'<class>/<crop file>': ('<class>/<frame file>', share of material or None)} from
    data_dir/manifest.csv, or None when there is no manifest (a dataset not cut by aug_img.py).
    The share is None in a manifest written before aug_img.py measured it."""
    rows = read_manifest(data_dir)
    if rows is None:
        return None
    return {crop_name(row): (frame_name(row), float(row['material']) if row.get('material')
                             else None)
            for row in rows if row['split'] == split}


@dataclasses.dataclass
class FrameVotes:
    """The verdicts of source frames, in order of first appearance. A frame's verdict is the mean
    probability of its tiles that show material and are not novel (unlike the training
    material: semcnn/evaluation/novelty.py); a frame with too few material tiles, or most of
    whose material tiles are novel (their median novelty above 1), gets none (its `probs` row is
    NaN, its `agreement` too). A frame with a verdict whose median is above the run's frame
    limit (higher than any validation frame's) is unusual: its verdict comes with a warning."""
    frames: list          # frame names
    labels: object        # true class index per frame, or None without labels
    tiles: np.ndarray     # tiles (crops) per frame
    material: np.ndarray  # of which show material
    probs: np.ndarray     # frames x classes
    agreement: np.ndarray  # share of the voting tiles whose own prediction is the verdict
    novel: np.ndarray = None    # of the material tiles, how many are novel
    novelty: np.ndarray = None  # median novelty of the material tiles (NaN: none, or unknown)
    limit: float = 1.0          # the median novelty above which a frame is unusual

    @property
    def has_verdict(self):
        return ~np.isnan(self.probs).any(axis=1)

    def reason(self, i):
        """Why frame i has no verdict ('' when it has one)."""
        if self.has_verdict[i]:
            return ''
        if self.material[i] < tiles_needed(self.tiles[i]):
            return (f'no verdict: {self.material[i]} of {self.tiles[i]} tiles show cathode '
                    f'material ({tiles_needed(self.tiles[i])} needed)')
        return (f'no verdict: unlike the training material ({self.novel[i]} of its '
                f'{self.material[i]} material tiles novel, median novelty {self.novelty[i]:.2f})')

    def warnings(self, i):
        """Frame i's warnings from the vote: why it has no verdict, or that it is unusual."""
        return [w for w in (self.reason(i), self.unusual(i)) if w]

    def unusual(self, i):
        """A warning for frame i when it has a verdict but its material is unlike that of every
        validation frame ('' otherwise)."""
        if not self.has_verdict[i] or not self.novelty[i] > self.limit:
            return ''
        return (f'unusual material: median novelty {self.novelty[i]:.2f} of its material tiles, '
                f'above {self.limit:.2f} (higher than any validation frame\'s); verdict kept')


def vote_frames(frames, probs, labels=None, material=None, novelty=None, frame_limit=1.0):
    """FrameVotes of the tiles (crops) of `frames` (each tile's frame name), their class
    probabilities, labels (or None), whether each shows material (None: all do) and the
    novelty of each (None: unknown; above 1 a tile does not vote, and a frame whose material
    tiles' median is above 1 gets no verdict; above `frame_limit` it is unusual)."""
    order = list(dict.fromkeys(frames))
    index = {f: i for i, f in enumerate(order)}
    group = np.array([index[f] for f in frames])
    material = np.ones(len(frames), bool) if material is None else np.asarray(material, bool)
    novel = np.zeros(len(frames), bool) if novelty is None else np.asarray(novelty) > 1
    voting = material & ~novel
    tiles = np.bincount(group, minlength=len(order))
    shown = np.bincount(group, weights=material, minlength=len(order)).astype(int)
    strange = np.bincount(group, weights=material & novel, minlength=len(order)).astype(int)
    median = np.full(len(order), np.nan)
    if novelty is not None and material.any():
        medians = pd.Series(np.asarray(novelty, np.float64)[material]).groupby(
            group[material]).median()
        median[medians.index] = medians.to_numpy()
    votes = shown - strange
    verdict = ((shown >= np.array([tiles_needed(n) for n in tiles]))
               & ~(median > 1) & (votes > 0))
    mean = np.zeros((len(order), probs.shape[1]))
    np.add.at(mean, group[voting], probs[voting])
    mean[verdict] /= votes[verdict, None]
    mean[~verdict] = np.nan
    # (a frame without a verdict gets no agreement either: its argmax here is never read)
    agrees = (probs.argmax(1) == np.nan_to_num(mean).argmax(1)[group]) & voting
    agreement = np.full(len(order), np.nan)
    agreement[verdict] = (np.bincount(group, weights=agrees, minlength=len(order))[verdict]
                          / votes[verdict])
    label = None
    if labels is not None:
        label = np.zeros(len(order), dtype=int)
        label[group] = labels
    return FrameVotes(order, label, tiles, shown, mean, agreement, strange, median,
                      frame_limit)


def evaluate_split(probs, labels, classes, frames=None, material=None, novelty=None,
                   frame_limit=1.0):
    """All scores of one labelled split: 'crops', 'frames' (when `frames` names each crop's
    source: the frames with a verdict), and 'composition' / 'state' with the same levels when the
    class names factor. `material`: whether each crop shows material (None: all do); `novelty`
    and `frame_limit`: as vote_frames takes them; every crop is scored, the frames' votes count
    only those with material that are not novel. 'material' counts the crops without it and
    names the frames left without a verdict."""
    levels = {'crops': (probs, labels)}
    votes = None
    if frames is not None:
        votes = vote_frames(frames, probs, labels, material, novelty, frame_limit)
        judged = votes.has_verdict
        if judged.any():
            levels['frames'] = (votes.probs[judged], votes.labels[judged])
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
    if votes is not None:
        results['material'] = {
            'crops_without_material': int(len(frames) - votes.material.sum()),
            'frames_without_verdict': [f for f, judged in zip(votes.frames, votes.has_verdict)
                                       if not judged]}
    return results


def factor_columns(probs, classes):
    """{'Composition': [...], 'State': [...]}: each row's most probable value of each factor
    (no columns when the class names do not factor; '' in a row of NaN, a frame without a
    verdict)."""
    factors = class_factors(classes)
    columns = {}
    judged = ~np.isnan(probs).any(1)
    for factor, per_class in (factors or {}).items():
        values, factor_p = factor_probabilities(np.nan_to_num(probs), per_class)
        columns[factor.capitalize()] = [values[i] if ok else ''
                                        for i, ok in zip(factor_p.argmax(1), judged)]
    return columns


def add_probabilities(table, probs, classes):
    """Append one 'P(<class>)' column per class to a DataFrame."""
    for i, cls in enumerate(classes):
        table[f'P({cls})'] = np.round(probs[:, i], 6)
    return table
