"""Locks on dataset and run folders: two scripts never write, or replace what the other reads.

Where fcntl exists (Linux, macOS) a folder's lock is flock on a file beside it: exclusive for a
writer, shared for readers. Without it (Windows) the locks are filelock's kernel locks
(LockFileEx), which the system also releases when the process ends, however it ends; filelock
offers only their exclusive form (LockFileEx has a shared one), so each reader holds a lock of
its own beside the folder's (see _kernel_locked). filelock's soft (marker-file) locks are never
taken: a killed run would leave a stale one; where they are all filelock has, the scripts run
without locks, with a warning.
"""
import contextlib
import errno
import itertools
import os
import shutil
import sys

try:
    import fcntl
except ImportError:   # Windows: filelock's kernel lock instead
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
    """Once per process: neither fcntl nor a kernel lock of filelock, so runs are not kept
    apart."""
    if not _warned_no_locks:
        _warned_no_locks.append(True)
        print('warning: this platform has no file locks (fcntl or filelock); make sure no other '
              'run writes the same dataset or run folder meanwhile', file=sys.stderr)


def needs_no_lock(error, exclusive):
    """A reader that cannot create the lock file: read-only storage, which nobody can replace."""
    return not exclusive and error.errno in (errno.EACCES, errno.EROFS, errno.EPERM)


def in_use(folder, holder):
    fail(f'{folder} is in use by {holder or "another process"}; wait for it to finish (or use '
         'another name/version)')


@contextlib.contextmanager
def _locked(folder, exclusive):
    """The lock file of `folder`, open and locked (exclusive or shared), or None where no lock
    is to be had (a read-only place for a shared lock; no lock at all on this platform).
    Creates the parent folder."""
    parent, name = os.path.split(os.path.normpath(folder))
    lock = os.path.join(parent, f'.{name}.lock')
    if fcntl is None:
        with _kernel_locked(folder, lock, exclusive) as f:
            yield f
        return
    try:
        os.makedirs(parent or '.', exist_ok=True)
        f = open(lock, 'a+', encoding='utf-8')
    except OSError as e:
        if needs_no_lock(e, exclusive):
            yield None
            return
        write_failed(lock, e)
    with f:
        try:
            fcntl.flock(f, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            in_use(folder, f.read().strip())
        except OSError as e:   # a network file system without locks: go on, and say so
            print(f'warning: cannot lock {lock} ({e.strerror}); make sure no other run uses '
                  f'{folder} meanwhile', file=sys.stderr)
        yield f


# A reader without fcntl holds the writer's lock only while it signs in: another reader that
# finds it taken waits this long before it concludes that a writer is at work.
READER_WAIT_S = 2.0
_readers_signed_in = itertools.count()


@contextlib.contextmanager
def _kernel_locked(folder, lock, exclusive):
    """Without fcntl (Windows): the same rules from filelock's exclusive kernel lock (LockFileEx;
    filelock offers no shared form). A writer holds the lock of `folder` throughout, after checking
    that no reader holds a lock of its own in `lock`.readers/; a reader takes the folder's lock
    only to add its own there. The holder's name is in `lock`.holder, which another process can
    read while the lock is held (Windows keeps a locked file's first byte from other readers).
    Yields the holder file, open for writing, to a writer; None to a reader, and (with a
    warning) where filelock has only soft locks."""
    import filelock   # here only: where fcntl exists it does the work, and starts faster
    if issubclass(filelock.FileLock, filelock.SoftFileLock):
        _warn_no_locks()
        if exclusive:   # the writer's parent folder, as taking a lock would have made it
            parent = os.path.dirname(lock) or '.'
            try:
                os.makedirs(parent, exist_ok=True)
            except OSError as e:
                write_failed(parent, e)
        yield None
        return
    readers = lock + '.readers'
    folder_lock = _take(filelock, folder, lock, 0 if exclusive else READER_WAIT_S, exclusive)
    if folder_lock is None:   # a reader on read-only storage
        yield None
        return
    if not exclusive:
        try:
            mine = _take(filelock, folder, os.path.join(
                readers, f'{os.getpid()}-{next(_readers_signed_in)}.lock'), 0, exclusive)
        finally:
            folder_lock.release()
        try:
            yield None
        finally:
            if mine is not None:
                _let_go(mine)
        return
    holder_path = lock + '.holder'
    try:
        _refuse_while_read(filelock, folder, readers)
        with open(holder_path, 'w+', encoding='utf-8') as f:
            yield f
    finally:
        with contextlib.suppress(OSError):
            os.remove(holder_path)
        folder_lock.release()


def _take(filelock, folder, path, wait, exclusive):
    """filelock's lock of `path`, acquired within `wait` seconds, or a message naming who holds
    it; None for a reader where the lock cannot be created (read-only storage)."""
    kernel_lock = filelock.FileLock(path)
    try:
        os.makedirs(os.path.dirname(path) or '.', exist_ok=True)
        kernel_lock.acquire(timeout=wait)
    except filelock.Timeout:
        try:
            with open(path + '.holder', encoding='utf-8') as f:
                holder = f.read().strip()
        except OSError:
            holder = ''
        in_use(folder, holder)
    except OSError as e:
        if needs_no_lock(e, exclusive):
            return None
        write_failed(path, e)
    return kernel_lock


def _refuse_while_read(filelock, folder, readers):
    """Stop when a reader of `folder` holds its lock in `readers`; clear what ended readers left."""
    for entry in sorted(os.listdir(readers)) if os.path.isdir(readers) else []:
        reader = filelock.FileLock(os.path.join(readers, entry))
        try:
            reader.acquire(timeout=0)
        except filelock.Timeout:
            in_use(folder, f"process {entry.split('-')[0]}")
        _let_go(reader)   # its process ended: the system released its lock


def _let_go(kernel_lock):
    kernel_lock.release()
    with contextlib.suppress(OSError):
        os.remove(kernel_lock.lock_file)


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
