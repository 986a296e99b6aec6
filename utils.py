"""Shared helpers of train.py and test.py: loss and optimizer factories, seeding, devices, data
loaders, prediction, and checkpoints.

loss_fn / optimize_fn / schedule_fn are the extension points: add a branch to support another
loss, optimizer or schedule, and its name to LOSSES / OPTIMIZERS / SCHEDULERS.
"""
import math
import os
import random

import numpy as np
import torch
from torch.utils.data import DataLoader, DistributedSampler
from tqdm import tqdm

from dataset import SESSION_KEYS, PreloadedBatches, SEMDataset, collate, dihedral, preload
from distributed import Ranks
from fileio import atomic_path, fail, write_failed
from model import build_model

# The names each factory takes; config.check_values accepts only these, before any work starts.
LOSSES = ('cross_entropy',)
OPTIMIZERS = ('adam', 'adamw', 'sgd')
SCHEDULERS = ('none', 'cosine')


def loss_fn(config):
    return torch.nn.CrossEntropyLoss(label_smoothing=config['label_smoothing'])


def optimize_fn(config, params):
    """The optimizer; with config['fused'], its single-kernel implementation (same update)."""
    name, lr, wd = config['optimizer'], config['lr'], config['weight_decay']
    fused = {'fused': True} if config['fused'] else {}
    if name == 'sgd':
        return torch.optim.SGD(params, lr=lr, weight_decay=wd, momentum=config['momentum'],
                               nesterov=config['momentum'] > 0, **fused)
    adam = torch.optim.Adam if name == 'adam' else torch.optim.AdamW
    return adam(params, lr=lr, weight_decay=wd, **fused)


def schedule_fn(config, optimizer, steps_per_epoch):
    """Learning-rate factor, stepped after every optimizer step: a linear warm-up over
    warmup_epochs, then constant (none) or a cosine down to zero at the last step (cosine)."""
    warmup = config['warmup_epochs'] * steps_per_epoch
    total = config['epochs'] * steps_per_epoch
    cosine = config['scheduler'] == 'cosine'

    def factor(step):
        if step < warmup:
            return min(1.0, (step + 1) / warmup)
        if cosine:
            done = min(1.0, (step - warmup) / max(1, total - warmup))
            return 0.5 * (1 + math.cos(math.pi * done))
        return 1.0
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def amp_dtype(config, device):
    """The autocast dtype of config['amp'] on `device`, or None for plain fp32. 'auto' is bf16
    on a GPU and fp32 elsewhere; a GPU without bf16 gets fp16 (with a GradScaler)."""
    mode = config['amp']
    if mode == 'none' or (mode == 'auto' and device.type != 'cuda'):
        return None
    if (mode in ('auto', 'bf16') and device.type == 'cuda'
            and torch.cuda.get_device_capability(device) < (8, 0)):   # bf16 only emulated
        return torch.float16
    return torch.float16 if mode == 'fp16' else torch.bfloat16


def autocast(device, dtype):
    """The one mixed-precision context of training and prediction (off when dtype is None)."""
    return torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None)


def configure_kernels(config, device):
    """Deterministic kernels when config['deterministic'] (a rerun or a resumed run gives the
    same weights, bit for bit, on the same machine); otherwise on a GPU the fastest cuDNN kernels
    for the fixed input size. Call before the model first runs on the device."""
    if config['deterministic']:
        os.environ.setdefault('CUBLAS_WORKSPACE_CONFIG', ':4096:8')   # read when cuBLAS starts
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False
    elif device.type == 'cuda':
        torch.backends.cudnn.benchmark = True


def seed_everything(seed):
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def pick_device(name):
    if name == 'auto':
        if torch.cuda.is_available():
            return torch.device('cuda')
        if getattr(torch.backends, 'mps', None) and torch.backends.mps.is_available():
            return torch.device('mps')
        return torch.device('cpu')
    try:
        device = torch.device(name)
    except RuntimeError:
        fail(f'device={name}: not a device name; use auto, cpu, cuda, cuda:N or mps')
    if device.type == 'cuda' and not torch.cuda.is_available():
        fail(f'device={name}: this machine has no CUDA GPU; use --set device=cpu or auto')
    if device.type == 'cuda' and (device.index or 0) >= torch.cuda.device_count():
        fail(f'device={name}: this machine has {torch.cuda.device_count()} GPU(s), '
             f'cuda:0..cuda:{torch.cuda.device_count() - 1}')
    if device.type == 'mps' and not (getattr(torch.backends, 'mps', None)
                                     and torch.backends.mps.is_available()):
        fail(f'device={name}: Apple MPS is not available here; use --set device=cpu or auto')
    if device.type not in ('cpu', 'cuda', 'mps'):
        fail(f'device={name}: use auto, cpu, cuda, cuda:N or mps')
    return device


def training_split(config):
    """The training crops of config['data_dir'], with the configured augmentation."""
    return SEMDataset(config['data_dir'], 'train', input_size=config['input_size'],
                      augment=config['augment'], jitter=config['jitter'],
                      session={key: config[key] for key in SESSION_KEYS})


def worker_count(config):
    if config['num_workers'] >= 0:
        return config['num_workers']
    return min(8, len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity')
               else os.cpu_count() or 1)


def make_loader(dataset, config, train, device, ranks=Ranks()):
    """Batches of `dataset`: from crops decoded once into memory when config['preload'], else
    read per item by worker processes. Workers are started per epoch (not persistent) so that
    each epoch's shuffling and augmentation follow from seed_epoch() alone: a resumed run
    repeats them. Under torchrun each process gets its share of every batch (batch_size is the
    global batch) and of the evaluation crops, none twice."""
    batch_size = config['batch_size'] if train else config['eval_batch_size']
    # Training drops the incomplete last batch (a batch of one breaks BatchNorm); shuffling
    # changes which crops those are in every epoch.
    drop_last = train and len(dataset) >= batch_size
    if config['preload']:
        return PreloadedBatches(preload(dataset, worker_count(config)), batch_size, train,
                                drop_last, train and dataset.augment, train and dataset.jitter,
                                device, ranks, dataset.session if train else None)
    sampler = None
    if ranks.world > 1:
        sampler = (DistributedSampler(dataset, ranks.world, ranks.rank, shuffle=True,
                                      seed=config['seed'], drop_last=True) if train
                   else range(ranks.rank, len(dataset), ranks.world))
        batch_size = batch_size // ranks.world if train else batch_size
    return DataLoader(dataset, batch_size=batch_size, shuffle=train and sampler is None,
                      sampler=sampler, drop_last=drop_last, num_workers=worker_count(config),
                      collate_fn=collate, pin_memory=device.type == 'cuda',
                      generator=torch.Generator())


def seed_epoch(loader, seed, epoch, ranks=Ranks()):
    """Shuffling and augmentation of one epoch depend only on (seed, epoch, rank)."""
    base = seed * 100003 + epoch
    if isinstance(loader, PreloadedBatches):
        loader.generator.manual_seed(base)   # the same on every rank: each takes its share
    else:
        loader.generator.manual_seed(base + 7919 * ranks.rank)   # workers' augmentation
        if hasattr(loader.sampler, 'set_epoch'):
            loader.sampler.set_epoch(epoch)
    torch.manual_seed(base + 7919 * ranks.rank)   # dropout differs between ranks


def channel_stats(dataset, limit=2000):
    """Per-channel mean and std of (up to `limit`, evenly spaced) training crops, as 3-vectors."""
    dataset = dataset.without_augmentation()
    step = max(1, len(dataset) // limit)
    total = torch.zeros(3, dtype=torch.float64)
    squares = torch.zeros(3, dtype=torch.float64)
    count = 0
    for i in range(0, len(dataset), step):
        x = dataset[i][0].double()
        x = x.expand(3, -1, -1).reshape(3, -1)
        total += x.sum(1)
        squares += (x * x).sum(1)
        count += x.shape[1]
    mean = total / count
    std = (squares / count - mean * mean).clamp_min(1e-12).sqrt()
    return mean.tolist(), std.tolist()


@torch.no_grad()
def predict_batch(model, x, tta=False):
    """Logits of a batch; with tta, the log of the mean softmax over the 8 flips/turns of each
    image (so .softmax(1) gives that mean)."""
    if not tta:
        return model(x).float()
    probs = sum(model(dihedral(x, k)).float().softmax(1) for k in range(8)) / 8
    return probs.log()


@torch.no_grad()
def predict(model, loader, device, desc='predict', tta=False, amp=None, show=True):
    """Logits, labels and names of every item of `loader`, in order; under `amp` autocast."""
    model.eval()
    logits, labels, names = [], [], []
    for x, y, batch_names in tqdm(loader, desc=desc, leave=False, unit='batch', disable=not show):
        with autocast(device, amp):
            logits.append(predict_batch(model, x.to(device, non_blocking=True), tta))
        labels.append(y)
        names += batch_names
    # one copy to the host at the end: no wait for the device between batches
    return torch.cat(logits).cpu(), torch.cat(labels).cpu(), names


def save_checkpoint(state, path):
    with atomic_path(path) as tmp:
        try:
            torch.save(state, tmp)
        except RuntimeError as e:   # torch reports a failed write (full disk) this way
            write_failed(path, e)


def checkpoint_path(run_dir, choice):
    """'best' / 'last' of a run folder, or a path as given."""
    return os.path.join(run_dir, f'{choice}.pt') if choice in ('best', 'last') else choice


def load_trained(cfg, path, state, device):
    """(model on `device` in eval mode, class names) of a checkpoint `state` read from `path`,
    built as its own config `cfg` says (config.open_run)."""
    classes = list(state['classes'])
    model = build_model(cfg, len(classes), pretrained=False)
    try:
        model.load_state_dict(state['model'])
    except RuntimeError as e:
        fail(f'{path}: its weights do not fit {cfg["model"]} with {len(classes)} classes '
             f'({str(e).splitlines()[0]})')
    if cfg['channels_last']:
        model.use_channels_last()
    return model.to(device).eval(), classes


def load_checkpoint(path):
    """A checkpoint written by train.py, loaded with weights_only=True (no pickled code runs)."""
    if not os.path.isfile(path):
        fail(f'{path}: no checkpoint; train first (python train.py with the same --dataset and '
             '--version)')
    try:
        state = torch.load(path, map_location='cpu', weights_only=True)
    except Exception as e:   # torch raises several types for foreign or unsafe files
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        fail(f'{path}: not a checkpoint this pipeline can load safely ({reason[:200]})')
    if not isinstance(state, dict) or not {'model', 'classes', 'config'} <= set(state):
        fail(f'{path}: not a checkpoint written by train.py (missing model/classes/config)')
    return state
