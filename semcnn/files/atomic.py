"""Outputs written atomically: a reader sees the old file or the complete new one.

Never a partial one; a write the file system refuses stops the script with one line.

Kept free of torch so that aug_img.py starts in a fraction of a second.
"""
import contextlib
import csv
import errno
import json
import os
import re
import tempfile

from semcnn.files.errors import fail


def _current_umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


# Temporary files and folders are created private (0600/0700); what is renamed into place gets
# the permissions an ordinary open()/mkdir() would have given, so colleagues can read results.
UMASK = _current_umask()


def make_public(path):
    os.chmod(path, (0o777 if os.path.isdir(path) else 0o666) & ~UMASK)


# The names atomic_path gives its temporary files (tempfile.mkstemp: 8 random characters).
TEMPORARY = re.compile(r'^\..+\.[a-z0-9_]{8}\.tmp(\.[^.]+)?$')


def write_failed(path, error):
    """Stop with one line for a write that the file system refused (full disk, quota, ...)."""
    hint = {errno.ENOSPC: 'free some disk space', errno.EDQUOT: 'free some of your quota',
            errno.EFBIG: 'the file system or a limit (ulimit -f) refuses a file this large',
            # Windows answers EACCES too when another program has a file of the folder open
            errno.EACCES: 'close any of its files that another program has open, or check the '
                          'folder\'s permissions',
            errno.EROFS: 'the file system is read-only'}.get(getattr(error, 'errno', None),
                                                            'check the disk')
    fail(f'cannot write {path}: {_reason(error)}; {hint}, then run again '
         '(nothing half-written was left)')


def _reason(error):
    reason = error.strerror or str(error) if isinstance(error, OSError) else str(error)
    return reason.splitlines()[0][:200]


def held_open(path, error):
    """Stop with one line when `path` cannot be replaced or removed although its folder is
    writable: on Windows, another program (a spreadsheet, an image viewer) has it open."""
    fail(f'cannot replace {path}: {_reason(error)}; close {path} in the program that has it '
         'open, then run again (nothing half-written was left)')


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
        # On disk before its name is: a power cut leaves no empty file. Opened for writing:
        # Windows flushes only a handle that may write (FlushFileBuffers).
        with open(tmp, 'r+b') as f:
            os.fsync(f.fileno())
        try:
            os.replace(tmp, path)
        except PermissionError as e:   # the folder took the temporary file: the old one is held
            held_open(path, e)
    except OSError as e:
        write_failed(path, e)
    finally:
        if tmp and os.path.exists(tmp):
            os.remove(tmp)


def remove_stale(path):
    """An output this run does not write must not leave an older run's file behind."""
    if os.path.exists(path):
        try:
            os.remove(path)
        except PermissionError as e:
            held_open(path, e)


# CSV files start with a byte-order mark: Excel then reads them as UTF-8 (a frame named
# "Probe_µm.tif" stays so); pandas and csv.DictReader with encoding utf-8-sig skip it.
CSV_ENCODING = 'utf-8-sig'


def write_csv_atomic(frame, path, index=False):
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=index, encoding=CSV_ENCODING)


def write_rows_atomic(header, rows, path):
    """A CSV file from a header and row lists, with the csv module (no pandas import needed)."""
    with atomic_path(path) as tmp:
        with open(tmp, 'w', newline='', encoding=CSV_ENCODING) as f:
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
