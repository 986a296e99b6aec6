"""The Dataset for all three splits: data/<name>/<split>/<class>/<crop>.

Yields (image, label index, image name): image is a float tensor in [0, 1], 1 x S x S for gray
crops and 3 x S x S for colour ones (S = input_size), label indexes the sorted class list, and
the name is '<class>/<file>' (unique within a split). Non-image files are ignored.
"""
import os

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from fileio import fail
from frames import UnreadableImage, is_image_name, read_image


class SEMDataset(Dataset):
    def __init__(self, root, split, classes=None, input_size=224, augment=False):
        self.split_dir = os.path.join(root, split)
        if not os.path.isdir(self.split_dir):
            fail(f'{self.split_dir}: no such folder; cut the dataset first with aug_img.py '
                 '(or check data_dir in config.py)')
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
        self.augment = augment
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

    def __getitem__(self, i):
        name, label = self.samples[i]
        path = os.path.join(self.split_dir, name)
        try:
            pixels = read_image(path)
        except UnreadableImage as e:
            raise UnreadableImage(f'{path}: {e}') from None
        scale = 65535.0 if pixels.dtype.itemsize == 2 else 255.0
        x = torch.from_numpy(pixels.astype('float32') / scale)
        x = x.unsqueeze(0) if x.ndim == 2 else x.permute(2, 0, 1)
        if x.shape[1:] != (self.input_size, self.input_size):
            x = F.interpolate(x.unsqueeze(0), size=(self.input_size, self.input_size),
                              mode='bilinear', antialias=True, align_corners=False)[0]
        if self.augment:
            x = random_flip_turn(x)
        return x, label, name


def random_flip_turn(x):
    """An SEM crop has no canonical orientation: one of its 8 flips/quarter turns at random."""
    if torch.rand(()) < 0.5:
        x = x.flip(-1)
    return torch.rot90(x, int(torch.randint(4, ())), dims=(-2, -1)).contiguous()


def collate(batch):
    """Stack a batch; a gray crop among colour ones is repeated to 3 channels."""
    images, labels, names = zip(*batch)
    channels = max(x.shape[0] for x in images)
    images = [x.expand(channels, -1, -1) for x in images]
    return torch.stack(images), torch.tensor(labels), list(names)
