"""The network and its input: one factory (create_network) for this project's semnet, torchvision's
classifiers (model=resnet18) and timm's (model=timm:efficientnet_lite0), each with its head named
by the factory (for torchvision, one TORCHVISION_HEADS entry per family in choices.py, where
every model= name is checked; for timm, its own pretrained_cfg), so that the head and the
features it reads are found by name.

SEMClassifier takes crops as they come from dataset.py (1-channel gray or 3-channel, values in
[0, 1]), applies the input treatment (config key `intensity`), makes them 3-channel and
normalises them. With intensity 'none' the normalisation uses statistics of the training split,
buffers of the module, saved in and restored from the checkpoint. With 'equalize' each crop's
grey levels are replaced by their rank within the crop, and with 'standardize' each crop is
brought to mean 0 and standard deviation 1: what the microscope's brightness, contrast and
detector curve did to the crop is then gone before the network sees it. A network that started
from ImageNet weights gets the equalized crop as a grey ImageNet image (pretrained.py says which
normalisation the weights expect). The treatment is part of the model, so test.py, predict.py
and gradcam.py apply exactly what training did.

The head (config key `head`) is one softmax over the classes ('flat'), or ('factored') two on
one trunk, over compositions and over states, for class names <composition>[_<state>]: a class's
log-probability is that of its composition plus that of its state. The state features are then
shared by every composition, so that a state can be named on a composition never trained on.
The output is still one score per class, and every script reads it as before.
"""
import functools
import os
import urllib.error

import torch
from torch import nn

from semcnn.data.acquisition import equalize
from semcnn.data.images import with_channels
from semcnn.evaluation.scores import class_factors
from semcnn.files.errors import fail
from semcnn.training.choices import (INTENSITY_TREATMENTS, TIMM_PREFIX, TORCHVISION_HEADS,
                                     has_imagenet_weights, torchvision_family)
from semcnn.training.pretrained import IMAGENET_MEAN, IMAGENET_STD

UNIFORM_STD = 12 ** -0.5   # standard deviation of equalized grey levels (uniform on [0, 1])


class SEMClassifier(nn.Module):
    def __init__(self, net, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0), intensity='none',
                 head='', imagenet=False):
        super().__init__()
        if intensity not in INTENSITY_TREATMENTS:
            raise ValueError(f'intensity={intensity!r}')
        self.net = net
        self.intensity = intensity
        self.head_path = head       # where in `net` the head is: its input is the features
        self.imagenet = imagenet    # started from ImageNet weights: equalized crops are fed
                                    # as ImageNet images (treat)
        self.register_buffer('mean', torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer('std', torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1))

    @property
    def head(self):
        """The module that turns the pooled features into class scores (novelty.py taps its
        input)."""
        return self.net.get_submodule(self.head_path)

    channels_last = False   # see use_channels_last()
    # predict_batch divides the outputs by it: 1 while training, the checkpoint's fitted
    # temperature once trained (semcnn/evaluation/calibration.py)
    temperature = 1.0

    def use_channels_last(self):
        """Store weights and feed inputs channels-last (NHWC): the same numbers, faster
        convolutions on CPUs and tensor-core GPUs."""
        self.channels_last = True
        return self.to(memory_format=torch.channels_last)

    def forward(self, x):
        x = with_channels(self.treat(x.float()), 3)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        out = self.net(x)
        # Inception v3 and GoogLeNet add auxiliary outputs in training mode: use the main one.
        return out.logits if hasattr(out, 'logits') else out

    def treat(self, x):
        """The input treatment and normalisation, on images in [0, 1]."""
        if self.intensity == 'equalize' and self.imagenet:
            return imagenet_normalized(with_channels(equalize(x), 3))
        if self.intensity == 'equalize':
            return (equalize(x) - 0.5) / UNIFORM_STD
        if self.intensity == 'standardize':
            mean = x.mean(dim=(1, 2, 3), keepdim=True)
            return (x - mean) / x.std(dim=(1, 2, 3), keepdim=True).clamp_min(1e-3)
        channels = x.shape[1]
        return (x - self.mean[:, :channels]) / self.std[:, :channels]


def imagenet_normalized(x):
    """3-channel images in [0, 1] normalised as the ImageNet weights expect (pretrained.py)."""
    mean = torch.tensor(IMAGENET_MEAN, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    return (x - mean) / std


class FactoredHead(nn.Module):
    """Composition x state: one linear layer gives the logits of both factors, each factor gets
    its own log-softmax, and each class's output is the sum of its composition's and its
    state's log-probabilities. Softmax over these outputs gives P(composition) * P(state), so
    cross-entropy on them trains both factors (exactly their two cross-entropies when every
    combination is a class)."""

    def __init__(self, in_features, classes):
        super().__init__()
        factors = class_factors(classes)
        if factors is None:
            fail(f"head=factored: the class names ({', '.join(classes)}) must read "
                 '<composition>[_<state>], with at least two of each; use --set head=flat')
        compositions = sorted(set(factors['composition']))
        states = sorted(set(factors['state']))
        self.compositions = len(compositions)
        self.linear = nn.Linear(in_features, len(compositions) + len(states))
        self.register_buffer('composition_index', torch.tensor(
            [compositions.index(c) for c in factors['composition']]))
        self.register_buffer('state_index', torch.tensor(
            [len(compositions) + states.index(s) for s in factors['state']]))

    def forward(self, features):
        logits = self.linear(features)
        split = self.compositions
        log_probs = torch.cat([logits[:, :split].log_softmax(1),
                               logits[:, split:].log_softmax(1)], 1)
        return log_probs[:, self.composition_index] + log_probs[:, self.state_index]


class SEMNet(nn.Sequential):
    """A small plain CNN for training from scratch on a CPU: a stem of 3x3 convolutions, then
    four stages of two 3x3 convolutions (width w, 2w, 4w, 8w; each stage after the first halves
    the side), global average pooling, dropout and a linear head. 1.2 M parameters at w=32.

    The stem halves the side once (stem_stride=2, `semnet`) or twice (stem_stride=4,
    `semnet_s4`). The second costs less than half per crop: the first stage then runs at a
    quarter of the pixels, so a CPU run of fixed length takes more than twice the steps."""

    def __init__(self, num_classes, width=32, dropout=0.2, stem_stride=2):
        def conv(cin, cout, stride=1):
            return [nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout),
                    nn.ReLU(inplace=True)]
        if stem_stride not in (2, 4):
            raise ValueError(f'stem_stride={stem_stride}: 2 or 4')
        layers = conv(3, width, 2) + (conv(width, width, 2) if stem_stride == 4 else [])
        cin = width
        for stage, cout in enumerate((width, 2 * width, 4 * width, 8 * width)):
            layers += conv(cin, cout, 1 if stage == 0 else 2) + conv(cout, cout)
            cin = cout
        super().__init__(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout),
                         nn.Linear(cin, num_classes))


# The networks of this project, by their model= names (choices.LOCAL_MODELS).
LOCAL_NETWORKS = {'semnet': SEMNet, 'semnet_s4': functools.partial(SEMNet, stem_stride=4)}


def create_network(name, num_classes, pretrained=False, weights_file=''):
    """(network, dotted path of its head) for model=`name`, with a head of `num_classes`
    outputs; with `pretrained`, every other layer from ImageNet weights (torchvision's,
    weights_file, or for timm:efficientnet_lite0 the installed package's)."""
    if name in LOCAL_NETWORKS:
        net = LOCAL_NETWORKS[name](num_classes)
        return net, str(len(net) - 1)
    if name.startswith(TIMM_PREFIX):
        import timm
        from semcnn.training.pretrained import load_imagenet
        arch = name[len(TIMM_PREFIX):]
        net = timm.create_model(arch, pretrained=False)
        if pretrained:
            load_imagenet(net, arch, weights_file)
        head = net.pretrained_cfg['classifier']
    else:
        import torchvision   # only here: it takes seconds to import
        family = torchvision_family(name)
        if family is None:
            fail(f'model={name}: its head is not a Linear layer this pipeline knows how to '
                 'replace (TORCHVISION_HEADS in semcnn/training/choices.py); choose another model')
        head = TORCHVISION_HEADS[family]
        if not pretrained:   # every head, auxiliary ones too, made for num_classes
            return torchvision.models.get_model(name, num_classes=num_classes), head
        net = torchvision.models.get_model(name)
        try:
            net.load_state_dict(_imagenet_state(name, weights_file))
        except (RuntimeError, TypeError, AttributeError) as e:
            fail(f'weights_file={weights_file}: does not fit model {name} '
                 f'({str(e).splitlines()[0]})')
    old = net.get_submodule(head)
    set_head(net, head, nn.Linear(old.in_features, num_classes, bias=old.bias is not None))
    return net, head


def set_head(net, path, module):
    parent_name, _, attr = path.rpartition('.')
    setattr(net.get_submodule(parent_name) if parent_name else net, attr, module)


def _imagenet_state(name, weights_file):
    """ImageNet weights for torchvision's `name`: from weights_file, or torchvision's cache /
    download."""
    if weights_file:
        from semcnn.training.pretrained import read_weights
        return read_weights(weights_file)
    import torchvision
    weights = torchvision.models.get_model_weights(name).DEFAULT
    try:
        return weights.get_state_dict(progress=True, check_hash=True)
    except (urllib.error.URLError, OSError, RuntimeError) as e:
        cache = os.path.join(torch.hub.get_dir(), 'checkpoints')
        fail(f'cannot get the ImageNet weights of {name} ({e}). Either download them once on '
             f"a connected machine (python -c \"import torchvision; torchvision.models."
             f"get_model('{name}', weights='DEFAULT')\") and copy {os.path.basename(weights.url)} "
             f'to {cache}; or --set weights_file=PATH to that file; or --set pretrained=false '
             'to train from scratch')


def build_model(cfg, classes, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0), pretrained=None):
    """SEMClassifier around `cfg['model']` (create_network), with the head `cfg['head']` over
    `classes` (the class names; their number is enough for a flat head).

    pretrained=None follows cfg['pretrained']; pass False when weights will be loaded from a
    checkpoint anyway (resume, test), so that nothing is read or downloaded for nothing. The
    input follows cfg['pretrained'] either way: a network that started from ImageNet weights
    sees equalized crops as ImageNet images (SEMClassifier).
    """
    num_classes = classes if isinstance(classes, int) else len(classes)
    if pretrained is None:
        pretrained = cfg.get('pretrained', False)
    net, head = create_network(cfg['model'], num_classes, pretrained, cfg.get('weights_file', ''))
    if cfg.get('head', 'flat') == 'factored':
        set_head(net, head, FactoredHead(net.get_submodule(head).in_features, list(classes)))
    imagenet = cfg.get('pretrained', False) and has_imagenet_weights(cfg['model'])
    return SEMClassifier(net, mean, std, cfg.get('intensity', 'none'), head, imagenet)
