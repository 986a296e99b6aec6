"""Pretrained eyes: the ImageNet EfficientNet-Lite0 that installs with the requirements, the one
model factory, the linear probe, and the temperature's floor. Offline: the weights come from the
installed package, never from the network."""
import numpy as np
import pytest
import torch
from sklearn.datasets import load_sample_image

from conftest import RUNTIME, assert_clean_error, call, cut_example
from semcnn.evaluation.calibration import fit_temperature
from semcnn.files.errors import UserError
from semcnn.training.checkpoint import Checkpoint
from semcnn.training.choices import LOCAL_MODELS, check_model_name, has_imagenet_weights
from semcnn.training.model import LOCAL_NETWORKS, build_model, create_network, imagenet_normalized
from semcnn.training.pretrained import LITE0, lite0_file, load_imagenet, read_weights

BUILDINGS = {'bell cote, bell cot', 'palace', 'church, church building', 'boathouse', 'dome',
             'monastery', 'castle', 'stupa, tope', 'mosque'}
LITE0_CFG = {'model': f'timm:{LITE0}', 'pretrained': True, 'intensity': 'equalize'}


def top_classes(net, photo, normalise, k=5):
    from timm.data import ImageNetInfo
    x = torch.tensor(load_sample_image(photo)).permute(2, 0, 1).float()[None] / 255
    x = torch.nn.functional.interpolate(x, size=(224, 224), mode='bilinear', antialias=True)
    with torch.no_grad():
        top = net(normalise(x)).softmax(1)[0].topk(k).indices
    info = ImageNetInfo()
    return [info.index_to_description(int(i)) for i in top]


@pytest.fixture(scope='module')
def lite0():
    import timm
    return load_imagenet(timm.create_model(LITE0), LITE0).eval()


def test_the_installed_weights_are_the_imagenet_classifier(lite0):
    """The temple scikit-learn ships is a building to the network: with the ImageNet statistics
    the weights were trained with, bell cote first and three more buildings in its top five;
    the [-1, 1] scaling of TensorFlow's Lite models gives fewer."""
    top = top_classes(lite0, 'china.jpg', imagenet_normalized)
    assert top[0] == 'bell cote, bell cot' and len(BUILDINGS & set(top)) >= 4, top
    other = top_classes(lite0, 'china.jpg', lambda x: (x - 0.5) / 0.5)
    assert len(BUILDINGS & set(other)) < len(BUILDINGS & set(top)), other


def test_a_weights_file_that_does_not_fit_is_refused_in_one_line(tmp_path):
    import timm
    state = read_weights(lite0_file())
    first = next(iter(state))
    bad = dict(state)
    bad[first] = torch.zeros(3)
    torch.save(bad, tmp_path / 'bad.pth')
    with pytest.raises(UserError, match=f'bad.pth: {first} has shape \\(3,\\) where conv_stem'):
        load_imagenet(timm.create_model(LITE0), LITE0, str(tmp_path / 'bad.pth'))
    torch.save(dict(list(state.items())[:-2]), tmp_path / 'short.pth')
    with pytest.raises(UserError, match='294 tensors, but the network has 296'):
        load_imagenet(timm.create_model(LITE0), LITE0, str(tmp_path / 'short.pth'))
    (tmp_path / 'text.pth').write_text('not weights')
    with pytest.raises(UserError, match='text.pth: not a torch weights file'):
        read_weights(str(tmp_path / 'text.pth'))
    with pytest.raises(UserError, match='no ImageNet weights are installed for it'):
        load_imagenet(timm.create_model('resnet18'), 'resnet18')


@pytest.mark.parametrize('name, head', [('resnet18', 'fc'), ('timm:resnet18', 'fc'),
                                        ('semnet_s4', None), (f'timm:{LITE0}', 'classifier'),
                                        ('efficientnet_b0', 'classifier.1')])
def test_one_factory_names_the_head_of_every_network(name, head):
    net, path = create_network(name, 7)
    assert path == (head or str(len(net) - 1))
    assert isinstance(net.get_submodule(path), torch.nn.Linear)
    model = build_model({'model': name, 'pretrained': False, 'head': 'factored'},
                        ['333', '333_cycled', '811', '811_cycled'])
    out = model(torch.rand(2, 1, 64, 64))
    assert out.shape == (2, 4) and type(model.head).__name__ == 'FactoredHead'


def test_every_name_the_config_accepts_is_a_network_the_factory_builds():
    # the names are checked before torch loads (choices.py), the networks built in model.py
    assert sorted(LOCAL_NETWORKS) == sorted(LOCAL_MODELS)
    for name in LOCAL_MODELS:
        check_model_name(name)
        assert not has_imagenet_weights(name) and create_network(name, 3)[0](
            torch.rand(2, 3, 32, 32)).shape == (2, 3)


def test_the_pretrained_network_sees_equalized_crops_as_imagenet_images(lite0):
    model = build_model(LITE0_CFG, 12).eval()
    assert torch.equal(model.net.conv_stem.weight, lite0.conv_stem.weight)
    x = torch.randint(0, 128, (2, 1, 64, 64)) / 255   # 128 grey levels
    treated = model.treat(x)
    assert treated.shape == (2, 3, 64, 64)
    # an equalized crop is uniform on [0, 1]: as an ImageNet image its red channel has that
    # channel's mean and standard deviation removed
    assert treated[:, 0].mean().item() == pytest.approx((0.5 - 0.485) / 0.229, abs=0.02)
    # another contrast, every level kept apart: the same input
    assert torch.allclose(model.treat(2 * x), treated, atol=1e-4)


def test_novelty_features_are_the_frozen_imagenet_networks_whatever_the_model():
    from semcnn.evaluation.novelty import ImageNetFeatures, features
    torch.manual_seed(0)
    x = torch.rand(3, 1, 64, 64)
    one = build_model({'model': 'semnet', 'pretrained': False}, 3).eval()
    other = build_model({'model': 'timm:resnet18', 'pretrained': False}, 5).eval()
    expected = torch.nn.functional.normalize(ImageNetFeatures()(x), dim=1)
    assert expected.shape == (3, 112 + 192 + 320 + 1280)
    assert torch.allclose(features(one, x), expected, atol=1e-5)
    assert torch.allclose(features(other, x), expected, atol=1e-5)
    # the grey-level curve of the session does not move a crop in that space
    assert torch.allclose(features(one, x ** 2), expected, atol=0.05)
    # a run trained before kept its own head's features, and is scored that way still
    assert features(one, x, 'model').shape == (3, 256)


def test_the_temperature_has_a_floor_when_validation_is_perfect():
    """On a perfect validation split the likelihood alone drives T to the grid's 0.01 and every
    answer to P = 1.00; the floor keeps the mean confidence within what n right answers show."""
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 60)
    outputs = rng.normal(0, 1, (60, 3))
    outputs[np.arange(60), labels] += 4          # all right, with margins of about 4
    t = fit_temperature(outputs, labels)
    confidence = torch.tensor(outputs / t).softmax(1).max(1).values.mean().item()
    assert t > 0.1 and confidence <= 61 / 62 + 1e-9
    assert confidence > 0.95   # not flattened either: the answers are right


@pytest.fixture(scope='module')
def probed(tmp_path_factory):
    """lite0_probe on the synthetic example at 64 px: the head fitted on frozen features."""
    cwd = cut_example(tmp_path_factory.mktemp('probe'))
    call('train.py', '--version', 'lite0_probe', '--set', 'input_size=64', *RUNTIME, cwd=cwd)
    return cwd


def test_the_probe_trains_the_head_alone_and_test_and_predict_read_it(probed, lite0):
    best = Checkpoint.load(str(probed / 'runs' / 'example' / 'lite0_probe' / 'best.pt'))
    assert best.epoch == 0 and best.history[0]['probe_decay'] > 0
    # every weight ImageNet's but the head's; BatchNorm's statistics measured on the crops
    imagenet = dict(lite0.named_parameters())
    trunk = {k[len('net.'):]: v for k, v in best.model.items()
             if k[len('net.'):] in imagenet and 'classifier' not in k}
    assert len(trunk) > 100 and all(torch.equal(v, imagenet[k]) for k, v in trunk.items())
    assert not torch.equal(best.model['net.bn1.running_mean'], lite0.bn1.running_mean)
    assert best.model['net.classifier.weight'].shape == (3, 1280)
    assert best.novelty['space'] == 'imagenet' and best.novelty['bank'].shape[1] == 1904
    call('test.py', '--version', 'lite0_probe', *RUNTIME, cwd=probed)
    call('predict.py', 'source/synthA', '--version', 'lite0_probe', *RUNTIME, '--out',
         probed / 'out', cwd=probed)
    assert (probed / 'out' / 'frames.csv').exists()


def test_lite0_fine_tunes_after_the_probe_and_resumes(probed):
    args = ['--version', 'lite0', '--set', 'input_size=64', '--set', 'epochs=2',
            '--set', 'scheduler=none', *RUNTIME]
    call('train.py', *args, '--set', 'epochs=1', cwd=probed)
    call('train.py', *args, '--resume', cwd=probed)
    last = Checkpoint.load(str(probed / 'runs' / 'example' / 'lite0' / 'last.pt'))
    assert [row['epoch'] for row in last.history] == [0, 1, 2]
    assert 'probe_decay' in last.history[0] and 'probe_decay' not in last.history[1]


def test_bad_model_names_and_a_probe_without_weights_are_refused(tmp_path):
    cut_example(tmp_path)
    proc = call('train.py', '--set', 'model=timm:no_such_net', cwd=tmp_path, check=False)
    assert_clean_error(proc, 'model=timm:no_such_net', 'timm has no model of that name')
    proc = call('train.py', '--version', 'lite0_probe', '--set', 'pretrained=false',
                cwd=tmp_path, check=False)
    assert_clean_error(proc, 'probe_views=2', 'pretrained=true')
    proc = call('train.py', '--set', 'epochs=0', cwd=tmp_path, check=False)
    assert_clean_error(proc, 'epochs=0: must be at least 1')
