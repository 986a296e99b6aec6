"""Training and inference speed of the `paper` version and of a fast version, in one run on one
device, through train.py's and test.py's own code, next to the bare steps of the same model.

    python bench/throughput.py                  # GPU: EfficientNet-B7, 224 px; CPU: semnet, 112 px
    python bench/throughput.py --fast gpu --set model=resnet18
    python bench/throughput.py --data data/paper_split      # real crops instead of synthetic ones
    python bench/throughput.py --steps 50 --csv runs/throughput.csv

Rows (one table):
- paper: train.py's loop with the `paper` version (fp32, batch 4, each crop read from its file);
- fast: train.py's loop with the fast version (default `paper_fast` on a GPU, `cpu30` on a CPU);
- bare fwd/bwd: the fast version's optimizer steps on one batch already on the device, no data;
- inference: test.py's prediction loop with the fast version's settings (no TTA).
Both versions get the same model and input size (`--set` applies to both) and no pretrained
weights (speed does not depend on them). Columns: img/s, the share of step time spent waiting
for data, peak device memory, speed against the paper row and against the bare steps.
Targets (issue 4): on an H200 the fast row >= 780 img/s for B7 and >= 16x paper, inference
>= 3,000 img/s; on the CPU the fast row within 10 % of the bare steps.
"""
import argparse
import itertools
import os
import sys
import tempfile
import time

import numpy as np
import pandas as pd
import torch
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from config import apply_overrides, check_values, get_config  # noqa: E402
from dataset import training_split  # noqa: E402
from engine import build_training, train_one_epoch, train_step  # noqa: E402
from semcnn.data.loaders import PreloadedBatches, make_loader, seed_epoch  # noqa: E402
from semcnn.files.atomic import write_csv_atomic  # noqa: E402
from semcnn.files.errors import fail, run_main  # noqa: E402
from semcnn.training.device import configure_kernels, pick_device, seed_everything  # noqa: E402
from semcnn.training.inference import predict  # noqa: E402
from semcnn.training.model import build_model  # noqa: E402


def get_args_parser():
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--fast', default=None, help='the fast version (default paper_fast on a '
                   'GPU, cpu30 on a CPU)')
    p.add_argument('--set', action='append', default=[], metavar='KEY=VALUE',
                   help='config override for both versions (default model and input_size: '
                   'efficientnet_b7/224 on a GPU, semnet/112 on a CPU)')
    p.add_argument('--data', default=None, help='a dataset from aug_img.py (its train split); '
                   'default: synthetic crops in a temporary folder')
    p.add_argument('--crop', type=int, default=224, help='side of the synthetic crops')
    p.add_argument('--classes', type=int, default=12, help='classes of the synthetic crops')
    p.add_argument('--steps', type=int, default=30, help='timed steps per row')
    p.add_argument('--warmup', type=int, default=5, help='untimed steps before each row')
    p.add_argument('--csv', default=None, help='also write the table to this CSV file')
    return p


def write_synthetic_crops(root, count, classes, side, seed=0):
    """`count` gray TIFF crops of smoothed noise in root/train/<class>/ (decoding them costs what
    decoding real crops costs)."""
    rng = np.random.default_rng(seed)
    for i in range(count):
        folder = os.path.join(root, 'train', f'c{i % classes:02d}')
        os.makedirs(folder, exist_ok=True)
        noise = rng.integers(0, 256, (side // 4, side // 4), dtype=np.uint8)
        Image.fromarray(noise).resize((side, side), Image.BILINEAR).save(
            os.path.join(folder, f'{i:06d}.tif'))


class FirstBatches:
    """The first `n` batches of a loader (a whole epoch would be too long to time)."""

    def __init__(self, loader, n):
        self.loader, self.n = loader, n

    def __len__(self):
        return self.n

    def __iter__(self):
        return itertools.islice(iter(self.loader), self.n)


def synchronize(device):
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def start_row(device):
    synchronize(device)
    if device.type == 'cuda':
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    return time.perf_counter()


def finish_row(name, cfg, images, started, device, data_time=0.0):
    synchronize(device)
    seconds = time.perf_counter() - started
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == 'cuda' else None
    return {'row': name, 'version': cfg['version'], 'model': cfg['model'],
            'input': cfg['input_size'], 'batch': cfg['batch_size'], 'amp': cfg['amp'],
            'img/s': images / seconds, 'data wait %': 100 * data_time / seconds,
            'peak GiB': peak}


def measure(cfg, device, args, bare=False):
    """Rows for one version: train.py's loop, and with bare=True also the bare steps and
    inference."""
    seed_everything(cfg['seed'])
    configure_kernels(cfg, device)
    train_set = training_split(cfg)
    needed = (args.warmup + args.steps) * cfg['batch_size']
    if len(train_set) < needed:
        fail(f"{cfg['data_dir']}/train has {len(train_set)} crops; the {cfg['version']} row "
             f"needs {needed} ((--warmup + --steps) x batch {cfg['batch_size']})")
    loader = make_loader(train_set, cfg, True, device)
    model = build_model(cfg, train_set.classes, pretrained=False)
    t = build_training(cfg, model, device, len(loader))
    seed_epoch(loader, cfg['seed'], 0)
    batches = iter(loader)   # one epoch: warm-up steps, then the timed ones
    train_one_epoch(t, FirstBatches(batches, args.warmup), 'warm-up')
    started = start_row(device)
    _, _, data_time = train_one_epoch(t, FirstBatches(batches, args.steps), cfg['version'])
    rows = [finish_row('train.py', cfg, args.steps * cfg['batch_size'], started, device,
                       data_time)]
    if isinstance(loader, PreloadedBatches):
        where = device if loader.on_device else 'host memory'
        print(f"{cfg['version']}: {len(train_set)} crops decoded once, "
              f'{loader.nbytes / 1e9:.2f} GB of uint8 in {where}')
    if not bare:
        return rows

    x, y, _ = next(iter(loader))
    x, y = x.to(device), y.to(device)
    for _ in range(args.warmup):
        train_step(t, x, y)
    started = start_row(device)
    for _ in range(args.steps):
        train_step(t, x, y)
    rows.append(finish_row('bare fwd/bwd', cfg, args.steps * len(y), started, device))

    eval_loader = make_loader(train_set.without_augmentation(), cfg, False, device)
    eval_steps = min(len(eval_loader), max(2, needed // cfg['eval_batch_size']))
    predict(t.raw, FirstBatches(eval_loader, 1), device, amp=t.amp, show=False)
    started = start_row(device)
    _, labels, _ = predict(t.raw, FirstBatches(eval_loader, eval_steps), device, amp=t.amp,
                           desc='inference')
    row = finish_row('inference', cfg, len(labels), started, device)
    row['batch'] = cfg['eval_batch_size']
    rows.append(row)
    return rows


def version_config(version, data_dir, overrides, device):
    cfg = get_config('example', version)
    cfg = apply_overrides(cfg, overrides + ['pretrained=false', f'data_dir={data_dir}',
                                            f'device={device}'])
    check_values(cfg)
    cfg['dataset'], cfg['version'] = 'bench', version
    return cfg


def main(args):
    if args.steps < 1 or args.warmup < 1:
        fail(f'--steps {args.steps} --warmup {args.warmup}: give 1 or more of each')
    device = pick_device('auto')
    gpu = device.type == 'cuda'
    fast = args.fast or ('paper_fast' if gpu else 'cpu30')
    defaults = ['model=efficientnet_b7', 'input_size=224'] if gpu else ['model=semnet',
                                                                      'input_size=112']
    overrides = defaults + args.set
    name = torch.cuda.get_device_name(device) if gpu else f'CPU, {torch.get_num_threads()} threads'
    print(f'device: {name}; torch {torch.__version__}')
    with tempfile.TemporaryDirectory(prefix='throughput-') as tmp:
        data_dir = args.data
        if data_dir is None:
            data_dir = tmp
            biggest = max(version_config(v, tmp, overrides, device)['batch_size']
                          for v in ('paper', fast))
            count = (args.warmup + args.steps) * biggest
            print(f'writing {count} synthetic {args.crop} px crops to {tmp}')
            write_synthetic_crops(tmp, count, args.classes, args.crop)
        rows = measure(version_config('paper', data_dir, overrides, device), device, args)
        rows += measure(version_config(fast, data_dir, overrides, device), device, args,
                        bare=True)
    table = pd.DataFrame(rows)
    table['x paper'] = table['img/s'] / table['img/s'].iloc[0]
    bare = table.loc[table['row'] == 'bare fwd/bwd', 'img/s'].iloc[0]
    table['% of bare'] = 100 * table['img/s'] / bare
    table.loc[table['row'] == 'inference', ['x paper', '% of bare']] = np.nan
    print(table.to_string(index=False, float_format=lambda v: f'{v:,.1f}', na_rep='-'))
    if args.csv:
        write_csv_atomic(table, args.csv)


if __name__ == '__main__':
    run_main(main, get_args_parser().parse_args())
