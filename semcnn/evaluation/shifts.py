"""How a trained run holds up when the imaging session changes (test.py --shifts).

Its split is predicted again under each acquisition shift.

Each class of a real data set is often imaged in one session, so a model can name the class from
the session's settings (brightness, contrast, detector curve) instead of the material. A model
that reads the material keeps its accuracy under these shifts; one that reads the settings
does not. Every shift is applied to a crop at its own pixel size (that of the frames), before it
is scaled to the network's input, with fixed amounts and per-crop draws seeded by the crop's
position in the split: the same run always gets the same numbers.

- remap: each frame's grey levels given the distribution of the training crops of another class
  (same composition, next state; else the next class), every pixel keeping its rank: another
  session's grey-level curve, the particles unchanged;
- brighter / darker: +-0.2 of full scale (the brightness setting; session means here span
  0.36-0.56);
- contrast_low / contrast_high: gain 0.5 / 1.5 about the crop's mean (the contrast setting;
  session standard deviations span a factor 3);
- gamma_low / gamma_high: x ** 0.67 / x ** 1.5 (another detector or collector curve);
- blur: Gaussian, sigma 2 pixels (slight defocus);
- noise: Gaussian, standard deviation 0.06, 15 of 255 grey levels (a faster scan, more gain);
- illumination: a gain ramp of +-20 % across the crop, its direction drawn per crop (uneven
  illumination or charging);
- jpeg: saved as JPEG at quality 30 (a frame exported with strong compression).

The amounts follow the range of the real sessions of ../shared/sem (their sidecar settings and
grey-level statistics); none was tuned on a test split.
"""
import io
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from semcnn.data import acquisition
from semcnn.data.images import resize, unit_range
from semcnn.data.loaders import collate, worker_count
from semcnn.evaluation.scores import class_factors, evaluate_split
from semcnn.training.inference import predict


@dataclass(frozen=True)
class Shift:
    description: str
    apply: object   # (1 x C x H x W image in [0, 1], ShiftContext, crop index) -> shifted image


def _fixed(function, *amounts):
    return lambda x, context, i: function(x, *[[a] for a in amounts])


def _illumination(x, context, i):
    angle = np.random.default_rng(i).uniform(0, 2 * np.pi)
    return acquisition.illumination(x, [0.2], [angle])


def _noise(x, context, i):
    return acquisition.noise(x, [0.06], torch.Generator().manual_seed(i))


def _jpeg(x, context, i):
    pixels = (x[0].permute(1, 2, 0).squeeze(-1).numpy() * 255).round().astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format='JPEG', quality=30)
    return unit_range(np.asarray(Image.open(buffer)))[None]


def _remap(x, context, i):
    return acquisition.remap(x, context.own_histogram[i][None], context.target_quantiles[i][None])


SHIFTS = {
    'remap': Shift("another class's grey-level distribution, pixel order kept", _remap),
    'brighter': Shift('brightness +0.2', _fixed(acquisition.gain_offset, 1.0, 0.2)),
    'darker': Shift('brightness -0.2', _fixed(acquisition.gain_offset, 1.0, -0.2)),
    'contrast_low': Shift('contrast x0.5', _fixed(acquisition.gain_offset, 0.5, 0.0)),
    'contrast_high': Shift('contrast x1.5', _fixed(acquisition.gain_offset, 1.5, 0.0)),
    'gamma_low': Shift('gamma 0.67', _fixed(acquisition.gamma, 0.67)),
    'gamma_high': Shift('gamma 1.5', _fixed(acquisition.gamma, 1.5)),
    'blur': Shift('Gaussian blur, sigma 2 px', _fixed(acquisition.blur, 2.0)),
    'noise': Shift('Gaussian noise, std 0.06', _noise),
    'illumination': Shift('gain ramp +-20 % across the crop', _illumination),
    'jpeg': Shift('JPEG quality 30', _jpeg),
}


@dataclass
class ShiftContext:
    """Per crop of the split: the histogram of its frame (or of itself) and the quantiles of the
    grey-level distribution that 'remap' gives it."""
    own_histogram: torch.Tensor      # N x LEVELS
    target_quantiles: torch.Tensor   # N x points


def remap_targets(classes):
    """For each class index, the class whose grey levels 'remap' gives it: the same composition
    in the next state (<composition>[_<state>] names), otherwise the next class."""
    factors = class_factors(classes)
    targets = []
    for i, name in enumerate(classes):
        same = ([j for j, c in enumerate(factors['composition'])
                 if c == factors['composition'][i]] if factors else [])
        if len(same) > 1:
            targets.append(same[(same.index(i) + 1) % len(same)])
        else:
            targets.append((i + 1) % len(classes))
    return targets


class _Histograms(Dataset):
    def __init__(self, dataset, indices):
        self.dataset, self.indices = dataset, indices

    def __len__(self):
        return len(self.indices)

    def __getitem__(self, k):
        i = self.indices[k]
        pixels = unit_range(self.dataset.pixels(i))[None]
        return acquisition.histograms(pixels)[0], self.dataset.samples[i][1]


def _histograms(dataset, indices, workers, desc):
    loader = DataLoader(_Histograms(dataset, indices), batch_size=64, num_workers=workers)
    hists, labels = [], []
    for h, y in tqdm(loader, desc=desc, leave=False, unit='batch'):
        hists.append(h)
        labels.append(y)
    return torch.cat(hists), torch.cat(labels)


def build_context(split, reference, frames, workers, per_class=200):
    """ShiftContext of `split`: its crops' own (frame) histograms, and the quantiles of the
    target class of each crop, from up to `per_class` evenly spaced crops of that class in
    `reference` (the training split)."""
    own, labels = _histograms(split, range(len(split)), workers, 'grey levels')
    if frames is not None:   # a frame's histogram: the sum over its crops
        order = {f: k for k, f in enumerate(dict.fromkeys(frames))}
        group = torch.tensor([order[f] for f in frames])
        pooled = torch.zeros(len(order), own.shape[1]).index_add_(0, group, own)
        own = pooled[group]
    by_class = {}
    for c in range(len(reference.classes)):
        members = [i for i, (_, y) in enumerate(reference.samples) if y == c]
        picked = members[::max(1, len(members) // per_class)][:per_class]
        if picked:
            by_class[c] = acquisition.quantiles(
                _histograms(reference, picked, workers, f'grey levels of {reference.classes[c]}')
                [0].sum(0))
    targets = remap_targets(split.classes)
    fallback = acquisition.quantiles(own.sum(0))   # a class without training crops
    target = torch.stack([by_class.get(targets[y], fallback) for y in labels.tolist()])
    return ShiftContext(own, target)


class ShiftedCrops(Dataset):
    """The crops `indices` of a split with one shift applied, scaled to the network's input."""

    def __init__(self, split, shift, context, indices):
        self.split, self.shift, self.context, self.indices = split, shift, context, indices

    def __len__(self):
        return len(self.indices)

    def __getitem__(self, k):
        i = self.indices[k]
        x = self.shift.apply(unit_range(self.split.pixels(i))[None], self.context, i)
        name, label = self.split.samples[i]
        return resize(x[0].clamp(0, 1), self.split.input_size), label, name


def accuracies(results):
    """{'crops': %, 'frames': %, 'composition': %, 'state': %} of evaluate_split()'s results
    (the levels it has)."""
    row = {level: results[level]['accuracy'] for level in ('crops', 'frames') if level in results}
    for factor in ('composition', 'state'):
        if factor in results:
            row[factor] = results[factor]['crops']['accuracy']
    return row


def every_nth(labels, per_class):
    """Indices of up to `per_class` evenly spaced items of each class (all when None)."""
    picked = []
    for c in sorted(set(labels)):
        members = [i for i, y in enumerate(labels) if y == c]
        count = min(len(members), per_class or len(members))
        picked += [members[k * len(members) // count] for k in range(count)]
    return sorted(picked)


IDENTITY = Shift('as imaged', lambda x, context, i: x)


def evaluate_shifts(model, split, reference, frames, material, cfg, device, amp, plain,
                    per_class=None):
    """{shift: {'description', 'crops', 'frames', 'composition', 'state'}} of `split` under
    every shift, with 'plain' first: evaluate_split()'s results `plain` of the whole split, or,
    with `per_class` (crops per class, evenly spaced: a faster estimate), those of the same
    crops unshifted. `frames` and `material` as for evaluate_split() (a shift changes how a crop
    looks, not whether the place it shows holds material)."""
    workers = worker_count(cfg)
    context = build_context(split, reference, frames, workers)
    indices = every_nth([y for _, y in split.samples], per_class)
    subset = len(indices) < len(split)
    shifts = {'plain': IDENTITY, **SHIFTS} if subset else SHIFTS
    table = {} if subset else {'plain': {'description': IDENTITY.description,
                                         **accuracies(plain)}}
    picked_frames = [frames[i] for i in indices] if frames is not None else None
    picked_material = material[indices] if material is not None else None
    for name, shift in shifts.items():
        loader = DataLoader(ShiftedCrops(split, shift, context, indices),
                            batch_size=cfg['eval_batch_size'], num_workers=workers,
                            collate_fn=collate)
        logits, labels, _ = predict(model, loader, device, desc=name, tta=cfg['tta'], amp=amp)
        results = evaluate_split(logits.softmax(1).double().numpy(), labels.numpy(),
                                 split.classes, picked_frames, picked_material)
        table[name] = {'description': shift.description, 'n': len(indices),
                       **accuracies(results)}
    table['plain'].setdefault('n', len(split))
    return table


def scored_levels(table):
    """The levels (crops, frames, composition, state) that evaluate_shifts() scored."""
    return [k for k in ('crops', 'frames', 'composition', 'state') if k in table['plain']]


def shift_summary(table, total):
    """The table as aligned text lines: one row per shift, accuracy in % per level; `total`:
    the number of crops of the split."""
    levels = scored_levels(table)
    shifted = table['remap']['n']
    note = [] if shifted == total else [
        f'on {shifted} evenly spaced crops of the {total} (--shift-crops), plain ones included']
    lines = [f"{'shift':<14}" + ''.join(f'{level:>13}' for level in levels) + '  what']
    for name, row in table.items():
        lines.append(f'{name:<14}' + ''.join(f'{100 * row[level]:12.2f}%' for level in levels)
                     + f"  {row['description']}")
    worst = min((r['crops'], n) for n, r in table.items())
    lines.append(f'lowest crop accuracy: {100 * worst[0]:.2f}% ({worst[1]})')
    return note + lines
