"""Where things live: data/<dataset>/, runs/<dataset>/<version>/, the dataset cut last.

aug_img.py writes data/<dataset>/; train.py and test.py write runs/<dataset>/<version>/; a script
given no dataset uses the one cut last."""
import os

DATA_ROOT = 'data'   # aug_img.py writes data/<name>/; train.py and test.py read it
RUNS_ROOT = 'runs'   # train.py and test.py write runs/<dataset>/<version>/
# aug_img.py writes here the name of the dataset it cut last: the other scripts' default
LATEST_DATASET = os.path.join(DATA_ROOT, '.latest')


def is_dataset_name(name):
    """A plain folder name inside data/, not one that aug_img.py's unfinished work uses."""
    return not (name in ('', '.', '..') or name.startswith('.') or '/' in name or '\\' in name
                or os.path.isabs(name) or '.partial-' in name or '.replaced-' in name)


def latest_dataset():
    """The dataset aug_img.py cut last, if it is still in data/; else None."""
    try:
        with open(LATEST_DATASET, encoding='utf-8') as f:
            name = f.read().strip()
    except OSError:
        return None
    return name if name and os.path.isdir(os.path.join(DATA_ROOT, name)) else None


def datasets_here():
    """The datasets in data/ (folders that aug_img.py finished), for messages."""
    if not os.path.isdir(DATA_ROOT):
        return []
    return sorted(n for n in os.listdir(DATA_ROOT) if not n.startswith('.')
                  and os.path.isfile(os.path.join(DATA_ROOT, n, 'manifest.csv')))


def run_dir_of(cfg):
    """Where train.py and test.py keep everything of one dataset and config version."""
    return os.path.join(RUNS_ROOT, cfg['dataset'], cfg['version'])
