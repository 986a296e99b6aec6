"""How unlike the training material a tile is, in the network's own features.

A classifier answers whatever it is shown: a superalloy micrograph gets a cathode class at high
probability. The features the network computes just before its head (penultimate layer) place
each tile among what it learnt: a tile far from every training crop is unlike anything it was
taught. The score is the distance from the tile's L2-normalised features to the K-th nearest of
those of SAMPLE training crops (deep nearest neighbours, Sun et al. 2022), divided by the
distance that NOVELTY_QUANTILE of the validation crops stay within: a novelty above 1 is
farther than 99 % of normal validation crops, so about 1 % of normal tiles are flagged. A frame
is judged by the median novelty of its material tiles (FRAME_MARGIN).

train.py fits it at the end of training (fit_novelty) and keeps it in best.pt (the features of
SAMPLE training crops in half precision: 2 MB for semnet's 256 features); test.py and predict.py
score every tile (novelty_of). A novel tile does not vote; a frame most of whose material tiles
are novel (median above 1) gets no verdict, and one whose median is above the frame limit keeps
its verdict with a warning (semcnn/evaluation/scores.py).
"""
import contextlib

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Subset
from tqdm import tqdm

from semcnn.data.loaders import collate, worker_count
from semcnn.data.material import shows_material, tiles_needed
from semcnn.evaluation.scores import read_crop_sources, vote_frames
from semcnn.training.device import autocast
from semcnn.training.inference import predict_batch

K = 10
SAMPLE = 4000
NOVELTY_QUANTILE = 0.99
# A frame is judged by the median novelty of its material tiles. Above the highest median of a
# validation frame, widened by a tenth (a session's frames drift, as familiarity.py's grey-level
# range allows for), it is unusual: a frame of another material is warned of long before most of
# its tiles pass the per-tile threshold, while a frame of the training material at another
# magnification or in another session, near the limit, keeps its verdict.
FRAME_MARGIN = 0.1


def head_layer(model):
    """The last Linear layer of the model: its input is the penultimate features (the factored
    head's Linear too)."""
    return [m for m in model.modules() if isinstance(m, nn.Linear)][-1]


@contextlib.contextmanager
def tapped(model):
    """Within it, the list it yields gets the penultimate features of every forward pass."""
    seen = []
    handle = head_layer(model).register_forward_hook(
        lambda module, inputs, output: seen.append(inputs[0].detach().float()))
    try:
        yield seen
    finally:
        handle.remove()


@torch.no_grad()
def features(model, x):
    """L2-normalised penultimate features (N x D, float32) of a batch, plain (no flips)."""
    with tapped(model) as seen:
        model(x)
    return nn.functional.normalize(seen[-1].flatten(1), dim=1)


@torch.no_grad()
def predict_with_features(model, x, tta=False):
    """predict_batch()'s logits of a batch and features() of its plain images, from the same
    forward passes (with tta, the first of the 8 is the plain one): one pass, not two."""
    with tapped(model) as seen:
        logits = predict_batch(model, x, tta)
    return logits, nn.functional.normalize(seen[0].flatten(1), dim=1)


@torch.no_grad()
def features_of(model, loader, device, amp=None, desc='features'):
    """(features() of every item of a loader of (x, y, names) batches, on the CPU; their
    names)."""
    model.eval()
    found, names = [], []
    for x, _, batch_names in tqdm(loader, desc=desc, leave=False, unit='batch'):
        with autocast(device, amp):
            found.append(features(model, x.to(device, non_blocking=True)).cpu())
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


def fit_novelty(model, train_set, val_loader, cfg, device, amp=None):
    """The checkpoint's record: the features of a sample of the training crops, K, the
    distance NOVELTY_QUANTILE of the validation crops stay within (threshold), and the frame
    limit: the highest median novelty of a validation frame's material crops, widened by
    FRAME_MARGIN, at most 1 (the median of a frame most of whose material is novel).
    With the share of validation crops flagged."""
    sample = DataLoader(training_sample(train_set), batch_size=cfg['eval_batch_size'],
                        num_workers=worker_count(cfg), collate_fn=collate)
    bank, _ = features_of(model, sample, device, amp, 'training features')
    feats, names = features_of(model, val_loader, device, amp, 'validation features')
    validation = kth_distance(feats, bank).numpy()
    threshold = float(np.quantile(validation, NOVELTY_QUANTILE))
    return {'bank': bank.half(), 'k': K, 'threshold': threshold,
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
