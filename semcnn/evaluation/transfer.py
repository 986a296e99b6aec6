"""Transfer to a group of frames never seen in training: does the state the model names carry over?

transfer.py trains without a group (a composition, an imaging session, a class) and predicts the
group's frames with predict.py; this module names the groups and scores those predictions by
state: per true state, balanced over states, as a confusion matrix, and how many of the wrong
answers came with a warning or a low agreement of the frame's tiles.
"""
import os

import numpy as np

from semcnn.evaluation.scores import PRISTINE, read_class_name
from semcnn.files.frames import is_image_name
from semcnn.files.sidecar import acquisition, read_sidecar

GROUPINGS = ('composition', 'session', 'class')
LOW_AGREEMENT = 0.75   # a verdict that fewer of the frame's material tiles share is "low"


def state_of(cls):
    """The state a class name <composition>[_<state>] reads (no suffix: pristine); '' for a
    name that does not read so (no state the model can name matches it)."""
    return (read_class_name(cls) or (cls, ''))[1]


def group_of(source, cls, name, by):
    if by == 'composition':
        return cls.partition('_')[0]   # the name before '_', whether or not a state follows
    if by == 'session':   # the acquisition date in the frame's sidecar
        return acquisition(read_sidecar(os.path.join(source, cls, name)))['date'] or 'unknown'
    return cls


def frame_groups(source, by):
    """{group: ['<class>/<file>', ...]} of the image files in source/<class>/, by `by`."""
    groups = {}
    classes = sorted(d for d in os.listdir(source)
                     if os.path.isdir(os.path.join(source, d)) and not d.startswith('.'))
    for cls in classes:
        for name in sorted(os.listdir(os.path.join(source, cls))):
            if is_image_name(name) and os.path.isfile(os.path.join(source, cls, name)):
                groups.setdefault(group_of(source, cls, name, by), []).append(f'{cls}/{name}')
    return groups


def per_state(true, said, states):
    """{'n', 'right', 'accuracy', 'said': {state: count}} per true state present, and the
    balanced accuracy (mean over those states)."""
    true, said = np.asarray(true), np.asarray(said)
    rows = {}
    for state in states:
        mine = true == state
        if mine.any():
            rows[state] = {'n': int(mine.sum()), 'right': int((said[mine] == state).sum()),
                           'accuracy': float((said[mine] == state).mean()),
                           'said': {s: int((said[mine] == s).sum()) for s in states}}
    balanced = float(np.mean([r['accuracy'] for r in rows.values()])) if rows else float('nan')
    return rows, balanced


def score_fold(frames, tiles, true_class, low_agreement=LOW_AGREEMENT):
    """Scores of predict.py's frames.csv and tiles.csv (DataFrames) of a left-out group;
    `true_class` maps each Frame to its class. Frames without a verdict count as not judged."""
    if 'State' not in frames.columns:
        return None   # the model's class names do not read <composition>_<state>
    frames = frames.assign(true=[state_of(true_class[f]) for f in frames['Frame']])
    judged = frames[frames['Prediction'].fillna('') != '']
    states = sorted(set(frames['true']) | set(judged['State']), key=_state_order)
    rows, balanced = per_state(judged['true'], judged['State'], states)
    material = tiles[tiles['Material'].astype(bool)]
    tile_rows, tile_balanced = per_state([state_of(true_class[f]) for f in material['Frame']],
                                         material['State'], states)
    wrong = judged[judged['State'] != judged['true']]
    warned = wrong['Warnings'].fillna('').astype(str) != ''
    low = wrong['Agreement'].astype(float) < low_agreement
    return {'frames': int(len(frames)), 'judged': int(len(judged)), 'states': states,
            'per_state': rows, 'balanced': balanced,
            'tiles': {'n': int(len(material)), 'per_state': tile_rows,
                      'balanced': tile_balanced},
            'wrong': {'n': int(len(wrong)), 'warned': int(warned.sum()),
                      'low_agreement': int(low.sum()), 'either': int((warned | low).sum()),
                      'low_agreement_below': low_agreement},
            'said_as': _said_as(wrong)}


def _said_as(wrong):
    """The classes the wrong answers went to, most common first."""
    counts = wrong['Prediction'].value_counts()
    return {str(k): int(v) for k, v in counts.items()}


def _state_order(state):
    """pristine < formation < cycled, then any other state by name."""
    known = (PRISTINE, 'formation', 'cycled')
    return (known.index(state), '') if state in known else (len(known), state)


def fold_row(group, seed, result):
    """One row of the summary table for a scored fold."""
    row = {'left out': group, 'seed': seed, 'frames': result['frames'],
           'judged': result['judged'], 'balanced state % (frames)': 100 * result['balanced'],
           'balanced state % (tiles)': 100 * result['tiles']['balanced']}
    for state, r in result['per_state'].items():
        row[f'{state} % (frames)'] = 100 * r['accuracy']
    wrong = result['wrong']
    row['wrong'] = wrong['n']
    row['wrong with warning'] = wrong['warned']
    row[f"wrong with agreement < {wrong['low_agreement_below']}"] = wrong['low_agreement']
    return row
