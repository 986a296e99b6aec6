"""The Dataset for all three splits: data/<name>/<split>/<class>/<crop>.

Yields (image, label index, image name): image is a float tensor in [0, 1], 1 x S x S for gray
crops and 3 x S x S for colour ones (S = input_size), label indexes the sorted class list, and
the name is '<class>/<file>' (unique within a split). Non-image files are ignored.

This is the place to change how crops are found, read or labelled. What the rest of the pipeline
needs of a dataset (semcnn/data/loaders.py): items as above, `augmentation` (a
semcnn.data.augment.Augment, applied per item here or per batch when preloaded),
`without_augmentation()`, `split_dir`, `classes`, `samples` ([(name, label)]) and `pixels(i)`.
"""
import copy
import hashlib
import os

from torch.utils.data import Dataset

from semcnn.data.augment import Augment, SessionAugment
from semcnn.data.images import to_tensor
from semcnn.files.errors import fail
from semcnn.files.frames import UnreadableImage, is_image_name, read_image
from semcnn.files.paths import DATA_ROOT, datasets_here
from semcnn.training.choices import SESSION_KEYS


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

    def fingerprint(self):
        """A digest of the crops this split holds (their class/file names, which name each crop's
        frame and place): a run records its training and validation splits' fingerprints, so
        that --resume and --refit can tell a dataset cut again since."""
        digest = hashlib.sha256()
        for name, _ in self.samples:
            digest.update(name.encode('utf-8') + b'\n')
        return digest.hexdigest()[:16]

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


def training_split(config):
    """The training crops of config['data_dir'], with the configured augmentation."""
    return SEMDataset(config['data_dir'], 'train', input_size=config['input_size'],
                      augment=config['augment'], jitter=config['jitter'],
                      session={key: config[key] for key in SESSION_KEYS})
