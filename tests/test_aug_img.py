"""aug_img.py: split by frame, no data bar in any crop, lossless and reproducible crops, and a
clear message for every kind of bad input."""
import hashlib
import json
import os

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from conftest import assert_clean_error, run
from semcnn.files.frames import read_image


def manifest_of(cwd, name):
    return pd.read_csv(cwd / 'data' / name / 'manifest.csv')


def test_frames_never_feed_two_splits(source, tmp_path):
    run('aug_img.py', 'source', 90, '-p', 32, '-n', 'ds', cwd=tmp_path)
    m = manifest_of(tmp_path, 'ds')
    splits_per_frame = m.groupby('source')['split'].nunique()
    assert (splits_per_frame == 1).all()
    # every class has frames in all three splits, and every usable frame is used
    assert (m.groupby('class')['split'].nunique() == 3).all()
    assert m['source'].nunique() == 18


def test_crop_counts_follow_t_and_r(source, tmp_path):
    run('aug_img.py', 'source', 100, '-p', 32, '-t', 10, '-r', 20, '-n', 'ds', cwd=tmp_path)
    counts = manifest_of(tmp_path, 'ds').groupby(['class', 'split']).size().unstack()
    # test = 10 % of 100, validate = 20 % of the remaining 90, train = the rest
    assert (counts['test'] == 10).all() and (counts['validate'] == 18).all()
    assert (counts['train'] == 72).all()


def test_explicit_crop_counts(source, tmp_path):
    run('aug_img.py', 'source', 1, '-p', 32, '--crops', '12,5,4', '-n', 'ds', cwd=tmp_path)
    counts = manifest_of(tmp_path, 'ds').groupby(['class', 'split']).size().unstack()
    assert (counts['train'] == 12).all() and (counts['validate'] == 5).all()
    assert (counts['test'] == 4).all()
    for split, n in (('train', 12), ('validate', 5), ('test', 4)):
        assert len(os.listdir(tmp_path / 'data' / 'ds' / split / 'synthA')) == n


def test_crops_are_lossless_and_never_hold_a_bar_row(source, tmp_path):
    run('aug_img.py', 'source', 60, '-p', 40, '-n', 'ds', cwd=tmp_path)
    m = manifest_of(tmp_path, 'ds')
    assert (m['bar'] == 16).all()
    assert (m['y'] + m['height'] <= 120 - 16).all()
    for row in m.sample(20, random_state=0).itertuples():
        frame = read_image(os.path.join(tmp_path, row.source))
        crop = read_image(str(tmp_path / 'data' / 'ds' / row.file))
        assert crop.dtype == np.uint8 and crop.ndim == 2       # gray stays one channel
        np.testing.assert_array_equal(crop, frame[row.y:row.y + 40, row.x:row.x + 40])


def test_half_and_full_crop_sizes(source, tmp_path):
    run('aug_img.py', 'source', 30, '-n', 'half', cwd=tmp_path)    # -p half is the default
    m = manifest_of(tmp_path, 'half')
    assert set(m['width']) == {80} and set(m['height']) == {(120 - 16) // 2}
    run('aug_img.py', 'source', 30, '-p', 'full', '-n', 'full', cwd=tmp_path)
    m = manifest_of(tmp_path, 'full')
    assert len(m) == 18 and set(m['height']) == {104} and (m['y'] == 0).all()


def test_bar_override(source, tmp_path):
    run('aug_img.py', 'source', 30, '-p', 'full', '--bar', 0, '-n', 'keep', cwd=tmp_path)
    assert set(manifest_of(tmp_path, 'keep')['height']) == {120}
    run('aug_img.py', 'source', 30, '-p', 'full', '--bar', 30, '-n', 'cut', cwd=tmp_path)
    assert set(manifest_of(tmp_path, 'cut')['height']) == {90}


def test_same_seed_same_dataset_file_for_file(source, tmp_path):
    def digest(name):
        root = tmp_path / 'data' / name
        files = sorted(p for p in root.rglob('*.tif'))
        return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}

    run('aug_img.py', 'source', 45, '-p', 32, '-n', 'a', cwd=tmp_path)
    run('aug_img.py', 'source', 45, '-p', 32, '-n', 'b', '--workers', 1, cwd=tmp_path)
    run('aug_img.py', 'source', 45, '-p', 32, '-n', 'c', '--seed', 7, cwd=tmp_path)
    assert digest('a') == digest('b')
    assert digest('a') != digest('c')
    assert manifest_of(tmp_path, 'a').equals(manifest_of(tmp_path, 'b'))


def test_default_name_and_arguments_file(source, tmp_path):
    run('aug_img.py', 'source', 30, '-p', 32, cwd=tmp_path)
    saved = json.loads((tmp_path / 'data' / 'size30_pixel32' / 'arguments.json').read_text())
    assert saved['size'] == 30 and saved['pixel'] == 32 and saved['seed'] == 1345879
    assert saved['crops_per_class'] == {'train': 22, 'validate': 5, 'test': 3}


def test_image_formats_and_clutter(tmp_path):
    """8/16-bit, gray/RGB/RGBA/palette, any extension case; sidecars and bad files skipped."""
    rng = np.random.default_rng(0)
    src = tmp_path / 'source'
    kinds = {
        'gray16': lambda a: Image.fromarray(a.astype(np.uint16) * 257),
        'rgba': lambda a: Image.fromarray(np.dstack([a, a // 2, a, np.full_like(a, 200)]), 'RGBA'),
        'palette': lambda a: Image.fromarray(a).convert('P'),
    }
    exts = {'gray16': '.TIF', 'rgba': '.Png', 'palette': '.png'}
    for cls, make in kinds.items():
        (src / cls).mkdir(parents=True)
        for i in range(4):
            a = rng.integers(40, 255, (60, 70), dtype=np.uint8)
            make(a).save(src / cls / f'frame {i} é{exts[cls]}')
        (src / cls / f'frame 0 é{exts[cls]}.txt').write_text('sidecar metadata')
        (src / cls / 'data').write_bytes(b'\x00')
    (src / 'palette' / 'empty.jpg').write_bytes(b'')
    (src / 'palette' / 'notes.JPG').write_text('not an image')
    proc = run('aug_img.py', 'source', 30, '-p', 24, '-n', 'ds', '-v', cwd=tmp_path)
    assert 'empty.jpg' in proc.stderr and 'notes.JPG' in proc.stderr
    assert 'Traceback' not in proc.stderr
    m = manifest_of(tmp_path, 'ds')
    assert m.groupby('class').size().to_dict() == {'gray16': 30, 'palette': 30, 'rgba': 30}
    by_class = {cls: read_image(str(tmp_path / 'data' / 'ds' / m[m['class'] == cls].iloc[0]['file']))
                for cls in kinds}
    assert by_class['gray16'].dtype == np.uint16 and by_class['gray16'].ndim == 2
    assert by_class['rgba'].shape == (24, 24, 3)             # alpha dropped, colour kept
    assert by_class['palette'].dtype == np.uint8


def test_truncated_frame_is_skipped_and_its_crops_go_elsewhere(source, tmp_path):
    bad = source / 'synthB' / 'frame_000.png'
    bad.write_bytes(bad.read_bytes()[:400])      # header fine, pixel data cut off
    proc = run('aug_img.py', 'source', 60, '-p', 32, '-n', 'ds', cwd=tmp_path)
    assert 'frame_000.png' in proc.stderr
    m = manifest_of(tmp_path, 'ds')
    assert not m['source'].str.endswith('synthB/frame_000.png').any()
    assert (m.groupby('class').size() == 60).all()


@pytest.mark.parametrize('args, words', [
    (['missing', 10], ['missing', 'no such folder']),
    (['source', 0], ['size 0']),
    (['source', -5], ['size -5']),
    (['source', 10, '-t', 50, '-r', 50], ['-t 50 -r 50']),
    (['source', 10, '-n', '../x'], ['../x']),
    (['source', 10, '-n', '/tmp/x'], ['/tmp/x']),
    (['source', 10, '-p', 'big'], ['big']),
    (['source', 10, '-p', 500], ['500', 'smaller than', 'every frame']),
    (['source', 10, '--crops', '5,5'], ['--crops']),
    (['source', 100, '-t', 80, '-r', 10], ['synthA', 'none for train']),
    (['source', 10, '--block', 0], ['--block 0']),
    (['source', 30, '--block', 3], ['synthA', '6 frames make 2 run', 'lower --block']),
])
def test_bad_arguments_get_one_clear_line(source, tmp_path, args, words):
    proc = run('aug_img.py', *args, cwd=tmp_path, check=False)
    assert_clean_error(proc, *words)
    assert not (tmp_path / 'data').exists() or not any(
        p for p in (tmp_path / 'data').iterdir() if not p.name.startswith('.'))
    assert not (tmp_path / 'x').exists()


def test_two_unreadable_frames_of_one_split_lose_no_crop(source, tmp_path):
    run('aug_img.py', 'source', 60, '-p', 32, '-n', 'first', cwd=tmp_path)
    m = manifest_of(tmp_path, 'first')
    train_b = sorted(set(m.loc[(m['class'] == 'synthB') & (m['split'] == 'train'), 'source']))
    for frame in train_b[:2]:
        path = tmp_path / frame
        path.write_bytes(path.read_bytes()[:400])
    counts = m.groupby(['class', 'split']).size()
    run('aug_img.py', 'source', 60, '-p', 32, '-n', 'second', cwd=tmp_path)
    m = manifest_of(tmp_path, 'second')
    assert not m['source'].isin(train_b[:2]).any()
    assert m.groupby(['class', 'split']).size().equals(counts)   # their split-mates cut them
    assert (m.groupby('source')['split'].nunique() == 1).all()  # and no frame feeds two splits
    assert m['file'].is_unique
    assert len(list((tmp_path / 'data' / 'second').rglob('*.tif'))) == len(m)
    # the extra crops are new positions of the mates, not copies of their own crops
    redrawn = m['file'].str.contains('_r1_')
    own = set(zip(m.loc[~redrawn, 'source'], m.loc[~redrawn, 'x'], m.loc[~redrawn, 'y']))
    extra = list(zip(m.loc[redrawn, 'source'], m.loc[redrawn, 'x'], m.loc[redrawn, 'y']))
    assert extra and sum(p in own for p in extra) < len(extra) / 2


def test_two_exports_of_one_frame_stay_in_one_split(source, tmp_path):
    for frame in sorted((source / 'synthA').glob('*.png')):
        Image.open(frame).save(frame.with_suffix('.tif'))         # the same image, twice
    run('aug_img.py', 'source', 60, '-p', 'full', '-n', 'ds', cwd=tmp_path)
    m = manifest_of(tmp_path, 'ds')
    a = m[m['class'] == 'synthA'].assign(stem=lambda d: d['source'].str.rsplit('.', n=1).str[0])
    assert (a.groupby('stem')['split'].nunique() == 1).all() and len(a) == 12
    assert len(list((tmp_path / 'data' / 'ds').rglob('*.tif'))) == len(m)


def test_outputs_are_readable_by_others(source, tmp_path):
    run('aug_img.py', 'source', 30, '-p', 32, '-n', 'ds', cwd=tmp_path)
    umask = os.umask(0)
    os.umask(umask)
    root = tmp_path / 'data' / 'ds'
    assert root.stat().st_mode & 0o777 == 0o777 & ~umask
    assert (root / 'manifest.csv').stat().st_mode & 0o777 == 0o666 & ~umask


def test_too_few_frames_names_the_class(source, tmp_path):
    for f in sorted((source / 'synthC').iterdir())[2:]:
        f.unlink()
    proc = run('aug_img.py', 'source', 30, '-p', 32, cwd=tmp_path, check=False)
    assert_clean_error(proc, 'synthC', '2 usable frame')


def test_one_class_only_is_refused(tmp_path):
    from synthetic_sem import write_source
    write_source(str(tmp_path / 'source'), classes=2, frames=3, width=80, height=60, bar=8)
    (tmp_path / 'source' / 'synthB').rename(tmp_path / 'elsewhere')
    assert_clean_error(run('aug_img.py', 'source', 30, '-p', 16, cwd=tmp_path, check=False),
                       'at least 2')


def test_existing_dataset_needs_force(source, tmp_path):
    run('aug_img.py', 'source', 30, '-p', 32, '-n', 'ds', cwd=tmp_path)
    before = manifest_of(tmp_path, 'ds')
    assert_clean_error(run('aug_img.py', 'source', 60, '-p', 32, '-n', 'ds', cwd=tmp_path,
                           check=False), 'already exists', '--force')
    assert manifest_of(tmp_path, 'ds').equals(before)
    run('aug_img.py', 'source', 60, '-p', 32, '-n', 'ds', '--force', cwd=tmp_path)
    assert len(manifest_of(tmp_path, 'ds')) == 180
    leftovers = sorted(p.name for p in (tmp_path / 'data').iterdir() if p.name != 'ds')
    assert leftovers == ['.ds.lock', '.latest']   # the lock stays (empty once released): no data
    assert (tmp_path / 'data' / '.latest').read_text() == 'ds\n'   # train.py's default


def test_excluded_frames_never_reach_the_dataset_and_an_emptied_class_is_dropped(source,
                                                                                  tmp_path):
    listed = [f'synthC/frame_{i:03d}.png' for i in range(6)] + ['synthA/frame_002.png']
    (tmp_path / 'leave_out.txt').write_text('\n'.join(listed) + '\n')
    proc = run('aug_img.py', 'source', 60, '-p', 32, '-n', 'ds', '--exclude', 'leave_out.txt',
               cwd=tmp_path)
    assert '7 frames left out; classes dropped: synthC' in proc.stdout
    m = manifest_of(tmp_path, 'ds')
    assert set(m['class']) == {'synthA', 'synthB'}
    assert not m['source'].str.endswith('synthA/frame_002.png').any()
    assert not (tmp_path / 'data' / 'ds' / 'train' / 'synthC').exists()
    assert_clean_error(run('aug_img.py', 'source', 60, '-p', 32, '-n', 'x', '--exclude',
                           'missing.txt', cwd=tmp_path, check=False), '--exclude missing.txt')
