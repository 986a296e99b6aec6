"""Batches of a split for training and evaluation, seeded per epoch.

Batches come from crops in memory or read by worker processes; channel_stats gives the
normalisation statistics of the training split.

PreloadedBatches serves the same batches as a DataLoader from crops decoded once into one uint8
tensor (config key preload), augmenting whole batches with tensor operations: no file is read and
no worker process competes with the model for the CPU after the first pass.
"""
import os

import torch
from torch.utils.data import DataLoader, DistributedSampler
from tqdm import tqdm

from semcnn.data.augment import Augment
from semcnn.data.images import with_channels
from semcnn.training.distributed import Ranks


def preload(dataset, num_workers):
    """(uint8 N x C x S x S, labels, names) of every item of `dataset`, decoded once (gray
    crops among colour ones repeated to 3 channels; 16-bit crops rounded to 8 bits)."""
    loader = DataLoader(dataset.without_augmentation(), batch_size=64, num_workers=num_workers,
                        collate_fn=collate)
    images, labels, names = [], [], []
    for x, y, batch_names in tqdm(loader, desc=f'decode {os.path.basename(dataset.split_dir)}',
                                  leave=False, unit='batch'):
        images.append(x.mul(255).round_().to(torch.uint8))
        labels.append(y)
        names += batch_names
    channels = max(x.shape[1] for x in images)
    images = torch.cat([with_channels(x, channels) for x in images])
    return images, torch.cat(labels), names


def fits_on(device, images):
    """Whether `images` take at most half of the device's free memory."""
    free, _ = torch.cuda.mem_get_info(device)
    return images.numel() * images.element_size() <= free // 2


class PreloadedBatches:
    """Batches (float images in [0, 1], labels, names) like a DataLoader over SEMDataset, from
    preloaded uint8 tensors; shuffling and augmentation draw from `generator`.

    With several processes (ranks), every process draws the same order and augmentation of the
    whole batch and keeps its share (rank, rank + world, ...): together they compute exactly the
    batch one process would, and no crop is counted twice.
    """

    def __init__(self, data, batch_size, shuffle, drop_last, augmentation=None, device=None,
                 ranks=Ranks()):
        self.images, self.labels, self.names = data
        self.device = device or torch.device('cpu')   # where batches are made and augmented
        self.on_device = self.device.type == 'cuda' and fits_on(self.device, self.images)
        if self.on_device:
            # uint8 crops live on the GPU: a batch is gathered and augmented there, uncopied
            self.images, self.labels = self.images.to(device), self.labels.to(device)
        self.batch_size, self.shuffle, self.drop_last = batch_size, shuffle, drop_last
        self.augmentation, self.ranks = augmentation or Augment(), ranks
        self.generator = torch.Generator()

    @property
    def nbytes(self):
        return self.images.numel() * self.images.element_size()

    def __len__(self):
        n = len(self.labels)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self):
        n = len(self.labels)
        order = torch.randperm(n, generator=self.generator) if self.shuffle else torch.arange(n)
        mine = slice(self.ranks.rank, None, self.ranks.world)
        for step in range(len(self)):
            index = order[step * self.batch_size:(step + 1) * self.batch_size]
            draws = self.augmentation.draw(len(index), self.generator)
            draws = Augment.share(draws, mine, self.ranks.rank)
            index = index[mine]
            if not len(index):   # a last evaluation batch smaller than the number of ranks
                continue
            names = [self.names[i] for i in index.tolist()]
            index = index.to(self.images.device, non_blocking=True)
            x, y = self.images[index], self.labels[index]
            if not self.on_device and self.device.type == 'cuda':
                # too big for the GPU: gathered in host memory, sent as uint8 from pinned pages
                x = x.pin_memory().to(self.device, non_blocking=True)
                y = y.pin_memory().to(self.device, non_blocking=True)
            yield self.augmentation.apply(x.float().div_(255), draws), y, names


def collate(batch):
    """Stack a batch; a gray crop among colour ones is repeated to 3 channels."""
    images, labels, names = zip(*batch)
    channels = max(x.shape[0] for x in images)
    images = [with_channels(x, channels) for x in images]
    return torch.stack(images), torch.tensor(labels), list(names)


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


def plain_batches(dataset, loader, config, device):
    """Batches of `dataset`'s crops as they are (no augmentation, in order, all of them), from
    the crops `loader` already decoded when it holds them in memory."""
    if isinstance(loader, PreloadedBatches):
        return PreloadedBatches((loader.images, loader.labels, loader.names),
                                config['eval_batch_size'], False, False, None, device)
    return make_loader(dataset.without_augmentation(), config, False, device)


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
