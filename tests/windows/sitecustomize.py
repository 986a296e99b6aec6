"""Windows file rules on Linux, for tests/test_windows.py: Python imports this file at start-up
when its folder is on PYTHONPATH, before the script runs.

- No fcntl: `import fcntl` fails, as on Windows. filelock is imported first, so that its kernel
  lock (flock here; LockFileEx on Windows: both released when the process ends) stands in for
  the Windows one.
- os.fsync refuses a descriptor opened read-only (EBADF), as Windows' FlushFileBuffers does.
- A file that is open cannot be replaced, renamed or removed (PermissionError): a file this
  process has open, or one "another program" holds open, named in SEM_WINDOWS_HELD (paths
  separated by os.pathsep, relative to the folder the process starts in).
"""
import builtins
import errno
import io
import os
import sys
import weakref

import fcntl as _fcntl
import filelock

filelock.FileLock, filelock.SoftFileLock, filelock.Timeout   # loaded now, while fcntl is here
sys.modules['fcntl'] = None

_HELD = {os.path.realpath(p) for p in os.environ.get('SEM_WINDOWS_HELD', '').split(os.pathsep)
         if p}
_open_files = weakref.WeakSet()
_real_open, _real_fsync = builtins.open, os.fsync
_real_replace, _real_rename, _real_remove = os.replace, os.rename, os.remove


def _tracked_open(file, *args, **kwargs):
    f = _real_open(file, *args, **kwargs)
    if isinstance(file, (str, bytes, os.PathLike)):
        _open_files.add(f)
    return f


def _refuse_if_open(*paths):
    wanted = {os.path.realpath(p) for p in paths if isinstance(p, (str, bytes, os.PathLike))}
    held = set(_HELD)
    for f in list(_open_files):
        if not f.closed and isinstance(f.name, str):
            held.add(os.path.realpath(f.name))
    for path in wanted & held:
        raise PermissionError(errno.EACCES, 'The process cannot access the file because it is '
                              'being used by another process', path)


def _fsync(fd):
    fd = fd if isinstance(fd, int) else fd.fileno()
    if _fcntl.fcntl(fd, _fcntl.F_GETFL) & os.O_ACCMODE == os.O_RDONLY:
        raise OSError(errno.EBADF, 'Bad file descriptor')
    return _real_fsync(fd)


def _replace(src, dst, *args, **kwargs):
    _refuse_if_open(src, dst)
    return _real_replace(src, dst, *args, **kwargs)


def _rename(src, dst, *args, **kwargs):
    _refuse_if_open(src, dst)
    return _real_rename(src, dst, *args, **kwargs)


def _remove(path, *args, **kwargs):
    _refuse_if_open(path)
    return _real_remove(path, *args, **kwargs)


builtins.open = io.open = _tracked_open
os.fsync, os.replace, os.rename, os.remove, os.unlink = _fsync, _replace, _rename, _remove, _remove
