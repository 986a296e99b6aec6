"""report.md of a scored split: one file to read, with relative links to its figures.

test.py writes it beside its other outputs: every setting of the run, the code's commit and the
package versions, where the data came from, the learning curve, the scores (crops, frames,
composition, state) with their confusion matrices, recall per class, the frames it got wrong or
gave no verdict, calibration, novelty, the most confused pairs with a gallery of the worst crops,
Grad-CAM of a few crops per class, and the results of the shifts (test.py --shifts) and of the
shortcut audit (audit.py), when those were run. Figures it adds: worst_crops.png,
gradcam_examples.png.
"""
import datetime
import importlib.metadata
import json
import os
import platform
import subprocess
from typing import NamedTuple

import numpy as np

from semcnn.data.images import to_tensor, unit_range
from semcnn.evaluation.gradcam import GradCAM
from semcnn.evaluation.plots import image_grid_png
from semcnn.evaluation.shifts import scored_levels
from semcnn.evaluation.shortcuts import SEPARATED, pair_table
from semcnn.files.atomic import atomic_path, remove_stale
from semcnn.files.paths import RUNS_ROOT

WORST = 12        # crops in the gallery of the worst mistakes
PAIRS = 8         # most confused pairs listed
CAM_PER_CLASS = 2


class Scored(NamedTuple):
    """A scored split: crop names, class probabilities (N x K), labels, the SEMDataset,
    whether each crop shows cathode material (None when the manifest does not say), and the
    frames' table (frame_table.py; None without a manifest)."""
    names: list
    probs: np.ndarray
    labels: np.ndarray
    dataset: object
    material: np.ndarray = None
    frames: object = None

    def title(self, i):
        """The end of crop i's file name: what tells it from the crops of other frames."""
        name = self.names[i].split('/')[-1]
        return name if len(name) <= 30 else '…' + name[-29:]


# Shown above the settings table, not in it.
NAMED = ('data_dir', 'name', 'dataset', 'version')
PACKAGES = ('torch', 'torchvision', 'timm', 'numpy', 'scikit-learn', 'pillow')
# The arguments of aug_img.py that decide what the crops are.
CUT = ('path', 'size', 'pixel', 'test', 'ratio', 'block', 'crops', 'seed', 'bar', 'skip_bare',
       'format')


def write_report(report_dir, run_dir, cfg, path, checkpoint, results, scored, model, device):
    """report.md in `report_dir` (where test.py wrote its other outputs) of the run in
    `run_dir`; `model` on `device` gives the Grad-CAM maps."""
    classes = results['crops']['classes']
    lines = [f"# {cfg['name']}: {results['split']} split", '',
             f"Written by test.py on {datetime.date.today().isoformat()}; "
             f'{platform.node() or "this machine"}, device {device}; code {code_version()}; '
             f'Python {platform.python_version()}, '
             + ', '.join(f'{name} {package_version(name)}' for name in PACKAGES) + '.', '']
    lines += provenance(cfg, path, checkpoint, report_dir)
    lines += figure('Learning curve', os.path.join(run_dir, 'learning_curve.png'), report_dir)
    lines += scores(results, report_dir)
    lines += recall_table(results)
    lines += frames_section(scored.frames)
    lines += calibration_section(results, checkpoint, report_dir)
    lines += novelty_section(results, checkpoint, scored.frames)
    lines += confused_pairs(results['crops'], report_dir, scored)
    lines += gradcam_section(report_dir, scored, classes, cfg['input_size'], model, device)
    lines += shifts_section(results)
    lines += audit_section(cfg['dataset'])
    with atomic_path(os.path.join(report_dir, 'report.md')) as tmp:
        with open(tmp, 'w', encoding='utf-8') as f:
            f.write('\n'.join(lines) + '\n')


def code_version():
    """The git commit of this code ('+ changes' when the working tree differs from it), or why
    it is unknown."""
    here = os.path.dirname(os.path.abspath(__file__))   # the pipeline's own checkout
    try:
        commit = subprocess.run(['git', 'rev-parse', '--short=12', 'HEAD'], cwd=here,
                                capture_output=True, text=True, timeout=10)
        changed = subprocess.run(['git', 'status', '--porcelain', '--untracked-files=no'],
                                 cwd=here, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return 'commit unknown (git not found)'
    if commit.returncode:
        return 'commit unknown (not a git checkout)'
    return f"commit {commit.stdout.strip()}{' + changes' if changed.stdout.strip() else ''}"


def package_version(name):
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return 'not installed'


WRONG_LISTED = 40   # frames listed at most; frame_predictions.csv has them all


def frames_section(frames):
    """The frames without a verdict, and those whose verdict is wrong: what a reader checks
    first."""
    if frames is None:
        return []
    lines = ['## Frames it got wrong or gave no verdict', '']
    counts = frames['Status'].value_counts()
    lines += [f"{len(frames)} frames: " + ', '.join(f'{counts.get(s, 0)} {s}'
                                                    for s in ('ok', 'warned', 'no verdict'))
              + ' (Status in `frame_predictions.csv`).', '']
    wrong = frames[(frames['Status'] == 'no verdict') | (frames['Result'] == False)]  # noqa: E712
    if wrong.empty:
        return lines + ['Every frame got a verdict, and every verdict is right.', '']
    rows = [(f"`{r['Frame']}`", r['Label'], r['Prediction'] or '–',
             f"{float(r['Confidence']):.2f}" if r['Prediction'] else '–', r['Status'],
             r['Warnings'] or '') for _, r in wrong.head(WRONG_LISTED).iterrows()]
    more = len(wrong) - len(rows)
    return lines + table(('frame', 'true', 'verdict', 'P', 'status', 'warnings'), rows) + (
        [f'... and {more} more in `frame_predictions.csv`.', ''] if more > 0 else [])


def novelty_section(results, checkpoint, frames):
    """How the run tells a tile unlike its training material, and how many of this split's
    crops and frames it flagged (semcnn/evaluation/novelty.py)."""
    record, found = checkpoint.novelty, results.get('novelty')
    lines = ['## Novelty: unlike the training material', '']
    if record is None or found is None:
        return lines + ['This checkpoint has no novelty record (trained before train.py fitted '
                        'one): no tile is flagged. `python train.py --refit` fits it.', '']
    space = ('the frozen ImageNet network' if record.get('space') == 'imagenet'
             else "the network's own")
    lines += [f"A crop is novel when its distance to the {record['k']}-th nearest of "
              f"{len(record['bank'])} training crops, in the features of {space}, is beyond "
              f"what {100 * record['quantile']:.0f} % of the validation crops stay within "
              f"({100 * record.get('validation_flagged', 0):.2f} % of validation crops flagged). "
              "A frame whose material crops' median novelty is above "
              f"{record.get('frame_limit', 1.0):.2f} is warned of; above 1, it gets no "
              'verdict.', '']
    rows = [('crops flagged novel', f"{found['novel_crops']} of {results['crops']['n']}",
             percent(found['share']))]
    if frames is not None:
        unusual = frames['Warnings'].str.contains('unusual material').sum()
        refused = frames['Warnings'].str.contains('unlike the training material').sum()
        rows += [('frames warned: unusual material', f'{unusual} of {len(frames)}',
                  percent(unusual / len(frames))),
                 ('frames without a verdict: novel', f'{refused} of {len(frames)}',
                  percent(refused / len(frames)))]
    return lines + table(('', 'count', 'share'), rows)


def calibration_section(results, checkpoint, report_dir):
    """The temperature and the expected calibration error before and after it, with the
    reliability diagram test.py drew."""
    scores = results.get('calibration')
    if not scores:
        return []
    fitted = checkpoint.calibration
    rows = [[f"{results['split']} crops (this report)", percent(scores['ece_uncalibrated']),
             percent(scores['ece'])]]
    if fitted:
        rows.insert(0, ['validation crops (where T was fitted)',
                        percent(fitted['ece_uncalibrated']), percent(fitted['ece'])])
    note = (f"Every probability here is softmax(outputs / T), T = {scores['temperature']:.2f} "
            'fitted on the validation split at the end of training.' if fitted else
            'This checkpoint has no fitted temperature (trained before train.py fitted one, or '
            'last.pt): probabilities are uncalibrated.')
    return (['## Calibration', '', note + ' The expected calibration error is the mean gap '
             'between confidence and accuracy over 15 bins of the top probability.', '']
            + table(['crops', 'ECE, T = 1', 'ECE, calibrated'], rows)
            + figure('Reliability diagram', os.path.join(report_dir, 'reliability.png'),
                     report_dir))


def link(path, report_dir):
    return os.path.relpath(path, report_dir).replace(os.sep, '/')


def figure(title, path, report_dir, caption=''):
    if not os.path.isfile(path):
        return []
    return [f'## {title}', '', *([caption, ''] if caption else []),
            f'![{title}]({link(path, report_dir)})', '']


def table(header, rows):
    """A Markdown table, and the blank line after it."""
    return ['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header),
            *('| ' + ' | '.join(str(v) for v in row) + ' |' for row in rows), '']


def percent(value):
    return f'{100 * value:.2f} %'


def provenance(cfg, path, checkpoint, report_dir):
    lines = ['## Settings and data', '']
    rows = [('dataset', f"`{cfg['data_dir']}`"), ('version', cfg['version']),
            ('checkpoint', f'`{link(path, report_dir)}`, epoch {checkpoint.epoch} '
                           f'(validation accuracy {percent(checkpoint.best_val_acc or 0)})')]
    history = checkpoint.history
    if history:
        rows.append(('epochs trained', f"{len(history)} of {cfg['epochs']}, "
                                       f"{sum(h['seconds'] for h in history) / 60:.1f} min"))
    rows += [(key, f'`{value}`') for key, value in cfg.items() if key not in NAMED]
    lines += table(('setting', 'value'), rows)
    try:
        with open(os.path.join(cfg['data_dir'], 'arguments.json'), encoding='utf-8') as f:
            cut = json.load(f)
    except (OSError, ValueError):
        return lines + ['The dataset has no readable arguments.json: how it was cut is unknown.',
                        '']
    lines += ['Crops cut by aug_img.py with:', '']
    lines += table(('argument', 'value'), [(k, f'`{cut[k]}`') for k in CUT if k in cut])
    per_class = cut.get('crops_per_class')
    if per_class:
        lines += ['Crops per class: ' + ', '.join(f'{k} {v}' for k, v in per_class.items())
                  + '. No source frame gives crops to two splits.', '']
    return lines


LEVELS = (('crops', 'crops', None), ('frames', 'frames (mean of their material crops)', None),
          ('composition', 'composition (crops)', 'crops'), ('state', 'state (crops)', 'crops'))


def level_results(results):
    """(key, what, scores) of each level results has."""
    for key, what, inner in LEVELS:
        if key in results:
            yield key, what, results[key][inner] if inner else results[key]


def scores(results, report_dir):
    rows = [(what, percent(r['accuracy']), r['n']) for _, what, r in level_results(results)]
    lines = ['## Scores', ''] + table(('level', 'accuracy', 'n'), rows)
    bare = results.get('material')
    if bare:
        lines += [f"{bare['crops_without_material']} crops without cathode material were left "
                  f"out of the frame votes; {len(bare['frames_without_verdict'])} frames got no "
                  'verdict.', '']
    for key, what, _ in level_results(results):
        suffix = '' if key == 'crops' else f'_{key}'
        path = os.path.join(report_dir, f'confusion_matrix{suffix}.png')
        if os.path.isfile(path):
            lines += [f'![confusion matrix, {what}]({link(path, report_dir)})', '']
    return lines


def recall_table(results):
    levels = [(what, r) for key, what, r in level_results(results)
              if key in ('crops', 'frames')]
    classes = results['crops']['classes']
    rows = [(c, *(percent(r['recall'][c]) if c in r['recall'] else '–' for _, r in levels))
            for c in classes]
    return ['## Recall per class', ''] + table(('class', *(w for w, _ in levels)), rows)


def confused_pairs(crops, report_dir, scored):
    matrix = np.asarray(crops['confusion'])
    classes = crops['classes']
    support = matrix.sum(1)
    off = [(matrix[i, j], i, j) for i in range(len(classes)) for j in range(len(classes))
           if i != j and matrix[i, j]]
    lines = ['## Most confused pairs (crops)', '']
    path = os.path.join(report_dir, 'worst_crops.png')
    if not off:
        remove_stale(path)
        return lines + ['No crop was misclassified.', '']
    rows = [(classes[i], classes[j], n, percent(n / support[i]))
            for n, i, j in sorted(off, reverse=True)[:PAIRS]]
    lines += table(('true', 'predicted', 'crops', 'share of true class'), rows)
    # The worst mistakes: the misclassified crops given the lowest probability of their class.
    p_true = scored.probs[np.arange(len(scored.labels)), scored.labels]
    wrong = np.flatnonzero(scored.probs.argmax(1) != scored.labels)
    worst = wrong[np.argsort(p_true[wrong])][:WORST]
    cells = [(crop_image(scored.dataset, i), None,
              f"{scored.title(i)}\ntrue {classes[scored.labels[i]]} "
              f'({p_true[i]:.2f})\npred {classes[scored.probs[i].argmax()]} '
              f'({scored.probs[i].max():.2f})') for i in worst]
    image_grid_png(cells, path, columns=6)
    return lines + figure('Worst crops', path, report_dir,
                          f'The {len(worst)} misclassified crops given the lowest probability '
                          'of their true class.')[2:]


def crop_image(dataset, i):
    """Item i of `dataset` as stored, gray, in [0, 1] (for a figure)."""
    return unit_range(dataset.pixels(i)).mean(0).numpy()


def gradcam_section(report_dir, scored, classes, input_size, model, device):
    """Grad-CAM of the CAM_PER_CLASS most confident correct crops of each class, among those
    that show cathode material (a class's most confident crops can be bare foil)."""
    right = scored.probs.argmax(1) == scored.labels
    if scored.material is not None:
        right &= scored.material
    confidence = scored.probs.max(1)
    picked = []
    path = os.path.join(report_dir, 'gradcam_examples.png')
    for c in range(len(classes)):
        mine = np.flatnonzero(right & (scored.labels == c))
        picked += mine[np.argsort(-confidence[mine])][:CAM_PER_CLASS].tolist()
    if not picked:
        remove_stale(path)
        return []
    cam = GradCAM(model, input_size)
    cells = []
    for i in picked:
        x = to_tensor(scored.dataset.pixels(i), input_size)
        maps, probs = cam(x.unsqueeze(0).to(device))
        image = x.mean(0).numpy()
        cells += [(image, None, f'{classes[scored.labels[i]]}\n{scored.title(i)}'),
                  (image, maps[0].cpu().numpy(), f'Grad-CAM, p {float(probs[0].max()):.2f}')]
    image_grid_png(cells, path, columns=2 * CAM_PER_CLASS)
    return figure('Grad-CAM', path, report_dir,
                  f'The {CAM_PER_CLASS} most confident correct crops of each class (of those '
                  'that show cathode material), and where the evidence for the class lies '
                  f'(layer {cam.layer_name}; gradcam.py makes more).')


def shifts_section(results):
    lines = ['## Under acquisition shifts', '']
    if 'shifts' not in results:
        return lines + ['Not run: `python test.py --shifts` scores the split again under each '
                        'change of the kind two imaging sessions differ by.', '']
    shifts = results['shifts']
    levels = scored_levels(shifts)
    shifted = shifts['remap']['n']
    if shifted != results['crops']['n']:
        lines += [f"On {shifted} evenly spaced crops of the {results['crops']['n']} "
                  '(--shift-crops), the plain row included.', '']
    rows = [(name, *(percent(row[level]) for level in levels), row['description'])
            for name, row in shifts.items()]
    return lines + table(('shift', *levels, 'what'), rows)


def audit_section(dataset):
    path = os.path.join(RUNS_ROOT, dataset, 'audit.json')
    lines = ['## Shortcut audit of the dataset', '']
    try:
        with open(path, encoding='utf-8') as f:
            audit = json.load(f)
    except (OSError, ValueError):
        return lines + [f'Not run: `python audit.py --dataset {dataset}` tells how well the '
                        'classes can be told apart without looking at the material.', '']
    pairs = pair_table(audit)
    rows = []
    for source, what in (('grey_levels', 'grey levels alone (crops)'),
                         ('metadata', 'acquisition metadata alone (frames)')):
        r = audit[source]
        rows.append((what, '–', '–', 'not available') if r is None else
                    (what, percent(r['accuracy']), percent(r['chance']),
                     f"{int((pairs[source] >= SEPARATED).sum())} of {len(pairs)}"))
    return lines + [f"{audit['crops']} crops of {audit['frames']} frames, cross-validated by "
                    'frame.', ''] + table(
        ('told from', 'right', 'chance', f'class pairs told apart (>= {100 * SEPARATED:.0f} %)'),
        rows) + ['A flagged pair\'s accuracy proves nothing about the material until it '
                 'survives the shifts; `audit_pairs.csv` beside `audit.json` lists every pair.',
                 '']
