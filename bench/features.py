"""Speed of the pretrained feature step: the frozen ImageNet EfficientNet-Lite0 on crops, as the
linear probe (semcnn/training/probe.py) and the novelty score (semcnn/evaluation/novelty.py) run
it, at several input sizes, in one run on one device.

    python bench/features.py                      # 112, 160 and 224 px, on this machine's device
    python bench/features.py --sizes 160 --batch 128 --steps 20

Rows: input sizes, channels-last as the lite0 recipes run. Columns: crops per second of the
probe's features (the network's pooled last layer, what its head reads), of the novelty
features (ImageNetFeatures: the pooled later stages too, equalized input), and the minutes one
pass over the 15,360 training crops of bench/reproduce.py's split takes at that speed. Random
crops: the speed does not depend on what they show. Time it alone: this machine's speed varies
several-fold with load.
"""
import argparse
import os
import sys
import time

import pandas as pd
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from semcnn.evaluation.novelty import ImageNetFeatures, tapped  # noqa: E402
from semcnn.files.errors import run_main  # noqa: E402
from semcnn.training.device import pick_device  # noqa: E402
from semcnn.training.model import build_model  # noqa: E402

TRAINING_CROPS = 15360   # 12 classes x 1,280 (bench/reproduce.py)


def get_args_parser():
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--sizes', type=int, nargs='+', default=[112, 160, 224])
    p.add_argument('--batch', type=int, default=128)
    p.add_argument('--steps', type=int, default=5, help='timed batches per row')
    p.add_argument('--device', default='auto')
    return p


@torch.no_grad()
def crops_per_second(step, x, steps, device):
    step(x)                                   # warm-up: allocation, kernel choice
    if device.type == 'cuda':
        torch.cuda.synchronize()
    started = time.perf_counter()
    for _ in range(steps):
        step(x)
    if device.type == 'cuda':
        torch.cuda.synchronize()
    return steps * len(x) / (time.perf_counter() - started)


def main(args):
    device = pick_device(args.device)
    model = build_model({'model': 'timm:efficientnet_lite0', 'pretrained': True,
                         'intensity': 'equalize'}, 12).to(device).eval().use_channels_last()
    eyes = ImageNetFeatures().to(device)

    def probe(batch):
        with tapped(model) as seen:
            model(batch)
        return seen

    rows = []
    for size in args.sizes:
        x = torch.rand(args.batch, 1, size, size, device=device)
        probe_speed = crops_per_second(probe, x, args.steps, device)
        novelty_speed = crops_per_second(eyes, x, args.steps, device)
        rows.append({'input px': size, 'probe features crops/s': round(probe_speed, 1),
                     'novelty features crops/s': round(novelty_speed, 1),
                     'one probe pass over 15,360 crops, min': round(
                         TRAINING_CROPS / probe_speed / 60, 2)})
    print(f'device: {device}, batch {args.batch}, {args.steps} timed batches a row')
    print(pd.DataFrame(rows).to_string(index=False))


if __name__ == '__main__':
    run_main(main, get_args_parser().parse_args())
