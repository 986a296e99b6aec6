"""Predict the test split with the best checkpoint of a run and report how it did.

    python test.py                                    # the dataset aug_img.py cut last
    python test.py --dataset example --version paper
    python test.py --checkpoint last                  # or a path to a .pt file
    python test.py --set tta=true                     # mean over the 8 flips/turns of each crop
    python test.py --shifts                           # also under each acquisition shift
    python test.py --split validate --shifts          # the validation split (choosing a recipe)

Scores crops, and source frames (the mean probability of a frame's crops that show cathode
material, from the dataset's manifest.csv; crops of bare foil, holes or off-specimen are still
scored as crops but left out of their frame's vote, and a frame with too few crops of material gets
no verdict; so are crops unlike the training material, by the run's novelty record,
semcnn/evaluation/novelty.py). Probabilities are calibrated by the run's temperature
(semcnn/evaluation/calibration.py). Class names `<composition>[_<state>]` (no suffix = pristine)
are also scored as composition and as state.
Writes to runs/<dataset>/<version>/:
- predictions.csv: one row per test crop (Image Name, Prediction, Label, Result, Frame, Material,
  Novelty (> 1: unlike the training material), one probability column per class);
  frame_predictions.csv: one row per source frame, the columns of predict.py's frames.csv
  (semcnn/evaluation/frame_table.py: Status ok / warned / no verdict, Prediction, Confidence,
  Label, Result, Agreement, Tiles (its test crops), Material tiles, Novel tiles, Novelty,
  Warnings: why a frame has no verdict or is unusual);
- results.json: accuracy, recall per class and confusion matrix per level (crops, frames,
  composition, state), the calibration error before and after the temperature ('calibration'),
  the novel crops ('novelty'); classification_report.json (scikit-learn's, also printed);
- reliability.png: the reliability diagram, before and after the temperature;
- confusion_matrix.csv/.png (crops), and confusion_matrix_{frames,composition,state}.png;
- with --shifts: the split predicted again under each acquisition shift of
  semcnn/evaluation/shifts.py (other grey-level curve, brightness, contrast, gamma, blur, noise,
  uneven illumination, JPEG), the accuracy of each next to the plain one in results.json
  ('shifts'), shifts.csv and the summary;
- report.md: all of it in one file to read (every setting, the code's commit and the package
  versions, data, learning curve, scores, confusion matrices, recall, the frames it got wrong
  or gave no verdict, novelty, most confused pairs with worst_crops.png, Grad-CAM examples in
  gradcam_examples.png, shifts, and the dataset's audit when audit.py was run).
With --split validate everything goes to runs/<dataset>/<version>/validate/ instead.
"""
import argparse
import os

import numpy as np
import pandas as pd

from config import add_checkpoint_argument, add_config_arguments, open_run, run_of_args
from dataset import SEMDataset
from semcnn.data.loaders import make_loader
from semcnn.data.material import shows_material
from semcnn.evaluation.calibration import calibration_scores, reliability_png
from semcnn.evaluation.frame_table import frame_table
from semcnn.evaluation.novelty import features_of, frame_limit_of, novelty_of, space_of
from semcnn.evaluation.plots import confusion_matrix_png
from semcnn.evaluation.report import Scored, write_report
from semcnn.evaluation.scores import (add_probabilities, evaluate_split, factor_columns,
                                      read_crop_sources, vote_frames)
from semcnn.evaluation.shifts import evaluate_shifts, shift_summary
from semcnn.files.atomic import remove_stale, write_csv_atomic, write_json_atomic
from semcnn.files.errors import fail, run_main
from semcnn.files.locks import exclusive, reading
from semcnn.training.checkpoint import load_trained, note_unfitted
from semcnn.training.device import amp_dtype, pick_device
from semcnn.training.inference import predict


def get_args_parser():
    p = argparse.ArgumentParser(description='Predict the test split with a trained checkpoint.')
    add_config_arguments(p)
    add_checkpoint_argument(p)
    p.add_argument('--split', choices=('test', 'validate'), default='test',
                   help='the split to score (validate: to choose between recipes; outputs go '
                        'to <run>/validate/)')
    p.add_argument('--shifts', action='store_true',
                   help='also score the split under each acquisition shift '
                        '(semcnn/evaluation/shifts.py)')
    p.add_argument('--shift-crops', type=int, default=None, metavar='N',
                   help='with --shifts: only N evenly spaced crops per class (a faster '
                        'estimate; the plain row is then scored on the same crops)')
    return p


def sources_of(names, cfg, split):
    """(the source frame of each crop of `split`, whether each shows cathode material), each None
    (with a note) when the manifest cannot say."""
    sources = read_crop_sources(cfg['data_dir'], split)
    if sources is None:
        print(f"note: no manifest.csv in {cfg['data_dir']}; frame results skipped")
        return None, None
    missing = [n for n in names if n not in sources]
    if missing:
        print(f"note: {len(missing)} {split} crops (e.g. {missing[0]}) are not in "
              f"{cfg['data_dir']}/manifest.csv; frame results skipped")
        return None, None
    frames = [sources[n][0] for n in names]
    shares = [sources[n][1] for n in names]
    if None in shares:
        print(f"note: {cfg['data_dir']}/manifest.csv does not say which crops show cathode "
              'material (cut before aug_img.py measured it); every crop counts in its frame\'s '
              'vote. Cut the dataset again to leave out bare foil and holes.')
        return frames, None
    return frames, shows_material(shares)


def write_tables(run_dir, names, frames, material, novelty_and_limit, probs, labels, classes):
    """predictions.csv and frame_predictions.csv; the frames' table (None without frames)."""
    novelty, limit = novelty_and_limit
    pred = probs.argmax(1)
    table = pd.DataFrame({'Image Name': names, 'Prediction': [classes[i] for i in pred],
                          'Label': [classes[i] for i in labels], 'Result': pred == labels})
    if frames is not None:
        table['Frame'] = frames
    if material is not None:
        table['Material'] = material
    if novelty is not None:
        table['Novelty'] = novelty.round(3)
    for column, values in factor_columns(probs, classes).items():
        table[column] = values
    write_csv_atomic(add_probabilities(table, probs, classes),
                     os.path.join(run_dir, 'predictions.csv'))
    if frames is None:
        remove_stale(os.path.join(run_dir, 'frame_predictions.csv'))
        return None
    votes = vote_frames(frames, probs, labels, material, novelty, limit)
    per_frame = frame_table(votes, classes, [votes.warnings(i) for i in range(len(votes.frames))])
    write_csv_atomic(per_frame, os.path.join(run_dir, 'frame_predictions.csv'))
    return per_frame


def novelty_scores(novelty, material):
    """results.json's 'novelty': how many crops (and material crops) are novel."""
    novel = novelty > 1
    shown = np.ones(len(novel), bool) if material is None else np.asarray(material, bool)
    return {'novel_crops': int(novel.sum()), 'share': float(novel.mean()),
            'material_crops': int(shown.sum()),
            'share_of_material': float(novel[shown].mean()) if shown.any() else 0.0}


def write_figures(run_dir, results, name, split):
    panels = [('', results['crops'], f'{split} crops'), ('_frames', results.get('frames'),
                                                          'frames')]
    for factor in ('composition', 'state'):
        if factor in results:
            panels.append((f'_{factor}', results[factor]['crops'], f'{split} crops, {factor}'))
    for factor in ('composition', 'state'):
        if factor not in results:
            panels.append((f'_{factor}', None, ''))
    for suffix, res, what in panels:
        path = os.path.join(run_dir, f'confusion_matrix{suffix}.png')
        if res is None:
            remove_stale(path)
        else:
            confusion_matrix_png(res['confusion'], res['classes'], path,
                                 title=f"{name}: {100 * res['accuracy']:.2f}% of {res['n']} {what}")


def main(args):
    if args.shift_crops is not None and args.shift_crops < 1:
        fail(f'--shift-crops {args.shift_crops}: give 1 or more crops per class')
    dataset, version, run_dir = run_of_args(args)
    # not while train.py or another test.py writes there, nor while aug_img replaces the data
    with exclusive(run_dir):
        cfg, path, checkpoint = open_run(args, dataset, version)
        with reading(cfg['data_dir']):
            score_test_split(cfg, path, checkpoint, run_dir, args)


def score_test_split(cfg, path, checkpoint, run_root, args):
    run_dir = run_root
    if args.split != 'test':   # the test split's outputs stay where they are
        run_dir = os.path.join(run_root, args.split)
    os.makedirs(run_dir, exist_ok=True)
    device = pick_device(cfg['device'])
    model, classes = load_trained(cfg, path, checkpoint, device)
    note_unfitted(cfg, path, checkpoint)
    input_size = cfg['input_size']
    test_set = SEMDataset(cfg['data_dir'], args.split, classes, input_size=input_size)
    loader = make_loader(test_set, cfg, False, device)
    amp = amp_dtype(cfg, device)
    logits, labels, names = predict(model, loader, device, desc=args.split, tta=cfg['tta'],
                                    amp=amp)
    probs, labels = logits.softmax(1).double().numpy(), labels.numpy()
    frames, material = sources_of(names, cfg, args.split)
    novelty, limit = None, frame_limit_of(checkpoint.novelty)
    if checkpoint.novelty is not None:
        novelty = novelty_of(checkpoint.novelty, features_of(
            model, loader, device, amp, f'{args.split} features', space_of(checkpoint.novelty))[0])
    results = evaluate_split(probs, labels, classes, frames, material, novelty, limit)
    results.update(checkpoint=os.path.abspath(path), tta=cfg['tta'], split=args.split)
    if novelty is not None:
        results['novelty'] = novelty_scores(novelty, material)
    results['calibration'] = calibration_scores(logits, labels, checkpoint.temperature)
    reliability_png(logits, labels, checkpoint.temperature,
                    os.path.join(run_dir, 'reliability.png'),
                    f"{cfg['name']}: {args.split} crops")
    if args.shifts:
        # remap draws its grey-level distributions from the training crops (never this split)
        reference = SEMDataset(cfg['data_dir'], 'train', classes, input_size=input_size)
        results['shifts'] = evaluate_shifts(model, test_set, reference, frames, material, cfg,
                                            device, amp, results, args.shift_crops)
        write_csv_atomic(pd.DataFrame(results['shifts']).T.rename_axis('shift'),
                         os.path.join(run_dir, 'shifts.csv'), index=True)
    else:
        remove_stale(os.path.join(run_dir, 'shifts.csv'))

    per_frame = write_tables(run_dir, names, frames, material, (novelty, limit), probs, labels,
                             classes)
    from sklearn.metrics import classification_report   # here: --help need not wait for it
    ids = list(range(len(classes)))
    report_args = dict(labels=ids, target_names=classes, zero_division=0)
    print(classification_report(labels, probs.argmax(1), digits=4, **report_args))
    report = classification_report(labels, probs.argmax(1), output_dict=True, **report_args)
    report['checkpoint'], report['n_images'] = os.path.abspath(path), len(labels)
    write_json_atomic(report, os.path.join(run_dir, 'classification_report.json'))
    write_json_atomic(results, os.path.join(run_dir, 'results.json'))
    crops = results['crops']
    write_csv_atomic(pd.DataFrame(crops['confusion'], index=classes, columns=classes)
                     .rename_axis('true'), os.path.join(run_dir, 'confusion_matrix.csv'),
                     index=True)
    write_figures(run_dir, results, cfg['name'], args.split)
    write_report(run_dir, run_root, cfg, path, checkpoint, results,
                 Scored(names, probs, labels, test_set, material, per_frame), model, device)
    if args.shifts:
        print(f'under acquisition shifts ({args.split} split, accuracy in %):')
        print('\n'.join('  ' + line for line in shift_summary(results['shifts'],
                                                                results['crops']['n'])))
    print(summary_line(results, args.split) + f'; outputs in {run_dir}')


def summary_line(results, split='test'):
    parts = [f"accuracy {100 * results['crops']['accuracy']:.2f}% on {results['crops']['n']} "
             f'{split} crops']
    if 'frames' in results:
        parts.append(f"{100 * results['frames']['accuracy']:.2f}% on {results['frames']['n']} "
                     'frames')
    for factor in ('composition', 'state'):
        if factor in results:
            parts.append(f"{factor} {100 * results[factor]['crops']['accuracy']:.2f}%")
    bare = results.get('material')
    if bare and (bare['crops_without_material'] or bare['frames_without_verdict']):
        parts.append(f"{bare['crops_without_material']} crops without cathode material left out "
                     f"of the frame votes, {len(bare['frames_without_verdict'])} frames without "
                     'a verdict')
    if 'novelty' in results:
        parts.append(f"{results['novelty']['novel_crops']} crops unlike the training material "
                     f"({100 * results['novelty']['share']:.1f}%)")
    low = results['lowest_recall']
    parts.append(f"lowest recall {100 * low['recall']:.1f}% ({low['class']})")
    return '; '.join(parts)


if __name__ == '__main__':
    run_main(main, get_args_parser().parse_args())
