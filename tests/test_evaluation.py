"""Frame voting and the composition / state reading of class names."""
import numpy as np
import pytest

from semcnn.data.material import shows_material, tiles_needed
from semcnn.evaluation.frame_table import frame_table
from semcnn.evaluation.scores import (class_factors, evaluate_split, factor_columns,
                                      read_crop_sources, vote_frames)

PAPER_CLASSES = ['333', '333_cycled', '333_formation', '523', '523_cycled', '523_formation',
                 '622', '622_cycled', '622_formation', '811', '811_cycled', '811_formation']


def test_class_names_split_into_composition_and_state():
    factors = class_factors(PAPER_CLASSES)
    assert factors['composition'] == [c.split('_')[0] for c in PAPER_CLASSES]
    assert factors['state'][:3] == ['pristine', 'cycled', 'formation']
    assert set(factors['state']) == {'pristine', 'cycled', 'formation'}


@pytest.mark.parametrize('classes', [
    ['synthA', 'synthB', 'synthC'],            # no states: composition would just repeat classes
    ['333_cycled', '523_cycled'],              # one state only
    ['a_b_c', 'a', 'b_c'],                     # two underscores
    ['333_', '333_cycled', '523'],             # empty state
])
def test_names_that_do_not_factor_get_plain_results(classes):
    assert class_factors(classes) is None
    probs = np.eye(len(classes))
    results = evaluate_split(probs, np.arange(len(classes)), classes)
    assert 'composition' not in results and 'state' not in results
    assert results['crops']['accuracy'] == 1.0


def test_recall_per_class_and_the_confusion_matrix_have_true_classes_as_rows():
    labels = np.array([0, 0, 1, 1, 1, 2])
    predicted = np.array([0, 1, 1, 1, 0, 2])
    results = evaluate_split(np.eye(3)[predicted], labels, ['a', 'b', 'c'])
    crops = results['crops']
    assert crops['confusion'] == [[1, 1, 0], [1, 2, 0], [0, 0, 1]]
    assert crops['recall'] == pytest.approx({'a': 0.5, 'b': 2 / 3, 'c': 1.0})
    assert crops['accuracy'] == pytest.approx(4 / 6) and crops['n'] == 6
    assert results['lowest_recall'] == {'class': 'a', 'recall': 0.5}


def test_material_rules_of_the_readme():
    """A crop shows material from 65 % of its area; a frame needs an eighth of its crops
    (at least one) on material for a verdict."""
    assert shows_material([0.6, 0.65, 0.9]).tolist() == [False, True, True]
    assert [tiles_needed(n) for n in (1, 6, 8, 9, 16, 17)] == [1, 1, 1, 2, 2, 3]


def test_frame_verdict_is_the_mean_probability_of_its_crops():
    # frame f1: two confident wrong crops lose to three moderately right ones
    frames = ['c0/f1'] * 5 + ['c1/f2'] * 2
    probs = np.array([[0.1, 0.9], [0.1, 0.9], [0.8, 0.2], [0.8, 0.2], [0.8, 0.2],
                      [0.4, 0.6], [0.9, 0.1]])
    labels = np.array([0, 0, 0, 0, 0, 1, 1])
    assert vote_frames(frames, probs).labels is None            # predict.py: no labels
    votes = vote_frames(frames, probs, labels)
    assert votes.frames == ['c0/f1', 'c1/f2']
    assert votes.labels.tolist() == [0, 1] and votes.tiles.tolist() == [5, 2]
    np.testing.assert_allclose(votes.probs, [[0.52, 0.48], [0.65, 0.35]])
    np.testing.assert_allclose(votes.agreement, [0.6, 0.5])
    results = evaluate_split(probs, labels, ['c0', 'c1'], frames)
    assert results['crops']['accuracy'] == pytest.approx(4 / 7)
    assert results['frames']['accuracy'] == 0.5 and results['frames']['n'] == 2


def test_composition_and_state_sum_the_probabilities_of_their_classes():
    classes = ['523', '622', '622_cycled']
    # argmax class is 523 (0.4), but composition 622 holds 0.6 in total
    probs = np.array([[0.4, 0.3, 0.3], [0.1, 0.1, 0.8]])
    labels = np.array([1, 2])
    results = evaluate_split(probs, labels, classes)
    assert results['crops']['accuracy'] == 0.5
    assert results['composition']['crops']['accuracy'] == 1.0
    assert results['composition']['crops']['classes'] == ['523', '622']
    assert results['state']['crops']['classes'] == ['cycled', 'pristine']
    assert results['state']['crops']['accuracy'] == 1.0
    assert results['lowest_recall'] == {'class': '622', 'recall': 0.0}


def test_crops_without_material_are_scored_but_left_out_of_the_frame_vote():
    # f1: two confident foil crops say c1, the three crops of material say c0
    frames = ['c0/f1'] * 5 + ['c0/f2'] * 4
    probs = np.array([[0.05, 0.95]] * 2 + [[0.7, 0.3]] * 3 + [[0.1, 0.9]] * 4)
    labels = np.zeros(9, dtype=int)
    material = [False, False, True, True, True] + [False] * 3 + [True]
    votes = vote_frames(frames, probs, labels, material)
    np.testing.assert_allclose(votes.probs[0], [0.7, 0.3])
    assert votes.material.tolist() == [3, 1] and votes.agreement[0] == 1.0
    # f2: one tile of material in four is enough (an eighth, at least one); one in nine is not
    assert votes.has_verdict.tolist() == [True, True]
    votes = vote_frames(frames + ['c0/f2'] * 5, np.vstack([probs, probs[5:], probs[5:6]]),
                        np.zeros(14, dtype=int), material + [False] * 5)
    assert votes.has_verdict.tolist() == [True, False]
    assert votes.reason(1) == 'no verdict: 1 of 9 tiles show cathode material (2 needed)'
    results = evaluate_split(probs, labels, ['c0', 'c1'], frames, material)
    assert results['crops']['accuracy'] == pytest.approx(3 / 9)   # every crop is still scored
    assert results['frames']['accuracy'] == 0.5     # f1 right (its foil left out), f2 wrong
    assert results['material'] == {'crops_without_material': 5, 'frames_without_verdict': []}
    more = evaluate_split(np.vstack([probs, probs[5:], probs[5:6]]), np.zeros(14, dtype=int),
                          ['c0', 'c1'], frames + ['c0/f2'] * 5, material + [False] * 5)
    assert more['material']['frames_without_verdict'] == ['c0/f2']
    assert more['frames']['n'] == 1                  # only f1 is scored as a frame
    # without the material flags, foil would have turned f1's verdict
    assert evaluate_split(probs, labels, ['c0', 'c1'], frames)['frames']['accuracy'] == 0.0


def test_manifest_maps_each_crop_to_its_frame_and_material(tmp_path):
    (tmp_path / 'manifest.csv').write_text(
        'split,class,source,x,y,width,height,bar,file,material\n'
        'test,811,src/811/a b.jpg,0,0,8,8,0,test/811/a b_jpg_0000_x0_y0.tif,0.25\n'
        'train,811,src/811/c.jpg,0,0,8,8,0,train/811/c_jpg_0000_x0_y0.tif,1.0\n',
        encoding='utf-8')
    assert read_crop_sources(str(tmp_path), 'test') == {
        '811/a b_jpg_0000_x0_y0.tif': ('811/a b.jpg', 0.25)}
    assert read_crop_sources(str(tmp_path / 'nothing'), 'test') is None
    # a manifest from before the material column: frames known, material not
    (tmp_path / 'manifest.csv').write_text(
        'split,class,source,x,y,width,height,bar,file\n'
        'test,811,src/811/a b.jpg,0,0,8,8,0,test/811/a b_jpg_0000_x0_y0.tif\n', encoding='utf-8')
    assert read_crop_sources(str(tmp_path), 'test') == {
        '811/a b_jpg_0000_x0_y0.tif': ('811/a b.jpg', None)}


def test_composition_and_state_columns_sum_classes_and_stay_blank_without_a_verdict():
    classes = ['333', '333_cycled', '811', '811_cycled']
    probs = np.array([[0.4, 0.0, 0.3, 0.3],      # class 333, but composition 811 (0.6)
                      [np.nan] * 4])             # a frame without a verdict
    assert factor_columns(probs, classes) == {'Composition': ['811', ''],
                                              'State': ['pristine', '']}
    assert factor_columns(probs, ['a', 'b', 'c', 'd']) == {}


def test_novel_tiles_do_not_vote_and_a_frame_of_mostly_novel_material_gets_no_verdict():
    # novelty above 1 is unlike the training material; exactly 1 is the threshold and still votes
    frames = ['a'] * 4 + ['b'] * 3 + ['c'] * 3
    probs = np.array([[0.9, 0.1], [0.7, 0.3], [0.0, 1.0], [0.8, 0.2],
                      [0.6, 0.4], [0.6, 0.4], [0.6, 0.4],
                      [0.3, 0.7], [0.1, 0.9], [0.2, 0.8]])
    novelty = np.array([0.5, 1.0, 1.5, 0.2,      # a: the third tile (1.5) is left out
                        1.5, 1.2, 0.3,           # b: median 1.2, most of it novel
                        0.4, 1.0, 1.0])          # c: median exactly 1
    votes = vote_frames(frames, probs, novelty=novelty)
    assert votes.probs[0] == pytest.approx([0.8, 0.2])    # the mean of the three that vote
    assert votes.novel.tolist() == [1, 2, 0]
    assert votes.has_verdict.tolist() == [True, False, True]
    assert 'unlike the training material' in votes.reason(1)
    assert votes.probs[2] == pytest.approx([0.2, 0.8])
    assert votes.agreement[0] == pytest.approx(1.0)       # the left-out tile disagrees, unseen


def test_the_frame_table_gives_each_frame_its_status_and_its_own_row():
    # frame a: right; b: too few material tiles (no verdict); c: right but unusual (warned);
    # then a file that was never tiled
    frames = ['a', 'a', 'b', 'b', 'c', 'c']
    probs = np.array([[0.9, 0.1], [0.8, 0.2], [0.6, 0.4], [0.5, 0.5], [0.3, 0.7], [0.2, 0.8]])
    votes = vote_frames(frames, probs, labels=np.array([0, 0, 1, 1, 1, 1]),
                        material=[True, True, False, False, True, True],
                        novelty=np.array([0.2, 0.3, 0.1, 0.1, 0.95, 0.9]), frame_limit=0.8)
    warnings = [votes.warnings(i) for i in range(len(votes.frames))]
    table = frame_table(votes, ['x', 'y'], warnings, {'Scale from': ['tag', 'tag', 'tag']},
                        [{'Frame': 'broken.jpg', 'Warnings': 'unreadable: not an image',
                          'Scale from': 'unknown'}])
    assert table['Frame'].tolist() == ['a', 'b', 'c', 'broken.jpg']
    assert table['Status'].tolist() == ['ok', 'no verdict', 'warned', 'no verdict']
    assert table['Prediction'].tolist() == ['x', '', 'y', '']
    assert table['Label'].tolist() == ['x', 'y', 'y', ''] and table['Result'].tolist()[1:] == [
        '', True, '']
    assert table['Scale from'].tolist() == ['tag', 'tag', 'tag', 'unknown']
    assert table['Tiles'].tolist() == [2, 2, 2, 0] and np.isnan(table['P(x)'].iloc[3])
    assert list(table.columns[-3:]) == ['Warnings', 'P(x)', 'P(y)']
