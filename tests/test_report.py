"""test.py's report.md: one file that holds a run's results, with working links to its figures."""
import json
import os
import re

import numpy as np
import pandas as pd

from conftest import RUNTIME, call

RUN = os.path.join('runs', 'example', 'cpu')
LINK = re.compile(r'!\[[^\]]*\]\(([^)]+)\)')


def report_of(folder):
    text = (folder / 'report.md').read_text(encoding='utf-8')
    links = LINK.findall(text)
    for target in links:   # relative, and each a PNG a person can open
        assert not os.path.isabs(target), target
        assert (folder / target).read_bytes()[:4] == b'\x89PNG', target
    return text, links


def table_rows(text, heading):
    """The rows (lists of cells) of the first table under `## heading`."""
    section = text.split(f'## {heading}\n', 1)[1].split('\n## ', 1)[0]
    rows = [line.strip('|').split('|') for line in section.splitlines() if line.startswith('|')]
    return [[cell.strip() for cell in row] for row in rows[2:]]


def test_report_holds_the_runs_results_and_links_its_figures(trained):
    call('audit.py', '--dataset', 'example', '--per-frame', 2, cwd=trained)
    call('test.py', *RUNTIME, cwd=trained)
    run_dir = trained / RUN
    text, links = report_of(run_dir)
    results = json.loads((run_dir / 'results.json').read_text())
    for figure in ('learning_curve.png', 'confusion_matrix.png', 'confusion_matrix_frames.png',
                   'gradcam_examples.png'):
        assert figure in links
    # the scores are the results.json ones, and the settings those of the checkpoint
    scores = {row[0]: row for row in table_rows(text, 'Scores')}
    assert scores['crops'][1] == f"{100 * results['crops']['accuracy']:.2f} %"
    assert scores['crops'][2] == str(results['crops']['n'])
    settings = dict(row[:2] for row in table_rows(text, 'Settings and data'))
    assert settings['model'] == '`resnet18`' and settings['input_size'] == '`32`'
    recall = {row[0]: row[1] for row in table_rows(text, 'Recall per class')}
    assert recall == {c: f'{100 * r:.2f} %' for c, r in results['crops']['recall'].items()}
    # the most confused pair is the largest count off the confusion matrix's diagonal
    matrix = np.array(results['crops']['confusion'])
    np.fill_diagonal(matrix, 0)
    if matrix.any():
        i, j = np.unravel_index(matrix.argmax(), matrix.shape)
        pairs = table_rows(text, 'Most confused pairs (crops)')
        assert int(pairs[0][2]) == matrix[i, j]
        assert 'worst_crops.png' in links
    audit = {row[0]: row for row in table_rows(text, 'Shortcut audit of the dataset')}
    assert audit['grey levels alone (crops)'][1].endswith(' %')   # once audit.py was run
    assert 'Not run: `python test.py --shifts`' in text
    # calibration: the checkpoint's temperature, the ECE of this split, and its diagram
    calibration = {row[0]: row for row in table_rows(text, 'Calibration')}
    ece = results['calibration']
    assert calibration['test crops (this report)'][1:] == [
        f"{100 * ece['ece_uncalibrated']:.2f} %", f"{100 * ece['ece']:.2f} %"]
    assert 'validation crops (where T was fitted)' in calibration
    assert f"T = {ece['temperature']:.2f}" in text and 'reliability.png' in links
    # every setting (those a recipe changes beyond the paper's too), the code and packages
    assert {'head', 'warmup_epochs', 'sharpen', 'scale', 'crop_pixels'} <= set(settings)
    assert 'code commit ' in text.splitlines()[2] and 'torch ' in text.splitlines()[2]
    # the frames it got wrong or gave no verdict: those of frame_predictions.csv
    frames = pd.read_csv(run_dir / 'frame_predictions.csv', keep_default_na=False, dtype=str)
    listed = table_rows(text, 'Frames it got wrong or gave no verdict')
    wrong = (frames['Status'] == 'no verdict') | (frames['Result'] == 'False')
    assert wrong.any(), 'a one-epoch run on synthetic frames gets some frames wrong'
    assert {row[0].strip('`') for row in listed} == set(frames.loc[wrong, 'Frame'])
    # novelty: the share of crops results.json counts as novel
    novel = {row[0]: row for row in table_rows(text, 'Novelty: unlike the training material')}
    assert novel['crops flagged novel'][2] == f"{100 * results['novelty']['share']:.2f} %"


def test_validation_report_links_the_runs_learning_curve(trained):
    call('test.py', '--split', 'validate', *RUNTIME, cwd=trained)
    text, links = report_of(trained / RUN / 'validate')
    assert '../learning_curve.png' in links
    assert text.startswith('# example_cpu: validate split')
