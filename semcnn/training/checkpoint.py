"""The checkpoint format: what train.py's best.pt and last.pt hold, written and read only here.

A checkpoint is saved as a plain dict of tensors, numbers, strings, lists and dicts, so that
torch.load(weights_only=True) reads it without running pickled code. Keys that older
checkpoints lack take the defaults below.
"""
import dataclasses
import os

import torch

from semcnn.files.atomic import atomic_path, write_failed
from semcnn.files.errors import fail
from semcnn.training.model import build_model


@dataclasses.dataclass
class Checkpoint:
    model: dict                  # the SEMClassifier's state_dict (normalisation buffers included)
    classes: list                # class names, in the order of the model's outputs
    config: dict                 # the config it was trained with (config.open_run reads it)
    crop_size: list = None       # [width, height] of the training crops: predict.py's tile
    channels: int = None         # 1 (gray) or 3 channels of the training crops
    um_per_px: float = None      # the training crops' scale: predict.py brings frames to it
    temperature: float = 1.0     # divides the outputs: fitted on the validation split at the
    calibration: dict = None     # end of training, with its ECE before and after
                                 # (semcnn/evaluation/calibration.py); 1.0 in last.pt
    novelty: dict = None         # training features and threshold (evaluation/novelty.py)
    familiar: dict = None        # what the training frames looked like
                                 # (semcnn/evaluation/familiarity.py)
    data: dict = None            # {'train': ..., 'validate': ...}: SEMDataset.fingerprint()
                                 # of the splits it was trained and fitted on
    epoch: int = 0               # epochs trained
    best_val_acc: float = None   # the best validation accuracy so far (it chose best.pt)
    history: list = dataclasses.field(default_factory=list)   # train.py's rows, one per epoch
    optimizer: dict = None       # what --resume needs to continue the same run
    scheduler: dict = None
    scaler: dict = None

    def save(self, path):
        state = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        with atomic_path(path) as tmp:
            try:
                torch.save(state, tmp)
            except RuntimeError as e:   # torch reports a failed write (full disk) this way
                write_failed(path, e)

    @classmethod
    def load(cls, path):
        """A checkpoint written by train.py, loaded with weights_only=True."""
        if not os.path.isfile(path):
            fail(f'{path}: no checkpoint; train first (python train.py with the same --dataset '
                 'and --version)')
        try:
            state = torch.load(path, map_location='cpu', weights_only=True)
        except Exception as e:   # torch raises several types for foreign or unsafe files
            reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            fail(f'{path}: not a checkpoint this pipeline can load safely ({reason[:200]})')
        known = {f.name for f in dataclasses.fields(cls)}
        if not isinstance(state, dict) or not {'model', 'classes', 'config'} <= set(state):
            fail(f'{path}: not a checkpoint written by train.py (missing model/classes/config)')
        return cls(**{k: v for k, v in state.items() if k in known})


def checkpoint_path(run_dir, choice):
    """'best' / 'last' of a run folder, or a path as given."""
    return os.path.join(run_dir, f'{choice}.pt') if choice in ('best', 'last') else choice


def note_unfitted(cfg, path, checkpoint):
    """test.py and predict.py say so when a checkpoint has no temperature and novelty record
    (last.pt, or the best.pt of a train.py that did not fit them yet)."""
    if checkpoint.novelty is None:
        print(f'note: {path} has no temperature or novelty record: its probabilities are not '
              'calibrated and tiles unlike the training material are not detected; fit them '
              f"to best.pt with python train.py --dataset {cfg['dataset']} --version "
              f"{cfg['version']} --refit")


def load_trained(cfg, path, checkpoint, device):
    """(model on `device` in eval mode, class names) of `checkpoint` read from `path`, built as
    its own config `cfg` says (config.open_run)."""
    classes = list(checkpoint.classes)
    model = build_model(cfg, classes, pretrained=False)
    try:
        model.load_state_dict(checkpoint.model)
    except RuntimeError as e:
        fail(f'{path}: its weights do not fit {cfg["model"]} with {len(classes)} classes '
             f'({str(e).splitlines()[0]})')
    if cfg['channels_last']:
        model.use_channels_last()
    model.temperature = checkpoint.temperature
    return model.to(device).eval(), classes
