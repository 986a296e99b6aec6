"""Predict new, unlabelled SEM frames with a trained run: class, composition and state per frame.

    python predict.py new_frames/                        # a folder of whole frames
    python predict.py a.jpg b.tif --version cpu30 --out results/additive
    python predict.py new_frames/ --bar 64               # rows of data bar to cut (default: detect)

Each frame loses its data bar (found as aug_img.py finds it), and is cut into tiles the size of
the run's training crops, evenly spaced to cover the frame; each tile is predicted (averaged over
its 8 flips/turns when the config sets tta). A frame's verdict is the mean probability of its
tiles. Frames must be imaged at the magnification of the training frames: tiles are cut in pixels.

A colour frame given to a model trained on gray crops is converted to gray (luma), with a note.
Writes to --out (default runs/<dataset>/<version>/predict/):
- frames.csv: one row per frame: Frame, Prediction, Composition, State (when the class names
  read <composition>[_<state>]), Agreement (share of tiles whose own prediction is the frame's),
  Tiles, and the mean probability of each class;
- tiles.csv: one row per tile: Frame, x, y, width, height, Prediction, probability per class.
No labels are needed; unreadable files are skipped with a warning.
"""
import argparse
import math
import os
import sys

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from config import add_checkpoint_argument, add_config_arguments, config_from_args
from dataset import to_tensor
from evaluation import add_probabilities, factor_columns, vote_frames
from fileio import exclusive, fail, run_dir_of, run_main, write_csv_atomic
from frames import UnreadableImage, cut_bar, is_image_name, read_image
from utils import (amp_dtype, autocast, checkpoint_path, load_trained, pick_device, predict_batch,
                   worker_count)


def get_args_parser():
    p = argparse.ArgumentParser(description='Predict whole, unlabelled SEM frames.')
    p.add_argument('frames', nargs='+', help='image files and/or folders of image files')
    add_config_arguments(p)
    add_checkpoint_argument(p)
    p.add_argument('--out', default=None, help='output folder (default <run>/predict)')
    p.add_argument('--bar', type=int, default=None,
                   help='rows of data bar to cut (default: detected per frame; 0 keeps all)')
    return p


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
    """Item i: (tiles as N x C x S x S floats, their (x, y) corners, frame path, problem or None,
    whether a colour frame was made gray for a model trained on gray crops)."""

    def __init__(self, files, tile, input_size, bar, channels):
        self.files, self.tile, self.input_size = files, tile, input_size
        self.bar, self.channels = bar, channels

    def __len__(self):
        return len(self.files)

    def __getitem__(self, i):
        path = self.files[i]
        width, height = self.tile
        try:
            pixels, bar = cut_bar(read_image(path), self.bar)
        except UnreadableImage as e:
            return None, None, path, str(e), False
        if pixels.shape[0] < height or pixels.shape[1] < width:
            return None, None, path, (f'{pixels.shape[1]}x{pixels.shape[0]} pixels without its '
                                      f'{bar}-row data bar, smaller than the {width}x{height} '
                                      'tiles the model was trained on'), False
        made_gray = self.channels == 1 and pixels.ndim == 3
        if made_gray:
            pixels = luma(pixels)
        corners = [(x, y) for y in tile_starts(pixels.shape[0], height)
                   for x in tile_starts(pixels.shape[1], width)]
        tiles = [to_tensor(pixels[y:y + height, x:x + width], self.input_size)
                 for x, y in corners]
        return torch.stack(tiles), corners, path, None, made_gray


def luma(pixels):
    """Gray (ITU-R BT.601 luma) of an H x W x 3 array, in its own dtype."""
    gray = pixels.astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    return gray.round().astype(pixels.dtype)


def main(args):
    cfg = config_from_args(args)
    if args.bar is not None and args.bar < 0:
        fail(f'--bar {args.bar}: give 0 or more rows')
    files = list_frames(args.frames)
    out = args.out or os.path.join(run_dir_of(cfg), 'predict')
    with exclusive(out):   # two predictions into one folder would mix their tables
        predict_frames(args, cfg, files, out)


def predict_frames(args, cfg, files, out):
    run_dir = run_dir_of(cfg)
    path = checkpoint_path(run_dir, args.checkpoint)
    device = pick_device(cfg['device'])
    model, classes, state = load_trained(cfg, path, device)
    if 'crop_size' not in state:
        fail(f'{path}: does not record the size of its training crops (written by an older '
             'train.py); train again to predict whole frames')
    tile = state['crop_size']
    frames = FrameTiles(files, tile, state['config']['input_size'], args.bar,
                        state.get('channels'))
    loader = DataLoader(frames, batch_size=None, num_workers=worker_count(cfg),
                        pin_memory=device.type == 'cuda')
    amp = amp_dtype(cfg, device)

    def probabilities(tiles):   # stay on the device: no wait for it between batches
        with autocast(device, amp):
            return predict_batch(model, tiles.to(device, non_blocking=True),
                                 cfg['tta']).softmax(1)

    # tiles of several frames share a batch: a frame has only a few dozen
    tile_rows, tile_probs, queued, made_gray = [], [], [], 0
    for tiles, corners, file, problem, gray in tqdm(loader, desc='predict', unit='frame'):
        if problem:
            tqdm.write(f'warning: skipping {file}: {problem}', file=sys.stderr)
            continue
        made_gray += gray
        queued.append(tiles)
        if sum(map(len, queued)) >= cfg['eval_batch_size']:
            tile_probs.append(probabilities(torch.cat(queued)))
            queued = []
        tile_rows += [{'Frame': file, 'x': x, 'y': y, 'width': tile[0], 'height': tile[1]}
                      for x, y in corners]
    if queued:
        tile_probs.append(probabilities(torch.cat(queued)))
    if not tile_rows:
        shown = ', '.join(files[:3]) + (', ...' if len(files) > 3 else '')
        fail(f'none of the {len(files)} files could be predicted ({shown}); see the warnings '
             'above')
    if made_gray:
        print(f'note: {made_gray} colour frame(s) converted to gray: the model was trained on '
              'gray crops')
    probs = torch.cat(tile_probs).double().cpu().numpy()
    for row, p in zip(tile_rows, probs):
        row['Prediction'] = classes[p.argmax()]
    order, _, counts, frame_probs, agree = vote_frames([r['Frame'] for r in tile_rows], probs)
    frame_rows = [{'Frame': f, 'Prediction': classes[p.argmax()], 'Agreement': round(a, 4),
                   'Tiles': n} for f, p, a, n in zip(order, frame_probs, agree.tolist(), counts)]
    write_table(frame_rows, frame_probs, classes, os.path.join(out, 'frames.csv'))
    write_table(tile_rows, probs, classes, os.path.join(out, 'tiles.csv'))
    print(f'{len(frame_rows)} frames ({len(tile_rows)} tiles) predicted -> {out}/frames.csv, '
          f'{out}/tiles.csv')


def write_table(rows, probs, classes, path):
    table = pd.DataFrame(rows)
    for position, (column, values) in enumerate(factor_columns(probs, classes).items(), 2):
        table.insert(position, column, values)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    write_csv_atomic(add_probabilities(table, probs, classes), path)


if __name__ == '__main__':
    run_main(main, get_args_parser().parse_args())
