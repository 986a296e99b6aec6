"""Predict new, unlabelled SEM frames with a trained run: class, composition and state per frame.

    python predict.py new_frames/                        # a folder of whole frames
    python predict.py a.jpg b.tif --version cpu30 --out results/additive
    python predict.py new_frames/ --bar 64               # rows of data bar to cut (default: detect)
    python predict.py x1000_frames/ --pixel-size 0.133   # their scale, when nothing records it

Each frame loses its data bar (found as aug_img.py finds it), and is cut into tiles the size of the
run's training crops, evenly spaced to cover the frame; each tile is predicted (averaged over its 8
flips/turns when the config sets tta). A tile of bare foil, a hole or off-specimen (under 65 %
of it shows cathode material, semcnn/data/material.py) is predicted but left out of the
vote, and so is a tile unlike the training material (its Novelty above 1: farther from the training
crops, in the network's features, than 99 % of the validation crops; semcnn/evaluation/novelty.py):
a frame's verdict is the mean probability of its other material tiles; a frame with too few
material tiles (under an eighth), or most of whose material tiles are novel, gets none; one
whose material tiles' median novelty is above that of every validation frame (the run's frame
limit) keeps its verdict with an "unusual material" warning.
Probabilities are calibrated (semcnn/evaluation/calibration.py). Tiles are cut in pixels, so each
frame is first brought to the training crops' scale (micrometres per pixel, recorded by train.py):
its own scale comes from --pixel-size, a TIFF pixel-size tag or its sidecar's magnification
(semcnn/files/scale.py); up to 2 times either way it is resampled quietly, up to 4 times with a
warning, beyond that it gets no verdict; a frame of unknown scale is read as it is, with a warning.
Each frame is held against what the checkpoint records of the training frames
(semcnn/evaluation/familiarity.py): acquisition settings from its sidecar (<frame>.txt or
<frame>.jpg.txt: magnification, kV, detector, working distance) and its grey-level mean and spread.

A colour frame given to a model trained on gray crops is converted to gray (luma), with a note.
Writes to --out (default runs/<dataset>/<version>/predict/):
- frames.csv: one row per frame (semcnn/evaluation/frame_table.py): Frame, Status (ok, warned:
  a verdict with a warning, or no verdict), Prediction, Composition, State (when the class names
  read <composition>[_<state>]; empty without a verdict), Confidence (the verdict's probability,
  calibrated: semcnn/evaluation/calibration.py), Agreement (share of its voting tiles whose own
  prediction is the frame's), Tiles, Material tiles, Novel tiles, Novelty (median over its
  material tiles; a frame above the run's limit, at most 1, is unlike the training material),
  Scale um/px and Scale from (the frame's own scale, and where it was found; empty when
  unknown), Warnings (why there is no verdict, and each way the frame differs from the training
  frames; one line on the terminal counts them), and the mean probability of each class over
  the voting tiles (material, not novel);
- tiles.csv: one row per tile: Frame, x, y, width, height, Material, Prediction, Composition,
  State (as in frames.csv), Novelty, probability per class;
- summary.csv: frames per verdict and status (also printed);
- overview.png: each frame as a thumbnail, its verdict, probability and status colour (green ok,
  orange warned, grey no verdict); 48 frames a page, then overview_2.png, ...
CSV files start with a byte-order mark, so that Excel reads non-ASCII frame names right.
No labels are needed; a file that cannot be read or tiled gets a row without a verdict, its
problem in Warnings.
"""
import argparse
import math
import os
import sys
from collections import Counter

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from config import add_checkpoint_argument, add_config_arguments, open_run, run_of_args
from semcnn.data.images import rescale_pixels, to_tensor
from semcnn.data.loaders import worker_count
from semcnn.data.material import MaterialMap, shows_material
from semcnn.evaluation.familiarity import frame_warnings, grey_statistics, warning_kind
from semcnn.evaluation.novelty import (frame_limit_of, novelty_of, predict_with_features,
                                       space_of)
from semcnn.evaluation.frame_table import frame_table, status_counts
from semcnn.evaluation.overview import overview_pngs, thumbnail
from semcnn.evaluation.scores import add_probabilities, factor_columns, vote_frames
from semcnn.files.atomic import write_csv_atomic
from semcnn.files.errors import fail, run_main
from semcnn.files.frames import UnreadableImage, cut_bar, is_image_name, read_image
from semcnn.files.locks import exclusive
from semcnn.files.scale import check_pixel_size, frame_scale, plan
from semcnn.files.sidecar import acquisition, read_sidecar
from semcnn.training.checkpoint import load_trained, note_unfitted
from semcnn.training.device import amp_dtype, autocast, pick_device
from semcnn.training.inference import predict_batch


def get_args_parser():
    p = argparse.ArgumentParser(description='Predict whole, unlabelled SEM frames.')
    p.add_argument('frames', nargs='+', help='image files and/or folders of image files')
    add_config_arguments(p)
    add_checkpoint_argument(p)
    p.add_argument('--out', default=None, help='output folder (default <run>/predict)')
    p.add_argument('--bar', type=int, default=None,
                   help='rows of data bar to cut (default: detected per frame; 0 keeps all)')
    p.add_argument('--min-confidence', type=float, default=MIN_CONFIDENCE, metavar='P',
                   help='a verdict less probable than P gets an "uncertain" warning (default '
                        f'{MIN_CONFIDENCE}: below an even chance of being right)')
    p.add_argument('--pixel-size', type=float, default=None, metavar='UM',
                   help="the frames' scale in micrometres per pixel (default: from each "
                        "frame's TIFF tags or calibrated sidecar; docs/data.md 'Scale')")
    return p


MIN_CONFIDENCE = 0.5


def list_frames(items):
    """Image files named on the command line or found directly inside named folders."""
    files = []
    for item in items:
        if os.path.isdir(item):
            files += [os.path.join(item, n) for n in sorted(os.listdir(item))
                      if is_image_name(n) and os.path.isfile(os.path.join(item, n))]
        elif os.path.isfile(item):
            files.append(item)
        else:
            fail(f'{item}: no such file or folder')
    if not files:
        fail(f"{', '.join(items)}: no image files found")
    return list(dict.fromkeys(files))   # a frame named twice is predicted once


def tile_starts(length, side):
    """Evenly spaced starts of the fewest tiles of `side` that cover `length`."""
    count = math.ceil(length / side)
    return np.linspace(0, length - side, count).round().astype(int).tolist()


class FrameTiles(Dataset):
    """Item i, a dict: path, problem (why the frame cannot be predicted, or None), tiles (N x C x
    S x S floats), corners ((x, y) of each, in the frame at the training scale), material (share
    of each tile that shows cathode material), grey (median grey-level mean and std of its
    material tiles; None without any), settings (the sidecar's acquisition settings), scale (the
    frame's Scale), scale_warning (or None), made_gray (a colour frame made gray for a model
    trained on gray crops), thumbnail (the frame without its bar, small, for the overview; None
    when it cannot be read)."""

    def __init__(self, files, tile, input_size, bar, channels, um_per_px, pixel_size):
        self.files, self.tile, self.input_size = files, tile, input_size
        self.bar, self.channels = bar, channels
        self.um_per_px, self.pixel_size = um_per_px, pixel_size

    def __len__(self):
        return len(self.files)

    def __getitem__(self, i):
        path = self.files[i]
        width, height = self.tile
        scale = frame_scale(path, self.pixel_size)
        how = plan(scale, self.um_per_px)
        try:
            pixels, bar = cut_bar(read_image(path), self.bar)
        except UnreadableImage as e:
            return {'path': path, 'problem': f'unreadable: {e}', 'scale': scale,
                    'thumbnail': None}
        small = thumbnail(pixels)
        if how.problem:   # listed in frames.csv without a verdict, the reason its warning
            return {'path': path, 'problem': how.problem, 'scale': scale, 'thumbnail': small}
        pixels = rescale_pixels(pixels, how.factor)
        if pixels.shape[0] < height or pixels.shape[1] < width:
            return {'path': path, 'scale': scale, 'thumbnail': small, 'problem': (
                f'too small: {pixels.shape[1]}x{pixels.shape[0]} pixels without its {bar}-row '
                f'data bar (at the training scale), smaller than the {width}x{height} tiles the '
                'model was trained on')}
        made_gray = self.channels == 1 and pixels.ndim == 3
        if made_gray:
            pixels = luma(pixels)
        corners = [(x, y) for y in tile_starts(pixels.shape[0], height)
                   for x in tile_starts(pixels.shape[1], width)]
        crops = [pixels[y:y + height, x:x + width] for x, y in corners]
        xs, ys = zip(*corners)
        material = MaterialMap(pixels).shares(xs, ys, width, height)
        shown = [c for c, share in zip(crops, material) if shows_material(share)]
        grey = np.median([grey_statistics(c) for c in shown], axis=0).tolist() if shown else None
        settings = acquisition(read_sidecar(path))
        if scale.known and self.um_per_px is not None:
            settings['magnification'] = ''   # the scale is known and matched: nothing to warn of
        return {'path': path, 'problem': None, 'made_gray': made_gray,
                'tiles': torch.stack([to_tensor(c, self.input_size) for c in crops]),
                'corners': corners, 'material': material.tolist(), 'grey': grey,
                'settings': settings, 'scale': scale, 'scale_warning': how.warning,
                'thumbnail': small}


def luma(pixels):
    """Gray (ITU-R BT.601 luma) of an H x W x 3 array, in its own dtype."""
    gray = pixels.astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    return gray.round().astype(pixels.dtype)


def main(args):
    if args.bar is not None and args.bar < 0:
        fail(f'--bar {args.bar}: give 0 or more rows')
    check_pixel_size(args.pixel_size)
    if not 0 <= args.min_confidence <= 1:
        fail(f'--min-confidence {args.min_confidence}: give a probability from 0 to 1')
    files = list_frames(args.frames)
    dataset, version, run_dir = run_of_args(args)
    out = args.out or os.path.join(run_dir, 'predict')
    with exclusive(out):   # two predictions into one folder would mix their tables
        predict_frames(args, *open_run(args, dataset, version), files, out)


def predict_frames(args, cfg, path, checkpoint, files, out):
    device = pick_device(cfg['device'])
    model, classes = load_trained(cfg, path, checkpoint, device)
    note_unfitted(cfg, path, checkpoint)
    if checkpoint.crop_size is None:
        fail(f'{path}: does not record the size of its training crops (written by an older '
             'train.py); train again to predict whole frames')
    tile = checkpoint.crop_size
    if args.pixel_size is not None and checkpoint.um_per_px is None:
        print(f'note: {path} does not record the scale of its training crops (cut without a '
              'known scale, or by an older aug_img.py): --pixel-size is not used')
    frames = FrameTiles(files, tile, cfg['input_size'], args.bar, checkpoint.channels,
                        checkpoint.um_per_px, args.pixel_size)
    loader = DataLoader(frames, batch_size=None, num_workers=worker_count(cfg),
                        pin_memory=device.type == 'cuda')
    amp = amp_dtype(cfg, device)

    def probabilities(tiles):   # stay on the device: no wait for it between batches
        x = tiles.to(device, non_blocking=True)
        with autocast(device, amp):
            if checkpoint.novelty is None:
                return predict_batch(model, x, cfg['tta']).softmax(1), None
            logits, feats = predict_with_features(model, x, cfg['tta'],
                                                  space_of(checkpoint.novelty))
            return logits.softmax(1), feats

    # tiles of several frames share a batch: a frame has only a few dozen
    tile_rows, tile_probs, queued, frames, shares = [], [], [], [], []
    untiled = []   # frames that cannot be read or tiled: listed without a verdict
    for item in tqdm(loader, desc='predict', unit='frame'):
        if item['problem']:
            tqdm.write(f"warning: {item['path']}: {item['problem']}", file=sys.stderr)
            untiled.append(item)
            continue
        queued.append(item.pop('tiles'))   # the frame's other facts are kept, not its pixels
        frames.append(item)
        if sum(map(len, queued)) >= cfg['eval_batch_size']:
            tile_probs.append(probabilities(torch.cat(queued)))
            queued = []
        tile_rows += [{'Frame': item['path'], 'x': x, 'y': y, 'width': tile[0],
                       'height': tile[1]} for x, y in item['corners']]
        shares += item['material']
    if queued:
        tile_probs.append(probabilities(torch.cat(queued)))
    if not tile_rows:
        shown = ', '.join(files[:3]) + (', ...' if len(files) > 3 else '')
        first = f" ({untiled[0]['path']}: {untiled[0]['problem']})" if untiled else ''
        fail(f'none of the {len(files)} files could be predicted ({shown}); see the warnings '
             f'above{first}')
    made_gray = sum(f['made_gray'] for f in frames)
    if made_gray:
        print(f'note: {made_gray} colour frame(s) converted to gray: the model was trained on '
              'gray crops')
    probs = torch.cat([p for p, _ in tile_probs]).double().cpu().numpy()
    novelty = (novelty_of(checkpoint.novelty, torch.cat([f for _, f in tile_probs]).cpu())
               if checkpoint.novelty is not None else None)
    material = shows_material(shares)
    for i, (row, p, shown) in enumerate(zip(tile_rows, probs, material)):
        row['Material'] = bool(shown)
        row['Prediction'] = classes[p.argmax()]
        if novelty is not None:
            row['Novelty'] = round(float(novelty[i]), 3)
    votes = vote_frames([r['Frame'] for r in tile_rows], probs, material=material,
                        novelty=novelty,
                        frame_limit=frame_limit_of(checkpoint.novelty))
    warnings = frame_warnings_of(frames, votes, checkpoint)
    scales = {f['path']: f['scale'] for f in frames}
    for found, p, judged in zip(warnings, votes.probs, votes.has_verdict):
        if judged and p.max() < args.min_confidence:
            found.append(f'uncertain: P {p.max():.2f} below --min-confidence '
                         f'{args.min_confidence:g}')
    extra = {name: [scale_columns(scales[f])[name] for f in votes.frames]
             for name in scale_columns(None)}
    table = frame_table(votes, classes, warnings, extra,
                        [{'Frame': r['path'], 'Warnings': r['problem'],
                          **scale_columns(r['scale'])} for r in untiled])
    os.makedirs(out, exist_ok=True)
    write_csv_atomic(table, os.path.join(out, 'frames.csv'))
    write_table(tile_rows, probs, classes, os.path.join(out, 'tiles.csv'))
    counts = status_counts(table)
    write_csv_atomic(counts, os.path.join(out, 'summary.csv'))
    thumbnails = {f['path']: f['thumbnail'] for f in frames + untiled}
    pages = overview_pngs(table, thumbnails, os.path.join(out, 'overview.png'))
    say_warnings(warnings + [[r['problem']] for r in untiled])
    print(counts.to_string(index=False))
    print(f'{len(table)} frames ({len(tile_rows)} tiles) predicted -> {out}/frames.csv, '
          f"tiles.csv, summary.csv, {', '.join(os.path.basename(p) for p in pages)}")


def scale_columns(scale):
    """frames.csv's columns of a frame's Scale (None: their names)."""
    return {'Scale um/px': f'{scale.um_per_px:.4g}' if scale and scale.known else '',
            'Scale from': scale.source if scale else ''}


def frame_warnings_of(frames, votes, checkpoint):
    """Per frame (in the order of `votes`), its warnings: no verdict, and how it differs from
    the training frames (when the checkpoint records them)."""
    familiar = checkpoint.familiar
    if familiar is None:
        print('note: this run does not record its training frames (trained before train.py '
              'kept them); acquisition settings and grey levels are not checked')
    by_path = {f['path']: f for f in frames}
    warnings = []
    for i, path in enumerate(votes.frames):
        found = votes.warnings(i)
        if by_path[path]['scale_warning']:
            found.append(by_path[path]['scale_warning'])
        if familiar is not None:
            found += frame_warnings(familiar, by_path[path]['settings'], by_path[path]['grey'])
        warnings.append(found)
    return warnings


def say_warnings(warnings):
    """One line on the terminal for all the frames' warnings, by kind."""
    kinds = Counter(warning_kind(w) for found in warnings for w in set(found))
    if not kinds:
        return
    flagged = sum(bool(found) for found in warnings)
    print(f'warning: {flagged} of {len(warnings)} frames have warnings ('
          + ', '.join(f'{kind}: {n}' for kind, n in kinds.most_common())
          + ") -- see the Warnings column of frames.csv and docs/prediction.md",
          file=sys.stderr)


def write_table(rows, probs, classes, path):
    """tiles.csv: the rows, with Composition and State after Prediction and a probability per
    class."""
    table = pd.DataFrame(rows)
    after = table.columns.get_loc('Prediction') + 1
    for position, (column, values) in enumerate(factor_columns(probs, classes).items(), after):
        table.insert(position, column, values)
    write_csv_atomic(add_probabilities(table, probs, classes), path)


if __name__ == '__main__':
    run_main(main, get_args_parser().parse_args())
