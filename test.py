"""Predict the test split with the best checkpoint of a run and report how it did.

    python test.py                                    # dataset_name / version at the top of config.py
    python test.py --dataset example --version paper
    python test.py --checkpoint last                  # or a path to a .pt file
    python test.py --set tta=true                     # mean over the 8 flips/turns of each crop

Scores crops, and source frames (the mean probability of a frame's crops, from the dataset's
manifest.csv). Class names `<composition>[_<state>]` (no suffix = pristine) are also scored as
composition and as state. Writes to runs/<dataset>/<version>/:
- predictions.csv: one row per test crop (Image Name, Prediction, Label, Result, Frame, one
  probability column per class); frame_predictions.csv: one row per source frame;
- results.json: accuracy, recall per class and confusion matrix per level (crops, frames,
  composition, state); classification_report.json (scikit-learn's, also printed);
- confusion_matrix.csv/.png (crops), and confusion_matrix_{frames,composition,state}.png.
"""
import argparse
import os

import pandas as pd
from sklearn.metrics import classification_report

from config import add_checkpoint_argument, add_config_arguments, config_from_args
from dataset import SEMDataset
from evaluation import (add_probabilities, evaluate_split, factor_columns, read_frame_of_crop,
                        vote_frames)
from fileio import (exclusive, reading, run_dir_of, run_main, write_csv_atomic,
                    write_json_atomic)
from plots import confusion_matrix_png
from utils import amp_dtype, checkpoint_path, load_trained, make_loader, pick_device, predict


def get_args_parser():
    p = argparse.ArgumentParser(description='Predict the test split with a trained checkpoint.')
    add_config_arguments(p)
    add_checkpoint_argument(p)
    return p


def frames_of(names, cfg):
    """The source frame of each test crop, or None (with a note) when the manifest lacks them."""
    frame_of = read_frame_of_crop(cfg['data_dir'], 'test')
    if frame_of is None:
        print(f"note: no manifest.csv in {cfg['data_dir']}; frame results skipped")
        return None
    missing = [n for n in names if n not in frame_of]
    if missing:
        print(f"note: {len(missing)} test crops (e.g. {missing[0]}) are not in "
              f"{cfg['data_dir']}/manifest.csv; frame results skipped")
        return None
    return [frame_of[n] for n in names]


def write_tables(run_dir, names, frames, probs, labels, classes):
    pred = probs.argmax(1)
    table = pd.DataFrame({'Image Name': names, 'Prediction': [classes[i] for i in pred],
                          'Label': [classes[i] for i in labels], 'Result': pred == labels})
    if frames is not None:
        table['Frame'] = frames
    for column, values in factor_columns(probs, classes).items():
        table[column] = values
    write_csv_atomic(add_probabilities(table, probs, classes),
                     os.path.join(run_dir, 'predictions.csv'))
    if frames is None:
        remove_stale(os.path.join(run_dir, 'frame_predictions.csv'))
        return
    order, frame_labels, counts, frame_probs, agree = vote_frames(frames, probs, labels)
    frame_pred = frame_probs.argmax(1)
    table = pd.DataFrame({'Frame': order, 'Prediction': [classes[i] for i in frame_pred],
                          'Label': [classes[i] for i in frame_labels],
                          'Result': frame_pred == frame_labels, 'Crops': counts,
                          'Agreement': agree.round(4)})
    for column, values in factor_columns(frame_probs, classes).items():
        table[column] = values
    write_csv_atomic(add_probabilities(table, frame_probs, classes),
                     os.path.join(run_dir, 'frame_predictions.csv'))


def write_figures(run_dir, results, name):
    panels = [('', results['crops'], 'test crops'), ('_frames', results.get('frames'), 'frames')]
    for factor in ('composition', 'state'):
        if factor in results:
            panels.append((f'_{factor}', results[factor]['crops'], f'test crops, {factor}'))
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


def remove_stale(path):
    """A level that this test run does not score must not leave an older run's file behind."""
    if os.path.exists(path):
        os.remove(path)


def main(args):
    cfg = config_from_args(args)
    # not while train.py or another test.py writes there, nor while aug_img replaces the data
    with exclusive(run_dir_of(cfg)), reading(cfg['data_dir']):
        score_test_split(cfg, args)


def score_test_split(cfg, args):
    run_dir = run_dir_of(cfg)
    path = checkpoint_path(run_dir, args.checkpoint)
    device = pick_device(cfg['device'])
    model, classes, state = load_trained(cfg, path, device)
    test_set = SEMDataset(cfg['data_dir'], 'test', classes,
                          input_size=state['config']['input_size'])
    loader = make_loader(test_set, cfg, False, device)
    logits, labels, names = predict(model, loader, device, desc='test', tta=cfg['tta'],
                                   amp=amp_dtype(cfg, device))
    probs, labels = logits.softmax(1).double().numpy(), labels.numpy()
    frames = frames_of(names, cfg)
    results = evaluate_split(probs, labels, classes, frames)
    results.update(checkpoint=os.path.abspath(path), tta=cfg['tta'])

    write_tables(run_dir, names, frames, probs, labels, classes)
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
    write_figures(run_dir, results, cfg['name'])
    print(summary_line(results) + f'; outputs in {run_dir}')


def summary_line(results):
    parts = [f"accuracy {100 * results['crops']['accuracy']:.2f}% on {results['crops']['n']} "
             'test crops']
    if 'frames' in results:
        parts.append(f"{100 * results['frames']['accuracy']:.2f}% on {results['frames']['n']} "
                     'frames')
    for factor in ('composition', 'state'):
        if factor in results:
            parts.append(f"{factor} {100 * results[factor]['crops']['accuracy']:.2f}%")
    low = results['lowest_recall']
    parts.append(f"lowest recall {100 * low['recall']:.1f}% ({low['class']})")
    return '; '.join(parts)


if __name__ == '__main__':
    run_main(main, get_args_parser().parse_args())
