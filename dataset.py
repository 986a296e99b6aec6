"""The Dataset for all three splits: data/<name>/<split>/<class>/<crop>.

Yields (image, label index, image name): image is a float tensor in [0, 1], 1 x S x S for gray
crops and 3 x S x S for colour ones (S = input_size), label indexes the sorted class list, and
the name is '<class>/<file>' (unique within a split). Non-image files are ignored.

PreloadedBatches serves the same batches from crops decoded once into one uint8 tensor
(config key preload), augmenting whole batches with tensor operations: no file is read and no
worker process competes with the model for the CPU after the first pass.
"""
import copy
import functools
import math
import os

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from semcnn.data import acquisition
from semcnn.files.errors import fail
from semcnn.files.frames import UnreadableImage, is_image_name, read_image, unit_scale
from semcnn.files.paths import DATA_ROOT, datasets_here
from semcnn.training.distributed import Ranks


class SEMDataset(Dataset):
    def __init__(self, root, split, classes=None, input_size=224, augment=False, jitter=0.0,
                 session=None):
        self.split_dir = os.path.join(root, split)
        if not os.path.isdir(self.split_dir):
            here = ', '.join(datasets_here()) or 'none'
            fail(f'{self.split_dir}: no such folder; cut the dataset first with aug_img.py, '
                 f'or choose one with --dataset (in {DATA_ROOT}/: {here})')
        found = sorted(d for d in os.listdir(self.split_dir)
                       if os.path.isdir(os.path.join(self.split_dir, d)) and not d.startswith('.'))
        if classes is None:
            classes = found
        unknown = sorted(set(found) - set(classes))
        if unknown:
            fail(f"{self.split_dir}: class folder(s) {', '.join(unknown)} are not among the "
                 f"model's classes ({', '.join(classes)})")
        self.classes = list(classes)
        self.input_size = input_size
        self.augmentation = Augment(augment, jitter, SessionAugment(**(session or {})))
        self.samples = []
        for index, cls in enumerate(self.classes):
            folder = os.path.join(self.split_dir, cls)
            names = sorted(os.listdir(folder)) if os.path.isdir(folder) else []
            self.samples += [(f'{cls}/{n}', index) for n in names if is_image_name(n)]
        if not self.samples:
            fail(f'{self.split_dir}: no images found in its class folders')
        if len(self.classes) < 2:
            fail(f'{self.split_dir}: {len(self.classes)} class folder(s); need at least 2')

    def __len__(self):
        return len(self.samples)

    def without_augmentation(self):
        plain = copy.copy(self)
        plain.augmentation = Augment()
        return plain

    def pixels(self, i):
        """The stored pixels of item i (uint8/uint16, at the crop's own size)."""
        path = os.path.join(self.split_dir, self.samples[i][0])
        try:
            return read_image(path)
        except UnreadableImage as e:
            damaged(path, e)

    def __getitem__(self, i):
        name, label = self.samples[i]
        x = to_tensor(self.pixels(i), self.input_size)
        if self.augmentation:   # a batch of one, drawn from the worker's own generator
            x = self.augmentation.apply(x.unsqueeze(0), self.augmentation.draw(1))[0]
        return x, label, name


def damaged(path, error):
    """A crop that aug_img wrote can no longer be read: the dataset must be cut again."""
    fail(f'{path}: {error}; the dataset is damaged: cut it again with aug_img.py --force')


def to_tensor(pixels, input_size):
    """C x S x S float tensor in [0, 1] of an H x W (x C) uint8/uint16 array, resized to S."""
    return resize(unit_range(pixels), input_size)


def unit_range(pixels):
    """C x H x W float tensor in [0, 1] of an H x W (x C) uint8/uint16 array, at its own size."""
    x = torch.from_numpy(unit_scale(pixels))
    return x.unsqueeze(0) if x.ndim == 2 else x.permute(2, 0, 1)


def with_channels(x, channels):
    """Image(s) x (... x C x H x W) with `channels` channels. The one rule for gray crops: they
    stay 1-channel (a third of the memory) until they meet colour crops in a batch or the
    network's 3-channel input, and are then repeated, without a copy."""
    return x if x.shape[-3] == channels else x.expand(*x.shape[:-3], channels, *x.shape[-2:])


def resize(x, input_size):
    """A C x H x W image scaled to C x S x S (S = input_size), antialiased."""
    if x.shape[1:] != (input_size, input_size):
        x = F.interpolate(x.unsqueeze(0), size=(input_size, input_size), mode='bilinear',
                          antialias=True, align_corners=False)[0]
    return x


def dihedral(x, k):
    """The k-th (0..7) of the 8 flips and quarter turns of square images (last two dims)."""
    if k >= 4:
        x = x.flip(-1)
    return torch.rot90(x, k % 4, dims=(-2, -1))


def flip_turn_batch(x, turns):
    """Image i of the batch as dihedral(x[i], turns[i]): one gather, no per-image work."""
    n, c, h, w = x.shape
    index = _dihedral_maps(h, x.device)[turns.to(x.device, non_blocking=True)]
    return x.flatten(2).gather(2, index.unsqueeze(1).expand(-1, c, -1)).view(n, c, h, w)


@functools.lru_cache(maxsize=8)
def _dihedral_maps(size, device):
    """8 x S*S: row k holds, for each pixel of dihedral(image, k), the flat index of its source."""
    grid = torch.arange(size * size, device=device).view(size, size)
    return torch.stack([dihedral(grid, k).flatten() for k in range(8)])


def jitter(x, amount, draws):
    """Brightness and contrast changed per image (gain 1 +- amount about the image's mean,
    offset +- amount / 2), from uniform [0, 1) draws (2 x N: gain, offset): each class was
    imaged in one session, so its settings must not become a cue the model relies on."""
    draws = draws.to(x.device, non_blocking=True).view(2, -1, 1, 1, 1)
    gain, offset = 1 + amount * (2 * draws[0] - 1), amount * (draws[1] - 0.5)
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return ((x - mean) * gain + mean + offset).clamp(0, 1)


SESSION_KEYS = ('gamma', 'blur', 'illumination', 'noise')   # SessionAugment's amounts


class SessionAugment:
    """Random changes of the kind two imaging sessions differ by (acquisition.py), so that the
    network learns the material rather than the microscope's settings. Each amount is the
    largest change: every image gets its own, drawn uniformly from none up to it.

    gamma: largest |ln g| of the grey-level curve x ** g; blur: largest Gaussian sigma in
    pixels of the network's input; illumination: largest gain ramp +-amplitude across the
    image; noise: largest standard deviation of additive Gaussian noise. Half of the images
    (drawn) are left as they are: with every training image changed, BatchNorm's running
    statistics describe changed images only, and clean ones are misjudged at validation."""

    def __init__(self, gamma=0.0, blur=0.0, illumination=0.0, noise=0.0):
        self.gamma, self.blur, self.illumination, self.noise = gamma, blur, illumination, noise

    def __bool__(self):
        return any((self.gamma, self.blur, self.illumination, self.noise))

    def draw(self, n, generator=None):
        """6 x N uniform draws (the amounts, and whether the image is changed at all), and a
        seed for the noise field, from `generator` (on the CPU, so that a seed gives the same
        augmentation on any device)."""
        return (torch.rand(6, n, generator=generator),
                int(torch.randint(2 ** 62, (), generator=generator)))

    def apply(self, x, draws):
        u, noise_seed = draws
        changed = (u[5] < 0.5).float()   # the others get amounts of 0: they stay as they are
        u = u[:5] * changed
        if self.gamma:
            x = acquisition.gamma(x, torch.exp((2 * u[0] - changed) * self.gamma))
        if self.blur:
            x = acquisition.blur(x, u[1] * self.blur)
        if self.illumination:
            x = acquisition.illumination(x, u[2] * self.illumination, u[3] * 2 * math.pi)
        if self.noise:
            field = torch.Generator(device=x.device).manual_seed(noise_seed)
            x = acquisition.noise(x, u[4] * self.noise, field)
        return x


class Augment:
    """The training augmentation of a batch (N x C x S x S, in [0, 1]): one of the 8 flips and
    quarter turns of each crop (an SEM crop has no canonical orientation) when flip_turn, the
    brightness/contrast jitter, and the session changes. SEMDataset applies it to one crop at
    a time, PreloadedBatches to whole batches: the same draws give the same images."""

    def __init__(self, flip_turn=False, jitter=0.0, session=None):
        self.flip_turn, self.jitter = flip_turn, jitter
        self.session = session or SessionAugment()

    def __bool__(self):
        return bool(self.flip_turn or self.jitter or self.session)

    def draw(self, n, generator=None):
        """The random draws for n images (turns, jitter, session; None where not used), in
        a fixed order from `generator` (on the CPU: a seed gives the same on any device)."""
        return (torch.randint(8, (n,), generator=generator) if self.flip_turn else None,
                torch.rand(2, n, generator=generator) if self.jitter else None,
                self.session.draw(n, generator) if self.session else None)

    @staticmethod
    def share(draws, mine, rank):
        """The draws of the images `mine` (a slice of the batch) that process `rank` takes."""
        turns, gains, session = draws
        return (None if turns is None else turns[mine], None if gains is None else gains[:, mine],
                None if session is None else (session[0][:, mine], session[1] + rank))

    def apply(self, x, draws):
        turns, gains, session = draws
        if turns is not None:
            x = flip_turn_batch(x, turns)
        if gains is not None:
            x = jitter(x, self.jitter, gains)
        if session is not None:
            x = self.session.apply(x, session)
        return x


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
