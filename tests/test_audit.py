"""The shortcut audit separates classes that differ only in how they were imaged, and not
classes imaged alike; the sidecar reader takes the real format and what else comes."""
import json
import os

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from conftest import REAL_SEM, call, run
from synthetic_sem import CLASS_STYLES, make_frame
from semcnn.files.sidecar import acquisition_numbers, read_sidecar

SIDECAR = """[Image Info]
Model : SNE-4500M Plus
Date : 2019-09-02 \uc624\uc804 12:10:17
Acceleated Voltage :  20 kV
Magnification : x500 
[   - Image Process]
Brightness : {brightness}
Contrast : -61
Pixel Size : 0.7
"""


def write_sessions(folder, brightness):
    """Two classes of the same material (one particle style), 6 frames each; class 'b' imaged
    `brightness` grey levels brighter, with a sidecar per frame saying its settings."""
    rng = np.random.default_rng(0)
    for name, shift in (('a', 0), ('b', brightness)):
        os.makedirs(folder / name)
        for i in range(6):
            pixels = make_frame(rng, CLASS_STYLES['synthA'], 160, 120, 16).astype(int)
            pixels[:104] = np.clip(pixels[:104] + shift, 0, 255)
            path = folder / name / f'frame_{i}.png'
            Image.fromarray(pixels.astype(np.uint8)).save(path)
            (folder / name / f'frame_{i}.png.txt').write_bytes(
                SIDECAR.format(brightness=89 + shift).encode('cp949'))


def audit_of(tmp_path, brightness):
    write_sessions(tmp_path / 'source', brightness)
    run('aug_img.py', 'source', 60, '-p', 32, '-n', 'sessions', cwd=tmp_path)
    proc = call('audit.py', '--dataset', 'sessions', '--per-frame', 4, cwd=tmp_path)
    with open(tmp_path / 'runs' / 'sessions' / 'audit.json', encoding='utf-8') as f:
        return json.load(f), pd.read_csv(tmp_path / 'runs' / 'sessions' / 'audit_pairs.csv'), proc


def test_audit_flags_classes_that_differ_only_in_brightness(tmp_path):
    results, pairs, proc = audit_of(tmp_path, brightness=40)
    assert results['grey_levels']['accuracy'] >= 0.95
    assert results['metadata']['accuracy'] == 1.0 and 'Brightness' in results['metadata_keys']
    assert pairs['flagged'].tolist() == [True]
    assert 'a vs b' in proc.stdout and 'told apart' in proc.stdout


def test_audit_does_not_flag_classes_imaged_alike(tmp_path):
    results, pairs, _ = audit_of(tmp_path, brightness=0)
    assert results['grey_levels']['accuracy'] <= 0.8      # chance is 0.5
    assert results['metadata'] is None                    # nothing varies between frames
    assert pairs['flagged'].tolist() == [False]


def test_sidecar_reader_takes_the_real_format_garbled_bytes_and_missing_files(tmp_path):
    frame = tmp_path / 'f.jpg'
    (tmp_path / 'f.jpg.txt').write_bytes(SIDECAR.format(brightness=89).encode('cp949'))
    values = read_sidecar(str(frame))
    assert values['Magnification'] == 'x500' and values['Brightness'] == '89'
    numbers = acquisition_numbers(values)
    assert numbers['Contrast'] == -61 and numbers['Acceleated Voltage'] == 20
    assert numbers['Date'] == 18141                       # 2019-09-02, in days since 1970
    (tmp_path / 'g.txt').write_bytes(b'\xff\xfe\x00garbage\nBrightness : 7\n\x80\x81')
    assert acquisition_numbers(read_sidecar(str(tmp_path / 'g.tif')))['Brightness'] == 7
    assert read_sidecar(str(tmp_path / 'missing.jpg')) == {}


@pytest.mark.skipif(not os.path.isdir(REAL_SEM), reason='../shared/sem not present')
def test_sidecar_reader_reads_the_real_frames():
    folder = os.path.join(REAL_SEM, '523_cycled')
    frame = next(os.path.join(folder, n) for n in sorted(os.listdir(folder)) if n.endswith('.jpg'))
    numbers = acquisition_numbers(read_sidecar(frame))
    assert numbers['Brightness'] == 97 and numbers['Contrast'] == -169
    assert numbers['Magnification'] == 500
