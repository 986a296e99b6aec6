"""Named training configurations (versions), merged over gen_default(dataset).

`python train.py` and `python test.py` without --dataset use the dataset aug_img.py cut last
(data/.latest), or `dataset_name` below when there is none; without --version, `version` below.
Any data/<name>/ that aug_img.py wrote works as --dataset <name>. Change single keys without
editing this file:

    python train.py --dataset example --version paper
    python train.py --set epochs=5 --set lr=1e-3

A version lists only what differs from the default. A dataset that needs other defaults can get
an entry in `config` below: `'<name>': {'default': gen_default('<name>', key=value), **VERSIONS}`.
How a version is merged, overridden and checked: semcnn/settings.py.
"""
import os

from utils import LOSSES, OPTIMIZERS, SCHEDULERS
from semcnn.files.paths import DATA_ROOT
from semcnn.settings import Settings
# for the scripts, which import all of it from here
from semcnn.settings import RUNTIME_KEYS, add_checkpoint_argument, apply_overrides  # noqa: F401

dataset_name = 'example'
version = 'cpu'


def gen_default(dataset, **changes):
    """The full set of keys with their defaults (the paper's settings); every key is listed here."""
    default = {
        'data_dir': os.path.join(DATA_ROOT, dataset),
        'model': 'efficientnet_b7',     # semnet or semnet_s4 (semcnn/training/model.py), a
                                        # torchvision classifier, or timm:<name> (timm's)
        'pretrained': True,             # start from ImageNet weights (torchvision's; for
                                        # timm:efficientnet_lite0 the installed package's)
        'weights_file': '',             # or a local file of those weights (offline machines)
        'input_size': 224,              # crops are resized to input_size x input_size
        'batch_size': 4,
        'epochs': 40,                   # of training the whole network (0: probe only)
        # linear probe first (semcnn/training/probe.py): the head fitted on the frozen
        # pretrained network's features of this many views of each training crop (the first as
        # it is, the others augmented as in training), before the epochs; 0 = none
        'probe_views': 0,
        'optimizer': 'adam',            # adam, adamw, sgd
        'lr': 3.5446559318532957e-4,
        'weight_decay': 0.0,
        'momentum': 0.9,                # sgd only
        'scheduler': 'none',            # none, cosine
        'loss': 'cross_entropy',        # cross_entropy
        'label_smoothing': 0.0,
        'normalize': False,             # mean/std of the training split, kept in the checkpoint
        'augment': False,               # random flips and 90-degree turns of training crops
        'jitter': 0.0,                  # random brightness/contrast change of training crops
        # random changes of the kind imaging sessions differ by (SessionAugment in
        # semcnn/data/augment.py), each the largest amount drawn: grey-level curve x ** g with
        # |ln g| up to gamma, Gaussian blur up to blur pixels of the input, a gain ramp of up to
        # +-illumination across the crop, Gaussian noise of standard deviation up to noise
        'gamma': 0.0,
        'blur': 0.0,
        'illumination': 0.0,
        'noise': 0.0,
        # ... and what else differs between real sessions: an unsharp mask (finer focus, more
        # local contrast) of amount up to sharpen, and another magnification, a zoom by a factor
        # up to 1 + scale either way
        'sharpen': 0.0,
        'scale': 0.0,
        # per-crop input treatment inside the model: none (normalize with the training split's
        # statistics, if on), equalize (grey levels replaced by their rank within the crop) or
        # standardize (each crop to mean 0, std 1); kept in the checkpoint, applied at test time
        'intensity': 'none',
        # flat: one softmax over the classes; factored: composition and state as two softmaxes
        # on one trunk (class names <composition>[_<state>]), so that the state is learnt across
        # compositions (semcnn/training/model.py)
        'head': 'flat',
        'warmup_epochs': 0.0,           # linear learning-rate warm-up before the schedule
        'preload': False,               # decode all crops once into memory (else per item)
        'channels_last': False,         # NHWC memory layout: same results, faster convolutions
        'amp': 'none',                  # mixed precision: none, auto (bf16 on a GPU), bf16, fp16
        'fused': False,                 # single-kernel optimizer step (same update, faster)
        'compile': False,               # torch.compile the model (slow first epoch, then faster)
        'deterministic': False,         # the same weights on every run, resumed or not (slower)
        'num_workers': -1,              # data-loading processes; -1 = one per core, at most 8
        'eval_batch_size': 64,
        'tta': False,                   # test/predict: mean over the 8 flips/turns of a crop
        'seed': 42,
        'device': 'auto',               # auto (GPU when there is one), cpu, cuda, cuda:1, mps
        'crop_pixels': 224,             # the crop side (aug_img.py -p) the version was tuned for
    }
    default.update(changes)
    return default


# The original paper: ImageNet-pretrained EfficientNet-B7, Adam, batch 4, 40 epochs, 224 px.
PAPER = {'model': 'efficientnet_b7', 'pretrained': True, 'optimizer': 'adam',
         'lr': 3.5446559318532957e-4, 'batch_size': 4, 'epochs': 40, 'loss': 'cross_entropy',
         'input_size': 224, 'normalize': False, 'augment': False}

# A few minutes on a 2-core laptop CPU: small network from scratch, half-size input.
CPU = {'model': 'resnet18', 'pretrained': False, 'input_size': 112, 'batch_size': 16,
       'epochs': 3, 'optimizer': 'adamw', 'lr': 1e-3, 'weight_decay': 0.05,
       'scheduler': 'cosine', 'normalize': True, 'augment': True}

# Beyond the paper, from scratch (no pretrained weights), for frames never seen in training.
# Both: flips/turns and brightness/contrast jitter, label smoothing, warm-up then cosine,
# crops decoded once into memory, and the mean over the 8 flips/turns at test time.
_SCRATCH = {'pretrained': False, 'optimizer': 'adamw', 'weight_decay': 0.05,
            'scheduler': 'cosine', 'warmup_epochs': 0.5, 'label_smoothing': 0.1,
            'normalize': True, 'augment': True, 'jitter': 0.1, 'preload': True, 'tta': True,
            'channels_last': True, 'amp': 'auto', 'fused': True, 'eval_batch_size': 256}
# At most 30 minutes on a 2-core CPU: the small semnet_s4 on 448 px crops scaled to 112 px
# (the trials behind these choices: RESULTS.md, "Trial notes").
CPU30_LEGACY = {**_SCRATCH, 'model': 'semnet_s4', 'input_size': 112, 'batch_size': 64,
                'epochs': 14, 'lr': 2e-3, 'warmup_epochs': 1.0, 'crop_pixels': 448}
# At most 10 minutes on one H100/H200: ResNet-18 on 448 px crops scaled to 224 px.
GPU_LEGACY = {**_SCRATCH, 'model': 'resnet18', 'input_size': 224, 'batch_size': 128,
              'epochs': 40, 'lr': 2e-3, 'warmup_epochs': 2.0, 'crop_pixels': 448}

# The same recipes made to read the material rather than the microscope's settings. Each class
# of the real data was imaged in one session, and grey levels alone tell many classes apart
# (audit.py), so the legacy recipes learnt the session: given another session's grey-level
# curve, most frames changed class (semcnn/evaluation/shifts.py). Here each crop is equalized
# inside the model (any increasing change of grey levels gives the same input), and training adds
# the other ways two sessions differ: defocus, uneven illumination or charging, and scan noise. The
# amounts are at the network's input: 112 px is the 448 px crop at a quarter of its side, so blur
# 1.0 there is a Gaussian of 4 pixels of the frame.
# The harder augmented task gets 20 epochs instead of 14 (the legacy one took 13-14 minutes).
SESSION_INVARIANT = {'intensity': 'equalize', 'blur': 1.0, 'illumination': 0.3, 'noise': 0.03}
CPU30 = {**CPU30_LEGACY, **SESSION_INVARIANT, 'epochs': 20}
# Candidates for a state that carries over to a composition never trained on (issue 20; the
# rule that chooses between them is in RESULTS.md): composition and state as two heads on one
# trunk; and that, with session augmentation that also sharpens, raises local contrast and
# changes the magnification by up to 15 %.
CPU30_FACTORED = {**CPU30, 'head': 'factored'}
CPU30_FACTORED_SHARP = {**CPU30_FACTORED, 'sharpen': 1.0, 'scale': 0.15}
# The legacy gpu recipe trained in 2 of its 10 minutes on an H100: the augmented task gets 80
# epochs (not yet measured on a GPU; bench/reproduce.py --version gpu).
# At 224 px the input is the crop at half its side: blur 2.0 there is 4 pixels of the frame.
GPU = {**GPU_LEGACY, **SESSION_INVARIANT, 'blur': 2.0, 'epochs': 80, 'warmup_epochs': 4.0}

# The paper's kind of network: an ImageNet-pretrained EfficientNet (Lite0, 4.7 M parameters; its
# weights install with the requirements, semcnn/training/pretrained.py), on the session-invariant
# input (each crop equalized) with session augmentation, 448 px crops at 160 px (the session
# amounts are cpu30's in pixels of the frame).
# lite0_probe: the network frozen, a linear head fitted on its features of each training crop as
# it is and once augmented (semcnn/training/probe.py). 77 % of test crops (RESULTS.md): frozen
# features do not separate the classes, nor ignore the session; a reference, not a recipe to use.
LITE0_PROBE = {'model': 'timm:efficientnet_lite0', 'pretrained': True, 'intensity': 'equalize',
               'input_size': 160, 'crop_pixels': 448, 'augment': True, 'blur': 1.4,
               'illumination': 0.3, 'noise': 0.03, 'probe_views': 2, 'epochs': 0,
               'batch_size': 32, 'eval_batch_size': 128, 'preload': True,
               'channels_last': True, 'amp': 'auto'}
# lite0: that probe (on the crops as they are), then the whole network fine-tuned (LP-FT), at
# 112 px: at most 30 minutes on a 2-core CPU (half a 160 px step's cost: twice the epochs).
LITE0 = {**LITE0_PROBE, 'probe_views': 1, 'input_size': 112, 'blur': 1.0, 'epochs': 8,
         'optimizer': 'adamw', 'lr': 5e-4, 'weight_decay': 0.05, 'scheduler': 'cosine',
         'warmup_epochs': 0.5, 'label_smoothing': 0.1, 'fused': True}
# The same on one H100/H200 (not yet measured on one): 224 px, batch 128 at lr 5e-4 x sqrt(4),
# 30 epochs, the mean over the 8 flips/turns at test time.
LITE0_GPU = {**LITE0, 'input_size': 224, 'blur': 2.0, 'batch_size': 128, 'lr': 1e-3,
             'epochs': 30, 'warmup_epochs': 1.0, 'eval_batch_size': 512, 'tta': True}

# The paper's network, data and epochs at the speed of a GPU: batch 128 (the paper's lr scaled by
# sqrt(128 / 4)), crops decoded once and augmented in GPU memory, bf16, channels-last, fused Adam.
PAPER_FAST = {**PAPER, 'batch_size': 128, 'lr': 2e-3, 'preload': True, 'channels_last': True,
              'amp': 'auto', 'fused': True, 'eval_batch_size': 512}


VERSIONS = {'paper': PAPER, 'paper_fast': PAPER_FAST, 'cpu': CPU, 'cpu30': CPU30, 'gpu': GPU,
            'cpu30_legacy': CPU30_LEGACY, 'gpu_legacy': GPU_LEGACY,
            'cpu30_factored': CPU30_FACTORED, 'cpu30_factored_sharp': CPU30_FACTORED_SHARP,
            'lite0_probe': LITE0_PROBE, 'lite0': LITE0, 'lite0_gpu': LITE0_GPU}
# Datasets with defaults of their own (none yet); any other data/<name>/ gets gen_default(name).
config = {}


# The machinery (semcnn/settings.py) bound to the keys and versions above: scripts import these.
settings = Settings(gen_default, VERSIONS, config, dataset_name, version,
                    {'loss': LOSSES, 'optimizer': OPTIMIZERS, 'scheduler': SCHEDULERS})
get_config, check_values = settings.get_config, settings.check_values
add_config_arguments, config_from_args = settings.add_config_arguments, settings.config_from_args
run_of_args, open_run = settings.run_of_args, settings.open_run
