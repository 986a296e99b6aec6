"""Does the novelty score tell the training material from other things? AUROC per family.

    python bench/novelty_check.py --dataset reproduce --version cpu30

Scores every test crop of a trained run (the normal tiles: those that show cathode material) and
tiles of outliers made here, at the run's crop size, with the run's novelty record
(semcnn/evaluation/novelty.py):
- textures: sinusoidal stripes and checkerboards of several periods, and smoothed noise;
- photographs: scikit-learn's two sample photographs, cut into crops;
- rescaled: test crops shrunk 4 times and tiled 4 x 4 (particles a quarter of their size);
- bare: the test crops that show no cathode material (foil at the electrode's edge, holes).
Prints the AUROC of the novelty, normal against each family (1 = every outlier above every normal
tile), the share of each family above the tile threshold (novelty > 1), and the share of normal
tiles above it (the false alarms); writes runs/<dataset>/<version>/novelty_check.csv.
"""
import argparse
import os
import sys

import numpy as np
import pandas as pd
import torch
from PIL import Image
from sklearn.datasets import load_sample_images
from sklearn.metrics import roc_auc_score

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from config import open_run  # noqa: E402
from dataset import SEMDataset  # noqa: E402
from semcnn.data.images import to_tensor  # noqa: E402
from semcnn.data.loaders import make_loader  # noqa: E402
from semcnn.data.material import shows_material  # noqa: E402
from semcnn.evaluation.novelty import features, features_of, novelty_of, space_of  # noqa: E402
from semcnn.evaluation.scores import read_crop_sources  # noqa: E402
from semcnn.files.atomic import write_csv_atomic  # noqa: E402
from semcnn.files.errors import fail, run_main  # noqa: E402
from semcnn.files.paths import RUNS_ROOT  # noqa: E402
from semcnn.training.checkpoint import load_trained  # noqa: E402
from semcnn.training.device import pick_device  # noqa: E402


def textures(side, rng):
    yy, xx = np.mgrid[0:side, 0:side].astype(np.float32)
    out = []
    for period in (3, 6, 12, 24):
        for angle in (0.0, 0.7, 1.6):
            phase = (xx * np.cos(angle) + yy * np.sin(angle)) / period
            out.append(127 + 100 * np.sin(2 * np.pi * phase))
        cells = max(1, side // (period * 4))
        out.append(((xx // cells + yy // cells) % 2) * 200 + 20)
        noise = rng.normal(0, 1, (side // period + 1, side // period + 1))
        smooth = np.asarray(Image.fromarray(noise.astype(np.float32)).resize((side, side),
                                                                            Image.BICUBIC))
        out.append(128 + 50 * smooth)
    return out


def photographs(side, rng, per_photo=24):
    out = []
    for photo in load_sample_images().images:
        gray = np.asarray(Image.fromarray(photo).convert('L'))
        crop = min(gray.shape)
        for _ in range(per_photo):
            y = rng.integers(0, gray.shape[0] - crop + 1)
            x = rng.integers(0, gray.shape[1] - crop + 1)
            part = gray[y:y + crop // 2, x:x + crop // 2]
            out.append(np.asarray(Image.fromarray(part).resize((side, side), Image.BICUBIC)))
    return out


def rescaled(crops, side):
    out = []
    for pixels in crops:
        small = np.asarray(Image.fromarray(pixels).resize((side // 4, side // 4), Image.BOX))
        out.append(np.tile(small, (4, 4) + (1,) * (small.ndim - 2)))
    return out


def novelty_of_images(model, record, images, input_size, device, batch=64):
    scores = []
    for start in range(0, len(images), batch):
        x = torch.stack([to_tensor(np.clip(im, 0, 255).astype(np.uint8), input_size)
                         for im in images[start:start + batch]])
        scores.append(novelty_of(record, features(model, x.to(device), space_of(record)).cpu()))
    return np.concatenate(scores)


def main(args):
    cfg, path, checkpoint = open_run(argparse.Namespace(checkpoint='best', set=args.set),
                                     args.dataset, args.version)
    if checkpoint.novelty is None:
        fail(f'{path}: has no novelty record (trained before train.py kept one); train again')
    device = pick_device(cfg['device'])
    model, classes = load_trained(cfg, path, checkpoint, device)
    test_set = SEMDataset(cfg['data_dir'], 'test', classes, input_size=cfg['input_size'])
    feats, names = features_of(model, make_loader(test_set, cfg, False, device), device,
                               space=space_of(checkpoint.novelty))
    novelty = novelty_of(checkpoint.novelty, feats)
    sources = read_crop_sources(cfg['data_dir'], 'test') or {}
    shares = np.array([1.0 if sources.get(n, (None, None))[1] is None else sources[n][1]
                       for n in names])
    material = shows_material(shares)
    normal = novelty[material]
    side = checkpoint.crop_size[0]
    rng = np.random.default_rng(0)
    picked = np.flatnonzero(material)[::max(1, material.sum() // 200)][:200]
    families = {
        'textures': novelty_of_images(model, checkpoint.novelty, textures(side, rng),
                                      cfg['input_size'], device),
        'photographs': novelty_of_images(model, checkpoint.novelty, photographs(side, rng),
                                         cfg['input_size'], device),
        'rescaled x1/4': novelty_of_images(model, checkpoint.novelty,
                                           rescaled([test_set.pixels(i) for i in picked], side),
                                           cfg['input_size'], device),
        'bare test crops': novelty[~material]}
    rows = [{'family': 'normal (material test crops)', 'tiles': len(normal),
             'median novelty': np.median(normal), 'above 1 %': 100 * (normal > 1).mean(),
             'AUROC': float('nan')}]
    for name, scores in families.items():
        if not len(scores):
            continue
        truth = np.r_[np.zeros(len(normal)), np.ones(len(scores))]
        rows.append({'family': name, 'tiles': len(scores), 'median novelty': np.median(scores),
                     'above 1 %': 100 * (scores > 1).mean(),
                     'AUROC': roc_auc_score(truth, np.r_[normal, scores])})
    table = pd.DataFrame(rows).round(4)
    out = os.path.join(RUNS_ROOT, args.dataset, args.version, 'novelty_check.csv')
    write_csv_atomic(table, out)
    print(f"{args.dataset}/{args.version}: frame limit {checkpoint.novelty['frame_limit']:.3f}")
    print(table.to_string(index=False))


if __name__ == '__main__':
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--dataset', required=True)
    p.add_argument('--version', required=True)
    p.add_argument('--set', action='append', default=[], metavar='KEY=VALUE',
                   help='runtime keys (device, num_workers, ...)')
    run_main(main, p.parse_args())
