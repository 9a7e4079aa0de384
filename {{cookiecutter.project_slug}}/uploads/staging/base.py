"""
What a staging backend does: keep the bytes of an unfinished upload until it
is finished, then hand them to the storage that keeps finished files.

The engine decides what may be written where, and records it in the
database; a backend only keeps bytes. Its contract is StagingBackend below:
each required method raises NotImplementedError naming itself. Public methods
read the client's stream and hash; a backend writes and reads its blocks.
"""

import errno
import hashlib

from django.core.files import File
from django.utils.translation import gettext

from ..errors import InsufficientStorage, UploadError

# The most bytes read from a request, or read back for hashing, at a time.
BLOCK_SIZE = 1024 * 1024
# The most of a refused body read and dropped so that the client's connection
# stays usable for its next request; past it the server closes the connection
# (gunicorn's threaded worker drains 64 KiB itself, then closes). Above the
# largest piece the site asks a client to send (a tus PATCH of 64 MiB).
DRAIN_LIMIT = 128 * 1024 * 1024
# What a write fails with when the file system, or the user's quota on it, is full.
NO_SPACE = (errno.ENOSPC, errno.EDQUOT)


class Gone(Exception):
    """The upload has no staged bytes: it finished, or was cancelled or expired."""


class StagingBackend:
    def create(self, upload):
        """Make the upload's empty staging area, when the upload starts. Writing
        never creates it, so a chunk that arrives after a cancel cannot bring
        it back."""
        raise NotImplementedError("subclasses of StagingBackend must provide a create() method")

    def open_locked(self, upload, start=0, length=0, *, timeout=None):
        """
        A context manager: open the upload's staged bytes and hold a lock on
        [start, start + length) (length 0: all of them), waiting up to
        `timeout` seconds (default LOCK_TIMEOUT; 0: not at all; Busy past it).
        It gives a handle for the methods below; Gone when there is nothing
        staged for the upload.
        """
        raise NotImplementedError(
            "subclasses of StagingBackend must provide an open_locked() method"
        )

    def reads_unsealed(self, upload):
        """
        Whether read_in_order() can give this upload's bytes before seal(),
        while they still arrive: the engine then hashes what chunks sent out
        of order made contiguous (engine/hashing.py), through hasher_locked(),
        and writes the bytes it has not hashed with keep_readable. False when
        they cannot be read back: the finisher then reads the rest once.
        """
        return False

    def reads_back_cheaply(self, upload):
        """Whether reading bytes back just after writing them costs little more
        than memory (the page cache): the engine then hashes them from
        staging in a thread after the answer instead of in the request."""
        return False

    def hashed(self, handle, start, end):
        """The engine hashed bytes [start, end), read back: a backend that kept
        them readable for that alone may now move them where seal() wants them."""

    def hasher_locked(self, upload, *, timeout=0):
        """
        For a backend that reads_unsealed: a context manager giving a handle
        to read_in_order() with, holding the upload's one hasher lock, which
        chunks being written do not wait for and the whole-file lock of
        open_locked() excludes. Busy past `timeout` seconds; Gone as open_locked.
        """
        raise NotImplementedError(
            "subclasses of StagingBackend that read unsealed bytes must provide hasher_locked()"
        )

    def write_block(self, handle, block, position):
        """Write all of `block` at `position`; returns the position after it."""
        raise NotImplementedError(
            "subclasses of StagingBackend must provide a write_block() method"
        )

    def size(self, handle):
        """How many bytes are staged, counting to the last one written."""
        raise NotImplementedError("subclasses of StagingBackend must provide a size() method")

    def read_in_order(self, handle, size, start=0):
        """Staged bytes [start, size), in order, as blocks of at most BLOCK_SIZE
        (each valid until the next is asked for). Before seal(), only a backend
        that reads_unsealed can give them."""
        raise NotImplementedError(
            "subclasses of StagingBackend must provide a read_in_order() method"
        )

    def staged_file(self, upload):
        """The finished bytes as a django.core.files.File for storage.save() to
        read (a copy: the staged bytes stay); the caller closes it."""
        raise NotImplementedError(
            "subclasses of StagingBackend must provide a staged_file() method"
        )

    def remove(self, upload):
        """Drop the upload's staged bytes; nothing happens if there are none."""
        raise NotImplementedError("subclasses of StagingBackend must provide a remove() method")

    def store(self, upload, storage, name, *, progress=None):
        """
        Put the staged bytes into `storage` under `name` and return the name
        saved. The staged bytes stay: they are removed only once the upload is
        recorded complete, so a finish that stops halfway can be run again.
        `progress()` is called after each block copied. A backend may do better
        than a copy (local.py links the file into MEDIA_ROOT).
        """
        staged = self.staged_file(upload)
        try:
            return storage.save(name, _Reporting(staged, progress))
        finally:
            staged.close()

    def stored_in_place(self, upload, storage, name):
        """Whether the sealed staged file already is `name` in `storage`, so that
        store() has nothing to copy (s3.py, staged at the finished file's key)."""
        return False

    def free_bytes(self):
        """Bytes that can still be staged, or None when the backend cannot tell
        (then no upload is refused for lack of room before its bytes arrive)."""
        return None

    def seal(self, handle, size):
        """Make the `size` bytes written one whole, before they are read back:
        the finisher calls it under the whole-file lock. A file already is one."""

    def remove_abandoned(self, *, active, before, dry_run):
        """
        For a backend whose staged bytes are not in this host's staging folder
        (which cleanup_uploads scans itself): remove those that no active
        upload owns, last written before `before`. `active(ids)` says which of
        some upload ids are active. Returns (name, bytes) of each removal.
        """
        return []

    def write(self, handle, offset, stream, limit, digests=(), *, keep_readable=False):
        """
        Copy up to `limit` bytes from `stream` to `offset`, in blocks of at most
        BLOCK_SIZE, stopping early if the stream ends or breaks (a client cut
        off mid-body). Feeds each of `digests` (hashlib-like objects) with
        every byte written. keep_readable: the engine will read these bytes
        back before seal() (see reads_unsealed). Returns (bytes written,
        whether the stream ended early); the engine decides whether those
        bytes count.
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
            for digest in digests:
                digest.update(block)
            try:
                position = self.write_block(handle, block, position)
            except OSError as exc:
                if exc.errno not in NO_SPACE:
                    raise
                # Bytes already written stay in the file but are not recorded:
                # the client sends the whole piece again once there is room.
                drain(stream, min(end - position - len(block), DRAIN_LIMIT))
                raise InsufficientStorage(
                    gettext(
                        "the server's staging disk is full (%(reason)s); nothing of these "
                        "bytes was kept: send them again once there is room"
                    )
                    % {"reason": exc.strerror}
                ) from exc
        return position - offset, False

    def digests(self, handle, size, names, *, progress=None):
        """Several hashlib digests of the staged bytes in one read pass:
        ({name: hex}, bytes read). `progress()` is called after each block
        (finishing renews its lease there)."""
        digests = {name: hashlib.new(name) for name in names}
        read = 0
        for block in self.read_in_order(handle, size):
            for digest in digests.values():
                digest.update(block)
            read += len(block)
            if progress is not None:
                progress()
        return {name: digest.hexdigest() for name, digest in digests.items()}, read


class _Reporting(File):
    """A File that says, after each read, that the copy goes on. Storages read
    it through chunks() (FileSystemStorage) or read() (boto3): both end here."""

    def __init__(self, file, progress):
        super().__init__(file, name=file.name)
        self._progress = progress

    def read(self, *args):
        data = self.file.read(*args)
        if self._progress is not None:
            self._progress()
        return data


def has_more(stream):
    """Whether `stream` has bytes past those read: a body longer than it said."""
    try:
        return bool(stream.read(1))
    except UploadError:
        raise
    except Exception:  # a broken stream has nothing more to give
        return False


def drain(stream, length):
    """Read and drop a chunk the upload already has (or one refused mid-body),
    keeping the connection usable. A stream that breaks has nothing more to drop."""
    remaining = length
    while remaining > 0:
        try:
            block = stream.read(min(BLOCK_SIZE, remaining))
        except UploadError:
            raise
        except Exception:  # servers report a lost client as a short read or an error
            break
        if not block:
            break
        remaining -= len(block)
