"""train.py and test.py on tiny data on the CPU: outputs, resume, checkpoints, clear errors."""
import json
import os
import shutil
import urllib.error

import numpy as np
import pandas as pd
import pytest
import torch
import torchvision

from config import check_values, gen_default
from conftest import REAL_SEM, RUNTIME, TINY, assert_clean_error, call, cut_example, run
from semcnn.files.errors import UserError
from semcnn.training.checkpoint import Checkpoint
from semcnn.training.device import pick_device
from semcnn.training.model import build_model

RUN = os.path.join('runs', 'example', 'cpu')


def test_one_epoch_run_writes_its_outputs(trained):
    run_dir = trained / RUN
    history = pd.read_csv(run_dir / 'history.csv')
    assert list(history['epoch']) == [1]
    assert {'train_loss', 'train_acc', 'val_loss', 'val_acc', 'lr', 'seconds',
            'data_seconds'} <= set(history.columns)
    for name in ('best.pt', 'last.pt', 'config.json'):
        assert (run_dir / name).stat().st_size > 0
    assert (run_dir / 'learning_curve.png').read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    checkpoint = Checkpoint.load(str(run_dir / 'best.pt'))
    assert checkpoint.classes == ['synthA', 'synthB', 'synthC']
    assert checkpoint.config['model'] == 'resnet18'
    assert not [p for p in run_dir.iterdir() if '.tmp' in p.name]


def test_test_script_writes_one_row_per_test_crop(trained):
    proc = call('test.py', *RUNTIME, cwd=trained)
    assert 'precision' in proc.stdout and 'accuracy' in proc.stdout
    run_dir = trained / RUN
    table = pd.read_csv(run_dir / 'predictions.csv')
    manifest = pd.read_csv(trained / 'data' / 'example' / 'manifest.csv')
    assert len(table) == (manifest['split'] == 'test').sum()
    assert list(table.columns) == ['Image Name', 'Prediction', 'Label', 'Result', 'Frame',
                                   'Material', 'Novelty', 'P(synthA)', 'P(synthB)', 'P(synthC)']
    assert (table['Novelty'] >= 0).all()
    assert table['Material'].all()          # synthetic particles everywhere: no bare crop
    probs = table[['P(synthA)', 'P(synthB)', 'P(synthC)']]
    assert ((probs.sum(axis=1) - 1).abs() < 1e-4).all()
    assert (table['Result'] == (table['Prediction'] == table['Label'])).all()
    test_files = set(manifest.loc[manifest['split'] == 'test', 'file'])
    assert {f'test/{name}' for name in table['Image Name']} == test_files
    report = pd.read_json(run_dir / 'classification_report.json', typ='series')
    assert report['n_images'] == len(table)
    matrix = pd.read_csv(run_dir / 'confusion_matrix.csv', index_col=0)
    assert matrix.values.sum() == len(table)
    assert (run_dir / 'confusion_matrix.png').read_bytes()[:4] == b'\x89PNG'
    # frame verdicts: one row per test frame, its crops counted, the manifest's frame names
    frames = pd.read_csv(run_dir / 'frame_predictions.csv')
    test_rows = manifest[manifest['split'] == 'test']
    expected = (test_rows['class'] + '/' + test_rows['source'].map(os.path.basename)).value_counts()
    assert dict(zip(frames['Frame'], frames['Tiles'])) == expected.to_dict()
    assert frames['Agreement'].between(0, 1).all()
    assert (frames['Material tiles'] == frames['Tiles']).all()
    # the status says what the verdict and the warnings say
    warned, judged = frames['Warnings'].notna(), frames['Prediction'].notna()
    assert (frames['Status'] == np.where(~judged, 'no verdict',
                                         np.where(warned, 'warned', 'ok'))).all()
    results = json.loads((run_dir / 'results.json').read_text())
    assert results['frames']['n'] == len(frames)
    assert results['frames']['accuracy'] == pytest.approx(frames['Result'].mean())
    assert results['crops']['accuracy'] == pytest.approx(table['Result'].mean())
    assert 'composition' not in results   # synthA..C do not read <composition>_<state>


def test_checkpoint_round_trip_keeps_weights_and_normalisation(tmp_path):
    cfg = {'model': 'resnet18', 'pretrained': False, 'weights_file': ''}
    torch.manual_seed(0)
    model = build_model(cfg, 3, mean=(0.3, 0.3, 0.3), std=(0.2, 0.2, 0.2)).eval()
    Checkpoint(model.state_dict(), ['a', 'b', 'c'], cfg).save(str(tmp_path / 'c.pt'))
    checkpoint = Checkpoint.load(str(tmp_path / 'c.pt'))
    torch.manual_seed(1)                      # different random init before loading
    again = build_model(cfg, 3).eval()
    again.load_state_dict(checkpoint.model)
    assert again.mean.flatten().tolist() == pytest.approx([0.3] * 3)
    x = torch.rand(4, 1, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(again(x), model(x))
    assert checkpoint.classes == ['a', 'b', 'c']


def test_test_split_predictions_match_the_best_checkpoint(trained):
    """test.py's probabilities are those of best.pt at its temperature, recomputed here
    in-process."""
    from dataset import SEMDataset
    checkpoint = Checkpoint.load(str(trained / RUN / 'best.pt'))
    model = build_model(checkpoint.config, 3, pretrained=False)
    model.load_state_dict(checkpoint.model)
    model.eval()
    call('test.py', *RUNTIME, cwd=trained)
    table = pd.read_csv(trained / RUN / 'predictions.csv').set_index('Image Name')
    test_set = SEMDataset(str(trained / 'data' / 'example'), 'test', checkpoint.classes, 32)
    for i in range(0, len(test_set), max(1, len(test_set) // 5)):
        x, _, name = test_set[i]
        with torch.no_grad():
            probs = (model(x[None]) / checkpoint.temperature).softmax(1)[0].tolist()
        assert table.loc[name, ['P(synthA)', 'P(synthB)', 'P(synthC)']].tolist() == \
            pytest.approx(probs, abs=1e-5)


def test_resume_continues_and_existing_run_is_protected(trained, tmp_path):
    cwd = tmp_path / 'copy'
    shutil.copytree(trained, cwd)
    assert_clean_error(call('train.py', *TINY, cwd=cwd, check=False), '--resume', '--force')
    assert_clean_error(call('train.py', *TINY, '--resume', cwd=cwd, check=False),
                        'already trained 1', 'epochs')
    assert_clean_error(call('train.py', *TINY, '--resume', '--set', 'lr=0.1', cwd=cwd,
                            check=False), 'settings differ', 'lr')
    assert_clean_error(call('train.py', *TINY, '--resume', '--set', 'epochs=2', '--set',
                            'scheduler=cosine', cwd=cwd, check=False), 'scheduler', 'epochs')
    call('train.py', *TINY, '--set', 'epochs=2', '--resume', cwd=cwd)
    history = pd.read_csv(cwd / RUN / 'history.csv')
    assert list(history['epoch']) == [1, 2]
    assert Checkpoint.load(str(cwd / RUN / 'last.pt')).epoch == 2
    call('train.py', *TINY, '--force', cwd=cwd)
    assert list(pd.read_csv(cwd / RUN / 'history.csv')['epoch']) == [1]


def test_missing_dataset_and_checkpoint_are_explained(tmp_path):
    assert_clean_error(call('train.py', *TINY, cwd=tmp_path, check=False), 'aug_img.py')
    assert_clean_error(call('test.py', *RUNTIME, cwd=tmp_path, check=False), 'no checkpoint')


class Payload:
    """Any pickled object: loading it would run code named by the file."""


def test_unsafe_or_foreign_checkpoints_are_refused(tmp_path):
    torch.save({'model': {}, 'classes': [], 'config': {}, 'x': Payload()}, tmp_path / 'pickled.pt')
    (tmp_path / 'text.pt').write_text('not a checkpoint')
    torch.save({'weights': torch.zeros(2)}, tmp_path / 'other.pt')
    for name in ('pickled.pt', 'text.pt', 'other.pt'):
        with pytest.raises(UserError, match=name):
            Checkpoint.load(str(tmp_path / name))


def test_a_trained_run_is_used_with_its_own_settings(tmp_path):
    """A run trained with another model and input size than its version's needs no --set in
    test.py, predict.py or gradcam.py; a --set that would change what it is, is refused."""
    cwd = cut_example(tmp_path)
    call('train.py', *TINY, '--set', 'model=semnet', '--set', 'input_size=48', cwd=cwd)
    call('test.py', cwd=cwd)          # version cpu says resnet18 at 112 px: the run says otherwise
    call('predict.py', 'source/synthA', cwd=cwd)
    call('gradcam.py', '--per-class', 1, cwd=cwd)
    assert (cwd / RUN / 'predictions.csv').is_file() and (cwd / RUN / 'gradcam').is_dir()
    for setting in ('input_size=64', 'model=resnet18'):
        proc = call('test.py', '--set', setting, cwd=cwd, check=False)
        assert_clean_error(proc, setting, 'fixed by the trained run', 'device', 'tta')


def test_pretrained_offline_says_what_to_do(monkeypatch, tmp_path):
    def offline(*args, **kwargs):
        raise urllib.error.URLError('Name or service not known')
    weights = torchvision.models.get_model_weights('resnet18').DEFAULT
    monkeypatch.setattr(type(weights), 'get_state_dict', offline)
    cfg = {'model': 'resnet18', 'pretrained': True, 'weights_file': ''}
    with pytest.raises(UserError) as e:
        build_model(cfg, 3)
    for words in ('weights_file', 'pretrained=false', 'download'):
        assert words in str(e.value)
    with pytest.raises(UserError, match='no such file'):
        build_model(dict(cfg, weights_file=str(tmp_path / 'none.pth')), 3)


def test_models_the_pipeline_cannot_adapt_are_explained(tmp_path):
    torch.save(torchvision.models.get_model('squeezenet1_0').state_dict(), tmp_path / 'sq.pth')
    with pytest.raises(UserError, match='Linear'):
        build_model({'model': 'squeezenet1_0', 'pretrained': True,
                     'weights_file': str(tmp_path / 'sq.pth')}, 3)
    with pytest.raises(UserError, match='model=resnet_nope'):
        check_values({**gen_default('example'), 'model': 'resnet_nope', 'pretrained': False})


def test_auxiliary_outputs_are_dropped_in_training():
    model = build_model({'model': 'googlenet', 'pretrained': False, 'weights_file': ''}, 3)
    model.train()
    out = model(torch.rand(2, 1, 64, 64))
    assert isinstance(out, torch.Tensor) and out.shape == (2, 3)


def test_input_size_a_model_cannot_take_is_explained(trained, tmp_path):
    proc = call('train.py', *TINY, '--set', 'model=vit_b_16', '--force', cwd=trained, check=False)
    assert_clean_error(proc, 'vit_b_16', 'input_size=32')
    assert (trained / RUN / 'best.pt').exists()          # the old run was not touched


def test_unavailable_devices_are_explained():
    with pytest.raises(UserError, match='cuda:7'):
        pick_device('cuda:7')
    with pytest.raises(UserError, match='tpu'):
        pick_device('tpu')


def test_local_weights_file_is_used(tmp_path):
    torch.manual_seed(0)
    imagenet = torchvision.models.get_model('resnet18')
    torch.save(imagenet.state_dict(), tmp_path / 'resnet18.pth')
    model = build_model({'model': 'resnet18', 'pretrained': True,
                         'weights_file': str(tmp_path / 'resnet18.pth')}, 3)
    torch.testing.assert_close(model.net.conv1.weight, imagenet.conv1.weight)
    assert model.net.fc.out_features == 3


@pytest.mark.skipif(not os.path.isdir(REAL_SEM), reason='real SEM frames (../shared/sem) absent')
def test_real_frames_end_to_end(tmp_path):
    source = tmp_path / 'source'
    for cls in ('523', '622', '811_formation'):
        shutil.copytree(os.path.join(REAL_SEM, cls), source / cls)
    run('aug_img.py', 'source', 60, '-p', 224, '-t', 10, '-r', 20, '-n', 'example', cwd=tmp_path)
    manifest = pd.read_csv(tmp_path / 'data' / 'example' / 'manifest.csv')
    assert (manifest['bar'] == 64).all() and (manifest['y'] + 224 <= 960 - 64).all()
    assert (manifest.groupby('source')['split'].nunique() == 1).all()
    call('train.py', *TINY, cwd=tmp_path)
    call('test.py', *RUNTIME, cwd=tmp_path)
    table = pd.read_csv(tmp_path / RUN / 'predictions.csv')
    assert len(table) == (manifest['split'] == 'test').sum() == 18
