"""
Bytes of unfinished uploads, on a local (or shared) file system.

Layout: one sparse file per upload, `<UPLOADS_STAGING_DIR>/<upload id hex>.part`.
Every chunk is written in place at its offset, straight from the request in
bounded blocks, so there are no per-chunk files to join and no chunk is ever
held in memory. Concurrent writers hold byte-range locks (see locks.py); the
engine decides what may be written, this module only writes it.

Nothing here deletes files on its own: cancelled and finished uploads remove
theirs through the engine, and `cleanup_uploads` removes what is abandoned.
"""

import hashlib
import os
from contextlib import contextmanager, suppress

from django.core.files import File

from . import locks
from .conf import upload_settings
from .errors import UploadError

BLOCK_SIZE = 1024 * 1024
# Bytes go into the page cache WRITE_SIZE at a time. A 1 MiB write on a 1 MiB
# boundary (every block of an octet chunk) makes the kernel allocate a 1 MiB
# folio; on the machine we measured that cost 6-9 times the system CPU of the
# same bytes in 64 KiB writes (benchmarks/README.md, "Write size"). Each write
# also ends on a WRITE_SIZE boundary of the file: a multipart chunk's blocks
# start wherever the form's preamble puts them, and writes that straddle
# boundaries cost a third more system time.
WRITE_SIZE = 64 * 1024
SUFFIX = ".part"


class Gone(Exception):
    """The upload has no staging file: it finished, or was cancelled or expired."""


def directory():
    return upload_settings.STAGING_DIR


def path_for(upload):
    return directory() / f"{upload.id.hex}{SUFFIX}"


def create(upload):
    """The empty staging file, made when the upload starts. Chunks never create it,
    so a chunk that arrives after a cancel cannot bring the file back."""
    path = path_for(upload)
    path.parent.mkdir(parents=True, exist_ok=True)
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o600))


@contextmanager
def open_locked(upload, start=0, length=0, *, timeout=None):
    """
    Open the upload's staging file and hold a lock on [start, start + length)
    (length 0: the whole file), waiting up to `timeout` seconds (default
    LOCK_TIMEOUT; 0: not at all). Gone when the upload has none, because it
    was cancelled, expired or finished.
    """
    path = path_for(upload)
    try:
        fd = os.open(path, os.O_RDWR | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise Gone(f"upload {upload.pk} has no staging file") from None
    if timeout is None:
        timeout = upload_settings.LOCK_TIMEOUT
    try:
        with locks.locked(fd, str(path), start, length, timeout=timeout):
            yield fd
    finally:
        os.close(fd)


def write_available(fd, offset, stream, limit, digest=None):
    """
    Copy up to `limit` bytes from `stream` to the file at `offset`, in blocks
    of at most BLOCK_SIZE, stopping early if the stream ends or breaks (a
    client cut off mid-body). Feeds `digest` (a hashlib object) with every
    byte written. Returns (bytes written, whether the stream ended early);
    the engine decides whether those bytes count.
    """
    position, end = offset, offset + limit
    while position < end:
        try:
            block = stream.read(min(BLOCK_SIZE, end - position))
        except UploadError:  # a malformed body (multipart.py) says what is wrong with it
            raise
        except Exception:  # servers report a lost client as a short read or an error
            block = b""
        if not block:
            return position - offset, True
        if digest is not None:
            digest.update(block)
        position = _pwrite_all(fd, block, position)
    return position - offset, False


def has_more(stream):
    """Whether `stream` has bytes past those read: a body longer than it said."""
    try:
        return bool(stream.read(1))
    except UploadError:
        raise
    except Exception:  # a broken stream has nothing more to give
        return False


def _pwrite_all(fd, block, position):
    """Write all of `block` at `position`, WRITE_SIZE at a time; the new position."""
    view = memoryview(block)
    while view:
        # Pieces end on WRITE_SIZE boundaries of the file, wherever the block starts.
        written = os.pwrite(fd, view[: WRITE_SIZE - position % WRITE_SIZE], position)
        view = view[written:]
        position += written
    return position


def drain(stream, length):
    """Read and drop a chunk the upload already has, keeping the connection usable."""
    remaining = length
    while remaining > 0:
        block = stream.read(min(BLOCK_SIZE, remaining))
        if not block:
            break
        remaining -= len(block)


def digests_of(fd, size, names):
    """Several hashlib digests of the file in one read pass: ({name: hex}, bytes read)."""
    digests = {name: hashlib.new(name) for name in names}
    buffer = bytearray(BLOCK_SIZE)
    view = memoryview(buffer)
    position = 0
    while position < size:
        n = os.preadv(fd, [view[: min(BLOCK_SIZE, size - position)]], position)
        if n == 0:
            break
        for digest in digests.values():
            digest.update(view[:n])
        position += n
    return {name: digest.hexdigest() for name, digest in digests.items()}, position


def remove(upload):
    with suppress(FileNotFoundError):
        path_for(upload).unlink()


class StagedFile(File):
    """
    A finished staging file handed to Django's storage.

    `temporary_file_path()` is the hook FileSystemStorage uses to move a file
    into place with os.rename (django.core.files.move.file_move_safe) instead
    of copying it; other storages stream it from the open file.
    """

    def __init__(self, upload):
        self._path = path_for(upload)
        # The File owns the open file; the engine closes it after saving.
        super().__init__(open(self._path, "rb"), name=upload.name)  # noqa: SIM115

    def temporary_file_path(self):
        return str(self._path)
