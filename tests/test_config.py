"""config.py: named versions, type-checked overrides, and errors that list what exists."""
import argparse

import pytest

import config
from config import add_config_arguments, apply_overrides, config_from_args, get_config
from semcnn.files.errors import UserError


def test_paper_version_is_the_original_recipe():
    cfg = get_config('example', 'paper')
    assert cfg['name'] == 'example_paper'
    assert (cfg['model'], cfg['pretrained'], cfg['optimizer'], cfg['batch_size'],
            cfg['epochs'], cfg['loss'], cfg['input_size']) == (
        'efficientnet_b7', True, 'adam', 4, 40, 'cross_entropy', 224)
    assert cfg['lr'] == pytest.approx(3.5e-4, rel=0.02)


def test_version_overrides_only_what_it_names():
    cfg = get_config('example', 'cpu')
    assert cfg['model'] == 'resnet18' and cfg['pretrained'] is False
    assert cfg['seed'] == config.gen_default('example')['seed']
    assert cfg['data_dir'].endswith('example')


@pytest.mark.parametrize('dataset, version, words', [
    ('../elsewhere', 'cpu', ['../elsewhere', 'data/']),
    ('example', 'v9', ['v9', 'cpu', 'paper']),
])
def test_unknown_dataset_or_version_lists_what_exists(dataset, version, words):
    with pytest.raises(UserError) as e:
        get_config(dataset, version)
    for w in words:
        assert w in str(e.value)


def test_any_dataset_name_gets_the_versions():
    cfg = get_config('size1000_pixel224', 'cpu30')    # not named in config.py
    assert cfg['data_dir'].endswith('size1000_pixel224') and cfg['crop_pixels'] == 448


def test_version_with_unknown_key_is_refused(monkeypatch):
    monkeypatch.setitem(config.config, 'example', {'default': config.gen_default('example'),
                                                   'typo': {'learning_rate': 1.0}})
    with pytest.raises(UserError, match='learning_rate'):
        get_config('example', 'typo')


def test_overrides_are_type_checked():
    cfg = get_config('example', 'cpu')
    out = apply_overrides(cfg, ['epochs=7', 'lr=0.01', 'pretrained=true', 'model=resnet50',
                                'augment=0'])
    assert out['epochs'] == 7 and out['lr'] == 0.01 and out['pretrained'] is True
    assert out['model'] == 'resnet50' and out['augment'] is False
    assert cfg['epochs'] == 3     # the original is not modified


@pytest.mark.parametrize('item, words', [
    ('epochs=ten', ['epochs', 'a whole number']),
    ('lr=fast', ['lr', 'a number']),
    ('pretrained=maybe', ['pretrained', 'true or false']),
    ('learning_rate=1', ['learning_rate', 'known keys', 'lr']),
    ('epochs', ['key=value']),
])
def test_bad_overrides_name_the_key(item, words):
    with pytest.raises(UserError) as e:
        apply_overrides(get_config('example', 'cpu'), [item])
    for w in words:
        assert w in str(e.value)


def test_values_that_make_no_sense_are_refused():
    parser = add_config_arguments(argparse.ArgumentParser())
    with pytest.raises(UserError, match='batch_size'):
        config_from_args(parser.parse_args(['--set', 'batch_size=0']))
    with pytest.raises(UserError, match='lr'):
        config_from_args(parser.parse_args(['--set', 'lr=-1']))
    with pytest.raises(UserError, match='finite'):
        config_from_args(parser.parse_args(['--set', 'weight_decay=nan']))
    with pytest.raises(UserError, match='pretrained=true'):
        config_from_args(parser.parse_args(['--set', 'weights_file=w.pth']))   # cpu: no pretrained
    with pytest.raises(UserError, match='jitter'):
        config_from_args(parser.parse_args(['--set', 'jitter=1.5']))
    with pytest.raises(UserError, match='warmup_epochs'):
        config_from_args(parser.parse_args(['--set', 'warmup_epochs=9']))   # cpu: 3 epochs
    with pytest.raises(UserError, match='intensity=sharpen: choose one of none, equalize'):
        config_from_args(parser.parse_args(['--set', 'intensity=sharpen']))
    with pytest.raises(UserError, match='blur=-1.0'):
        config_from_args(parser.parse_args(['--set', 'blur=-1']))
    with pytest.raises(UserError, match='illumination'):
        config_from_args(parser.parse_args(['--set', 'illumination=1']))
    with pytest.raises(UserError, match='head=joint: choose one of flat, factored'):
        config_from_args(parser.parse_args(['--set', 'head=joint']))
    with pytest.raises(UserError, match='sharpen=-0.5'):
        config_from_args(parser.parse_args(['--set', 'sharpen=-0.5']))


def test_recipes_read_the_material_and_keep_the_legacy_ones_for_comparison():
    for version in ('cpu30', 'gpu'):
        cfg, legacy = get_config('reproduce', version), get_config('reproduce', f'{version}_legacy')
        assert cfg['intensity'] == 'equalize' and legacy['intensity'] == 'none'
        assert cfg['blur'] > 0 and cfg['noise'] > 0 and cfg['illumination'] > 0
        assert cfg['model'] == legacy['model'] and cfg['input_size'] == legacy['input_size']


def test_the_factored_candidate_differs_from_cpu30_only_in_its_head():
    # so that its transfer and normal-split numbers compare the head alone (RESULTS.md)
    cpu30, factored = get_config('reproduce', 'cpu30'), get_config('reproduce', 'cpu30_factored')
    assert cpu30['head'] == 'flat' and factored['head'] == 'factored'
    assert {k: v for k, v in cpu30.items() if k not in ('head', 'name')} == \
        {k: v for k, v in factored.items() if k not in ('head', 'name')}


def test_recipes_train_from_scratch_and_vote_at_test_time():
    for version in ('cpu30', 'gpu', 'cpu30_legacy', 'gpu_legacy'):
        cfg = get_config('reproduce', version)
        assert cfg['pretrained'] is False and cfg['weights_file'] == ''
        assert cfg['tta'] and cfg['augment'] and cfg['preload']
        assert cfg['crop_pixels'] == 448
