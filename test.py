"""Predict the test split with the best checkpoint of a run and report how it did.

    python test.py                                    # dataset_name / version at the top of config.py
    python test.py --dataset example --version paper
    python test.py --checkpoint last                  # or a path to a .pt file

Writes to runs/<dataset>/<version>/: predictions.csv (one row per test image: Image Name,
Prediction, Label, Result, then one probability column per class), classification_report.json
(scikit-learn's, also printed), confusion_matrix.csv and confusion_matrix.png.
"""
import argparse
import os

import numpy as np
import pandas as pd
from sklearn.metrics import classification_report, confusion_matrix

from config import add_config_arguments, config_from_args
from dataset import SEMDataset
from fileio import fail, run_dir_of, run_main, write_csv_atomic, write_json_atomic
from model import build_model
from plots import confusion_matrix_png
from utils import load_checkpoint, make_loader, pick_device, predict


def get_args_parser():
    p = argparse.ArgumentParser(description='Predict the test split with a trained checkpoint.')
    add_config_arguments(p)
    p.add_argument('--checkpoint', default='best',
                   help="'best' (default), 'last', or the path of a checkpoint file")
    return p


def load_model(cfg, path, device):
    """The model of a checkpoint, checked against the config it is used with."""
    state = load_checkpoint(path)
    trained = state['config']
    if trained.get('model') != cfg['model']:
        fail(f"{path}: holds a {trained.get('model')} model, but {cfg['name']} says "
             f"model={cfg['model']}; use the matching --version or --checkpoint")
    classes = list(state['classes'])
    model = build_model(cfg, len(classes), pretrained=False)
    try:
        model.load_state_dict(state['model'])
    except RuntimeError as e:
        fail(f'{path}: its weights do not fit {cfg["model"]} with {len(classes)} classes '
             f'({str(e).splitlines()[0]})')
    return model.to(device), classes, trained['input_size']


def main(args):
    cfg = config_from_args(args)
    run_dir = run_dir_of(cfg)
    path = os.path.join(run_dir, f'{args.checkpoint}.pt') if args.checkpoint in ('best', 'last') \
        else args.checkpoint
    device = pick_device(cfg['device'])
    model, classes, input_size = load_model(cfg, path, device)
    test_set = SEMDataset(cfg['data_dir'], 'test', classes, input_size=input_size)
    loader = make_loader(test_set, cfg, False, device)
    logits, labels, names = predict(model, loader, device, desc='test')
    probs = logits.softmax(1).numpy()
    pred, true = probs.argmax(1), labels.numpy()
    accuracy = 100 * (pred == true).mean()

    table = pd.DataFrame({'Image Name': names,
                          'Prediction': [classes[i] for i in pred],
                          'Label': [classes[i] for i in true],
                          'Result': pred == true})
    for i, cls in enumerate(classes):
        table[f'P({cls})'] = np.round(probs[:, i], 6)
    write_csv_atomic(table, os.path.join(run_dir, 'predictions.csv'))

    ids = list(range(len(classes)))
    print(classification_report(true, pred, labels=ids, target_names=classes, digits=4,
                                zero_division=0))
    report = classification_report(true, pred, labels=ids, target_names=classes,
                                   output_dict=True, zero_division=0)
    report['checkpoint'], report['n_images'] = os.path.abspath(path), len(true)
    write_json_atomic(report, os.path.join(run_dir, 'classification_report.json'))

    matrix = confusion_matrix(true, pred, labels=ids)
    write_csv_atomic(pd.DataFrame(matrix, index=classes, columns=classes).rename_axis('true'),
                     os.path.join(run_dir, 'confusion_matrix.csv'), index=True)
    confusion_matrix_png(matrix, classes, os.path.join(run_dir, 'confusion_matrix.png'),
                         title=f"{cfg['name']}: {accuracy:.2f}% of {len(true)} test crops")
    print(f'accuracy {accuracy:.2f}% on {len(true)} test crops; '
          f'outputs in {run_dir}')


if __name__ == '__main__':
    run_main(main, get_args_parser().parse_args())
