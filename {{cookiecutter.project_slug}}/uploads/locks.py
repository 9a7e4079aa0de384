"""
Byte-range locks on staging files, shared by every process and thread.

Linux's open-file-description (OFD) locks belong to an open file, not to a
process, so two threads of one gthread worker exclude each other as two worker
processes do. Elsewhere we fall back to POSIX record locks plus a process-wide
mutex per path, which gives the same exclusion at a coarser grain.
"""

import fcntl
import os
import struct
import threading
import time
from contextlib import contextmanager

from django.utils.translation import gettext

from .errors import Busy

_OFD = hasattr(fcntl, "F_OFD_SETLK")
# struct flock on 64-bit Linux: short l_type, short l_whence, off_t l_start,
# off_t l_len, pid_t l_pid (must be 0 for OFD locks), padded to 32 bytes.
_FLOCK = struct.Struct("hhqqi4x")
_process_locks = {}
_process_locks_guard = threading.Lock()


def _try_lock(fd, start, length, exclusive):
    kind = fcntl.F_WRLCK if exclusive else fcntl.F_RDLCK
    if _OFD:
        fcntl.fcntl(fd, fcntl.F_OFD_SETLK, _FLOCK.pack(kind, os.SEEK_SET, start, length, 0))
    else:  # pragma: no cover - non-Linux
        flag = fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH
        fcntl.lockf(fd, flag | fcntl.LOCK_NB, length, start, os.SEEK_SET)


def _unlock(fd, start, length):
    if _OFD:
        fcntl.fcntl(
            fd, fcntl.F_OFD_SETLK, _FLOCK.pack(fcntl.F_UNLCK, os.SEEK_SET, start, length, 0)
        )
    else:  # pragma: no cover - non-Linux
        fcntl.lockf(fd, fcntl.LOCK_UN, length, start, os.SEEK_SET)


@contextmanager
def _process_mutex(path, timeout):
    if _OFD:
        yield
        return
    with _process_locks_guard:  # pragma: no cover - non-Linux
        mutex = _process_locks.setdefault(path, threading.Lock())
    if not mutex.acquire(timeout=timeout):  # pragma: no cover
        raise Busy(gettext("another request is writing this upload; retry shortly"))
    try:  # pragma: no cover
        yield
    finally:  # pragma: no cover
        mutex.release()


@contextmanager
def locked(fd, path, start=0, length=0, *, timeout, exclusive=True):
    """
    Hold a lock on bytes [start, start + length) of the open file `fd`.

    length 0 means "to the end of the file, however long it grows": the whole
    file. Waits up to `timeout` seconds, then raises Busy (503, retryable).
    """
    with _process_mutex(path, timeout):
        deadline = time.monotonic() + timeout
        pause = 0.005
        while True:
            try:
                _try_lock(fd, start, length, exclusive)
                break
            except (BlockingIOError, PermissionError):
                if time.monotonic() >= deadline:
                    raise Busy(
                        gettext("another request is writing these bytes; retry shortly")
                    ) from None
                time.sleep(pause)
                pause = min(pause * 2, 0.2)
        try:
            yield
        finally:
            _unlock(fd, start, length)
