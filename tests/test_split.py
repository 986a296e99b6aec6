"""aug_img.py's split rules, exactly as docs/data.md states them, on their boundaries.

-t % of each class's frames go to test and -r % of the rest to validation (each at least one
frame, rounded half to even), the others to train; crop counts follow the same shares, or
--crops. Checked in-process on the functions that decide it, so every boundary is cheap.
"""
import argparse

import numpy as np
import pytest

import aug_img
from semcnn.files.errors import UserError


def args_of(size=100, test=10, ratio=20, crops=None, pixel=32, block=1):
    return argparse.Namespace(size=size, test=test, ratio=ratio, crops=crops, pixel=pixel,
                              block=block)


@pytest.mark.parametrize('frames, test, ratio, sizes', [
    (3, 10, 20, (1, 1, 1)),        # the fewest frames a class may have
    (5, 10, 20, (3, 1, 1)),        # 0.5 test frames: at least one
    (6, 10, 20, (4, 1, 1)),
    (20, 15, 25, (13, 4, 3)),      # 3 test frames; 25 % of the other 17 is 4.25
    (60, 10, 20, (43, 11, 6)),     # the real data's largest class: 20 % of 54 is 10.8
    (10, 50, 50, (3, 2, 5)),       # 50 % of the other 5 is 2.5: rounded to even
    (15, 10, 20, (10, 3, 2)),      # 1.5 test frames: rounded to even
    (12, 10, 50, (5, 6, 1)),       # 50 % of the other 11 is 5.5: rounded to even
])
def test_frames_split_by_t_then_r_of_the_rest(frames, test, ratio, sizes):
    files = [f'c/frame_{i:03d}.tif' for i in range(frames)]
    parts = aug_img.split_frames('c', files, args_of(test=test, ratio=ratio),
                                 np.random.default_rng(0))
    assert tuple(len(p) for p in parts) == sizes
    assert sorted(sum(parts, [])) == files          # every frame once


@pytest.mark.parametrize('frames, test, ratio, words', [
    (2, 10, 20, '2 usable frame'),                  # fewer than 3 frames
    (4, 50, 100, 'leave none for train'),           # test and validation take them all
])
def test_splits_that_leave_a_split_empty_are_refused(frames, test, ratio, words):
    files = [f'c/frame_{i:03d}.tif' for i in range(frames)]
    with pytest.raises(UserError, match=words):
        aug_img.split_frames('c', files, args_of(test=test, ratio=ratio),
                             np.random.default_rng(0))


@pytest.mark.parametrize('size, test, ratio, counts', [
    (1000, 10, 20, (720, 180, 100)),   # docs/data.md's example
    (100, 10, 20, (72, 18, 10)),
    (1920, 10, 20, (1382, 346, 192)),  # 20 % of 1728 is 345.6
    (3, 34, 50, (1, 1, 1)),            # the smallest size that gives each split a crop
])
def test_crop_counts_follow_the_same_shares(size, test, ratio, counts):
    assert aug_img.crop_counts(args_of(size, test, ratio)) == counts


def test_too_few_crops_for_a_split_are_refused():
    with pytest.raises(UserError, match='too few crops'):
        aug_img.crop_counts(args_of(2, 34, 50))


@pytest.mark.parametrize('crops, counts', [('12,5,4', (12, 5, 4)), ('1,1,1', (1, 1, 1)),
                                           (' 7, 2 ,3', (7, 2, 3))])
def test_explicit_crop_counts_are_read(crops, counts):
    assert aug_img.crop_counts(args_of(crops=crops)) == counts


@pytest.mark.parametrize('crops', ['12,5', '12,5,4,1', '12,0,4', '12,-1,4', '12,x,4', '0,1,1'])
def test_explicit_crop_counts_must_be_three_positive_numbers(crops):
    with pytest.raises(UserError, match='three positive counts'):
        aug_img.crop_counts(args_of(crops=crops))


def test_full_frames_give_one_crop_each():
    assert aug_img.crop_counts(args_of(pixel='full', crops='1,1,1')) == (None, None, None)


def frame_numbers(part):
    return sorted(int(f.rsplit('__', 1)[1].split('.')[0]) for f in part)


@pytest.mark.parametrize('frames, block', [(60, 5), (41, 4), (20, 5), (9, 3), (30, 2)])
def test_a_blocked_split_keeps_runs_of_neighbouring_frames_in_one_split(frames, block):
    # named as the real frames are: neighbouring fields of view, numbered in order, with gaps
    numbers = [1159 + i + 3 * (i // 7) for i in range(frames)]
    files = [f'c/ETRI_ x500 __{n}.jpg' for n in numbers]
    rng = np.random.default_rng(0)
    parts = aug_img.split_frames('c', files[::-1], args_of(block=block), rng)
    assert sorted(sum(parts, [])) == sorted(files)            # every frame once
    split_of = {n: s for s, part in enumerate(parts) for n in frame_numbers(part)}
    for run in range(0, frames, block):                     # each run in one split
        assert len({split_of[n] for n in numbers[run:run + block]}) == 1
    wanted = aug_img.split_frames('c', files, args_of(), np.random.default_rng(0))
    for part, share in zip(parts[1:], wanted[1:]):          # at least the share, in whole runs
        assert len(share) <= len(part) < len(share) + block
    assert parts[0]


def test_too_few_runs_for_three_splits_are_refused():
    files = [f'c/frame_{i:03d}.tif' for i in range(10)]
    with pytest.raises(UserError, match='make 2 run'):
        aug_img.split_frames('c', files, args_of(block=5), np.random.default_rng(0))
