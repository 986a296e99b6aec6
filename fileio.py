"""Where outputs go, how they are written (atomically), and how a script stops on bad input.

Kept free of torch so that aug_img.py starts in a fraction of a second.
"""
import contextlib
import csv
import json
import os
import sys
import tempfile

DATA_ROOT = 'data'   # aug_img.py writes data/<name>/; train.py and test.py read it
RUNS_ROOT = 'runs'   # train.py and test.py write runs/<dataset>/<version>/


def run_dir_of(cfg):
    """Where train.py and test.py keep everything of one dataset and config version."""
    return os.path.join(RUNS_ROOT, cfg['dataset'], cfg['version'])


def _current_umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


# Temporary files and folders are created private (0600/0700); what is renamed into place gets
# the permissions an ordinary open()/mkdir() would have given, so colleagues can read results.
UMASK = _current_umask()


def make_public(path):
    os.chmod(path, (0o777 if os.path.isdir(path) else 0o666) & ~UMASK)


class UserError(Exception):
    """A problem the user can fix; its message is one line naming the file or value."""


def fail(message):
    """Stop the script with one clear line and a non-zero exit, no traceback."""
    raise UserError(message)


def run_main(main, args):
    """Run a script's main(); a UserError becomes 'error: ...' on stderr and exit status 2."""
    try:
        main(args)
    except UserError as e:
        print(f'error: {e}', file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print('interrupted', file=sys.stderr)
        sys.exit(130)


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary name beside `path`; rename it onto `path` only if the block succeeds.

    A reader therefore sees either the old file or the complete new one, never a partial file,
    even if the process is killed mid-write.
    """
    directory = os.path.dirname(path) or '.'
    base, ext = os.path.splitext(os.path.basename(path))
    fd, tmp = tempfile.mkstemp(prefix=f'.{base}.', suffix=f'.tmp{ext}', dir=directory)
    os.close(fd)
    try:
        yield tmp
        make_public(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_csv_atomic(frame, path, index=False):
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=index)


def write_rows_atomic(header, rows, path):
    """A CSV file from a header and row lists, with the csv module (no pandas import needed)."""
    with atomic_path(path) as tmp:
        with open(tmp, 'w', newline='', encoding='utf-8') as f:
            writer = csv.writer(f)
            writer.writerow(header)
            writer.writerows(rows)


def write_json_atomic(obj, path):
    with atomic_path(path) as tmp:
        with open(tmp, 'w', encoding='utf-8') as f:
            json.dump(obj, f, indent=2, ensure_ascii=False)
            f.write('\n')


def save_figure_atomic(fig, path):
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=150, bbox_inches='tight', format='png')
