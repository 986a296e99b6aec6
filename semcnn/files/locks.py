"""Locks on dataset and run folders: two scripts never write, or replace what the other reads.

Without fcntl (Windows) they are skipped with one warning."""
import contextlib
import errno
import os
import shutil
import sys

try:
    import fcntl
except ImportError:   # Windows: no advisory locks; each script warns once and goes on
    fcntl = None

from semcnn.files.atomic import TEMPORARY, write_failed
from semcnn.files.errors import fail


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
