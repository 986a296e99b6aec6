"""A corpus of bad and odd inputs, each handled as a user would want:

- works: odd but valid input just works (exit 0, no warning needed);
- skips: a file that cannot be used is left out with one 'warning:' line naming it, and the
  rest goes on;
- refuses: nothing sensible can go on: a non-zero exit and one 'error:' line naming the problem
  and the file or value.
Never a traceback; never anything half-written (no temporary or partial file left, no dataset
or run folder created by a refused command).
"""
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import ROOT, RUNTIME, TINY, assert_clean_error, call, run
from synthetic_sem import write_source

AUG = ['source', 60, '-p', 32, '-n', 'ds']


def nothing_half_written(cwd):
    left = [p for p in cwd.rglob('*') if '.tmp' in p.name or '.partial-' in p.name]
    assert not left, left


def works(proc):
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert 'Traceback' not in proc.stderr, proc.stderr


def skips(proc, name):
    works(proc)
    warnings = [line for line in proc.stderr.splitlines() if line.startswith('warning:')]
    assert any(name in line for line in warnings), proc.stderr


# ---- aug_img.py: source folders and arguments ------------------------------------------------

def frame_file(cwd, cls='synthA', i=0):
    return cwd / 'source' / cls / f'frame_{i:03d}.png'


def zero_byte(cwd):
    (cwd / 'source' / 'synthA' / 'zero.jpg').write_bytes(b'')
    return 'zero.jpg'


def truncated_jpeg(cwd):
    image = Image.open(frame_file(cwd)).convert('L')
    image.save(cwd / 'source' / 'synthA' / 'cut.jpg', quality=90)
    data = (cwd / 'source' / 'synthA' / 'cut.jpg').read_bytes()
    (cwd / 'source' / 'synthA' / 'cut.jpg').write_bytes(data[:len(data) // 3])
    return 'cut.jpg'


def text_as_jpeg(cwd):
    (cwd / 'source' / 'synthB' / 'notes.jpg').write_text('exported by the instrument PC\n')
    return 'notes.jpg'


def too_small(cwd):
    Image.fromarray(np.full((20, 20), 128, np.uint8)).save(cwd / 'source' / 'synthC' / 'tiny.png')
    return 'tiny.png'


def convert_class(cwd, cls, make, ext):
    for path in sorted((cwd / 'source' / cls).iterdir()):
        pixels = np.asarray(Image.open(path).convert('L'))
        path.unlink()
        make(pixels).save(path.with_suffix(ext))


def sixteen_bit_tiff(cwd):
    convert_class(cwd, 'synthA', lambda a: Image.fromarray(a.astype(np.uint16) * 257), '.tif')


def rgba_png(cwd):
    convert_class(cwd, 'synthB', lambda a: Image.fromarray(
        np.dstack([a, a, a, np.full_like(a, 255)]), 'RGBA'), '.png')


def palette_png(cwd):
    convert_class(cwd, 'synthC', lambda a: Image.fromarray(a).convert('P'), '.png')


def spaces_and_non_ascii(cwd):
    old = cwd / 'source' / 'synthA'
    new = cwd / 'source' / 'NCM 811 – zyklisiert'
    old.rename(new)
    for i, path in enumerate(sorted(new.iterdir())):
        path.rename(new / f'Aufnahme Nr. {i} µm é.png')


def empty_class(cwd):
    (cwd / 'source' / 'synthD').mkdir()


def one_class(cwd):
    for cls in ('synthB', 'synthC'):
        shutil.rmtree(cwd / 'source' / cls)


def sidecars_only(cwd):
    folder = cwd / 'source' / 'synthD'
    folder.mkdir()
    for i in range(3):
        (folder / f'frame_{i}.jpg.txt').write_text('AcceleratingVoltage=5kV\n')
    (folder / 'Thumbs.db').write_bytes(b'\0' * 64)


def nothing(cwd):
    return None


AUG_CASES = [
    # id, change to the source, arguments, expectation, words
    ('zero-byte image', zero_byte, AUG, 'skips', None),
    ('truncated JPEG', truncated_jpeg, AUG, 'skips', None),
    ('text file named .jpg', text_as_jpeg, AUG, 'skips', None),
    ('frame smaller than the crop', too_small, AUG, 'skips', None),
    ('16-bit TIFF frames', sixteen_bit_tiff, AUG, 'works', None),
    ('RGBA PNG frames', rgba_png, AUG, 'works', None),
    ('palette PNG frames', palette_png, AUG, 'works', None),
    ('spaces and non-ASCII names', spaces_and_non_ascii, AUG, 'works', None),
    ('empty class folder', empty_class, AUG, 'refuses', ['synthD', 'usable frame']),
    ('only one class', one_class, AUG, 'refuses', ['1 class folder', 'at least 2']),
    ('class of sidecar files only', sidecars_only, AUG, 'refuses', ['synthD', 'usable frame']),
    ('-n ../x', nothing, ['source', 60, '-n', '../x'], 'refuses', ['../x', 'plain folder name']),
    ('-n like a work folder', nothing, ['source', 60, '-n', 'a.partial-b'], 'refuses',
     ['a.partial-b', "'.partial-'"]),
    ('path that does not exist', nothing, ['nosuch', 60], 'refuses', ['nosuch', 'no such']),
    ('size 0', nothing, ['source', 0], 'refuses', ['size 0', 'positive']),
    ('negative size', nothing, ['source', -5], 'refuses', ['size -5', 'positive']),
    ('-t plus -r of 100', nothing, ['source', 60, '-t', 50, '-r', 50], 'refuses',
     ['-t 50 -r 50']),
    ('-p that is no size', nothing, ['source', 60, '-p', 'big'], 'refuses', ["'big'", 'half']),
    ('--crops with two counts', nothing, ['source', 60, '--crops', '10,5'], 'refuses',
     ['--crops', 'train,validate,test']),
    ('negative --bar', nothing, ['source', 60, '--bar', -1], 'refuses', ['--bar -1']),
    ('--pixel-size 0', nothing, ['source', 60, '--pixel-size', 0], 'refuses',
     ['--pixel-size 0', 'above 0']),
]


@pytest.mark.parametrize('change, args, expect, words',
                         [case[1:] for case in AUG_CASES], ids=[case[0] for case in AUG_CASES])
def test_aug_img_input(tmp_path, change, args, expect, words):
    # 20 frames a class: 2 test frames, so one unusable frame leaves the split a frame
    write_source(str(tmp_path / 'source'), classes=3, frames=20, width=160, height=120, bar=16)
    named = change(tmp_path)
    proc = run('aug_img.py', *args, cwd=tmp_path, check=False)
    if expect == 'refuses':
        assert_clean_error(proc, *words)
        assert not (tmp_path / 'data').exists() or not [
            p for p in (tmp_path / 'data').iterdir() if not p.name.endswith('.lock')]
    elif expect == 'skips':
        skips(proc, named)
    else:
        works(proc)
        manifest = (tmp_path / 'data' / 'ds' / 'manifest.csv').read_text(encoding='utf-8')
        assert len(manifest.splitlines()) == 1 + 3 * 60           # every crop of every class
    nothing_half_written(tmp_path)


def test_odd_formats_go_through_the_whole_pipeline(tmp_path):
    """16-bit TIFF, RGBA and palette frames: cut, trained on and tested like any other."""
    write_source(str(tmp_path / 'source'), classes=3, frames=6, width=160, height=120, bar=16)
    for change in (sixteen_bit_tiff, rgba_png, palette_png):
        change(tmp_path)
    run('aug_img.py', 'source', 60, '-p', 32, '-n', 'example', cwd=tmp_path)
    call('train.py', *TINY, cwd=tmp_path)
    works(call('test.py', *RUNTIME, cwd=tmp_path))
    nothing_half_written(tmp_path)


# ---- train.py / test.py / predict.py: configs and checkpoints --------------------------------

class Payload:
    """Any class: pickling it into a checkpoint would let loading run code."""


def pickled_object(cwd, run_dir):
    state = torch.load(run_dir / 'best.pt', weights_only=True)
    state['extra'] = Payload()
    torch.save(state, cwd / 'evil.pt')
    return ['--checkpoint', 'evil.pt']


def text_checkpoint(cwd, run_dir):
    (cwd / 'notes.pt').write_text('not a checkpoint')
    return ['--checkpoint', 'notes.pt']


def other_classes(cwd, run_dir):
    folder = cwd / 'data' / 'example' / 'test'
    (folder / 'synthA').rename(folder / 'synthZ')
    return []


def other_model(cwd, run_dir):
    return ['--set', 'model=resnet34']


def same(cwd, run_dir):
    return []


def damaged_crop(cwd, run_dir):
    crop = sorted((cwd / 'data' / 'example' / 'train' / 'synthB').iterdir())[-1]
    crop.write_bytes(crop.read_bytes()[:100])
    return []


RUN_CASES = [
    # id, script, change (returns extra arguments), arguments, words of the error
    ('unknown version', 'train.py', same, ['--version', 'fastest'], ['fastest', 'cpu30']),
    ('unknown --set key', 'train.py', same, ['--set', 'epoch=3'], ["'epoch'", 'epochs']),
    ('value of the wrong type', 'train.py', same, ['--set', 'epochs=ten'],
     ['epochs=ten', 'whole number']),
    ('checkpoint of other classes', 'test.py', other_classes, [], ['synthZ', 'classes']),
    ('a setting the trained run fixes', 'test.py', other_model, [],
     ['model=resnet34', 'fixed by the trained run']),
    ('file that is not a checkpoint', 'test.py', text_checkpoint, [], ['notes.pt']),
    ('checkpoint carrying a pickled object', 'test.py', pickled_object, [],
     ['evil.pt', 'safely']),
    ('crop damaged after cutting, read by a worker', 'train.py', damaged_crop,
     ['--version', 'paper', '--set', 'num_workers=1'], ['synthB', 'damaged', 'aug_img.py']),
    ('predict: no image among the files', 'predict.py', same, ['notes.txt'],
     ['notes.txt', 'could be predicted']),
    ('predict: --pixel-size not a number above 0', 'predict.py', same,
     ['data', '--pixel-size', 'nan'], ['--pixel-size nan', 'above 0']),
    ('shifts on no crops', 'test.py', same, ['--shifts', '--shift-crops', '0'],
     ['--shift-crops 0']),
    ('input treatment that does not exist', 'train.py', same, ['--set', 'intensity=clahe'],
     ['intensity=clahe', 'equalize']),
    ('audit of a dataset never cut', 'audit.py', same, ['--dataset', 'nothing'],
     ['data/nothing/manifest.csv', 'aug_img.py']),
]


@pytest.mark.parametrize('script, change, args, words', [case[1:] for case in RUN_CASES],
                         ids=[case[0] for case in RUN_CASES])
def test_run_input(trained, tmp_path, script, change, args, words):
    shutil.copytree(trained / 'data', tmp_path / 'data')
    shutil.copytree(trained / 'runs', tmp_path / 'runs')
    (tmp_path / 'notes.txt').write_text('a list of frames')
    run_dir = tmp_path / 'runs' / 'example' / 'cpu'
    before = {p.name: p.stat().st_mtime_ns for p in run_dir.iterdir()}
    extra = change(tmp_path, run_dir)
    given = TINY if script == 'train.py' else RUNTIME   # a trained run's settings are its own
    arguments = [*args, *extra] if script in ('predict.py', 'audit.py') else [*given, *args,
                                                                              *extra]
    assert_clean_error(call(script, *arguments, cwd=tmp_path, check=False), *words)
    after = {p.name: p.stat().st_mtime_ns for p in run_dir.iterdir()
             if not p.name.endswith('.lock')}          # predict.py locks its folder inside
    assert after == before                               # untouched
    nothing_half_written(tmp_path)


@pytest.mark.parametrize('setting, words', [
    ('optimizer=adamx', ['optimizer=adamx', 'adamw']),
    ('scheduler=step', ['scheduler=step', 'cosine']),
    ('loss=focal', ['loss=focal', 'cross_entropy']),
    ('model=resnet999', ['model=resnet999', 'resnet50']),
    ('amp=fp8', ['amp=fp8', 'bf16']),
])
def test_a_bad_value_stops_before_any_data_is_read(tmp_path, setting, words):
    # no data/ at all: the value's error must come first, not the missing dataset's
    proc = call('train.py', '--version', 'cpu30', '--set', setting, cwd=tmp_path, check=False)
    assert_clean_error(proc, *words)
    assert not (tmp_path / 'runs').exists()


# python train.py ARGS as a user types it, then whether torch was loaded by the time it stopped
TRAIN_THEN_TORCH = """import runpy, sys
sys.path.insert(0, {root!r})
sys.argv = ['train.py', *sys.argv[1:]]
try:
    runpy.run_path({script!r}, run_name='__main__')
finally:
    print('torch loaded:', 'torch' in sys.modules)
"""


@pytest.mark.parametrize('args, status', [(['--help'], 0), (['--set', 'epochs=ten'], 2),
                                          (['--set', 'optimizer=adamx'], 2)],
                         ids=['help', 'wrong type', 'no such choice'])
def test_train_answers_help_and_a_bad_value_before_torch_loads(tmp_path, args, status):
    # loading torch takes about 2 s on a 2-core machine (bench/startup.py times the commands)
    code = TRAIN_THEN_TORCH.format(root=ROOT, script=os.path.join(ROOT, 'train.py'))
    proc = subprocess.run([sys.executable, '-c', code, *args], cwd=tmp_path, text=True,
                          capture_output=True)
    assert proc.returncode == status, proc.stderr[-2000:]
    assert 'torch loaded: False' in proc.stdout
    assert ('usage:' in proc.stdout) if status == 0 else ('error:' in proc.stderr)
