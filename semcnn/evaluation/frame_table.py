"""The table of frames and their verdicts that test.py (frame_predictions.csv) and predict.py
(frames.csv) write: one row per frame, built column by column by name, the same columns in both.

Status says at a glance what a frame's answer is worth: 'ok' (a verdict and no warning),
'warned' (a verdict with a warning: unusual material, uncertain, another scale or session, ...;
read Warnings) or 'no verdict' (too little material, unlike the training material, unreadable,
too far from the training scale). Filter on it; Warnings says why.
"""
import numpy as np
import pandas as pd

from semcnn.evaluation.scores import add_probabilities, factor_columns

OK, WARNED, NO_VERDICT = 'ok', 'warned', 'no verdict'
STATUSES = (OK, WARNED, NO_VERDICT)


def status(judged, warnings):
    return NO_VERDICT if not judged else WARNED if warnings else OK


def frame_table(votes, classes, warnings, extra=None, untiled=()):
    """The DataFrame of the frames of FrameVotes `votes` (their `warnings`: one list per frame),
    then the `untiled` frames (dicts: Frame, Warnings, and the `extra` columns' values), which
    were never tiled. `extra`: more columns by name (one value per frame of `votes`), placed
    before Warnings. With labels, Label and Result (whether the verdict is right; empty
    without one) follow Confidence. Ends with the probability of each class."""
    judged = votes.has_verdict
    probs = np.vstack([votes.probs, np.full((len(untiled), len(classes)), np.nan)])
    verdict = np.nan_to_num(votes.probs).argmax(1)
    every = [*judged, *[False] * len(untiled)]
    warnings = [*warnings, *[[r['Warnings']] for r in untiled]]
    none = [''] * len(untiled)

    def kept(values, ok=judged):   # a frame without a verdict: empty
        return [v if j else '' for v, j in zip(values, ok)] + none

    columns = {'Frame': [*votes.frames, *[r['Frame'] for r in untiled]],
               'Status': [status(j, w) for j, w in zip(every, warnings)],
               'Prediction': kept([classes[i] for i in verdict]),
               **factor_columns(probs, classes),
               'Confidence': kept(np.nan_to_num(votes.probs).max(1).round(4))}
    if votes.labels is not None:
        columns['Label'] = [classes[i] for i in votes.labels] + none
        columns['Result'] = kept(verdict == votes.labels)
    columns.update({
        'Agreement': kept(votes.agreement.round(4)),
        'Tiles': [*votes.tiles, *[0] * len(untiled)],
        'Material tiles': [*votes.material, *[0] * len(untiled)],
        'Novel tiles': [*votes.novel, *[0] * len(untiled)],
        'Novelty': kept(np.round(votes.novelty, 3), ~np.isnan(votes.novelty))})
    for name, values in (extra or {}).items():
        columns[name] = [*values, *[r.get(name, '') for r in untiled]]
    columns['Warnings'] = ['; '.join(w) for w in warnings]
    return add_probabilities(pd.DataFrame(columns), probs, classes)


def status_counts(table):
    """Frames per verdict and status (a DataFrame: Prediction, ok, warned, no verdict, Frames),
    for predict.py's summary.csv and its printed summary."""
    verdicts = table['Prediction'].replace('', '(none)')
    counts = pd.crosstab(verdicts, table['Status']).reindex(columns=list(STATUSES), fill_value=0)
    counts['Frames'] = counts.sum(axis=1)
    counts.loc['all'] = counts.sum()
    return counts.rename_axis('Prediction').rename_axis(None, axis=1).reset_index()
