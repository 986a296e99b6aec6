"""Cut train / validate / test crops from SEM frames, split by source frame.

    python aug_img.py source 1000 -p 224 -t 10 -r 20 -n example
    python aug_img.py source 1920 -p 224 --crops 1280,320,320 -n paper_split   # the paper's counts

`source/<class>/` holds the frames of one class. Per class, the frames are shuffled with the seed
and split: `-t` percent go to test, `-r` percent of the rest to validate, the others to train.
Frames of one class are often neighbouring fields of view, numbered in order: with `--block N`,
runs of N frames that follow each other in the numbers of their names go to one split together
(each split gets at least its share, in whole runs), so a test frame's neighbours are not in
training.
The `size` crops of a class are divided between the splits in the same proportions (or as
`--crops train,validate,test` says), and each split's crops are cut only from its own frames, so
no frame feeds two splits. The instrument's data bar is cut off every frame before cropping.

Crops are cut at one physical scale. Each frame's scale (micrometres per pixel) comes from
`--pixel-size`, a TIFF pixel-size tag, or the sidecar's magnification on a calibrated instrument
(semcnn/files/scale.py); frames at another scale than the most common one are resampled to it
before cropping (more than 4 times off: left out), and frames of unknown scale are cut as they
are. The terminal says which; the manifest records each crop's scale, and train.py keeps it.

Crops without enough cathode material (under 65 % of the crop shows it, as
semcnn/data/material.py judges: bare current-collector foil, a hole, off-specimen) are counted per
class on the terminal; they are label noise for training. `--skip-bare` cuts crops only where
material shows, drawing other positions of the same frame in their place (a frame with none gives
its crops to its split-mates).

Output (data/.latest then names it: train.py and test.py use it when given no --dataset):
data/<name>/{train,validate,test}/<class>/*.tif (lossless, the source pixels; gray frames
stay one channel), data/<name>/manifest.csv (one row per crop: where it was cut, its share of
material, the frame's acquisition settings from its sidecar <frame>.txt, its scale;
semcnn/files/manifest.py)
and data/<name>/arguments.json.
The dataset is built in a hidden folder and renamed into place when complete.
"""
import argparse
import multiprocessing
import os
import re
import shutil
import sys
import tempfile
from collections import Counter

import numpy as np
from tqdm import tqdm

from semcnn.data.material import MIN_SHARE, MaterialMap, shows_material
from semcnn.files.atomic import (atomic_path, make_public, write_failed, write_json_atomic,
                                 write_rows_atomic)
from semcnn.files.errors import fail, run_main
from semcnn.files.frames import (UnreadableImage, cut_bar, image_size, is_image_name, read_image,
                                 save_crop)
from semcnn.files.locks import exclusive
from semcnn.files.manifest import MANIFEST_COLUMNS
from semcnn.files.paths import DATA_ROOT, LATEST_DATASET, is_dataset_name
from semcnn.files.scale import check_pixel_size, common_scale, frame_scale, plan
from semcnn.files.sidecar import ACQUISITION_COLUMNS, acquisition, read_sidecar

SPLITS = ('train', 'validate', 'test')
MATERIAL = MANIFEST_COLUMNS.index('material')


def get_args_parser():
    p = argparse.ArgumentParser(description='Cut train/validate/test crops from SEM frames, '
                                            'split by source frame.')
    p.add_argument('path', help='folder of class folders (e.g. source)', type=str)
    p.add_argument('size', help='crops per class, all splits together', type=int)
    p.add_argument('-p', '--pixel', default='half',
                   help="crop side in pixels; 'half' = half the frame's width and height "
                        "(default); 'full' = the whole frame without its data bar, one per "
                        "frame (size and --crops are then ignored)")
    p.add_argument('-t', '--test', type=int, default=10,
                   help='percent of frames for test (default 10)')
    p.add_argument('-r', '--ratio', type=int, default=20,
                   help='percent of the remaining frames for validation (default 20)')
    p.add_argument('-n', '--name', default=None, help='dataset name (default size{size}_pixel{p})')
    p.add_argument('--seed', type=int, default=1345879,
                   help='which frames go to which split and where crops are cut; the same seed '
                        'on the same frames gives the same dataset, file for file (default '
                        '%(default)s)')
    p.add_argument('--block', type=int, default=1, metavar='N',
                   help='runs of N frames, consecutive in the numbers of their names, go to one '
                        'split together (default 1: each frame on its own)')
    p.add_argument('-v', '--verbose', action='store_true', help='print per-class details')
    p.add_argument('--crops', default=None, metavar='TRAIN,VALIDATE,TEST',
                   help='explicit crops per class for each split, e.g. 1280,320,320')
    p.add_argument('--bar', type=int, default=None,
                   help='rows of data bar to cut (default: detected per frame; 0 keeps all)')
    p.add_argument('--format', choices=('tif', 'png'), default='tif',
                   help='crop file format, both lossless (tif is faster to write)')
    p.add_argument('--skip-bare', action='store_true',
                   help='cut crops only where cathode material shows (not on bare foil, holes, '
                        'off-specimen); other positions of the frame are drawn in their place')
    p.add_argument('--exclude', default=None, metavar='FILE',
                   help='a text file of frames to leave out, one a line, as <class>/<file> '
                        '(transfer.py leaves a group of frames out this way); a class left '
                        'without frames is dropped')
    p.add_argument('--workers', type=int, default=os.cpu_count() or 1,
                   help='processes decoding frames and writing crops (default: one per core, '
                        '%(default)s here)')
    p.add_argument('--pixel-size', type=float, default=None, metavar='UM',
                   help="the frames' scale in micrometres per pixel (default: from each "
                        "frame's TIFF tags or calibrated sidecar; docs/data.md 'Scale')")
    p.add_argument('--force', action='store_true', help='replace an existing dataset folder')
    return p


def is_count(text):
    """Plain ASCII digits: str.isdigit() alone also takes '²' or '٣', which int() refuses."""
    return text.isascii() and text.isdigit()


def parse_pixel(value):
    """'half', 'full' or a positive integer side length."""
    text = str(value).strip().lower()
    if text in ('half', 'full'):
        return text
    if is_count(text) and int(text) > 0:
        return int(text)
    fail(f"-p/--pixel {value!r}: give a crop side in pixels (e.g. 224), 'half' or 'full'")


def check_args(args):
    """Validate the command line; exit with one line on the first problem."""
    args.pixel = parse_pixel(args.pixel)
    if not os.path.isdir(args.path):
        fail(f'{args.path}: no such folder; give the folder that holds one sub-folder per class')
    if not 0 < args.test < 100 or not 0 < args.ratio < 100 or args.test + args.ratio >= 100:
        fail(f'-t {args.test} -r {args.ratio}: each must be between 1 and 99 and together '
             'under 100, so that train, validate and test all get frames')
    if args.size <= 0:
        fail(f'size {args.size}: give a positive number of crops per class')
    if args.bar is not None and args.bar < 0:
        fail(f'--bar {args.bar}: give a number of rows, 0 or more')
    if args.workers < 1:
        fail(f'--workers {args.workers}: give 1 or more')
    if args.block < 1:
        fail(f'--block {args.block}: give 1 (each frame on its own) or more frames per run')
    check_pixel_size(args.pixel_size)
    if args.name is None:
        args.name = f'size{args.size}_pixel{args.pixel}'
    if not is_dataset_name(args.name):
        fail(f'-n {args.name!r}: a dataset name is one plain folder name inside {DATA_ROOT}/ '
             "(no slashes, not starting with a dot, without '.partial-' or '.replaced-', "
             "which name aug_img's unfinished work)")
    args.split_crops = crop_counts(args)
    args.excluded = read_exclusions(args.exclude)


def read_exclusions(path):
    """The set of '<class>/<file>' names listed in `path` (None: no file, nothing left out)."""
    if path is None:
        return frozenset()
    try:
        with open(path, encoding='utf-8') as f:
            lines = [line.strip() for line in f]
    except (OSError, UnicodeDecodeError) as e:
        fail(f'--exclude {path}: cannot read it ({e}); give a text file of <class>/<file> lines')
    return frozenset(line.replace('\\', '/') for line in lines if line)


def crop_counts(args):
    """Crops per class for (train, validate, test); None each with 'full' (one per frame)."""
    if args.pixel == 'full':
        return (None, None, None)
    if args.crops is not None:
        parts = args.crops.split(',')
        if len(parts) != 3 or not all(is_count(p.strip()) and int(p) > 0 for p in parts):
            fail(f'--crops {args.crops!r}: give three positive counts, train,validate,test '
                 '(e.g. 1280,320,320)')
        return tuple(int(p) for p in parts)
    test = round(args.size * args.test / 100)
    validate = round((args.size - test) * args.ratio / 100)
    counts = (args.size - test - validate, validate, test)
    if min(counts) < 1:
        fail(f'size {args.size}: too few crops to give train, validate and test at least one '
             f'each with -t {args.test} -r {args.ratio} (got {counts}); use a larger size')
    return counts


def split_frames(cls, frames, args, rng):
    """Shuffle the frames of one class and cut them into (train, validate, test) lists.

    Files that share a name stem (frame_001.tif and frame_001.jpg: often two exports of one
    image) count as one frame and stay in one split. With args.block > 1, see blocked_split.
    """
    groups = {}
    for file in frames:
        groups.setdefault(os.path.splitext(os.path.basename(file))[0].lower(), []).append(file)
    units = [groups[stem] for stem in sorted(groups)]
    if len(units) < 3:
        fail(f'class {cls}: {len(units)} usable frame(s); at least 3 are needed so that '
             'train, validate and test each get one (add frames or drop the class)')
    n_test = max(1, round(len(units) * args.test / 100))
    n_val = max(1, round((len(units) - n_test) * args.ratio / 100))
    if n_test + n_val >= len(units):
        fail(f'class {cls}: {len(units)} frames with -t {args.test} -r {args.ratio} leave none '
             'for train; lower -t/-r or add frames')
    if args.block > 1:
        cuts = blocked_split(cls, units, args.block, n_test, n_val, rng)
    else:
        order = [units[i] for i in rng.permutation(len(units))]
        cuts = (order[n_test + n_val:], order[n_test:n_test + n_val], order[:n_test])
    return [[file for unit in part for file in unit] for part in cuts]


def frame_number(unit):
    """Sort key of a frame (its files): the last number in its name, then the name; a frame
    without a number comes after those with one."""
    stem = os.path.splitext(os.path.basename(unit[0]))[0]
    numbers = re.findall(r'\d+', stem)
    return (0, int(numbers[-1]), stem) if numbers else (1, 0, stem)


def blocked_split(cls, units, block, n_test, n_val, rng):
    """(train, validate, test) frames in runs of `block` frames consecutive in number order:
    the runs are shuffled, test takes runs until it has n_test frames, then validate until
    n_val, and train the rest."""
    ordered = sorted(units, key=frame_number)
    runs = [ordered[i:i + block] for i in range(0, len(ordered), block)]
    if len(runs) < 3:
        fail(f'class {cls}: {len(units)} frames make {len(runs)} run(s) of --block {block}; '
             'at least 3 are needed so that train, validate and test each get one (lower '
             '--block)')
    order = [runs[i] for i in rng.permutation(len(runs))]
    parts, taken = ([], []), 0
    # each split gets at least one run: test leaves two for the others, validate one for train
    for part, wanted, spare in zip(parts, (n_test, n_val), (2, 1)):
        while taken < len(order) - spare and (not part or sum(map(len, part)) < wanted):
            part.append(order[taken])
            taken += 1
    test, validate = ([unit for run in part for unit in run] for part in parts)
    return [unit for run in order[taken:] for unit in run], validate, test


def list_classes(path, pixel, verbose, excluded=frozenset()):
    """{class: [usable frame paths]}; unusable files are reported and left out, and so are the
    frames named '<class>/<file>' in `excluded` (a class left without any is dropped).

    Reads each image's header only; a fixed crop side that does not fit a frame stops here,
    before anything is written (the data bar is checked once the frame is decoded).
    """
    classes = sorted(d for d in os.listdir(path)
                     if os.path.isdir(os.path.join(path, d)) and not d.startswith('.'))
    if len(classes) < 2:
        fail(f'{path}: found {len(classes)} class folder(s); a classifier needs at least 2 '
             '(one sub-folder of frames per class)')
    frames, skipped, left_out = {}, Counter(), Counter()
    for cls in classes:
        usable, too_small = [], []
        for name in sorted(os.listdir(os.path.join(path, cls))):
            file = os.path.join(path, cls, name)
            if not os.path.isfile(file):
                continue
            if f'{cls}/{name}' in excluded:
                left_out[cls] += 1
                continue
            if not is_image_name(name):
                skipped[cls] += 1
                continue
            try:
                width, height = image_size(file)
            except UnreadableImage as e:
                print(f'warning: skipping {file}: {e}', file=sys.stderr)
                continue
            if isinstance(pixel, int) and (width < pixel or height < pixel):
                too_small.append(f'{file} is {width}x{height} pixels')
                print(f'warning: skipping {file}: {width}x{height} pixels, smaller than the '
                      f'{pixel}-pixel crop', file=sys.stderr)
                continue
            usable.append(file)
        if too_small and not usable:
            fail(f'class {cls}: every frame is smaller than the {pixel}-pixel crop '
                 f'({too_small[0]}); use a smaller -p')
        if usable or not left_out[cls]:
            frames[cls] = usable
    if excluded:
        dropped = sorted(set(classes) - set(frames))
        print(f'--exclude: {sum(left_out.values())} frames left out'
              + (f"; classes dropped: {', '.join(dropped)}" if dropped else ''))
        if len(frames) < 2:
            fail(f'--exclude {len(excluded)} frames: {len(frames)} class(es) keep frames; a '
                 'classifier needs at least 2')
    if verbose:
        for cls in frames:
            print(f'{cls}: {len(frames[cls])} frames, {skipped[cls]} non-image files skipped')
    return frames


def plan_tasks(frames, args):
    """One task per frame: which split it feeds and how many crops to cut from it."""
    tasks = []
    for class_index, (cls, files) in enumerate(sorted(frames.items())):
        rng = np.random.default_rng([args.seed, class_index])
        for split, split_files, count in zip(SPLITS, split_frames(cls, files, args, rng),
                                             args.split_crops):
            per_frame = ([1] * len(split_files) if args.pixel == 'full'
                         else share_out(count, len(split_files)))
            for frame_index, (file, n) in enumerate(zip(split_files, per_frame)):
                if n == 0:      # fewer crops than frames: this frame gives none
                    continue
                tasks.append(dict(file=file, cls=cls, split=split, n=n, tag='',
                                  seed=[args.seed, class_index, SPLITS.index(split), frame_index]))
    return tasks


def plan_scales(tasks, args):
    """Each task with the factor that brings its frame to the dataset's scale (the most common
    one) and the scale its crops are recorded at (manifest: um_per_px, scale_source). Says what
    was found; a frame too far from that scale gives its crops to its split-mates."""
    scales = {t['file']: frame_scale(t['file'], args.pixel_size) for t in tasks}
    target = common_scale(scales.values())
    if target is None:
        print('scale: unknown for every frame (no --pixel-size, TIFF pixel-size tag or '
              "calibrated sidecar): crops are cut in pixels; docs/data.md 'Scale'")
    kept, problems, unknown, resampled = [], [], set(), set()
    for task in tasks:
        scale = scales[task['file']]
        how = plan(scale, target)
        if how.problem:
            problems.append(task)
            continue
        if target is not None and not scale.known:
            unknown.add(task['file'])
        elif how.factor != 1:
            resampled.add(task['file'])
        task.update(zoom=how.factor, scale=[f'{target:.6g}', scale.source] if scale.known
                    else ['', scale.source])
        kept.append(task)
    if target is not None:
        sources = Counter(s.source for s in scales.values() if s.known)
        print(f'scale: {target:.4g} um/pixel, the most common of {len(scales)} frames ('
              + ', '.join(f'{n} from {source}' for source, n in sources.most_common()) + ')'
              + (f'; {len(resampled)} frames at other scales resampled to it' if resampled
                 else ''))
    if unknown:
        print(f'warning: {len(unknown)} frames of unknown scale cut as they are, as if at '
              f'{target:.4g} um/pixel; give --pixel-size if they are not', file=sys.stderr)
    for task in {t['file']: t for t in problems}.values():
        print(f"warning: skipping {task['file']}: {plan(scales[task['file']], target).problem}",
              file=sys.stderr)
    return kept + reassign(problems, kept, {t['file'] for t in kept}, 0, args.pixel == 'full')


def share_out(count, n_frames):
    """`count` crops spread over `n_frames` frames as evenly as possible."""
    return [count // n_frames + (i < count % n_frames) for i in range(n_frames)]


def cut_frame(task, pixel, bar, out_dir, fmt, skip_bare):
    """Decode one frame once and write its crops. Returns (manifest rows, bar rows, problem):
    problem is None, or the warning for a frame that was skipped (its crops go to others)."""
    try:
        pixels = read_image(task['file'])
    except UnreadableImage as e:
        return [], None, f"skipping {task['file']}: {e}"
    pixels, bar_rows = cut_bar(pixels, bar)
    if task['zoom'] != 1:   # to the dataset's scale (plan_scales); torch loads only then
        from semcnn.data.images import rescale_pixels
        pixels = rescale_pixels(pixels, task['zoom'])
    height, width = pixels.shape[:2]
    if pixel == 'half':
        cw, ch = width // 2, height // 2
    elif pixel == 'full':
        cw, ch = width, height
    else:
        cw = ch = pixel
    if cw < 1 or ch < 1 or cw > width or ch > height:
        return [], bar_rows, (f"skipping {task['file']}: {width}x{height} pixels without its "
                              f'{bar_rows}-row data bar, too small for a {cw}x{ch} crop')
    rng = np.random.default_rng(task['seed'])
    material = MaterialMap(pixels)
    if skip_bare:
        usable = np.flatnonzero(shows_material(material.position_shares(cw, ch, width, height)))
        if not len(usable):
            return [], bar_rows, (f"skipping {task['file']}: no {cw}x{ch} crop in it shows "
                                  f'cathode material on {100 * MIN_SHARE:.0f} % of its area '
                                  '(--skip-bare)')
        ys, xs = np.divmod(rng.choice(usable, size=task['n']), width - cw + 1)
        xs, ys = xs.tolist(), ys.tolist()
    else:   # the draws of earlier versions: a dataset cut again with its seed is the same
        xs = rng.integers(0, width - cw + 1, size=task['n']).tolist()
        ys = rng.integers(0, height - ch + 1, size=task['n']).tolist()
    shares = material.shares(xs, ys, cw, ch).round(3).tolist()
    settings = acquisition(read_sidecar(task['file']))
    stem = os.path.basename(task['file']).replace('.', '_')   # frame_1.tif and frame_1.jpg differ
    rows = []
    for i, (x, y, share) in enumerate(zip(xs, ys, shares)):
        rel = os.path.join(task['split'], task['cls'], f"{stem}_{task['tag']}{i:04d}_x{x}_y{y}.{fmt}")
        save_crop(os.path.join(out_dir, rel), pixels[y:y + ch, x:x + cw], fmt)
        rows.append([task['split'], task['cls'], task['file'], x, y, cw, ch, bar_rows, rel, share]
                    + [settings[c] for c in ACQUISITION_COLUMNS] + task['scale'])
    return rows, bar_rows, None


def _cut_frame_star(job):
    return job[0], cut_frame(*job)


def run_tasks(tasks, args, out_dir):
    """Cut all frames on all cores; crops of a frame that fails to decode go to its split-mates."""
    rows, bars, round_no = [], {}, 0
    with multiprocessing.Pool(min(args.workers, max(1, len(tasks)))) as pool:
        while tasks:
            jobs = [(t, args.pixel, args.bar, out_dir, args.format, args.skip_bare)
                    for t in tasks]
            failed = []
            results = pool.imap_unordered(_cut_frame_star, jobs, chunksize=1)
            for task, (frame_rows, bar_rows, problem) in tqdm(
                    results, total=len(jobs), desc='frames', unit='frame', leave=False):
                if problem:
                    tqdm.write(f'warning: {problem}', file=sys.stderr)   # not inside the bar
                    failed.append(task)
                    continue
                rows.extend(frame_rows)
                bars[task['file']] = bar_rows
            round_no += 1
            tasks = reassign(failed, tasks, bars, round_no, args.pixel == 'full')
    return rows, bars


def reassign(failed, tasks, good, round_no, one_per_frame):
    """New tasks that cut the crops of undecodable frames from the decodable ones of each split.

    The lost crops of a class and split are pooled and shared out once, so each readable frame
    gets at most one extra task per round (unique names and seeds). With one crop per frame
    ('full') a lost frame is simply lost: a second copy of another frame would add nothing.
    """
    lost = Counter()
    for bad in failed:
        lost[bad['cls'], bad['split']] += bad['n']
    new = []
    for (cls, split), count in sorted(lost.items()):
        mates = [t for t in tasks if t['cls'] == cls and t['split'] == split and t['file'] in good]
        if not mates:
            fail(f'class {cls}: no usable frame left for the {split} split (see the warnings '
                 'above); replace those frames or add more')
        if one_per_frame:
            continue
        for mate, n in zip(mates, share_out(count, len(mates))):
            if n:
                new.append(dict(mate, n=n, tag=f'r{round_no}_', seed=mate['seed'] + [round_no]))
    return new


def main(args):
    check_args(args)
    final_dir = os.path.join(DATA_ROOT, args.name)
    with exclusive(final_dir):   # also clears what a killed run of this name left behind
        build(args, final_dir)


def build(args, final_dir):
    if os.path.exists(final_dir) and not args.force:
        fail(f'{final_dir} already exists; choose another -n name or add --force to replace it')
    frames = list_classes(args.path, args.pixel, args.verbose, args.excluded)
    tasks = plan_scales(plan_tasks(frames, args), args)

    # built in a hidden folder, renamed into place when complete: data/<name> is never partial
    work_dir = tempfile.mkdtemp(prefix=f'.{args.name}.partial-', dir=DATA_ROOT)
    try:
        for split in SPLITS:
            for cls in frames:
                os.makedirs(os.path.join(work_dir, split, cls))
        rows, bars = run_tasks(tasks, args, work_dir)
        file = MANIFEST_COLUMNS.index('file')
        rows.sort(key=lambda r: (r[0], r[1], r[file]))     # split, class, crop file
        write_rows_atomic(MANIFEST_COLUMNS, rows, os.path.join(work_dir, 'manifest.csv'))
        settings = {k: v for k, v in vars(args).items() if k not in ('split_crops', 'excluded')}
        settings['excluded_frames'] = len(args.excluded)
        settings['crops_per_class'] = dict(zip(SPLITS, args.split_crops))
        write_json_atomic(settings, os.path.join(work_dir, 'arguments.json'))
        install(work_dir, final_dir)
        with atomic_path(LATEST_DATASET) as tmp:   # train.py and test.py take it by default
            with open(tmp, 'w', encoding='utf-8') as f:
                f.write(args.name + '\n')
    except OSError as e:
        write_failed(e.filename or work_dir, e)
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)   # gone by now when all went well
    report(rows, bars, final_dir, args.verbose, args.skip_bare)


def install(work_dir, final_dir):
    """Rename the finished dataset into place; an old one (with --force) is removed after."""
    make_public(work_dir)
    old = None
    if os.path.exists(final_dir):
        old = tempfile.mkdtemp(prefix=f'.{os.path.basename(final_dir)}.replaced-',
                               dir=DATA_ROOT)
        os.replace(final_dir, os.path.join(old, 'dataset'))
    os.replace(work_dir, final_dir)
    if old:
        shutil.rmtree(old, ignore_errors=True)


def report(rows, bars, final_dir, verbose, skip_bare):
    crops = Counter(r[0] for r in rows)
    frames = Counter(split for split, _ in {(r[0], r[2]) for r in rows})
    print(f'{final_dir}: ' + ', '.join(f'{s} {crops[s]} crops from {frames[s]} frames'
                                       for s in SPLITS))
    print('data bar rows cut: ' + ', '.join(f'{b} rows on {n} frames'
                                            for b, n in sorted(Counter(bars.values()).items())))
    if not skip_bare:
        report_bare(rows)
    if verbose:
        per_class = Counter((r[1], r[0]) for r in rows)
        print(f"{'class':<24}" + ''.join(f'{s:>10}' for s in SPLITS))
        for cls in sorted({r[1] for r in rows}):
            print(f'{cls:<24}' + ''.join(f'{per_class[cls, s]:>10}' for s in SPLITS))


def report_bare(rows):
    """Per class, the crops without material and the frames they come from."""
    bare = [r for r in rows if not shows_material(r[MATERIAL])]
    if not bare:
        print('crops without cathode material: none')
        return
    per_class = Counter(r[1] for r in rows)
    counts = Counter(r[1] for r in bare)
    sources = Counter(cls for cls, _ in {(r[1], r[2]) for r in bare})
    print(f'crops without cathode material (under {100 * MIN_SHARE:.0f} % of the crop; bare '
          f'foil, holes, off-specimen): {len(bare)} of {len(rows)}, in ' + ', '.join(
              f'{cls} {counts[cls]} of {per_class[cls]} (from {sources[cls]} frames)'
              for cls in sorted(counts)) + '; --skip-bare leaves them out')


if __name__ == '__main__':
    run_main(main, get_args_parser().parse_args())
