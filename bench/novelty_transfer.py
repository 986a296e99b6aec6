"""Does the novelty score flag a composition it was not fitted on? No training needed.

    python bench/novelty_transfer.py ../shared/sem --groups 523 811 --dataset s1 --version lite0

Novelty is measured in the frozen ImageNet network's features (semcnn/evaluation/novelty.py),
which no training changes: the record of a run trained without a group G is fitted on that run's
crops alone. So for each group G this cuts a dataset without G's frames (aug_img.py --exclude,
the version's crop size, the paper's crops per split), fits the novelty record on its training
and validation crops, puts it into a copy of a trained run's best.pt (--dataset/--version: its
network answers, but only the novelty flags are counted), and runs predict.py on G's frames.
Writes runs/novelty_transfer/<version>/: per group, the predict.py tables and a row of
summary.csv: G's frames, how many got no verdict ('unlike the training material'), how many an
'unusual material' warning, and how many neither. A frame of G that gets neither is one a
classifier trained without G could answer wrongly with no warning and no refusal: their share
bounds transfer.py's unwarned wrong answers from above, whatever the classifier.
"""
import argparse
import os
import sys

import pandas as pd
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from config import get_config  # noqa: E402
from dataset import SEMDataset, training_split  # noqa: E402
from semcnn.data.loaders import make_loader  # noqa: E402
from semcnn.evaluation.novelty import fit_novelty  # noqa: E402
from semcnn.evaluation.steps import run_step  # noqa: E402
from semcnn.evaluation.transfer import frame_groups  # noqa: E402
from semcnn.files.atomic import atomic_path, write_csv_atomic  # noqa: E402
from semcnn.files.errors import fail, run_main  # noqa: E402
from semcnn.files.paths import RUNS_ROOT, run_dir_of  # noqa: E402
from semcnn.training.checkpoint import Checkpoint  # noqa: E402
from semcnn.training.device import pick_device  # noqa: E402


def get_args_parser():
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('path', help='folder of class folders of whole frames')
    p.add_argument('--groups', nargs='+', required=True, help='compositions to leave out')
    p.add_argument('--dataset', required=True, help='dataset of the trained run that answers')
    p.add_argument('--version', required=True, help='version of that run (and the crop size)')
    p.add_argument('--seed', type=int, default=1)
    return p


def flags(frames_csv):
    table = pd.read_csv(frames_csv, keep_default_na=False, dtype=str)
    refused = table['Warnings'].str.contains('unlike the training material')
    unusual = table['Warnings'].str.contains('unusual material') & ~refused
    return {'frames': len(table), 'no verdict (novel)': int(refused.sum()),
            'unusual material': int(unusual.sum()),
            'neither': int((~refused & ~unusual).sum())}


def main(args):
    path = os.path.abspath(args.path)
    groups = frame_groups(path, 'composition')
    unknown = [g for g in args.groups if g not in groups]
    if unknown:
        fail(f"--groups {' '.join(unknown)}: no such composition in {path}")
    run = run_dir_of({'dataset': args.dataset, 'version': args.version})
    carrier = Checkpoint.load(os.path.join(run, 'best.pt'))
    out = os.path.join(RUNS_ROOT, 'novelty_transfer', args.version)
    os.makedirs(out, exist_ok=True)
    log = os.path.join(out, 'log.txt')
    device = pick_device('auto')
    rows = []
    for group in args.groups:
        exclude = os.path.join(out, f'{group}_frames.txt')
        with atomic_path(exclude) as tmp, open(tmp, 'w', encoding='utf-8') as f:
            f.write(''.join(name + '\n' for name in groups[group]))
        dataset = f'novelty_without_{group}'
        cfg = {**get_config(dataset, args.version), 'num_workers': 2}
        run_step('aug_img.py', [path, 1920, '-p', cfg['crop_pixels'], '--crops', '1280,320,320',
                                '-n', dataset, '--seed', args.seed, '--exclude', exclude,
                                '--force'], log)
        train_set = training_split(cfg)
        val_set = SEMDataset(cfg['data_dir'], 'validate', train_set.classes,
                             input_size=cfg['input_size'])
        # the ImageNet features do not depend on the network: none is needed to fit the record
        record = fit_novelty(torch.nn.Identity(), train_set, make_loader(
            val_set, {**cfg, 'preload': False}, False, device), cfg, device)
        carrier.novelty = record
        checkpoint = os.path.join(out, f'without_{group}.pt')
        carrier.save(checkpoint)
        targets = [os.path.join(path, name) for name in groups[group]]
        answers = os.path.join(out, group)
        run_step('predict.py', [*targets, '--dataset', args.dataset, '--version', args.version,
                                '--checkpoint', checkpoint, '--out', answers], log)
        rows.append({'left out': group, **flags(os.path.join(answers, 'frames.csv'))})
        print(pd.DataFrame(rows[-1:]).to_string(index=False))
    write_csv_atomic(pd.DataFrame(rows), os.path.join(out, 'summary.csv'))
    print(pd.DataFrame(rows).to_string(index=False))


if __name__ == '__main__':
    run_main(main, get_args_parser().parse_args())
