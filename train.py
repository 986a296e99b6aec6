"""Train a CNN on data/<dataset>/{train,validate} with a named config version.

    python train.py                                   # dataset_name / version at the top of config.py
    python train.py --dataset example --version paper
    python train.py --set epochs=10 --set lr=1e-3     # type-checked overrides
    python train.py --resume                          # continue from runs/<dataset>/<version>/last.pt
    python train.py --force                           # start over, replacing that run

Outputs in runs/<dataset>/<version>/: best.pt (highest validation accuracy; the test split is
never looked at), last.pt (for --resume), history.csv (one row per epoch), learning_curve.png,
config.json.
"""
import argparse
import math
import os
import shutil
import time

import pandas as pd
import torch
from tqdm import tqdm

from config import add_config_arguments, config_from_args, gen_default
from dataset import SEMDataset
from fileio import fail, run_dir_of, run_main, write_csv_atomic, write_json_atomic
from frames import UnreadableImage, image_size
from model import build_model
from plots import learning_curve
from utils import (channel_stats, load_checkpoint, loss_fn, make_loader, optimize_fn, pick_device,
                   predict, save_checkpoint, schedule_fn, seed_epoch, seed_everything)


def get_args_parser():
    p = argparse.ArgumentParser(description='Train a CNN on SEM crops.')
    add_config_arguments(p)
    p.add_argument('--resume', action='store_true', help='continue from last.pt of this run')
    p.add_argument('--force', action='store_true', help='start over, replacing an existing run')
    return p


def train_one_epoch(model, loader, criterion, optimizer, scheduler, device, desc):
    """One pass over the training split; returns (loss, accuracy, seconds waiting for data)."""
    model.train()
    total_loss = torch.zeros((), device=device)
    correct = torch.zeros((), device=device, dtype=torch.long)
    seen, data_time = 0, 0.0
    bar = tqdm(loader, desc=desc, leave=False, unit='batch')
    tick = time.perf_counter()
    for step, (x, y, _) in enumerate(bar):
        data_time += time.perf_counter() - tick
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        logits = model(x)
        loss = criterion(logits, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        total_loss += loss.detach() * len(y)
        correct += (logits.argmax(1) == y).sum()
        seen += len(y)
        if step % 10 == 0:   # reading the loss waits for the device: not on every step
            running = total_loss.item() / seen
            check_finite(running, optimizer)
            elapsed = bar.format_dict['elapsed'] or 1e-9
            bar.set_postfix(loss=f'{running:.3f}',
                            data=f'{data_time / (step + 1) * 1e3:.0f}ms',
                            step=f'{elapsed / (step + 1) * 1e3:.0f}ms')
        tick = time.perf_counter()
    loss = total_loss.item() / seen
    check_finite(loss, optimizer)
    return loss, correct.item() / seen, data_time


def check_finite(loss, optimizer):
    if not math.isfinite(loss):
        fail(f'the training loss became {loss}; lower lr (now {optimizer.param_groups[0]["lr"]:g}) '
             'or check the data. The last good checkpoint is kept.')


def evaluate(model, loader, criterion, device):
    """Loss and accuracy on a labelled split."""
    logits, labels, _ = predict(model, loader, device, desc='validate')
    return criterion(logits, labels).item(), (logits.argmax(1) == labels).float().mean().item()


def prepare_run(cfg, args):
    """The run folder, and the checkpoint to resume from (or None)."""
    run_dir = run_dir_of(cfg)
    last = os.path.join(run_dir, 'last.pt')
    if args.resume and args.force:
        fail('--resume and --force contradict each other; give one')
    if args.resume:
        return run_dir, load_checkpoint(last)
    if os.path.exists(last) and not args.force:
        fail(f'{run_dir} already holds a run; add --resume to continue it or --force to start '
             'over (or choose another --version)')
    return run_dir, None


def start_fresh(run_dir):
    """Clear the run folder of an old run, once the new one has been set up without error."""
    shutil.rmtree(run_dir, ignore_errors=True)   # no output of the old run may linger
    os.makedirs(run_dir)


# Keys that may change when a run is resumed: they do not alter what the run computes so far.
RESUME_MAY_CHANGE = ('num_workers', 'eval_batch_size', 'device', 'tta')


def check_resumable(before, now):
    """A resumed run continues the same experiment; say which settings differ if not."""
    default = gen_default(now['dataset'])   # keys added since the run started had this value
    changed = sorted(k for k in now if k not in RESUME_MAY_CHANGE and k != 'epochs'
                     and before.get(k, default.get(k)) != now[k])
    if now['epochs'] != before['epochs'] and now['scheduler'] != 'none':
        changed.append(f"epochs (the {now['scheduler']} schedule was planned for "
                       f"{before['epochs']})")
    if changed:
        fail(f"--resume: settings differ from the run's: {', '.join(changed)}; resume with the "
             'same settings or start over with --force')


@torch.no_grad()
def check_input_size(model, cfg, channels):
    """Some networks take only certain input sizes (ViT: 224): find out before training."""
    model.eval()
    device = next(model.parameters()).device
    try:
        model(torch.zeros(1, channels, cfg['input_size'], cfg['input_size'], device=device))
    except (RuntimeError, ValueError, AssertionError) as e:
        fail(f"model={cfg['model']} does not take input_size={cfg['input_size']} "
             f'({str(e).splitlines()[0][:160]}); choose another input_size or model')


def main(args):
    cfg = config_from_args(args)
    run_dir, resume = prepare_run(cfg, args)
    seed_everything(cfg['seed'])
    device = pick_device(cfg['device'])

    train_set = SEMDataset(cfg['data_dir'], 'train', input_size=cfg['input_size'],
                           augment=cfg['augment'], jitter=cfg['jitter'])
    classes = train_set.classes
    # predict.py tiles whole frames at the scale and in the colours the model was trained on
    first = os.path.join(train_set.split_dir, train_set.samples[0][0])
    try:
        crop_size, channels = list(image_size(first)), train_set[0][0].shape[0]
    except UnreadableImage as e:
        fail(f'cannot read the first training crop ({e}); cut the dataset again with aug_img.py')
    val_set = SEMDataset(cfg['data_dir'], 'validate', classes, input_size=cfg['input_size'])
    if resume:
        check_resumable(resume['config'], cfg)
        if resume['classes'] != classes:
            fail(f"--resume: the run was trained on classes {resume['classes']}, "
                 f"{cfg['data_dir']} has {classes}")
        model = build_model(cfg, len(classes), pretrained=False)
        model.load_state_dict(resume['model'])
    else:
        mean, std = channel_stats(train_set) if cfg['normalize'] else ((0.0,) * 3, (1.0,) * 3)
        model = build_model(cfg, len(classes), mean, std)
    model.to(device)
    if cfg['channels_last']:
        model.use_channels_last()
    start = resume['epoch'] if resume else 0
    if start >= cfg['epochs']:
        fail(f"--resume: {run_dir} has already trained {start} of epochs={cfg['epochs']}; "
             f'continue with --set epochs=N (N > {start})')
    check_input_size(model, cfg, channels)
    train_loader = make_loader(train_set, cfg, True, device)
    val_loader = make_loader(val_set, cfg, False, device)
    criterion = loss_fn(cfg)
    optimizer = optimize_fn(cfg, model.parameters())
    scheduler = schedule_fn(cfg, optimizer, len(train_loader))
    history, best_acc = [], -1.0
    if resume:
        optimizer.load_state_dict(resume['optimizer'])
        scheduler.load_state_dict(resume['scheduler'])
        history, best_acc = resume['history'], resume['best_val_acc']
    else:
        start_fresh(run_dir)
    write_json_atomic(cfg, os.path.join(run_dir, 'config.json'))
    print(f"{cfg['name']}: {cfg['model']} on {device}, {len(classes)} classes, "
          f'{len(train_set)} train / {len(val_set)} validation crops, '
          f"epochs {start + 1}..{cfg['epochs']} -> {run_dir}")
    for epoch in range(start, cfg['epochs']):
        seed_epoch(train_loader, cfg['seed'], epoch)
        started = time.perf_counter()
        lr = optimizer.param_groups[0]['lr']
        train_loss, train_acc, data_time = train_one_epoch(
            model, train_loader, criterion, optimizer, scheduler, device,
            f"epoch {epoch + 1}/{cfg['epochs']}")
        val_loss, val_acc = evaluate(model, val_loader, criterion, device)
        seconds = time.perf_counter() - started
        history.append(dict(epoch=epoch + 1, train_loss=train_loss, train_acc=train_acc,
                            val_loss=val_loss, val_acc=val_acc, lr=lr, seconds=round(seconds, 2),
                            data_seconds=round(data_time, 2)))
        improved = val_acc > best_acc
        best_acc = max(best_acc, val_acc)
        state = dict(model=model.state_dict(), optimizer=optimizer.state_dict(),
                     scheduler=scheduler.state_dict(), epoch=epoch + 1, best_val_acc=best_acc,
                     history=history, classes=classes, config=cfg,
                     crop_size=crop_size, channels=channels)
        if improved:
            save_checkpoint(state, os.path.join(run_dir, 'best.pt'))
        save_checkpoint(state, os.path.join(run_dir, 'last.pt'))
        write_history(history, run_dir)
        tqdm.write(f"epoch {epoch + 1:3d}/{cfg['epochs']}  train loss {train_loss:.4f} "
                   f'acc {100 * train_acc:5.1f}%  val loss {val_loss:.4f} acc {100 * val_acc:5.1f}%'
                   f"{' *' if improved else '  '}  lr {lr:.2e}  {seconds:.1f}s "
                   f'(data wait {data_time:.1f}s)')
    print(f'best validation accuracy {100 * best_acc:.2f}%; checkpoints in {run_dir}')


def write_history(history, run_dir):
    write_csv_atomic(pd.DataFrame(history), os.path.join(run_dir, 'history.csv'))
    learning_curve(history, os.path.join(run_dir, 'learning_curve.png'))


if __name__ == '__main__':
    run_main(main, get_args_parser().parse_args())
