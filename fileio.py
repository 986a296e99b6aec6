"""Where outputs go, how they are written (atomically), and how a script stops on bad input.

Kept free of torch so that aug_img.py starts in a fraction of a second.
"""
import contextlib
import csv
import errno
import json
import os
import re
import shutil
import sys
import tempfile

try:
    import fcntl
except ImportError:   # Windows: no advisory locks; each script warns once and goes on
    fcntl = None

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
    """Stop the script with one clear line and a non-zero exit, no traceback. Control
    characters that came with a user's value (a newline in a --set) are shown escaped."""
    raise UserError(''.join(c if c.isprintable() else repr(c)[1:-1] for c in message))


def run_main(main, args):
    """Run a script's main(); a UserError becomes 'error: ...' on stderr and exit status 2."""
    try:
        main(args)
    except UserError as e:
        message = str(e)
        if 'Original Traceback' in message:   # raised in a DataLoader worker: ours is the end
            message = message.strip().splitlines()[-1].split('UserError: ', 1)[-1]
        # one write: torchrun's processes share the terminal, and their lines must not mix
        sys.stderr.write(f'error: {message}\n')
        sys.stderr.flush()
        sys.exit(2)
    except KeyboardInterrupt:
        print('interrupted', file=sys.stderr)
        sys.exit(130)


# The names atomic_path gives its temporary files (tempfile.mkstemp: 8 random characters).
TEMPORARY = re.compile(r'^\..+\.[a-z0-9_]{8}\.tmp(\.[^.]+)?$')


def write_failed(path, error):
    """Stop with one line for a write that the file system refused (full disk, quota, ...)."""
    reason = error.strerror or str(error) if isinstance(error, OSError) else str(error)
    hint = {errno.ENOSPC: 'free some disk space', errno.EDQUOT: 'free some of your quota',
            errno.EFBIG: 'the file system or a limit (ulimit -f) refuses a file this large',
            errno.EACCES: 'check the folder\'s permissions',
            errno.EROFS: 'the file system is read-only'}.get(getattr(error, 'errno', None),
                                                            'check the disk')
    fail(f'cannot write {path}: {reason.splitlines()[0][:200]}; {hint}, then run again '
         '(nothing half-written was left)')


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary name beside `path`; rename it onto `path` only if the block succeeds.

    A reader therefore sees either the old file or the complete new one, never a partial file,
    even if the process is killed mid-write. A write the file system refuses (full disk) stops
    the script with one line.
    """
    directory = os.path.dirname(path) or '.'
    base, ext = os.path.splitext(os.path.basename(path))
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f'.{base}.', suffix=f'.tmp{ext}', dir=directory)
        os.close(fd)
        yield tmp
        make_public(tmp)
        with open(tmp, 'rb') as f:
            os.fsync(f.fileno())   # on disk before its name is: a power cut leaves no empty file
        os.replace(tmp, path)
    except OSError as e:
        write_failed(path, e)
    finally:
        if tmp and os.path.exists(tmp):
            os.remove(tmp)


@contextlib.contextmanager
def exclusive(folder):
    """Hold the lock of `folder` (a file beside it) while the block runs; a second process that
    wants it stops with a message instead of interleaving its writes. The operating system
    releases the lock when the process ends, however it ends. What a killed writer left
    half-written in the folder is removed first."""
    with _locked(folder, exclusive=True) as f:
        if f is None:   # no lock to be had (warned): still clear what a killed run left
            remove_leftovers(folder)
            yield
            return
        try:   # who holds it, for the message a second run gets; the lock works without it
            f.seek(0)
            f.truncate()
            f.write(f'process {os.getpid()}\n')
            f.flush()
        except OSError:
            pass
        remove_leftovers(folder)
        try:
            yield
        finally:
            f.truncate(0)   # released: an empty lock file names no process


@contextlib.contextmanager
def reading(folder):
    """Hold a shared lock of `folder` while the block reads it: any number of readers, but no
    writer (aug_img --force) may replace it meanwhile, and none may be at work now. A folder
    on read-only storage needs no lock: nobody can replace it."""
    with _locked(folder, exclusive=False):
        yield


_warned_no_locks = []


def _warn_no_locks():
    """Once per process: this platform has no fcntl (Windows), so runs are not kept apart."""
    if not _warned_no_locks:
        _warned_no_locks.append(True)
        print('warning: this platform has no file locks (fcntl); make sure no other run '
              'writes the same dataset or run folder meanwhile', file=sys.stderr)


@contextlib.contextmanager
def _locked(folder, exclusive):
    """The lock file of `folder`, open and locked (exclusive or shared), or None where no lock
    is to be had (no fcntl; a read-only place for a shared lock). Creates the parent folder."""
    parent, name = os.path.split(os.path.normpath(folder))
    lock = os.path.join(parent, f'.{name}.lock')
    try:
        os.makedirs(parent or '.', exist_ok=True)
        f = open(lock, 'a+', encoding='utf-8') if fcntl else None
    except OSError as e:
        if not exclusive and e.errno in (errno.EACCES, errno.EROFS, errno.EPERM):
            yield None
            return
        write_failed(lock, e)
    if f is None:
        _warn_no_locks()
        yield None
        return
    with f:
        try:
            fcntl.flock(f, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip() or 'another process'
            fail(f'{folder} is in use by {holder}; wait for it to finish (or use another '
                 'name/version)')
        except OSError as e:   # a network file system without locks: go on, and say so
            print(f'warning: cannot lock {lock} ({e.strerror}); make sure no other run uses '
                  f'{folder} meanwhile', file=sys.stderr)
        yield f


def remove_leftovers(folder):
    """What a killed process left half-written: atomic_path's temporary files in `folder`, and
    aug_img's unfinished or replaced copies of it (siblings .<name>.partial-*, .replaced-*).
    Only called with the folder's lock held, so nobody is still writing them."""
    parent, name = os.path.split(os.path.normpath(folder))
    if os.path.isdir(folder):
        for entry in os.listdir(folder):
            path = os.path.join(folder, entry)
            if TEMPORARY.match(entry) and os.path.isfile(path):
                os.remove(path)
    for entry in os.listdir(parent or '.'):
        if entry.startswith((f'.{name}.partial-', f'.{name}.replaced-')):
            shutil.rmtree(os.path.join(parent, entry), ignore_errors=True)


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
