"""transfer.py: train without a group of frames, predict them, and score the state they get."""
import json

import pandas as pd
import pytest

from conftest import TINY, assert_clean_error, run
from semcnn.evaluation.transfer import frame_groups, score_fold, state_of
from synthetic_sem import STATE_WORLDS, write_source

# TINY with 3 epochs: enough for the synthetic cues, a few seconds per training
QUICK = [*TINY, '--set', 'epochs=3']


def transfer(cwd, world, *extra):
    """Leave composition C of a synthetic world out; its fold's scores (transfer.json)."""
    write_source(str(cwd / world), classes=6, frames=8, width=320, height=240, bar=16,
                 styles=STATE_WORLDS[world])
    run('transfer.py', world, '--groups', 'C', '--version', 'cpu', '--size', 60,
        '--crops', 'none', '-p', 48, *QUICK, '-n', world, *extra, cwd=cwd)
    with open(cwd / 'runs' / 'transfer' / world / 'transfer.json', encoding='utf-8') as f:
        return json.load(f)


@pytest.mark.slow
@pytest.mark.parametrize('head', ['flat', 'factored'])
def test_a_state_cue_shared_across_compositions_carries_over(tmp_path, head):
    # transfer.py's normal split is one step whatever the head: trained and checked once
    normal_split = [] if head == 'flat' else ['--no-normal']
    scores = transfer(tmp_path, 'shared', '--set', f'head={head}', *normal_split)
    fold = scores['folds']['C_seed1']
    # frames of a composition never seen may be refused as unlike the training material
    # (test_novelty.py): the state is scored on those answered
    assert fold['frames'] == 16 and fold['judged'] >= 8
    assert fold['balanced'] >= 0.9
    assert fold['per_state']['cycled']['accuracy'] >= 0.75
    assert (tmp_path / 'runs' / 'transfer' / 'shared' / 'state_C_seed1.png').is_file()
    assert 'C' not in {p.name for p in (tmp_path / 'data' / 'shared_without_C' / 'train')
                       .iterdir()}                         # C never reached training
    if normal_split:
        return
    summary = pd.read_csv(tmp_path / 'runs' / 'transfer' / 'shared' / 'summary.csv')
    normal = summary[summary['left out'] == 'none (normal split)'].iloc[0]
    # the same recipe on a normal split of all 6 classes, scored on its test split
    assert 100 / 6 < float(normal['test crops %']) <= 100
    assert 0 < float(normal['test frames %']) <= 100


@pytest.mark.slow
def test_a_state_cue_of_the_left_out_composition_alone_does_not(tmp_path):
    fold = transfer(tmp_path, 'specific', '--no-normal')['folds']['C_seed1']
    assert fold['per_state']['pristine']['accuracy'] >= 0.75
    assert fold['per_state']['cycled']['accuracy'] <= 0.25   # its cue was never seen
    assert fold['balanced'] <= 0.65
    assert fold['wrong']['n'] >= 6
    assert set(fold['said_as']) <= {'A', 'B'}                # named a pristine training class


def frames_table(rows):
    return pd.DataFrame(rows, columns=['Frame', 'Prediction', 'State', 'Agreement', 'Warnings'])


def test_a_fold_is_scored_per_true_state_balanced_and_by_its_own_flags():
    frames = frames_table([
        ['s/C/1.png', 'A', 'pristine', 1.0, ''],
        ['s/C/2.png', 'B_cycled', 'cycled', 0.6, ''],           # wrong, unsure
        ['s/C_cycled/3.png', 'A_cycled', 'cycled', 0.9, ''],
        ['s/C_cycled/4.png', 'B', 'pristine', 0.9, 'grey levels outside'],   # wrong, warned
        ['s/C_cycled/5.png', 'A', 'pristine', 0.95, ''],        # wrong, confident
        ['s/C_cycled/6.png', '', '', '', 'no verdict: 0 of 4 tiles'],   # not judged
    ])
    tiles = pd.DataFrame({'Frame': ['s/C/1.png', 's/C/1.png', 's/C_cycled/3.png'],
                          'Material': [True, False, True],
                          'State': ['pristine', 'cycled', 'cycled']})
    truth = {f: f.split('/')[1] for f in frames['Frame']}
    result = score_fold(frames, tiles, truth)
    assert (result['frames'], result['judged']) == (6, 5)
    assert result['per_state']['pristine']['accuracy'] == 0.5
    assert result['per_state']['cycled']['said'] == {'pristine': 2, 'cycled': 1}
    assert result['balanced'] == pytest.approx((0.5 + 1 / 3) / 2)
    assert result['tiles']['n'] == 2 and result['tiles']['balanced'] == 1.0   # material only
    assert result['wrong'] == {'n': 3, 'warned': 1, 'low_agreement': 1, 'either': 2,
                               'low_agreement_below': 0.75}
    assert result['states'] == ['pristine', 'cycled']


def test_class_names_without_a_state_give_no_state_score():
    frames = frames_table([['s/x/1.png', 'x', '', 1.0, '']]).drop(columns='State')
    assert score_fold(frames, pd.DataFrame(), {'s/x/1.png': 'x'}) is None


def test_frames_are_grouped_by_composition_session_or_class(tmp_path):
    for cls, date in (('811', '2019-09-02'), ('811_cycled', '2019-12-03'),
                      ('622_cycled', '2019-12-03')):
        (tmp_path / cls).mkdir()
        (tmp_path / cls / 'a.jpg').write_bytes(b'')
        (tmp_path / cls / 'a.jpg.txt').write_text(f'Date : {date}\n')
        (tmp_path / cls / 'notes.txt').write_text('not a frame')
    assert frame_groups(str(tmp_path), 'composition') == {
        '622': ['622_cycled/a.jpg'], '811': ['811/a.jpg', '811_cycled/a.jpg']}
    assert frame_groups(str(tmp_path), 'session') == {
        '2019-09-02': ['811/a.jpg'], '2019-12-03': ['622_cycled/a.jpg', '811_cycled/a.jpg']}
    assert sorted(frame_groups(str(tmp_path), 'class')) == ['622_cycled', '811', '811_cycled']
    assert [state_of(c) for c in ('811', '811_cycled', '622_formation')] == [
        'pristine', 'cycled', 'formation']


def test_an_unknown_group_is_named_with_the_ones_there(tmp_path):
    write_source(str(tmp_path / 'source'), classes=4, frames=3, width=160, height=120, bar=16,
                 styles=STATE_WORLDS['shared'])
    proc = run('transfer.py', 'source', '--groups', 'D', cwd=tmp_path, check=False)
    assert_clean_error(proc, '--groups D', 'composition', 'A, B')
