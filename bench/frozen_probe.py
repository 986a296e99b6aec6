"""How far the frozen ImageNet network's features go at each input size: a logistic regression on
the novelty features (ImageNetFeatures: the frozen EfficientNet-Lite0, equalized crops, pooled
blocks 4-6 and last layer) of an evenly spaced sample of a dataset's training crops, its L2
penalty chosen on validation crops; then the test crops, their frames' votes, and the test
crops under a 2 px blur (at 448 px; another session's focus).

    python bench/frozen_probe.py --dataset b1                       # 224 and 448 px, 100 a class
    python bench/frozen_probe.py --dataset b1 --sizes 448 --per-class 400
    python bench/frozen_probe.py --dataset b1 --sizes 448 --augment --floor 2

--augment adds a second view of each training crop, flipped or turned and changed as two
sessions differ (cpu30's amounts in pixels of the frame: blur up to 4 px, illumination 0.3,
noise 0.03; half the crops left as they are): can a linear head on frozen features learn to
ignore the session? --floor S blurs every crop (training, validation, test) by S px first: a
fixed focus floor, so that another session's slight defocus changes less of what is seen.

No network is trained: it asks whether the input size or the weights limit a recipe on frames
kept away from training (aug_img.py --block 5). Only validation chooses the penalty; the test
split is scored once. Prints one row per size; time it alone if the seconds matter.
"""
import argparse
import os
import sys
import time

import numpy as np
import pandas as pd
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from dataset import SEMDataset  # noqa: E402
from semcnn.data.acquisition import blur  # noqa: E402
from semcnn.data.augment import Augment, SessionAugment  # noqa: E402
from semcnn.evaluation.novelty import imagenet_features  # noqa: E402
from semcnn.evaluation.shifts import every_nth  # noqa: E402
from semcnn.files.errors import fail, run_main  # noqa: E402
from semcnn.files.manifest import crop_name, frame_name, read_manifest  # noqa: E402
from semcnn.files.paths import DATA_ROOT  # noqa: E402

PENALTIES = (0.1, 1.0, 10.0, 100.0, 1000.0)   # logistic regression's C (inverse L2 penalty)
BLUR_AT_448 = 2.0                              # px of a 448 px crop, scaled to the input size
# --augment's view: cpu30's session amounts (SESSION_INVARIANT in config.py) in px of the frame
SESSION_AT_448 = {'blur': 4.0, 'illumination': 0.3, 'noise': 0.03}


def get_args_parser():
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--dataset', required=True, help=f'a dataset in {DATA_ROOT}/')
    p.add_argument('--sizes', type=int, nargs='+', default=[224, 448])
    p.add_argument('--per-class', type=int, default=100,
                   help='training crops a class (half as many validation and test crops)')
    p.add_argument('--batch', type=int, default=32)
    p.add_argument('--augment', action='store_true',
                   help='add a session-augmented view of each training crop')
    p.add_argument('--floor', type=float, default=0.0, metavar='S',
                   help='blur every crop by S px (at 448 px) first (default 0: none)')
    return p


@torch.no_grad()
def features(eyes, split, per_class, size, args, sigma=0.0, augment=None):
    """(features, labels, names) of up to per_class evenly spaced crops a class of `split`,
    augmented by `augment` (an Augment, drawn from a fixed seed) and blurred by the --floor and
    sigma px (at 448 px) when given."""
    labels = [label for _, label in split.samples]
    picked = every_nth(labels, per_class)
    draws = torch.Generator().manual_seed(1)
    total = (args.floor ** 2 + sigma ** 2) ** 0.5 * size / 448
    out = []
    for start in range(0, len(picked), args.batch):
        x = torch.stack([split[i][0] for i in picked[start:start + args.batch]])
        if augment is not None:
            x = augment.apply(x, augment.draw(len(x), draws))
        out.append(eyes(blur(x, torch.full((len(x),), total)) if total else x).numpy())
    return (np.concatenate(out), np.array(labels)[picked],
            [split.samples[i][0] for i in picked])


def one_size(data_dir, size, args, frame_of):
    from sklearn.linear_model import LogisticRegression
    started = time.perf_counter()
    eyes = imagenet_features(torch.device('cpu'))   # built once, shared by the sizes
    splits = {s: SEMDataset(data_dir, s, input_size=size) for s in ('train', 'validate', 'test')}
    x_train, y_train, _ = features(eyes, splits['train'], args.per_class, size, args)
    if args.augment:
        session = {k: v * size / 448 if k == 'blur' else v for k, v in SESSION_AT_448.items()}
        x_view, y_view, _ = features(eyes, splits['train'], args.per_class, size, args,
                                     augment=Augment(True, 0.0, SessionAugment(**session)))
        x_train, y_train = np.concatenate([x_train, x_view]), np.concatenate([y_train, y_view])
    x_val, y_val, _ = features(eyes, splits['validate'], args.per_class // 2, size, args)
    fits = {c: LogisticRegression(C=c, max_iter=3000).fit(x_train, y_train) for c in PENALTIES}
    chosen = max(PENALTIES, key=lambda c: (fits[c].predict(x_val) == y_val).mean())
    clf = fits[chosen]
    x_test, y_test, names = features(eyes, splits['test'], args.per_class // 2, size, args)
    frames = [frame_of[n] for n in names]
    votes = pd.DataFrame(clf.predict_proba(x_test)).groupby(frames).mean()
    truth = pd.Series(y_test).groupby(frames).first().loc[votes.index]
    x_blur, y_blur, _ = features(eyes, splits['test'], args.per_class // 4, size, args,
                                 sigma=BLUR_AT_448)
    return {'input px': size, 'train crops': len(y_train), 'C': chosen,
            'validation crops %': 100 * (clf.predict(x_val) == y_val).mean(),
            'test crops %': 100 * (clf.predict(x_test) == y_test).mean(),
            'test frames %': 100 * (votes.values.argmax(1) == truth.values).mean(),
            'test frames': len(votes),
            f'blur {BLUR_AT_448:g} px, test crops %': 100 * (clf.predict(x_blur) == y_blur).mean(),
            'minutes': (time.perf_counter() - started) / 60}


def main(args):
    data_dir = os.path.join(DATA_ROOT, args.dataset)
    rows = read_manifest(data_dir)
    if rows is None:
        fail(f'{data_dir}/manifest.csv: no such file; cut the dataset with aug_img.py first')
    frame_of = {crop_name(r): frame_name(r) for r in rows if r['split'] == 'test'}
    table = pd.DataFrame([one_size(data_dir, size, args, frame_of) for size in args.sizes])
    print(table.set_index('input px').round(2).to_string())


if __name__ == '__main__':
    run_main(main, get_args_parser().parse_args())
