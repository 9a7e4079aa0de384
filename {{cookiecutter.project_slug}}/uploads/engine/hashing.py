"""
The SHA-256 of an upload, kept up to date as its bytes arrive, so that
finishing hashes only what is left.

The upload's row holds the hash of its first `hashed_bytes` bytes as a saved
state (`hash_state`, uploads/sha256.py). Three things move it on, each from
the state it read and by a conditional UPDATE on `hashed_bytes`, so that of
two that race one wins and the other's work is dropped, never mixed in:

- in line: the request whose piece starts where the hashed bytes end feeds
  the hash with the piece's bytes as it writes them (writing.py), and saves
  the new state in the UPDATE that counts the piece (recording.py): a file
  sent in order is hashed at no extra read;
- catching up: a piece that lands past the hashed bytes (chunks sent in
  parallel) is read back once the bytes before it are in. Where staged bytes
  can be read back cheaply (local staging: from the page cache they were just
  written to) and work may go on after an answer (UPLOADS_FINISH_IN_BACKGROUND),
  one thread of the worker does it, after the answer (follow): OpenSSL lets go
  of the GIL while it hashes, so it runs beside the requests and no answer
  waits for it. Elsewhere (S3 staging, where reading back is a GET of a piece
  kept for it) the request that recorded a piece does it, at most
  CATCH_UP_BYTES (catch_up);
- finishing: the finisher continues the saved state over the rest (digest).

One reader at a time holds the upload's hasher lock (the staging backend's),
which chunks never wait for and the finisher's whole-file lock excludes.

Only bytes that went into staging are hashed: in line, the bytes written, and
counted only if they are recorded; otherwise bytes read back from staging,
never anything a client claims. A saved state that cannot be continued (from
another kind of machine, or of another byte count) is dropped and the file
hashed from its first byte: a restart costs re-hashing, never a wrong digest.

Backends whose unfinished bytes cannot be read back (S3 parts before
CompleteMultipartUpload) skip catching up: their finisher reads the rest of
the file once, from the first byte not hashed in line.
"""

import hashlib
import logging
import queue
import threading

from django import db
from django.db import DatabaseError

from .. import sha256, staging
from ..conf import upload_settings
from ..errors import Busy, ChunkConflict, UploadError
from ..models import Upload
from . import runs

logger = logging.getLogger(__name__)

Status = Upload.Status

# The most a request reads back to catch the hash up, after its own piece: a
# few chunks' worth keeps every answer quick; what is left waits for the next
# request, or for the finisher.
CATCH_UP_BYTES = 64 * 1024**2


def enabled():
    return upload_settings.HASH_WHILE_RECEIVING and sha256.available()


def in_line(upload, offset):
    """
    The hash to feed with a piece at `offset` as it is written, or None when
    the piece does not start where the hashed bytes end (or hashing as bytes
    arrive is off). `upload` is as read under the piece's lock.
    """
    if not enabled() or offset != upload.hashed_bytes:
        return None
    try:
        return sha256.ResumableSHA256.resume(upload.hash_state, upload.hashed_bytes)
    except sha256.StateRefused as exc:
        logger.warning("upload %s: its saved hash is dropped (%s)", upload.pk, exc)
        return None


def catch_up(upload, from_zero):
    """
    After a piece was recorded: if received bytes lie contiguous past the
    hashed ones (up to `from_zero`, where the recording saw the bytes from 0
    end), hash up to CATCH_UP_BYTES of them from staging. Costs no query when
    the hash is not behind, as with a file sent in order. A request that finds
    another catching up leaves it to that one, which looks again after letting
    go of the lock.
    """
    if not enabled() or upload.status != Status.UPLOADING:
        return
    if upload.hashed_bytes >= from_zero:
        return
    if not staging.backend.reads_unsealed(upload):
        return
    if _followed(upload):
        follow(upload.pk)
        return
    _catch_up_now(upload, CATCH_UP_BYTES)


def _catch_up_now(upload, budget):
    """Hash up to `budget` contiguous bytes; True if it read them all and more
    are behind (the follower goes on), False once it is done or someone else is."""
    try:
        # Twice: one that held the lock looks again once it let go, for bytes
        # recorded by a request that found it held.
        for _ in range(2):
            with staging.backend.hasher_locked(upload, timeout=0) as handle:
                budget -= _hash_forward(upload, handle, budget)
            if not _behind(upload):
                return False
            if budget <= 0:
                return True
    except (Busy, staging.Gone, Upload.DoesNotExist):
        pass  # another request is at it, or the upload is gone
    except ChunkConflict as exc:
        # A staged piece missing (S3): the finisher reads what is left, once.
        logger.info("upload %s: the hash is not caught up: %s", upload.pk, exc)
    except (UploadError, OSError, DatabaseError):
        # Catching up is an optimisation: the finisher hashes what is left.
        logger.exception("upload %s: catching the hash up failed", upload.pk)
    return False


# This process's follower: one thread, fed upload ids; it keeps its database
# connection between them (a thread and a connection per chunk cost more
# than the hash of an 8 MiB chunk).
_queued = set()
_queue = queue.SimpleQueue()
_follower = None
_guard = threading.Lock()


def _followed(upload):
    return upload_settings.FINISH_IN_BACKGROUND and staging.backend.reads_back_cheaply(upload)


def follow(upload_id):
    """
    Have this process's follower hash what has become contiguous in the
    upload: queued unless it is already. A follower that finds another
    process's at work on it (the hasher lock held) leaves it to that one,
    which looks again once it lets go.
    """
    global _follower
    with _guard:
        if upload_id in _queued:
            return
        _queued.add(upload_id)
        if _follower is None or not _follower.is_alive():
            _follower = threading.Thread(target=_follow, name="uploads-hash", daemon=True)
            _follower.start()
    _queue.put(upload_id)


def _follow():
    while True:
        upload_id = _queue.get()
        with _guard:
            _queued.discard(upload_id)
        try:
            db.close_old_connections()  # a connection a database restart broke, or too old
            upload = Upload.objects.get(pk=upload_id)
            # A pass at a time: between them the finisher can take the lock
            # (and it stops once the upload is no longer uploading).
            while _catch_up_now(upload, CATCH_UP_BYTES):
                pass
        except Upload.DoesNotExist:
            pass
        except Exception:  # the finisher hashes what is left; the follower goes on
            logger.exception("upload %s: the hash follower failed", upload_id)


def digest(upload, handle, size, *, progress=None):
    """
    The finisher's SHA-256 of the `size` staged bytes (sealed, under the
    whole-file lock): the saved state continued over the bytes not hashed yet.
    Returns (hex digest, bytes read).
    """
    hashed, hash_ = 0, None
    if enabled():
        saved, state = _saved(upload.pk)
        try:
            hash_ = sha256.ResumableSHA256.resume(state, saved)
            hashed = saved
        except sha256.StateRefused as exc:
            logger.warning("upload %s: its saved hash is dropped (%s)", upload.pk, exc)
    if hash_ is None or hashed > size:
        hashed, hash_ = 0, hashlib.sha256()
    read = 0
    for block in staging.backend.read_in_order(handle, size, hashed):
        hash_.update(block)
        read += len(block)
        if progress is not None:
            progress()
    if hashed:
        logger.info(
            "upload %s: %d of %d bytes were hashed as they arrived", upload.pk, hashed, size
        )
    return hash_.hexdigest(), hashed + read


def _hash_forward(upload, handle, budget):
    """Hash from the saved state on over contiguous received bytes; bytes read."""
    status, from_zero, hashed, state = _progress(upload.pk)
    end = min(from_zero, hashed + budget)
    if status != Status.UPLOADING or end <= hashed:
        return 0
    try:
        hash_ = sha256.ResumableSHA256.resume(state, hashed)
    except sha256.StateRefused as exc:
        logger.warning("upload %s: its saved hash is dropped (%s)", upload.pk, exc)
        _save(upload.pk, hashed, 0, None)
        return 0
    if upload.chunk_size:
        # Read back whole chunks: a backend may keep each as one object.
        end = min(from_zero, -(-end // upload.chunk_size) * upload.chunk_size)
    start = hashed
    for block in staging.backend.read_in_order(handle, end, start):
        hash_.update(block)
    if hash_.length != end:
        raise OSError(f"read {hash_.length - start} bytes of {end - start} back from staging")
    if _save(upload.pk, start, end, hash_.state()):
        staging.backend.hashed(handle, start, end)
    upload.hashed_bytes = end
    return end - start


def _behind(upload):
    status, from_zero, hashed, _ = _progress(upload.pk)
    upload.hashed_bytes = hashed
    return status == Status.UPLOADING and hashed < from_zero


def _progress(upload_id):
    """(status, where the bytes from 0 end, hashed bytes, hash state), as stored now."""
    status, _, _, hashed, state, around = runs.around(upload_id, 0, 0)
    return status, around.from_zero, hashed, state


def _saved(upload_id):
    """(hashed_bytes, hash_state) as stored now. The finisher's first query: a
    connection that broke since its last one (a killed backend, a restarted
    server) is opened again, once, as the record does (finishing.py)."""
    saved = Upload.objects.filter(pk=upload_id).values_list("hashed_bytes", "hash_state")
    try:
        return saved.get()
    except DatabaseError:
        if db.connection.in_atomic_block:
            raise
        db.connection.close()
        return saved.get()


def _save(upload_id, start, end, state):
    """Replace the state of `start` bytes by that of `end` bytes; False if another moved it."""
    return bool(
        Upload.objects.filter(pk=upload_id, hashed_bytes=start).update(
            hashed_bytes=end, hash_state=state
        )
    )
