"""predict.py's overview: every frame as a thumbnail with its verdict, probability and status,
PER_PAGE frames a PNG (overview.png, then overview_2.png, ...), to see at a glance which frames
got which answer and which to look at again (frames.csv has the numbers and the reasons)."""
import glob
import os
import re

import numpy as np

from semcnn.evaluation.frame_table import NO_VERDICT, OK, WARNED
from semcnn.evaluation.plots import pyplot
from semcnn.files.atomic import remove_stale, save_figure_atomic
from semcnn.files.frames import unit_scale

PER_PAGE, COLUMNS = 48, 8
THUMBNAIL = 320   # px, the longer side
COLOURS = {OK: '#2e7d32', WARNED: '#ef6c00', NO_VERDICT: '#757575'}


def thumbnail(pixels):
    """Pixels as read_image gives them, in [0, 1], the longer side at most THUMBNAIL px: what
    predict.py keeps of a frame it has read, for the overview."""
    step = max(1, -(-max(pixels.shape[:2]) // THUMBNAIL))
    return unit_scale(pixels[::step, ::step])


def caption(row):
    name = os.path.basename(row['Frame'])
    name = name if len(name) <= 28 else name[:12] + '...' + name[-13:]
    if row['Status'] == NO_VERDICT:
        return f'{name}\nno verdict'
    return f"{name}\n{row['Prediction']}  P {float(row['Confidence']):.2f}"


def page_path(path, page):
    """overview.png for the first page, overview_<n>.png for page n > 1."""
    stem, ext = os.path.splitext(path)
    return path if page == 1 else f'{stem}_{page}{ext}'


def overview_pngs(table, thumbnails, path):
    """Draw the frames of `table` (frame_table()'s rows), each from thumbnails[frame] (None: a
    frame that could not be read, an empty cell), into page_path(path, 1..); remove pages an
    earlier, longer run left behind. Returns the paths written."""
    plt = pyplot()
    rows = table.to_dict('records')
    pages = [rows[i:i + PER_PAGE] for i in range(0, len(rows), PER_PAGE)]
    written = []
    for number, page in enumerate(pages, 1):
        lines = -(-len(page) // COLUMNS)
        columns = min(COLUMNS, len(page))
        fig, axes = plt.subplots(lines, columns, figsize=(2.4 * columns, 2.5 * lines + 0.6),
                                 squeeze=False)
        for ax in axes.flat:
            ax.axis('off')
        for ax, row in zip(axes.flat, page):
            image = thumbnails.get(row['Frame'])   # (the loader may have made it a tensor)
            image = None if image is None else np.asarray(image)
            colour = COLOURS[row['Status']]
            if image is not None:
                ax.imshow(image, cmap=None if image.ndim == 3 else 'gray', vmin=0, vmax=1)
            ax.axis('on')
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_color(colour)
                spine.set_linewidth(4)
            ax.set_title(caption(row), fontsize=7, color=colour)
        counts = {s: sum(r['Status'] == s for r in rows) for s in COLOURS}
        fig.suptitle(f'Frames {PER_PAGE * (number - 1) + 1}-{PER_PAGE * (number - 1) + len(page)}'
                     f' of {len(rows)} (page {number} of {len(pages)}); all {len(rows)}: '
                     + ', '.join(f'{s} {n}' for s, n in counts.items())
                     + '   (frame: green ok, orange warned, grey no verdict)', fontsize=9)
        fig.tight_layout()
        written.append(page_path(path, number))
        save_figure_atomic(fig, written[-1])
        plt.close(fig)
    stem, ext = os.path.splitext(path)
    for old in glob.glob(glob.escape(stem) + '_*' + ext):
        found = re.fullmatch(re.escape(stem) + r'_(\d+)' + re.escape(ext), old)
        if found and int(found.group(1)) > len(pages):
            remove_stale(old)
    return written

