"""
Staging on a local (or shared) file system: UPLOADS_STAGING=local, the default.

Layout: one sparse file per upload, `<UPLOADS_STAGING_DIR>/<upload id hex>.part`.
Every chunk is written in place at its offset, straight from the request in
bounded blocks, so there are no per-chunk files to join and no chunk is ever
held in memory. Concurrent writers hold byte-range locks (see locks.py), so
every worker that writes an upload must see the same folder.

Nothing here deletes files on its own: cancelled and finished uploads remove
theirs through the engine, and `cleanup_uploads` removes what is abandoned.
"""

import os
from contextlib import contextmanager, suppress

from django.core.files import File

from .. import locks
from ..conf import upload_settings
from .base import BLOCK_SIZE, Gone, StagingBackend

# Bytes go into the page cache WRITE_SIZE at a time. A 1 MiB write on a 1 MiB
# boundary (every block of an octet chunk) makes the kernel allocate a 1 MiB
# folio; on the machine we measured that cost 6-9 times the system CPU of the
# same bytes in 64 KiB writes (benchmarks/README.md, "Write size"). Each write
# also ends on a WRITE_SIZE boundary of the file: a multipart chunk's blocks
# start wherever the form's preamble puts them, and writes that straddle
# boundaries cost a third more system time.
WRITE_SIZE = 64 * 1024
SUFFIX = ".part"


class LocalStaging(StagingBackend):
    """The handle of an open upload is its file descriptor."""

    def directory(self):
        return upload_settings.STAGING_DIR

    def path_for(self, upload):
        return self.directory() / f"{upload.id.hex}{SUFFIX}"

    def create(self, upload):
        path = self.path_for(upload)
        path.parent.mkdir(parents=True, exist_ok=True)
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o600))

    @contextmanager
    def open_locked(self, upload, start=0, length=0, *, timeout=None):
        path = self.path_for(upload)
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

    def write_block(self, fd, block, position):
        view = memoryview(block)
        while view:
            # Pieces end on WRITE_SIZE boundaries of the file, wherever the block starts.
            written = os.pwrite(fd, view[: WRITE_SIZE - position % WRITE_SIZE], position)
            view = view[written:]
            position += written
        return position

    def size(self, fd):
        return os.fstat(fd).st_size

    def read_in_order(self, fd, size):
        # One buffer for the whole pass: no block is allocated per read.
        buffer = memoryview(bytearray(BLOCK_SIZE))
        position = 0
        while position < size:
            n = os.preadv(fd, [buffer[: min(BLOCK_SIZE, size - position)]], position)
            if n == 0:
                return
            yield buffer[:n]
            position += n

    def staged_file(self, upload):
        return StagedFile(self.path_for(upload), upload.name)

    def remove(self, upload):
        with suppress(FileNotFoundError):
            self.path_for(upload).unlink()


class StagedFile(File):
    """
    A finished staging file handed to Django's storage.

    `temporary_file_path()` is the hook FileSystemStorage uses to move a file
    into place with os.rename (django.core.files.move.file_move_safe) instead
    of copying it; other storages stream it from the open file.
    """

    def __init__(self, path, name):
        self._path = path
        # The File owns the open file; the engine closes it after saving.
        super().__init__(open(path, "rb"), name=name)  # noqa: SIM115

    def temporary_file_path(self):
        return str(self._path)
