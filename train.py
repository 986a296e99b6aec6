"""Train a CNN on data/<dataset>/{train,validate} with a named config version.

    python train.py                                   # the dataset aug_img.py cut last
    python train.py --dataset example --version paper
    python train.py --set epochs=10 --set lr=1e-3     # type-checked overrides
    python train.py --resume                          # continue from runs/<dataset>/<version>/last.pt
    python train.py --force                           # start over, replacing that run
    python train.py --refit                           # calibrate an existing run's best.pt again
    torchrun --nproc_per_node=4 train.py --version gpu  # one process per GPU

Outputs in runs/<dataset>/<version>/: best.pt (highest validation accuracy; the test split is
never looked at), last.pt (for --resume), history.csv (one row per epoch), learning_curve.png,
config.json. The checkpoints also record the training frames' acquisition settings and grey-level
range, which predict.py holds new frames against (semcnn/evaluation/familiarity.py), and the
training crops' scale. Each epoch's line and history.csv give training img/s and the share of
that time spent waiting for data. At the end, best.pt gets a temperature fitted on the validation
split, which calibrates every probability test.py and predict.py give
(semcnn/evaluation/calibration.py), and the features of a sample of training crops with the
distance that 99 % of validation crops stay within, by which test.py and predict.py tell a tile
unlike the training material (semcnn/evaluation/novelty.py). --refit fits those two again on a
finished run without training it (a run trained before train.py fitted them: predict.py then
neither calibrates nor detects novel tiles). The loop itself is engine.py's.
"""
import argparse

from config import add_config_arguments, config_from_args
from semcnn.files.errors import run_main


def get_args_parser():
    p = argparse.ArgumentParser(description='Train a CNN on SEM crops.')
    add_config_arguments(p)
    p.add_argument('--resume', action='store_true', help='continue from last.pt of this run')
    p.add_argument('--force', action='store_true', help='start over, replacing an existing run')
    p.add_argument('--refit', action='store_true',
                   help="no training: fit best.pt's temperature and novelty record again on "
                        'the run\'s validation split (for runs trained before they existed)')
    return p


def main(args):
    cfg = config_from_args(args)   # a refused --set stops here, before torch is loaded
    import engine   # the loop, and with it torch: 2 s that --help and a bad value need not wait
    engine.run(cfg, args)


if __name__ == '__main__':
    run_main(main, get_args_parser().parse_args())
