"""Accuracy on frames never seen in training: aug_img -> train -> test on the real frames, per
seed, and one table.

    python bench/reproduce.py --version cpu30                  # the CPU recipe, seeds 1 2 3
    python bench/reproduce.py --version gpu
    python bench/reproduce.py --version cpu30 --seeds 1 --source /path/to/frames
    python bench/reproduce.py --version cpu30 --shifts 100 --audit   # + shifts, shortcut audit
    python bench/reproduce.py --version cpu30 --block 5        # neighbouring frames kept together

Each seed cuts its own frame split (aug_img.py --seed) and trains with its own seed. Crops per
class as in the paper: 1280 train, 320 validation, 320 test (3,840 test crops for 12 classes);
10 % of each class's frames for test, 20 % of the rest for validation. The commands are printed
and run as a user would, in the project folder (data/reproduce, runs/reproduce/<version>); each
seed's log and results.json are kept as runs/reproduce/<version>_seed<S>.{log,json}, a copy of its
run (best.pt, predictions, figures) as runs/reproduce/<version>_seed<S>/, the table as
runs/reproduce/<version>_table.csv. The test split is only read by test.py, after training.
With --shifts N, test.py also scores N evenly spaced test crops per class under each acquisition
shift (semcnn/evaluation/shifts.py; a column each, and the lowest); with --audit, audit.py audits
the first seed's dataset (runs/reproduce/audit.json); with --scale-check, bench/scale_check.py
predicts each seed's test frames shrunk to half (sidecar x250), their centre enlarged (sidecar
x1000) and without sidecars, beside the originals (frame and material-tile accuracy of each);
with --novelty-check, bench/novelty_check.py scores each seed's novelty record against outliers
(the AUROC of each family). Each row also has the expected calibration error of the test crops
before and after the run's temperature, the share of material test crops its novelty record
flags, and the test frames left without a verdict.
With --block N, runs of N frames consecutive in number go to one split (aug_img.py --block): a
test frame's neighbouring fields of view are then not in training; its files are named
<version>_block<N>_*.
"""
import argparse
import json
import os
import shutil
import sys

import pandas as pd

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from config import RUNTIME_KEYS, get_config  # noqa: E402
from semcnn.evaluation.steps import run_step  # noqa: E402
from semcnn.files.atomic import write_csv_atomic, write_json_atomic  # noqa: E402
from semcnn.files.errors import run_main  # noqa: E402

CROPS = '1280,320,320'


def device_name():
    import torch   # only here: the table needs the card's name
    if torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    return f'CPU, {os.cpu_count()} cores'


def keep_run(run_dir, kept):
    """A copy of the seed's run (best.pt, the tables and figures; not last.pt) at `kept`: the
    next seed trains into the same run folder."""
    partial = os.path.join(os.path.dirname(kept), f'.{os.path.basename(kept)}.partial')
    for old in (partial, kept):
        shutil.rmtree(old, ignore_errors=True)
    shutil.copytree(run_dir, partial, ignore=shutil.ignore_patterns('last.pt'))
    os.replace(partial, kept)


def one_seed(args, seed, out_dir):
    log = os.path.join(out_dir, f'{args.label}_seed{seed}.log')
    if os.path.exists(log):
        os.remove(log)
    run_step('aug_img.py', [args.source, 1920, '-p', args.pixel, '--crops', CROPS,
                            '--block', args.block, '-n', 'reproduce', '--seed', seed, '--force'],
             log)
    overrides = ['--set', f'seed={seed}', *[a for s in args.set for a in ('--set', s)]]
    train_seconds = run_step('train.py', ['--dataset', 'reproduce', '--version', args.version,
                                          *overrides, '--force'], log)
    shifts = ['--shifts', '--shift-crops', args.shifts] if args.shifts else []
    # test.py takes the run's settings from its checkpoint: only how it runs may be passed on
    runtime = [a for s in args.set if s.partition('=')[0].strip() in RUNTIME_KEYS
               for a in ('--set', s)]
    run_step('test.py', ['--dataset', 'reproduce', '--version', args.version, *runtime,
                         *shifts], log)
    if args.audit and seed == args.seeds[0]:
        run_step('audit.py', ['--dataset', 'reproduce'], log)
    run_dir = os.path.join(out_dir, args.version)
    checks = {}
    if args.scale_check:
        run_step(os.path.join('bench', 'scale_check.py'), ['--dataset', 'reproduce', '--version',
                                                           args.version], log)
        table = pd.read_csv(os.path.join(run_dir, 'scale_check', 'table.csv'))
        for _, r in table.iterrows():
            checks[f"{r['set']} frames %"] = r['frame accuracy %']
            checks[f"{r['set']} tiles %"] = r['tile accuracy %']
            checks[f"{r['set']} scale warnings"] = r['scale warnings']
    if args.novelty_check:
        run_step(os.path.join('bench', 'novelty_check.py'), ['--dataset', 'reproduce', '--version',
                                                             args.version], log)
        table = pd.read_csv(os.path.join(run_dir, 'novelty_check.csv')).iloc[1:]  # outliers
        checks.update({f"AUROC {r['family']}": r['AUROC'] for _, r in table.iterrows()})
    with open(os.path.join(run_dir, 'results.json'), encoding='utf-8') as f:
        results = json.load(f)
    write_json_atomic(results, os.path.join(out_dir, f'{args.label}_seed{seed}.json'))
    keep_run(run_dir, os.path.join(out_dir, f'{args.label}_seed{seed}'))
    low = results['lowest_recall']

    def percent(*keys):   # levels a data set does not have (no manifest, other names): NaN
        level = results
        for key in keys:
            level = level.get(key, {})
        return 100 * level.get('accuracy', float('nan'))
    row = {'seed': seed,
           'crops %': percent('crops'),
           'frames %': percent('frames'),
           'composition %': percent('composition', 'crops'),
           'state %': percent('state', 'crops'),
           'lowest recall %': 100 * low['recall'], 'lowest class': low['class'],
           'train min': train_seconds / 60, 'device': device_name(),
           # calibration and novelty (test.py): what a P means, and the false alarms
           'ECE uncalibrated %': 100 * results['calibration']['ece_uncalibrated'],
           'ECE %': 100 * results['calibration']['ece'],
           'novel material crops %': 100 * results.get('novelty', {}).get('share_of_material',
                                                                          float('nan')),
           'frames without verdict': len(results.get('material', {})
                                         .get('frames_without_verdict', []))}
    row.update(checks)
    shifted = {name: 100 * r['crops'] for name, r in results.get('shifts', {}).items()}
    if shifted:
        row.update({f'{name} %': value for name, value in shifted.items()})
        row['lowest shift %'] = min(v for name, v in shifted.items() if name != 'plain')
        row['lowest shift frames %'] = min(100 * r['frames'] for name, r in
                                           results['shifts'].items() if name != 'plain')
    return row


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--version', default='cpu30',
                   help='config version (recipe) to run (default cpu30)')
    p.add_argument('--seeds', type=int, nargs='+', default=[1, 2, 3],
                   help='a split and training seed each (default 1 2 3)')
    p.add_argument('--source', default=os.path.join(ROOT, '..', 'shared', 'sem'),
                   help='folder of class folders of whole frames (12 NCM classes)')
    p.add_argument('--pixel', default=None,
                   help="crop side for aug_img.py (default: the recipe's, crop_pixels in "
                        'config.py)')
    p.add_argument('--set', action='append', default=[], metavar='KEY=VALUE',
                   help='config override passed to train.py and test.py')
    p.add_argument('--shifts', type=int, default=0, metavar='N',
                   help='also score N test crops per class under each acquisition shift')
    p.add_argument('--audit', action='store_true', help="audit the first seed's dataset")
    p.add_argument('--scale-check', action='store_true',
                   help="predict each seed's test frames at other magnifications "
                        '(bench/scale_check.py)')
    p.add_argument('--novelty-check', action='store_true',
                   help="score each seed's novelty record against outliers made here "
                        '(bench/novelty_check.py)')
    p.add_argument('--block', type=int, default=1, metavar='N',
                   help='runs of N frames consecutive in number go to one split (default 1)')
    args = p.parse_args()
    args.label = args.version if args.block == 1 else f'{args.version}_block{args.block}'
    if not os.path.isdir(args.source):
        sys.exit(f'error: {args.source}: no such folder; give --source with the class folders')
    args.source = os.path.abspath(args.source)   # the steps run in the project folder
    os.chdir(ROOT)   # data/reproduce and runs/reproduce in the project folder
    args.pixel = args.pixel or get_config('reproduce', args.version)['crop_pixels']
    out_dir = os.path.join(ROOT, 'runs', 'reproduce')
    os.makedirs(out_dir, exist_ok=True)
    rows = []
    for seed in args.seeds:
        print(f'seed {seed}:', flush=True)
        rows.append(one_seed(args, seed, out_dir))
        print('  ' + ', '.join(f'{k} {v:.2f}' if isinstance(v, float) else f'{k} {v}'
                               for k, v in rows[-1].items()), flush=True)
    table = pd.DataFrame(rows)
    numbers = table.select_dtypes('number').drop(columns='seed')
    summary = {k: f'{m:.2f} ± {s:.2f}' for k, m, s in
               zip(numbers.columns, numbers.mean(), numbers.std(ddof=1).fillna(0))}
    shown = table.round(2).astype(str)
    shown.loc[len(shown)] = {'seed': f'mean ± std ({len(rows)})', **summary,
                             'lowest class': '', 'device': rows[-1]['device']}
    long = bool(args.shifts or args.scale_check or args.novelty_check)
    if long:   # one row per measure reads better than 20 columns
        shown = shown.set_index('seed').T
    write_csv_atomic(shown, os.path.join(out_dir, f'{args.label}_table.csv'), index=long)
    print(f'\n{args.version} on {args.source} (pixel {args.pixel}, crops {CROPS} per class, '
          f'frames in runs of {args.block}):')
    print(shown.to_string(index=long))


if __name__ == '__main__':
    run_main(lambda _: main(), None)   # a failed step: one line naming its log
