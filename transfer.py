"""Does the state the model names carry over to a cathode, or a session, it never saw?

    python transfer.py ../shared/sem --version cpu30                  # each composition in turn
    python transfer.py ../shared/sem --groups 523 811 --seeds 1 2     # chosen groups, 2 seeds
    python transfer.py my_frames --by session                         # each imaging session

The frames are grouped by composition (the class name before '_'), by session (the date in each
frame's sidecar) or by class. For each seed and each chosen group G, a dataset is cut without G's
frames (aug_img.py --exclude), the version is trained on it, and predict.py answers for every
frame of G as it would for a new cathode. Beside the folds, the same version on a normal split
of all the frames (aug_img, train, test.py), for the 12-class numbers. Commands run as a user
runs them, in the current folder; each fold is one full training (cpu30: about 20 min on 2 cores).

Writes runs/transfer/<name>/: summary.csv (one row per fold and seed, and mean +- std per group
over seeds), transfer.json (every score, with the state confusion and the classes the wrong
answers went to), state_<G>_seed<S>.png (the state confusion matrix), the logs, and each
fold's predict.py tables in <G>_seed<S>/. Prints the table.

Read it as: 'balanced state % (frames)' is the mean over the true states of the share of G's
frames given that state; the per-state columns say which state fails; 'wrong with warning' and
'wrong with agreement < 0.75' say how many of the wrong answers the model flagged itself.
"""
import argparse
import json
import os
import re

import pandas as pd

from config import RUNTIME_KEYS, get_config
from semcnn.evaluation.plots import confusion_matrix_png
from semcnn.evaluation.steps import run_step
from semcnn.evaluation.transfer import (GROUPINGS, LOW_AGREEMENT, fold_row, frame_groups,
                                        score_fold)
from semcnn.files.atomic import atomic_path, write_csv_atomic, write_json_atomic
from semcnn.files.errors import fail, run_main
from semcnn.files.paths import DATA_ROOT, RUNS_ROOT


def get_args_parser():
    p = argparse.ArgumentParser(description='Train without a group of frames (a composition, a '
                                            'session), then predict its frames: does the state '
                                            'carry over?')
    p.add_argument('path', help='folder of class folders of whole frames')
    p.add_argument('--by', choices=GROUPINGS, default='composition',
                   help='what a group is (default composition)')
    p.add_argument('--groups', nargs='+', default=None,
                   help='the groups to leave out, one fold each (default: every group)')
    p.add_argument('--version', default='cpu30', help='config version to train (default cpu30)')
    p.add_argument('--seeds', type=int, nargs='+', default=[1],
                   help='a split and a training seed each (default 1)')
    p.add_argument('--size', type=int, default=1920,
                   help='crops per class for aug_img.py (default 1920)')
    p.add_argument('--crops', default='1280,320,320', metavar='TRAIN,VALIDATE,TEST',
                   help="aug_img.py's crops per split (default the paper's 1280,320,320; "
                        "'none' for -t/-r shares of size)")
    p.add_argument('-p', '--pixel', default=None,
                   help="crop side (default: the version's crop_pixels in config.py)")
    p.add_argument('--block', type=int, default=1, help="aug_img.py's --block (default 1)")
    p.add_argument('--set', action='append', default=[], metavar='KEY=VALUE',
                   help='config override for train.py (and its runtime keys for test/predict)')
    p.add_argument('--no-normal', action='store_true',
                   help='skip the normal split of all frames (one training less per seed)')
    p.add_argument('--low-agreement', type=float, default=LOW_AGREEMENT,
                   help=f'agreement below which a verdict counts as unsure (default '
                        f'{LOW_AGREEMENT})')
    p.add_argument('-n', '--name', default=None,
                   help='name of this evaluation (default <by>_<version>): datasets '
                        'data/<name>_..., results runs/transfer/<name>/')
    return p


def safe(text):
    """A group's name as part of a dataset's name."""
    return re.sub(r'[^A-Za-z0-9_.-]+', '-', text).strip('-.') or 'group'


def check_args(args):
    if not os.path.isdir(args.path):
        fail(f'{args.path}: no such folder; give the folder that holds one sub-folder per class')
    args.path = os.path.abspath(args.path)          # the steps run in the project folder
    args.name = args.name or f'{args.by}_{args.version}'
    args.pixel = args.pixel or get_config('transfer', args.version)['crop_pixels']
    groups = frame_groups(args.path, args.by)
    args.by_class = frame_groups(args.path, 'class')
    chosen = args.groups or sorted(groups)
    unknown = [g for g in chosen if g not in groups]
    if unknown:
        fail(f"--groups {' '.join(unknown)}: no such {args.by} in {args.path} (there: "
             f"{', '.join(sorted(groups))})")
    if len(groups) < 2:
        fail(f'{args.path}: one {args.by} only ({", ".join(groups)}); leaving it out leaves '
             'nothing to train on')
    return {g: groups[g] for g in chosen}


def cut(args, seed, dataset, log, exclude=None):
    crops = [] if args.crops == 'none' else ['--crops', args.crops]
    extra = ['--exclude', exclude] if exclude else []
    run_step('aug_img.py', [args.path, args.size, '-p', args.pixel, *crops, '--block',
                            args.block, '-n', dataset, '--seed', seed, *extra, '--force'], log)


def train(args, seed, dataset, log):
    overrides = [a for s in [f'seed={seed}', *args.set] for a in ('--set', s)]
    return run_step('train.py', ['--dataset', dataset, '--version', args.version, *overrides,
                                 '--force'], log)


def runtime(args):
    """The --set overrides that test.py and predict.py take: how a run runs, not what it is."""
    return [a for s in args.set if s.partition('=')[0].strip() in RUNTIME_KEYS
            for a in ('--set', s)]


def normal_split(args, seed, out, log):
    """The version on a normal split of all the frames: its test-split numbers."""
    dataset = f'{args.name}_all'
    cut(args, seed, dataset, log)
    minutes = train(args, seed, dataset, log) / 60
    run_step('test.py', ['--dataset', dataset, '--version', args.version, *runtime(args)], log)
    with open(os.path.join(RUNS_ROOT, dataset, args.version, 'results.json'),
              encoding='utf-8') as f:
        results = json.load(f)
    row = {'left out': 'none (normal split)', 'seed': seed,
           'test crops %': 100 * results['crops']['accuracy'],
           'test frames %': 100 * results.get('frames', {}).get('accuracy', float('nan')),
           'train min': minutes}
    if 'state' in results:
        row['state % (test crops)'] = 100 * results['state']['crops']['accuracy']
    return row


def fold(args, seed, group, frames, out, log):
    """Train without `frames` (the group's '<class>/<file>' names), predict them, score."""
    dataset = f'{args.name}_without_{safe(group)}'
    exclude = os.path.join(out, f'{safe(group)}_frames.txt')
    with atomic_path(exclude) as tmp, open(tmp, 'w', encoding='utf-8') as f:
        f.write(''.join(name + '\n' for name in frames))   # as aug_img.py --exclude reads it
    cut(args, seed, dataset, log, exclude)
    minutes = train(args, seed, dataset, log) / 60
    where = os.path.join(out, f'{safe(group)}_seed{seed}')
    classes = sorted({f.split('/')[0] for f in frames})
    whole = all(len(args.by_class[c]) == sum(f.startswith(c + '/') for f in frames)
                for c in classes)
    targets = ([os.path.join(args.path, c) for c in classes] if whole   # whole class folders
               else [os.path.join(args.path, f) for f in frames])
    run_step('predict.py', [*targets, '--dataset', dataset, '--version', args.version,
                            *runtime(args), '--out', where], log)
    table = pd.read_csv(os.path.join(where, 'frames.csv'), keep_default_na=False)
    tiles = pd.read_csv(os.path.join(where, 'tiles.csv'), keep_default_na=False)
    true_class = {f: os.path.basename(os.path.dirname(f)) for f in table['Frame']}
    result = score_fold(table, tiles, true_class, args.low_agreement)
    if result is None:
        fail(f'{dataset}: its class names do not read <composition>_<state>: no state to score')
    result['train_minutes'] = minutes
    states = result['states']
    matrix = [[result['per_state'].get(t, {}).get('said', {}).get(s, 0) for s in states]
              for t in states]
    confusion_matrix_png(matrix, states, os.path.join(out, f'state_{safe(group)}_seed{seed}.png'),
                         f'state of {args.by} {group}, never trained on (seed {seed})')
    return result, {**fold_row(group, seed, result), 'train min': minutes}


def summary(rows):
    """The rows, then mean +- std over seeds of each group's numbers (with 2 seeds or more)."""
    table = pd.DataFrame(rows)
    means = []
    for group, part in table.groupby('left out', sort=False):
        if len(part) < 2:
            continue
        numbers = part.select_dtypes('number').drop(columns='seed')
        means.append({'left out': group, 'seed': f'mean ± std ({len(part)})',
                      **{k: f'{m:.1f} ± {s:.1f}' for k, m, s in
                         zip(numbers.columns, numbers.mean(), numbers.std(ddof=1))}})
    shown = table.round(1).astype(object).where(table.notna(), '')
    return pd.concat([shown, pd.DataFrame(means)], ignore_index=True).fillna('')


def write_results(args, rows, scores, out):
    """summary.csv and transfer.json of the folds so far; returns the summary table."""
    table = summary(rows)
    write_csv_atomic(table, os.path.join(out, 'summary.csv'))
    write_json_atomic({'by': args.by, 'version': args.version, 'seeds': args.seeds,
                       'source': args.path, 'folds': scores, 'normal': [
                           r for r in rows if r['left out'].startswith('none')]},
                      os.path.join(out, 'transfer.json'))
    return table


def main(args):
    groups = check_args(args)
    out = os.path.join(RUNS_ROOT, 'transfer', args.name)
    os.makedirs(out, exist_ok=True)
    rows, scores = [], {}
    for seed in args.seeds:
        log = os.path.join(out, f'seed{seed}.log')
        if os.path.exists(log):
            os.remove(log)
        if not args.no_normal:
            print(f'seed {seed}: normal split', flush=True)
            rows.append(normal_split(args, seed, out, log))
        for group, frames in groups.items():
            print(f'seed {seed}: {args.by} {group} left out ({len(frames)} frames)', flush=True)
            result, row = fold(args, seed, group, frames, out, log)
            scores[f'{group}_seed{seed}'] = result
            rows.append(row)
            print('  ' + ', '.join(f'{k} {v:.1f}' if isinstance(v, float) else f'{k} {v}'
                                   for k, v in row.items()), flush=True)
            table = write_results(args, rows, scores, out)   # a later failure keeps these folds
    with pd.option_context('display.width', 200, 'display.max_columns', 40):
        print(f'\n{args.version}, {args.by} left out, on {args.path}:')
        print(table.to_string(index=False))
    print(f'outputs in {out}/ (summary.csv, transfer.json, state_*.png; data in '
          f'{DATA_ROOT}/{args.name}_*)')


if __name__ == '__main__':
    run_main(main, get_args_parser().parse_args())
