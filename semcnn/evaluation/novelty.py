"""How unlike the training material a tile is, in the features of a network not trained on it.

A classifier answers whatever it is shown: a superalloy micrograph gets a cathode class at high
probability. A network's features place each tile among what that network knows: a tile far from
every training crop is unlike anything the classifier was taught. The features are those of the
ImageNet-pretrained EfficientNet-Lite0, frozen (ImageNetFeatures: the pooled outputs of its later
stages, of the equalized crop): a network fine-tuned on the classes learns to ignore whatever
does not tell them apart, so that a cathode of a composition it never saw lands among the
training crops in its own features, but not in those of a network that has seen a million other
images. Runs trained before this kept the features just before their own head (space 'model' in
their record), and are scored that way still. The score is the distance from the tile's
L2-normalised features to the K-th nearest of those of SAMPLE training crops (deep nearest
neighbours, Sun et al. 2022), divided by the distance that NOVELTY_QUANTILE of the validation
crops stay within: a novelty above 1 is farther than 99 % of normal validation crops, so about
1 % of normal tiles are flagged. A frame is judged by the median novelty of its material tiles
(FRAME_MARGIN).

train.py fits it at the end of training (fit_novelty) and keeps it in best.pt (the features of
SAMPLE training crops in half precision: 15 MB for Lite0's 1,904 features); test.py and
predict.py score every tile (novelty_of). A novel tile does not vote; a frame most of whose
material tiles are novel (median above 1) gets no verdict, and one whose median is above the
frame limit keeps its verdict with a warning (semcnn/evaluation/scores.py).
"""
import contextlib
import functools

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Subset
from tqdm import tqdm

from semcnn.data.acquisition import equalize
from semcnn.data.images import with_channels
from semcnn.data.loaders import collate, worker_count
from semcnn.data.material import shows_material, tiles_needed
from semcnn.evaluation.scores import read_crop_sources, vote_frames
from semcnn.training.device import autocast
from semcnn.training.inference import predict_batch
from semcnn.training.model import imagenet_normalized
from semcnn.training.pretrained import LITE0, load_imagenet

K = 10
SAMPLE = 4000
NOVELTY_QUANTILE = 0.99
# A frame is judged by the median novelty of its material tiles. Above the highest median of a
# validation frame, widened by a tenth (a session's frames drift, as familiarity.py's grey-level
# range allows for), it is unusual: a frame of another material is warned of long before most of
# its tiles pass the per-tile threshold, while a frame of the training material at another
# magnification or in another session, near the limit, keeps its verdict.
FRAME_MARGIN = 0.1


class ImageNetFeatures(nn.Module):
    """The frozen ImageNet EfficientNet-Lite0 (pretrained.py) as a feature extractor: each
    crop in [0, 1] equalized (what the session's grey-level curve did is gone, as in the
    recipes that read the material), fed as an ImageNet image, and the spatial means of the
    outputs of its blocks STAGES and of its last layer, each L2-normalised (so that each
    stage weighs alike), concatenated. The later stages describe texture and shape at several
    scales; the last alone describes what ImageNet's classes need."""
    STAGES = (4, 5, 6)

    def __init__(self):
        super().__init__()
        import timm   # only here: importing it takes a while
        self.net = load_imagenet(timm.create_model(LITE0), LITE0).eval().requires_grad_(False)
        # channels-last: the same numbers, three times the speed on a CPU
        self.net.to(memory_format=torch.channels_last)

    def train(self, mode=True):   # frozen: BatchNorm keeps ImageNet's statistics
        return super().train(False)

    def forward(self, x):
        net = self.net
        x = imagenet_normalized(with_channels(equalize(x.float()), 3))
        h = net.bn1(net.conv_stem(x.contiguous(memory_format=torch.channels_last)))
        pooled = []
        for i, block in enumerate(net.blocks):
            h = block(h)
            if i in self.STAGES:
                pooled.append(h.mean(dim=(2, 3)))
        pooled.append(net.bn2(net.conv_head(h)).mean(dim=(2, 3)))
        return torch.cat([nn.functional.normalize(p.float(), dim=1) for p in pooled], 1)


@functools.lru_cache(maxsize=2)
def imagenet_features(device):
    """One ImageNetFeatures per device and process: built once, shared by every caller."""
    return ImageNetFeatures().to(device)


def space_of(record):
    """Whose features a novelty record holds ('model' for records from before the choice)."""
    return (record or {}).get('space', 'model')


@contextlib.contextmanager
def tapped(model):
    """Within it, the list it yields gets the features the model's head reads (its pooled
    penultimate layer) of every forward pass."""
    seen = []
    handle = model.head.register_forward_hook(
        lambda module, inputs, output: seen.append(inputs[0].detach().float()))
    try:
        yield seen
    finally:
        handle.remove()


@torch.no_grad()
def features(model, x, space='imagenet'):
    """L2-normalised features (N x D, float32) of a batch, plain (no flips): the frozen
    ImageNet network's ('imagenet'), or those the model's head reads ('model')."""
    if space == 'imagenet':
        found = imagenet_features(x.device)(x)
    else:
        with tapped(model) as seen:
            model(x)
        found = seen[-1]
    return nn.functional.normalize(found.flatten(1), dim=1)


@torch.no_grad()
def predict_with_features(model, x, tta=False, space='imagenet'):
    """predict_batch()'s logits of a batch and features() of its plain images; in the model's
    own space from the same forward passes (with tta, the first of the 8 is the plain one)."""
    if space == 'imagenet':
        return predict_batch(model, x, tta), features(model, x, space)
    with tapped(model) as seen:
        logits = predict_batch(model, x, tta)
    return logits, nn.functional.normalize(seen[0].flatten(1), dim=1)


@torch.no_grad()
def features_of(model, loader, device, amp=None, desc='features', space='imagenet'):
    """(features() of every item of a loader of (x, y, names) batches, on the CPU; their
    names)."""
    model.eval()
    found, names = [], []
    for x, _, batch_names in tqdm(loader, desc=desc, leave=False, unit='batch'):
        with autocast(device, amp):
            found.append(features(model, x.to(device, non_blocking=True), space).cpu())
        names += batch_names
    return torch.cat(found), names


def kth_distance(queries, bank, k=K, chunk=1024):
    """Euclidean distance from each query to its k-th nearest row of bank (both normalised)."""
    bank = bank.float()
    out = []
    for start in range(0, len(queries), chunk):
        distances = torch.cdist(queries[start:start + chunk].float().to(bank.device), bank)
        out.append(distances.kthvalue(min(k, len(bank)), dim=1).values.cpu())
    return torch.cat(out) if out else torch.zeros(0)


def training_sample(dataset, limit=SAMPLE):
    """Up to `limit` training crops evenly spaced over the whole split, without augmentation.
    The split is ordered by class: every class must be sampled, the last ones too (a class
    missing from the sample would be novel to itself)."""
    plain = dataset.without_augmentation()
    picked = np.linspace(0, len(plain) - 1, min(limit, len(plain))).round().astype(int)
    return Subset(plain, np.unique(picked).tolist())


def sample_batches(train_set, cfg):
    """Batches of training_sample(train_set), as they are, in order."""
    return DataLoader(training_sample(train_set), batch_size=cfg['eval_batch_size'],
                      num_workers=worker_count(cfg), collate_fn=collate)


def fit_novelty(model, train_set, val_loader, cfg, device, amp=None):
    """The checkpoint's record: the frozen ImageNet features of a sample of the training
    crops, K, the distance NOVELTY_QUANTILE of the validation crops stay within (threshold),
    and the frame limit: the highest median novelty of a validation frame's material crops,
    widened by FRAME_MARGIN, at most 1 (the median of a frame most of whose material is
    novel). With the share of validation crops flagged."""
    bank, _ = features_of(model, sample_batches(train_set, cfg), device, amp,
                          'training features')
    feats, names = features_of(model, val_loader, device, amp, 'validation features')
    validation = kth_distance(feats, bank).numpy()
    threshold = float(np.quantile(validation, NOVELTY_QUANTILE))
    return {'space': 'imagenet', 'bank': bank.half(), 'k': K, 'threshold': threshold,
            'quantile': NOVELTY_QUANTILE,
            'frame_limit': frame_limit(validation / threshold, names, cfg['data_dir']),
            'validation_flagged': float((validation > threshold).mean())}


def frame_limit(novelty, names, data_dir):
    """The frame limit of the validation crops `names` of novelty `novelty` (limit_over_frames);
    1 without a manifest that names each crop's frame (none, or one that does not list the crops
    there now)."""
    sources = read_crop_sources(data_dir, 'validate')
    if not sources or any(n not in sources for n in names):
        return 1.0
    frames = [sources[n][0] for n in names]
    material = shows_material([1.0 if sources[n][1] is None else sources[n][1] for n in names])
    return limit_over_frames(novelty, frames, material)


def limit_over_frames(novelty, frames, material):
    """min(1, (1 + FRAME_MARGIN) x the highest median novelty of the material crops of a frame
    with enough of them for a verdict); 1 when no frame has. A frame of a few material crops
    does not count: its median is one crop's novelty, and one foil-edge crop of 0.95 would lift
    the limit to 1, so that no frame would ever be called unusual."""
    votes = vote_frames(frames, np.zeros((len(frames), 1)), material=material, novelty=novelty,
                        frame_limit=np.inf)
    judged = votes.material >= np.array([tiles_needed(n) for n in votes.tiles])
    medians = votes.novelty[judged]
    if np.isnan(medians).all():
        return 1.0
    return float(min(1.0, (1 + FRAME_MARGIN) * np.nanmax(medians)))


def frame_limit_of(record):
    """The median novelty above which a frame gets no verdict (1 for a record without one, or
    for no record)."""
    return (record or {}).get('frame_limit', 1.0)


def novelty_of(record, feats):
    """Novelty of each row of features (numpy): its K-th neighbour distance over the
    threshold; > 1 is novel. None when the checkpoint has no record."""
    if record is None:
        return None
    return (kth_distance(feats, record['bank'], record['k']) / record['threshold']).numpy()
