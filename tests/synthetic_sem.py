"""Synthetic SEM-like frames for the demo and the tests. NOT real microscopy.

    python tests/synthetic_sem.py demo_source               # 3 classes x 12 frames, 640 x 480
    python tests/synthetic_sem.py demo_source --classes 4 --frames 20 --width 1280 --height 960

Each frame shows rounded secondary particles (bright rims, as secondary-electron images of NCM
cathode powder look) on a dark background, with a black data bar of text at the bottom, like the
instrument's. The classes differ in particle size and in surface cracks, so a small CNN can learn
them in a few minutes; the numbers it reaches say nothing about real SEM data.
"""
import argparse
import os

import numpy as np
from PIL import Image, ImageDraw

# (mean particle radius as a share of the frame width, crack lines per particle[, face shade])
CLASS_STYLES = {'synthA': (0.030, 0), 'synthB': (0.045, 0), 'synthC': (0.030, 3),
                'synthD': (0.045, 3)}


def particle_layer(rng, width, height, radius, cracks, shade=0.0):
    """Float image in [0, 1] of overlapping shaded spheres, their faces `shade` brighter."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    image = rng.normal(0.12, 0.03, (height, width)).astype(np.float32)
    count = int(2.0 * width * height / (np.pi * radius ** 2))   # packed, as a real electrode
    for _ in range(count):
        r = max(2.0, rng.normal(radius, radius * 0.25))
        cx, cy = rng.uniform(0, width), rng.uniform(0, height)
        x0, x1 = int(max(0, cx - r)), int(min(width, cx + r + 1))
        y0, y1 = int(max(0, cy - r)), int(min(height, cy + r + 1))
        if x0 >= x1 or y0 >= y1:
            continue
        d = np.hypot(xx[y0:y1, x0:x1] - cx, yy[y0:y1, x0:x1] - cy) / r
        inside = d < 1
        # secondary-electron contrast: bright rim, textured face
        face = 0.35 + shade + 0.45 * d ** 3 + rng.normal(0, 0.06, d.shape)
        patch = image[y0:y1, x0:x1]
        patch[inside] = face[inside]
        for _ in range(cracks):
            angle = rng.uniform(0, np.pi)
            offset = rng.uniform(-0.5, 0.5)
            line = np.abs((xx[y0:y1, x0:x1] - cx) * np.sin(angle)
                          - (yy[y0:y1, x0:x1] - cy) * np.cos(angle) - offset * r) < 0.8
            patch[inside & line] = 0.08
    return np.clip(image, 0, 1)


def foil_layer(rng, width, height, level=0.45):
    """Float image in [0, 1] of bare current-collector foil: a flat grey with faint diagonal
    rolling marks and detector noise, as the real foil at an electrode's edge looks (its
    band-pass energy is below its pixel noise)."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    marks = 0.01 * np.sin(2 * np.pi * (xx + yy) / 14 + rng.uniform(0, 2 * np.pi))
    grain = rng.normal(0, 0.025, (height, width))
    return np.clip(level + marks + grain, 0, 1).astype(np.float32)


def make_frame(rng, style, width=640, height=480, bar=32, label='SYNTHETIC', foil_from=None):
    """uint8 gray frame (height x width) whose bottom `bar` rows are a black data bar; with
    `foil_from`, the specimen rows from that one down are bare foil (the electrode's edge)."""
    radius, cracks, *shade = style
    pixels = np.empty((height, width), np.uint8)
    specimen = particle_layer(rng, width, height - bar, radius * width, cracks, *shade)
    if foil_from is not None:
        specimen[foil_from:] = foil_layer(rng, width, height - bar - foil_from)
    pixels[:height - bar] = (specimen * 255).astype(np.uint8)
    pixels[height - bar:] = 0
    frame = Image.fromarray(pixels)
    if bar >= 10:
        ImageDraw.Draw(frame).text((8, height - bar + (bar - 10) // 2),
                                   f'{label}  20 kV  x500  2026.11.26', fill=255)
    return np.asarray(frame)


# Worlds of three "compositions" (particle size) in two states, for the transfer test: in
# 'shared', a cycled particle is darker whatever its composition; in 'specific', what marks it
# cycled differs by composition (darker in A, cracked in B, brighter in C), so a model trained on
# A and B has never seen C's cue.
STATE_WORLDS = {
    'shared': {'A': (0.03, 0), 'A_cycled': (0.03, 0, -0.2), 'B': (0.045, 0),
               'B_cycled': (0.045, 0, -0.2), 'C': (0.06, 0), 'C_cycled': (0.06, 0, -0.2)},
    'specific': {'A': (0.03, 0), 'A_cycled': (0.03, 0, -0.2), 'B': (0.045, 0),
                 'B_cycled': (0.045, 3), 'C': (0.06, 0), 'C_cycled': (0.06, 0, 0.2)},
}


def write_source(folder, classes=3, frames=12, width=640, height=480, bar=32, seed=0,
                 styles=CLASS_STYLES):
    """Write folder/<class>/frame_NNN.png for the first `classes` of `styles`; return the class
    names."""
    names = list(styles)[:classes]
    rng = np.random.default_rng(seed)
    for name in names:
        os.makedirs(os.path.join(folder, name), exist_ok=True)
        for i in range(frames):
            pixels = make_frame(rng, styles[name], width, height, bar)
            Image.fromarray(pixels).save(os.path.join(folder, name, f'frame_{i:03d}.png'))
    return names


def main():
    p = argparse.ArgumentParser(description='Write synthetic SEM-like frames (not real data).')
    p.add_argument('folder')
    p.add_argument('--classes', type=int, default=3, choices=range(2, len(CLASS_STYLES) + 1))
    p.add_argument('--frames', type=int, default=12, help='frames per class (at least 3)')
    p.add_argument('--width', type=int, default=640)
    p.add_argument('--height', type=int, default=480)
    p.add_argument('--bar', type=int, default=32, help='rows of data bar at the bottom')
    p.add_argument('--seed', type=int, default=0)
    args = p.parse_args()
    names = write_source(args.folder, args.classes, args.frames, args.width, args.height,
                         args.bar, args.seed)
    print(f'{args.folder}: {len(names)} synthetic classes ({", ".join(names)}), '
          f'{args.frames} frames each, {args.width}x{args.height} with a {args.bar}-row bar')


if __name__ == '__main__':
    main()
