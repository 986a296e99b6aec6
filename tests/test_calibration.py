"""Calibrated probabilities: the temperature fitted on validation outputs, and the expected
calibration error that tells whether P means what it says."""
import json
import shutil

import numpy as np
import pytest
import torch

from conftest import RUNTIME, TINY, assert_clean_error, call, cut_example, run
from semcnn.evaluation.calibration import (calibrated, calibration_scores,
                                           expected_calibration_error, fit_temperature)
from semcnn.training.checkpoint import Checkpoint


def sampled(n=20000, classes=4, seed=0):
    """Outputs whose softmax is calibrated by construction (labels drawn from it)."""
    generator = torch.Generator().manual_seed(seed)
    outputs = torch.randn(n, classes, generator=generator, dtype=torch.float64) * 2
    labels = torch.multinomial(outputs.softmax(1), 1, generator=generator)[:, 0]
    return outputs, labels


def test_the_fitted_temperature_undoes_overconfidence():
    outputs, labels = sampled()
    assert fit_temperature(outputs, labels) == pytest.approx(1.0, rel=0.05)
    overconfident = outputs * 3                     # the same ranking, three times as sure
    assert fit_temperature(overconfident, labels) == pytest.approx(3.0, rel=0.05)
    before = expected_calibration_error(calibrated(overconfident, 1.0), labels.numpy())
    after = expected_calibration_error(calibrated(overconfident, 3.0), labels.numpy())
    assert before > 0.1 and after < 0.02
    assert (calibrated(overconfident, 3.0).argmax(1) == overconfident.argmax(1).numpy()).all()


def test_calibration_error_is_the_gap_between_confidence_and_accuracy():
    probs = np.array([[0.9, 0.1]] * 10)             # 90 % sure, right 6 times in 10
    labels = np.array([0] * 6 + [1] * 4)
    assert expected_calibration_error(probs, labels) == pytest.approx(0.3)
    scores = calibration_scores(torch.log(torch.tensor(probs)) / 2.0, labels, 2.0)
    assert scores['ece_uncalibrated'] == pytest.approx(0.3)   # T = 1: the outputs as trained
    assert scores['temperature'] == 2.0 and scores['ece'] < scores['ece_uncalibrated']


@pytest.fixture(scope='module')
def two_epochs(tmp_path_factory):
    """(folder, train.py's output) of a two-epoch run on synthetic crops, shared: a test that
    changes it works on a copy."""
    cwd = cut_example(tmp_path_factory.mktemp('calibration'))
    return cwd, call('train.py', *TINY, '--set', 'epochs=2', cwd=cwd).stdout


def test_training_fits_a_temperature_that_test_and_predict_use(two_epochs):
    cwd, stdout = two_epochs
    assert 'calibrated: temperature' in stdout
    best = Checkpoint.load(str(cwd / 'runs' / 'example' / 'cpu' / 'best.pt'))
    last = Checkpoint.load(str(cwd / 'runs' / 'example' / 'cpu' / 'last.pt'))
    assert best.calibration['split'] == 'validate' and last.temperature == 1.0
    assert best.calibration['ece'] <= best.calibration['ece_uncalibrated'] + 1e-9
    assert best.temperature != 1.0   # a 2-epoch net is never calibrated to the 1 % grid step
    call('test.py', *RUNTIME, '--split', 'validate', cwd=cwd)
    results = json.loads((cwd / 'runs' / 'example' / 'cpu' / 'validate' / 'results.json')
                         .read_text())
    # the validation outputs test.py computes are the ones the temperature was fitted on
    assert results['calibration']['ece'] == pytest.approx(best.calibration['ece'], abs=1e-6)
    assert results['calibration']['temperature'] == best.temperature


def test_refit_gives_an_older_run_its_temperature_and_novelty_record_again(two_epochs, tmp_path):
    shutil.copytree(two_epochs[0], tmp_path, dirs_exist_ok=True)
    path = tmp_path / 'runs' / 'example' / 'cpu' / 'best.pt'
    fitted = Checkpoint.load(str(path))
    # fitted on the raw outputs: refitting a calibrated run does not divide by its T twice
    call('train.py', '--refit', *RUNTIME, cwd=tmp_path)
    again = Checkpoint.load(str(path))
    assert again.temperature == pytest.approx(fitted.temperature, rel=1e-4)
    fitted.temperature, fitted.calibration, fitted.novelty = 1.0, None, None   # as trained before
    fitted.save(str(path))
    frame = next((tmp_path / 'source').glob('*/*.png'))
    proc = call('predict.py', frame, *RUNTIME, '--out', tmp_path / 'out', cwd=tmp_path)
    assert 'no temperature or novelty record' in proc.stdout and '--refit' in proc.stdout
    proc = call('train.py', '--refit', *RUNTIME, cwd=tmp_path)
    assert 'calibrated: temperature' in proc.stdout
    refitted = Checkpoint.load(str(path))
    assert refitted.temperature == pytest.approx(again.temperature, rel=1e-4)
    assert refitted.novelty['threshold'] == pytest.approx(again.novelty['threshold'], rel=1e-3)
    assert refitted.epoch == fitted.epoch and refitted.history == fitted.history   # no training
    proc = call('predict.py', frame, *RUNTIME, '--out', tmp_path / 'out2', cwd=tmp_path)
    assert 'no temperature or novelty record' not in proc.stdout
    assert_clean_error(call('train.py', '--refit', '--force', *RUNTIME, cwd=tmp_path, check=False),
                        '--refit')
    # cut again with another seed: the run's own training crops would be validated on
    run('aug_img.py', 'source', 60, '-p', 32, '-n', 'example', '--seed', 2, '--force',
        cwd=tmp_path)
    for args in (['--refit', *RUNTIME], ['--resume', *TINY, '--set', 'epochs=3']):
        assert_clean_error(call('train.py', *args, cwd=tmp_path, check=False), 'cut again since')
    assert Checkpoint.load(str(path)).temperature == refitted.temperature   # left as it was
