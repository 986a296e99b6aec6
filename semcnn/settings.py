"""The machinery behind config.py: a version merged over the defaults, --set overrides checked
against the types of the values they replace, every value checked before any work starts, the
command-line arguments, and a trained run's own config. config.py holds what a user edits (the
keys, their defaults, the versions) and binds Settings to them; scripts import from config.

Without torch: a script's --help and a refused bad value answer before the heavy libraries load.
"""
import math

from semcnn.files.errors import fail
from semcnn.files.paths import DATA_ROOT, is_dataset_name, latest_dataset, run_dir_of
from semcnn.training.choices import (HEADS, INTENSITY_TREATMENTS, SESSION_KEYS,
                                     check_model_name, has_imagenet_weights)

AMP_MODES = ('none', 'auto', 'bf16', 'fp16')
# What test.py, predict.py and gradcam.py may change of a trained run: how it runs, not what it is.
RUNTIME_KEYS = ('device', 'eval_batch_size', 'tta', 'num_workers')


KIND_NAMES = {int: 'a whole number', float: 'a number', bool: 'true or false'}


def parse_value(key, text, default):
    """`text` converted to the type of `default`, or a clear error."""
    kind = type(default)
    if kind is bool:
        lowered = text.strip().lower()
        if lowered in ('true', '1', 'yes', 'on'):
            return True
        if lowered in ('false', '0', 'no', 'off'):
            return False
    else:
        try:
            return kind(text)
        except ValueError:
            pass
    fail(f'--set {key}={text}: {key} takes {KIND_NAMES.get(kind, kind.__name__)} '
         f'(default {default!r})')


def apply_overrides(cfg, assignments):
    """Apply '--set key=value' strings, each type-checked against the value it replaces."""
    cfg = dict(cfg)
    for item in assignments or []:
        key, sep, text = item.partition('=')
        key = key.strip()
        if not sep:
            fail(f'--set {item}: write key=value, e.g. --set epochs=5')
        if key not in cfg or key == 'name':
            fail(f"--set {item}: unknown key {key!r}; known keys: "
                 f"{', '.join(sorted(k for k in cfg if k != 'name'))}")
        cfg[key] = parse_value(key, text, cfg[key])
    return cfg


def add_checkpoint_argument(parser):
    parser.add_argument('--checkpoint', default='best',
                        help="'best' (default), 'last', or the path of a checkpoint file")
    return parser


class Settings:
    """The configs of config.py: `defaults(dataset)` (every key), `versions` (name: the keys a
    version changes), `datasets` (a dataset's own {'default': ..., versions}), the dataset and
    version used when the command line names none, and `choices` (key: allowed values) checked
    beside this module's own."""

    def __init__(self, defaults, versions, datasets, dataset_name, version, choices):
        self.defaults, self.versions, self.datasets = defaults, versions, datasets
        self.dataset_name, self.version, self.choices = dataset_name, version, choices

    def get_config(self, dataset, version):
        """The default of `dataset` updated by `version`, with 'name' = '<dataset>_<version>'."""
        if not is_dataset_name(dataset):
            fail(f'--dataset {dataset!r}: give the name of a folder in {DATA_ROOT}/ (as '
                 'aug_img.py -n named it)')
        versions = self.datasets.get(dataset) or {'default': self.defaults(dataset),
                                                    **self.versions}
        if version not in versions:
            fail(f"unknown version {version!r} for dataset {dataset!r}; config.py defines "
                 f"{', '.join(sorted(versions))}")
        merged = dict(versions['default'])
        unknown = sorted(set(versions[version]) - set(merged))
        if unknown:
            fail(f"config.py: version {version!r} of {dataset!r} sets unknown key(s) "
                 f"{', '.join(unknown)}; known keys: {', '.join(sorted(merged))}")
        merged.update(versions[version])
        merged['name'] = f'{dataset}_{version}'
        return merged

    def check_values(self, cfg):
        """Values of the right type can still make no sense; say which. Every key's allowed
        values are checked here, before a script reads any data."""
        limits = {'batch_size': 1, 'eval_batch_size': 1,
                  'epochs': 0 if cfg['probe_views'] else 1, 'input_size': 16,
                  'num_workers': -1, 'seed': 0, 'probe_views': 0}
        for key, low in limits.items():
            if cfg[key] < low:
                fail(f'{key}={cfg[key]}: must be at least {low}')
        for key, value in cfg.items():
            if isinstance(value, float) and not math.isfinite(value):
                fail(f'{key}={value}: must be a finite number')
        if not cfg['lr'] > 0:
            fail(f"lr={cfg['lr']}: must be positive")
        if not 0 <= cfg['label_smoothing'] < 1:
            fail(f"label_smoothing={cfg['label_smoothing']}: must be in [0, 1)")
        if not 0 <= cfg['jitter'] < 1:
            fail(f"jitter={cfg['jitter']}: must be in [0, 1)")
        if not 0 <= cfg['warmup_epochs'] <= cfg['epochs']:
            fail(f"warmup_epochs={cfg['warmup_epochs']}: must be between 0 and epochs "
                 f"({cfg['epochs']})")
        for key in SESSION_KEYS:
            if cfg[key] < 0:
                fail(f'{key}={cfg[key]}: must be 0 (off) or more')
        if cfg['illumination'] >= 1:
            fail(f"illumination={cfg['illumination']}: must be below 1 (a gain ramp of +-100 "
                 '% would black out half the crop)')
        choices = {'intensity': INTENSITY_TREATMENTS, 'head': HEADS, 'amp': AMP_MODES,
                   **self.choices}
        for key, allowed in choices.items():
            if cfg[key] not in allowed:
                fail(f"{key}={cfg[key]}: choose one of {', '.join(allowed)}")
        check_model_name(cfg['model'])
        if not has_imagenet_weights(cfg['model']) and cfg['pretrained']:
            fail(f"model={cfg['model']}: has no ImageNet weights; add --set pretrained=false")
        if cfg['probe_views'] and not cfg['pretrained']:
            fail(f"probe_views={cfg['probe_views']}: a linear probe reads the features of a "
                 'pretrained network; add --set pretrained=true, or --set probe_views=0')
        if cfg['weight_decay'] < 0:
            fail(f"weight_decay={cfg['weight_decay']}: must be 0 or more")
        if cfg['weights_file'] and not cfg['pretrained']:
            fail(f"weights_file={cfg['weights_file']} is set but pretrained=false: add --set "
                 'pretrained=true to start from those weights, or leave weights_file empty')

    def add_config_arguments(self, parser):
        parser.add_argument('--dataset', default=None,
                            help=f'a dataset in {DATA_ROOT}/ (default: the one aug_img.py cut '
                                 f'last, else {self.dataset_name})')
        parser.add_argument('--version', default=self.version, help=f'default {self.version}')
        parser.add_argument('--set', action='append', default=[], metavar='KEY=VALUE',
                            help='override one config key (repeatable), type-checked')
        return parser

    def chosen_dataset(self, args):
        """--dataset; without it the dataset aug_img.py cut last, else dataset_name (saying
        which)."""
        if args.dataset is not None:
            return args.dataset
        dataset, why = latest_dataset(), 'cut last by aug_img.py'
        if dataset is None:
            dataset, why = self.dataset_name, 'dataset_name in config.py'
        print(f'dataset: {dataset} ({why}; --dataset NAME for another)')
        return dataset

    def config_from_args(self, args):
        """The config the command line asks for (train.py)."""
        dataset = self.chosen_dataset(args)
        cfg = apply_overrides(self.get_config(dataset, args.version), args.set)
        self.check_values(cfg)
        cfg['dataset'], cfg['version'] = dataset, args.version
        return cfg

    def run_of_args(self, args):
        """(dataset, version, run folder) of the trained run the command line names."""
        dataset = self.chosen_dataset(args)
        self.get_config(dataset, args.version)   # the version must exist
        return dataset, args.version, run_dir_of({'dataset': dataset, 'version': args.version})

    def open_run(self, args, dataset, version):
        """(config, checkpoint path, Checkpoint) of a trained run, for test.py, predict.py and
        gradcam.py. The config is the one the run was trained with (model, input size,
        normalisation, input treatment, ...), over the defaults for keys it predates, reading
        data/<dataset>; --set may change only RUNTIME_KEYS."""
        from semcnn.training.checkpoint import Checkpoint, checkpoint_path   # torch: only here
        path = checkpoint_path(run_dir_of({'dataset': dataset, 'version': version}),
                               args.checkpoint)
        defaults = self.defaults(dataset)
        for item in args.set:
            key = item.partition('=')[0].strip()
            if key in defaults and key not in RUNTIME_KEYS:
                fail(f"--set {item}: {key} is fixed by the trained run ({path}); only "
                     f"{', '.join(RUNTIME_KEYS)} can be set when using it")
        checkpoint = Checkpoint.load(path)
        trained = {k: v for k, v in checkpoint.config.items() if k in defaults}
        cfg = apply_overrides({**defaults, **trained, 'data_dir': defaults['data_dir']},
                              args.set)
        self.check_values(cfg)
        cfg.update(name=f'{dataset}_{version}', dataset=dataset, version=version)
        return cfg, path, checkpoint
