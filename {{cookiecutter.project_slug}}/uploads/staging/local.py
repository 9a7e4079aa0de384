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

import errno
import os
from contextlib import contextmanager, suppress
from pathlib import Path

from django.core.files import File
from django.core.files.storage import FileSystemStorage
from django.utils.translation import gettext

from .. import locks
from ..conf import upload_settings
from ..errors import InsufficientStorage
from .base import BLOCK_SIZE, NO_SPACE, Gone, StagingBackend

# Bytes go into the page cache WRITE_SIZE at a time. A 1 MiB write on a 1 MiB
# boundary (every block of an octet chunk) makes the kernel allocate a 1 MiB
# folio; on the machine we measured that cost 6-9 times the system CPU of the
# same bytes in 64 KiB writes (benchmarks/README.md, "Write size"). Each write
# also ends on a WRITE_SIZE boundary of the file: a multipart chunk's blocks
# start wherever the form's preamble puts them, and writes that straddle
# boundaries cost a third more system time.
WRITE_SIZE = 64 * 1024
SUFFIX = ".part"
# The byte of a staging file whose lock is the upload's hasher lock: far past
# any file, so chunks (which lock their own bytes) never wait for it, while the
# whole-file lock (length 0: to the end and beyond) covers it.
HASHER_BYTE = 1 << 62


class LocalStaging(StagingBackend):
    """The handle of an open upload is its file descriptor."""

    def directory(self):
        return upload_settings.STAGING_DIR

    def path_for(self, upload):
        return self.directory() / f"{upload.id.hex}{SUFFIX}"

    def create(self, upload):
        path = self.path_for(upload)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o600))
        except OSError as exc:
            if exc.errno not in NO_SPACE:
                raise
            raise InsufficientStorage(
                gettext(
                    "the server's staging disk is full (%(reason)s); try again once there is room"
                )
                % {"reason": exc.strerror}
            ) from exc

    def reads_unsealed(self, upload):
        return True

    def reads_back_cheaply(self, upload):
        return True  # from the page cache they were just written to

    def hasher_locked(self, upload, *, timeout=0):
        return self.open_locked(upload, HASHER_BYTE, 1, timeout=timeout)

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

    def read_in_order(self, fd, size, start=0):
        # One buffer for the whole pass: no block is allocated per read.
        buffer = memoryview(bytearray(BLOCK_SIZE))
        position = start
        while position < size:
            n = os.preadv(fd, [buffer[: min(BLOCK_SIZE, size - position)]], position)
            if n == 0:
                return
            yield buffer[:n]
            position += n

    def staged_file(self, upload):
        # The File owns the open file; the caller closes it after saving.
        return File(open(self.path_for(upload), "rb"), name=upload.name)  # noqa: SIM115

    def store(self, upload, storage, name, *, progress=None):
        """
        Into MEDIA_ROOT on the same file system, a hard link: the finished file
        appears at once, whole (no copy of tens of GB), and the staged name
        stays until the upload is recorded complete. Elsewhere, a copy.
        """
        if isinstance(storage, FileSystemStorage):
            target = Path(storage.path(name))
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(self.path_for(upload), target)
            except OSError as exc:
                # Another file system, or one without hard links: copy instead.
                if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP):
                    raise
            else:
                if storage.file_permissions_mode is not None:
                    os.chmod(target, storage.file_permissions_mode)
                return name
        return super().store(upload, storage, name, progress=progress)

    def remove(self, upload):
        with suppress(FileNotFoundError):
            self.path_for(upload).unlink()

    def free_bytes(self):
        # The folder may not exist yet: its nearest existing parent is on the same disk.
        folder = self.directory()
        while not folder.exists() and folder != folder.parent:
            folder = folder.parent
        stats = os.statvfs(folder)
        return stats.f_bavail * stats.f_frsize
