"""
What a staging backend does: keep the bytes of an unfinished upload until it
is finished, then hand them to the storage that keeps finished files.

The engine decides what may be written where, and records it in the
database; a backend only keeps bytes. Its contract is StagingBackend below:
each required method raises NotImplementedError naming itself. Public methods
read the client's stream and hash; a backend writes and reads its blocks.
"""

import hashlib

from ..errors import UploadError

# The most bytes read from a request, or read back for hashing, at a time.
BLOCK_SIZE = 1024 * 1024


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

    def write_block(self, handle, block, position):
        """Write all of `block` at `position`; returns the position after it."""
        raise NotImplementedError(
            "subclasses of StagingBackend must provide a write_block() method"
        )

    def size(self, handle):
        """How many bytes are staged, counting to the last one written."""
        raise NotImplementedError("subclasses of StagingBackend must provide a size() method")

    def read_in_order(self, handle, size):
        """The first `size` staged bytes, in order, as blocks of at most BLOCK_SIZE
        (each valid until the next is asked for)."""
        raise NotImplementedError(
            "subclasses of StagingBackend must provide a read_in_order() method"
        )

    def staged_file(self, upload):
        """The finished bytes as a django.core.files.File for storage.save(); the
        caller closes it."""
        raise NotImplementedError(
            "subclasses of StagingBackend must provide a staged_file() method"
        )

    def remove(self, upload):
        """Drop the upload's staged bytes; nothing happens if there are none."""
        raise NotImplementedError("subclasses of StagingBackend must provide a remove() method")

    def write(self, handle, offset, stream, limit, digest=None):
        """
        Copy up to `limit` bytes from `stream` to `offset`, in blocks of at most
        BLOCK_SIZE, stopping early if the stream ends or breaks (a client cut
        off mid-body). Feeds `digest` (a hashlib object) with every byte
        written. Returns (bytes written, whether the stream ended early); the
        engine decides whether those bytes count.
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
            position = self.write_block(handle, block, position)
        return position - offset, False

    def digests(self, handle, size, names):
        """Several hashlib digests of the staged bytes in one read pass:
        ({name: hex}, bytes read)."""
        digests = {name: hashlib.new(name) for name in names}
        read = 0
        for block in self.read_in_order(handle, size):
            for digest in digests.values():
                digest.update(block)
            read += len(block)
        return {name: digest.hexdigest() for name, digest in digests.items()}, read


def has_more(stream):
    """Whether `stream` has bytes past those read: a body longer than it said."""
    try:
        return bool(stream.read(1))
    except UploadError:
        raise
    except Exception:  # a broken stream has nothing more to give
        return False


def drain(stream, length):
    """Read and drop a chunk the upload already has, keeping the connection usable."""
    remaining = length
    while remaining > 0:
        block = stream.read(min(BLOCK_SIZE, remaining))
        if not block:
            break
        remaining -= len(block)
