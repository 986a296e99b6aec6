"""The project card's three commands, verbatim, on a small synthetic source."""
import pandas as pd
import pytest

from conftest import run
from synthetic_sem import write_source


@pytest.mark.slow
def test_the_cards_commands_work_as_written(tmp_path):
    write_source(str(tmp_path / 'source'), classes=2, frames=6, width=640, height=480, bar=32)
    run('aug_img.py', 'source', 1000, '-p', 224, cwd=tmp_path)   # data/size1000_pixel224
    trained = run('train.py', cwd=tmp_path)
    assert 'dataset: size1000_pixel224 (cut last by aug_img.py' in trained.stdout
    tested = run('test.py', cwd=tmp_path)
    assert 'dataset: size1000_pixel224' in tested.stdout
    table = pd.read_csv(tmp_path / 'runs' / 'size1000_pixel224' / 'cpu' / 'predictions.csv')
    assert len(table) == 2 * 100 and set(table['Prediction']) <= {'synthA', 'synthB'}
