"""Batches of a split for training and evaluation (in memory or read by worker processes),
seeded per epoch, and the normalisation statistics of the training split."""
import os

import torch
from torch.utils.data import DataLoader, DistributedSampler

from dataset import SESSION_KEYS, PreloadedBatches, SEMDataset, collate, preload, with_channels
from semcnn.training.distributed import Ranks


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
                                drop_last, dataset.augmentation if train else None, device,
                                ranks)
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
        x = with_channels(x, 3).reshape(3, -1)
        total += x.sum(1)
        squares += (x * x).sum(1)
        count += x.shape[1]
    mean = total / count
    std = (squares / count - mean * mean).clamp_min(1e-12).sqrt()
    return mean.tolist(), std.tolist()
