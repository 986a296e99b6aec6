"""The training loop that train.py runs: the network with its optimizer and schedule, epoch by
epoch, the checkpoints, and at the end the temperature and novelty record of best.pt.

train.py checks its command line first and imports this file only then: loading torch takes
about 2 s on a 2-core machine, which `--help` and a refused `--set` need not wait for. As in
pytorch/vision's references/detection, the loop's steps (build_training, train_one_epoch,
evaluate) live here; the commands, and what each option does, in train.py's docstring.
"""
import argparse
import contextlib
import math
import os
import shutil
import time
from dataclasses import dataclass

import pandas as pd
import torch
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from config import gen_default, open_run
from dataset import SEMDataset, damaged, training_split
from utils import loss_fn, optimize_fn, schedule_fn
from semcnn.data.loaders import (PreloadedBatches, channel_stats, make_loader, plain_batches,
                                 seed_epoch)
from semcnn.evaluation import familiarity
from semcnn.evaluation.calibration import calibration_scores, fit_temperature
from semcnn.evaluation.novelty import fit_novelty, sample_batches
from semcnn.evaluation.plots import learning_curve
from semcnn.files.atomic import write_csv_atomic, write_json_atomic
from semcnn.files.errors import fail
from semcnn.files.frames import UnreadableImage, image_size
from semcnn.files.locks import exclusive, reading
from semcnn.files.manifest import training_scale
from semcnn.files.paths import run_dir_of
from semcnn.training import distributed
from semcnn.training.checkpoint import Checkpoint, load_trained
from semcnn.training.device import (amp_dtype, autocast, configure_kernels, pick_device,
                                    seed_everything)
from semcnn.training.distributed import Ranks, barrier, broadcast_buffers, sum_over_ranks
from semcnn.training.inference import predict
from semcnn.training.model import build_model
from semcnn.training.probe import linear_probe


@dataclass
class Training:
    """Everything one optimisation step needs."""
    model: torch.nn.Module       # what runs the steps: the network, wrapped by DDP / compile
    raw: torch.nn.Module         # the network itself: evaluated and saved
    criterion: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler
    amp: torch.dtype             # autocast dtype, None for fp32
    device: torch.device


def build_training(cfg, raw, device, steps_per_epoch, ranks=Ranks()):
    """The network on `device` in the configured layout, precision and wrappers, with its loss,
    optimizer, schedule and gradient scaler."""
    raw.to(device)
    if cfg['channels_last']:
        raw.use_channels_last()
    model = raw
    if ranks.world > 1:
        # evaluate() gives every rank rank 0's BatchNorm statistics: no broadcast per step.
        # Inception v3 / GoogLeNet's auxiliary heads get no gradient (their outputs are unused).
        model = DistributedDataParallel(
            raw, device_ids=[device.index] if device.type == 'cuda' else None,
            broadcast_buffers=False,
            find_unused_parameters=cfg['model'] in ('inception_v3', 'googlenet'))
    if cfg['compile']:
        model = torch.compile(model)
    optimizer = optimize_fn(cfg, raw.parameters())
    amp = amp_dtype(cfg, device)
    # fp16 needs its gradients scaled to stay representable; bf16 and fp32 do not
    scaler = torch.amp.GradScaler(device.type, enabled=amp == torch.float16)
    return Training(model, raw, loss_fn(cfg), optimizer,
                    schedule_fn(cfg, optimizer, steps_per_epoch), scaler, amp, device)


def train_step(t, x, y):
    """One optimizer step on a batch already on the device; (logits, loss), never synced."""
    with autocast(t.device, t.amp):
        logits = t.model(x)
        loss = t.criterion(logits.float(), y)
    t.optimizer.zero_grad(set_to_none=True)
    t.scaler.scale(loss).backward()
    t.scaler.step(t.optimizer)
    t.scaler.update()
    t.scheduler.step()
    return logits.detach(), loss.detach()


def train_one_epoch(t, loader, desc, ranks=Ranks()):
    """One pass over the training split; returns (loss, accuracy, seconds waiting for data),
    loss and accuracy over all ranks."""
    t.model.train()
    total_loss = torch.zeros((), device=t.device)
    correct = torch.zeros((), device=t.device, dtype=torch.long)
    seen, data_time = 0, 0.0
    bar = tqdm(loader, desc=desc, leave=False, unit='batch', disable=not ranks.is_main)
    tick = time.perf_counter()
    for step, (x, y, _) in enumerate(bar):
        data_time += time.perf_counter() - tick
        x, y = x.to(t.device, non_blocking=True), y.to(t.device, non_blocking=True)
        logits, loss = train_step(t, x, y)
        total_loss += loss * len(y)
        correct += (logits.argmax(1) == y).sum()
        seen += len(y)
        if step % 20 == 0:   # reading the loss waits for the device: not on every step
            running = total_loss.item() / seen
            # all ranks stop together: one rank stopping alone would leave the others waiting
            check_finite(sum_over_ranks([running], t.device)[0], t.optimizer)
            elapsed = bar.format_dict['elapsed'] or 1e-9
            bar.set_postfix(loss=f'{running:.3f}',
                            data=f'{data_time / (step + 1) * 1e3:.0f}ms',
                            step=f'{elapsed / (step + 1) * 1e3:.0f}ms')
        tick = time.perf_counter()
    loss_sum, right, seen = sum_over_ranks([total_loss.item(), correct.item(), seen], t.device)
    check_finite(loss_sum / seen, t.optimizer)
    return loss_sum / seen, right / seen, data_time


def check_finite(loss, optimizer):
    if not math.isfinite(loss):
        fail(f'the training loss became {loss}; lower lr (now {optimizer.param_groups[0]["lr"]:g}) '
             'or check the data. The last good checkpoint is kept.')


def evaluate(t, loader, ranks=Ranks()):
    """Loss and accuracy on a labelled split, each rank predicting its share."""
    broadcast_buffers(t.raw)
    logits, labels, _ = predict(t.raw, loader, t.device, desc='validate', amp=t.amp,
                                show=ranks.is_main)
    loss = t.criterion(logits, labels).item() * len(labels) if len(labels) else 0.0
    loss_sum, right, n = sum_over_ranks(
        [loss, (logits.argmax(1) == labels).sum().item(), len(labels)], t.device)
    return loss_sum / n, right / n


def prepare_run(cfg, args):
    """The run folder, and the checkpoint to resume from (or None)."""
    run_dir = run_dir_of(cfg)
    last = os.path.join(run_dir, 'last.pt')
    if args.resume and args.force:
        fail('--resume and --force contradict each other; give one')
    if args.resume:
        return run_dir, Checkpoint.load(last)
    if os.path.exists(last) and not args.force:
        fail(f'{run_dir} already holds a run; add --resume to continue it or --force to start '
             'over (or choose another --version)')
    return run_dir, None


def start_fresh(run_dir):
    """Clear the run folder of an old run, once the new one has been set up without error."""
    shutil.rmtree(run_dir, ignore_errors=True)   # no output of the old run may linger
    os.makedirs(run_dir, exist_ok=True)   # a network file system may keep a busy file


# Keys that may change when a run is resumed: they do not alter what the run computes so far.
RESUME_MAY_CHANGE = ('num_workers', 'eval_batch_size', 'device', 'tta', 'deterministic')


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


def run(cfg, args):
    """Train (or with args.refit, fit again) the run that `cfg`, a checked config, names."""
    ranks, device = distributed.start(cfg['device'])
    try:
        if cfg['batch_size'] % ranks.world:
            fail(f"batch_size={cfg['batch_size']} is the global batch and must split evenly "
                 f'over the {ranks.world} processes; choose a multiple of {ranks.world}')
        # one process writes the run folder: a second train.py or test.py on it stops
        lock = exclusive(run_dir_of(cfg)) if ranks.is_main else contextlib.nullcontext()
        with lock, reading(cfg['data_dir']):   # and aug_img may not replace the data meanwhile
            if args.refit:
                refit(cfg, args, ranks, device or pick_device(cfg['device']))
            else:
                train(cfg, args, ranks, device or pick_device(cfg['device']))
    finally:
        distributed.stop()


def train(cfg, args, ranks, device):
    run_dir, resume = prepare_run(cfg, args)
    seed_everything(cfg['seed'])
    configure_kernels(cfg, device)
    say = print if ranks.is_main else lambda *a, **k: None

    train_set = training_split(cfg)
    classes = train_set.classes
    # predict.py tiles whole frames at the scale and in the colours the model was trained on
    first = os.path.join(train_set.split_dir, train_set.samples[0][0])
    try:
        crop_size = list(image_size(first))
    except UnreadableImage as e:
        damaged(first, e)
    if crop_size != [cfg['crop_pixels']] * 2:
        say(f"warning: {cfg['data_dir']} has crops of {crop_size[0]}x{crop_size[1]} px; "
            f"{cfg['version']} was tuned for {cfg['crop_pixels']} px crops (aug_img.py -p "
            f"{cfg['crop_pixels']}): accuracy and speed may differ from its published numbers")
    channels = train_set[0][0].shape[0]
    # predict.py warns about frames unlike these (acquisition settings, grey-level range)
    familiar = familiarity.record(train_set, cfg['data_dir']) if ranks.is_main else None
    um_per_px = training_scale(cfg['data_dir'])   # predict.py brings new frames to it
    val_set = SEMDataset(cfg['data_dir'], 'validate', classes, input_size=cfg['input_size'])
    if ranks.world > 1 and (len(train_set) < cfg['batch_size'] or len(val_set) < ranks.world):
        fail(f"{cfg['data_dir']}: {len(train_set)} training / {len(val_set)} validation crops "
             f"are too few for batch_size={cfg['batch_size']} on {ranks.world} processes")
    data = {'train': train_set.fingerprint(), 'validate': val_set.fingerprint()}
    if resume:
        check_resumable(resume.config, cfg)
        check_same_data(resume, classes, data, cfg, '--resume')
        model = build_model(cfg, classes, pretrained=False)
        model.load_state_dict(resume.model)
    else:
        # a per-crop intensity treatment normalises each crop itself: no statistics needed
        per_split = cfg['normalize'] and cfg['intensity'] == 'none'
        mean, std = channel_stats(train_set) if per_split else ((0.0,) * 3, (1.0,) * 3)
        model = build_model(cfg, classes, mean, std)
    start = resume.epoch if resume else 0
    if resume and start >= cfg['epochs']:
        fail(f"--resume: {run_dir} has already trained {start} of epochs={cfg['epochs']}; "
             f'continue with --set epochs=N (N > {start})')
    check_input_size(model.to(device), cfg, channels)
    train_loader = make_loader(train_set, cfg, True, device, ranks)
    val_loader = make_loader(val_set, cfg, False, device, ranks)
    probed = None
    if cfg['probe_views'] and not resume:
        # before build_training: under torchrun, DDP then gives every rank rank 0's head
        probed = probe(model, cfg, train_set, train_loader, val_loader, device, ranks)
    t = build_training(cfg, model, device, len(train_loader), ranks)
    history, best_acc = [], -1.0
    if resume:
        t.optimizer.load_state_dict(resume.optimizer)
        t.scheduler.load_state_dict(resume.scheduler)
        if resume.scaler is not None:
            t.scaler.load_state_dict(resume.scaler)
        history, best_acc = resume.history, resume.best_val_acc
    elif ranks.is_main:
        start_fresh(run_dir)
    barrier()   # the run folder is ready before any process goes on
    if ranks.is_main:
        write_json_atomic(cfg, os.path.join(run_dir, 'config.json'))
    say(f"{cfg['name']}: {cfg['model']} on {device}"
        f"{f' x {ranks.world} processes' if ranks.world > 1 else ''}, {len(classes)} classes, "
        f'{len(train_set)} train / {len(val_set)} validation crops, '
        f"epochs {start + 1}..{cfg['epochs']} -> {run_dir}")
    if isinstance(train_loader, PreloadedBatches):
        where = device if train_loader.on_device else 'host memory'
        say(f'training crops decoded once: {train_loader.nbytes / 1e9:.2f} GB of uint8 in '
            f'{where}')

    def keep(row, train_seconds):
        """Add an epoch's row to the history; save last.pt, and best.pt when validation
        improved; say how it went."""
        nonlocal best_acc
        history.append(row)
        improved = row['val_acc'] > best_acc
        best_acc = max(best_acc, row['val_acc'])
        if not ranks.is_main:
            return
        checkpoint = Checkpoint(
            model=t.raw.state_dict(), classes=classes, config=cfg, crop_size=crop_size,
            channels=channels, um_per_px=um_per_px, familiar=familiar, data=data,
            epoch=row['epoch'], best_val_acc=best_acc, history=history,
            optimizer=t.optimizer.state_dict(), scheduler=t.scheduler.state_dict(),
            scaler=t.scaler.state_dict())
        if improved:
            checkpoint.save(os.path.join(run_dir, 'best.pt'))
        checkpoint.save(os.path.join(run_dir, 'last.pt'))
        write_history(history, run_dir)
        tqdm.write(f"epoch {row['epoch']:3d}/{cfg['epochs']}  train loss {row['train_loss']:.4f} "
                   f"acc {100 * row['train_acc']:5.1f}%  val loss {row['val_loss']:.4f} "
                   f"acc {100 * row['val_acc']:5.1f}%{' *' if improved else '  '}  "
                   f"lr {row['lr']:.2e}  {row['seconds']:.1f}s, "
                   f"{row['train_img_per_s']:.0f} img/s (data wait "
                   f"{100 * row['data_seconds'] / train_seconds:.1f}%)")

    if probed:
        keep(probed, probed['seconds'])
    for epoch in range(start, cfg['epochs']):
        seed_epoch(train_loader, cfg['seed'], epoch, ranks)
        started = time.perf_counter()
        lr = t.optimizer.param_groups[0]['lr']
        train_loss, train_acc, data_time = train_one_epoch(
            t, train_loader, f"epoch {epoch + 1}/{cfg['epochs']}", ranks)
        train_seconds = time.perf_counter() - started
        val_loss, val_acc = evaluate(t, val_loader, ranks)
        seconds = time.perf_counter() - started
        keep(dict(epoch=epoch + 1, train_loss=train_loss, train_acc=train_acc,
                  val_loss=val_loss, val_acc=val_acc, lr=lr, seconds=round(seconds, 2),
                  data_seconds=round(data_time, 2),
                  train_img_per_s=round(len(train_loader) * cfg['batch_size'] / train_seconds,
                                        1)), train_seconds)
    say(f'best validation accuracy {100 * best_acc:.2f}%; checkpoints in {run_dir}')
    if ranks.is_main:
        loader = val_loader if ranks.world == 1 else make_loader(val_set, cfg, False, device)
        finish(t.raw, t.device, t.amp, cfg, train_set, loader, os.path.join(run_dir, 'best.pt'))


def probe(model, cfg, train_set, train_loader, val_loader, device, ranks):
    """The linear probe (semcnn/training/probe.py) as epoch 0: the head fitted on the frozen
    network's features of probe_views views of every training crop. Its history row."""
    started = time.perf_counter()
    if cfg['channels_last']:   # as build_training will: three times the speed on a CPU
        model.use_channels_last()

    def views():   # the crops as they are, then the training loader's augmentation
        yield plain_batches(train_set, train_loader, cfg, device)
        for view in range(1, cfg['probe_views']):
            seed_epoch(train_loader, cfg['seed'], -view, ranks)   # apart from the epochs'
            yield train_loader
    row = linear_probe(model, sample_batches(train_set, cfg), views(), val_loader, device,
                       amp_dtype(cfg, device), cfg['label_smoothing'])
    seconds = time.perf_counter() - started
    return dict(epoch=0, **row, lr=0.0, seconds=round(seconds, 2), data_seconds=0.0,
                train_img_per_s=round(row['probe_crops'] / seconds, 1))


def refit(cfg, args, ranks, device):
    """--refit: finish() again on a trained run, as its own config says, without training."""
    if args.resume or args.force or ranks.world > 1:
        fail('--refit trains nothing: give it without --resume or --force, in one process '
             '(python train.py --refit)')
    cfg, path, best = open_run(argparse.Namespace(checkpoint='best', set=args.set),
                               cfg['dataset'], cfg['version'])
    model, _ = load_trained(cfg, path, best, device)
    train_set = training_split(cfg)
    val_set = SEMDataset(cfg['data_dir'], 'validate', train_set.classes,
                         input_size=cfg['input_size'])
    check_same_data(best, train_set.classes,
                    {'train': train_set.fingerprint(), 'validate': val_set.fingerprint()},
                    cfg, '--refit')
    finish(model, device, amp_dtype(cfg, device), cfg, train_set,
           make_loader(val_set, cfg, False, device), path)


def check_same_data(checkpoint, classes, data, cfg, option):
    """--resume and --refit go on with the crops the run was trained on: a dataset cut again
    since (another seed, other frames) would put the run's own training crops among those it
    validates on. A checkpoint from before fingerprints were kept is checked by its classes."""
    if checkpoint.classes != classes:
        fail(f"{option}: the run was trained on classes {checkpoint.classes}, "
             f"{cfg['data_dir']} has {classes}; give it the data it was trained on")
    changed = [split for split in data
               if checkpoint.data is not None and checkpoint.data.get(split) != data[split]]
    if changed:
        fail(f"{option}: {cfg['data_dir']} holds other {' and '.join(changed)} crops than the "
             f'run was trained on (cut again since?); train it again with --force')


def finish(model, device, amp, cfg, train_set, loader, path):
    """What best.pt (at `path`) needs besides its weights, fitted on the whole validation split:
    the temperature (on its outputs as test.py computes them, tta included) and the novelty
    record (semcnn/evaluation/novelty.py). Says what it fitted."""
    best = Checkpoint.load(path)
    model.load_state_dict(best.model)
    model.temperature = 1.0   # fitted on the raw outputs, not on those of an earlier fit
    outputs, labels, _ = predict(model, loader, device, desc='calibrate', tta=cfg['tta'],
                                 amp=amp)
    best.temperature = fit_temperature(outputs, labels)
    best.calibration = {'split': 'validate', **calibration_scores(
        outputs / best.temperature, labels, best.temperature)}
    best.novelty = fit_novelty(model, train_set, loader, cfg, device, amp)
    best.save(path)
    print(f"calibrated: temperature {best.temperature:.2f}, validation expected calibration "
          f"error {100 * best.calibration['ece_uncalibrated']:.1f}% -> "
          f"{100 * best.calibration['ece']:.1f}%; novelty: distance to the "
          f"{best.novelty['k']}th nearest of {len(best.novelty['bank'])} training crops, "
          f"flagging {100 * best.novelty['validation_flagged']:.1f}% of validation crops "
          f'({path})')


def write_history(history, run_dir):
    write_csv_atomic(pd.DataFrame(history), os.path.join(run_dir, 'history.csv'))
    learning_curve(history, os.path.join(run_dir, 'learning_curve.png'))

