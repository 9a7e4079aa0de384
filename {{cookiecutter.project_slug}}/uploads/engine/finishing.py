"""
Finishing an upload once every byte is in: verify its size, compute its
SHA-256 in one read pass (and any checksum the client claims, in the same
pass), move the file into storage, record it and send upload_completed.

writing.py calls finish_soon() from the one request whose chunk completed the
file (the upload is then `processing`). cleanup_uploads calls recover() for an
upload whose finisher stopped, and the Content-Range adapter finishes a held
upload through complete(), which checks the client's md5 here.
"""

import logging
import threading

from django import db
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from .. import staging
from ..conf import upload_settings
from ..errors import BadRequest, Busy, FinishingFailed
from ..models import Upload
from . import ending, transitions

logger = logging.getLogger(__name__)

Status = Upload.Status


def finish_soon(upload):
    """
    Finish an upload that just became whole. By default in a thread of this
    worker, after the chunk's answer (which says `processing`): hashing a file
    of tens of GB takes minutes, and the client polls the status API. A worker
    that stops meanwhile leaves the upload to cleanup_uploads (recover()).
    """
    if not upload_settings.FINISH_IN_BACKGROUND:
        finish(upload)
        return
    thread = threading.Thread(
        target=_finish_in_thread, args=(upload.pk,), name=f"finish-{upload.pk}"
    )
    # Started once the `processing` status is committed, so the thread sees it.
    transaction.on_commit(thread.start)


def _finish_in_thread(pk):
    try:
        finish(Upload.objects.get(pk=pk))
    except Exception:  # finish() records its own failures; this is anything else
        logger.exception("upload %s: the finishing thread failed", pk)
    finally:
        db.connection.close()


def finish(upload, *, expected=None):
    """
    Verify the staged file, hash it, move it into storage: called once, by the
    request that received the last byte (the upload is `processing`).

    `expected` maps hashlib names to the hex digests the client claims for the
    whole file (Content-Range's md5): they are computed in the same read pass
    as the sha256, and on a mismatch the upload goes back to `uploading` with
    the error recorded and BadRequest is raised, the file left unfinished.
    """
    expected = {name: value.lower() for name, value in (expected or {}).items()}
    wrong = []
    try:
        # The lock is held until the file is in storage: recover() takes a
        # file nobody holds for one whose finisher stopped.
        with staging.backend.open_locked(upload) as handle:
            staged_size = staging.backend.size(handle)
            if staged_size != upload.size:
                raise ValueError(f"the staged file has {staged_size} bytes, not {upload.size}")
            digests, read = staging.backend.digests(handle, upload.size, {"sha256", *expected})
            if read != upload.size:
                raise ValueError(f"read {read} bytes of {upload.size} while hashing")
            digest = digests["sha256"]
            wrong = [name for name, value in expected.items() if digests[name] != value]
            if not wrong:
                staged = staging.backend.staged_file(upload)
                try:
                    # A rename on the same file system (FileSystemStorage), a stream otherwise.
                    upload.file.save(upload.name, staged, save=False)
                finally:
                    staged.close()
                staging.backend.remove(upload)
    except Exception as exc:
        logger.exception("upload %s could not be finished", upload.pk)
        transitions.move(upload, Status.PROCESSING, Status.FAILED, error=f"finishing failed: {exc}")
        return upload
    if wrong:
        _reopen(
            upload,
            "; ".join(
                f"{name} checksum does not match: the file's is "
                f"{digests[name]}, not {expected[name]}"
                for name in wrong
            ),
        )
    if transitions.move(
        upload,
        Status.PROCESSING,
        Status.COMPLETE,
        sha256=digest,
        file=upload.file.name,
        completed=timezone.now(),
    ):
        logger.info("upload %s complete: %d bytes, sha256 %s", upload.pk, upload.size, digest)
    return upload


def recover(upload, *, stalled_before):
    """
    Finish an upload left `processing` by a worker that stopped (a restart, a
    crash) while finishing it, and not touched since `stalled_before`.

    The upload is claimed with a conditional update, so of two cleanup runs
    only one recovers it; a finisher still at work holds the staging file's
    lock, and the upload is left to it. Without staged bytes it cannot be
    finished again and is marked failed. Returns True if this call took it.
    """
    claimed = Upload.objects.filter(
        pk=upload.pk, status=Status.PROCESSING, updated__lt=stalled_before
    ).update(updated=timezone.now())
    if not claimed:
        return False
    try:
        with staging.backend.open_locked(upload, timeout=0):
            pass  # nobody is finishing it
    except Busy:
        return False
    except staging.Gone:
        error = "finishing stopped after the staged bytes were gone; upload it again"
        if transitions.move(upload, Status.PROCESSING, Status.FAILED, error=error):
            logger.warning("upload %s could not be recovered: %s", upload.pk, error)
        return True
    upload.refresh_from_db()
    logger.info("upload %s: finishing again, its finisher stopped", upload.pk)
    finish(upload)
    return True


def _reopen(upload, error):
    """A whole file whose checksum failed goes back to `uploading`, with the reason."""
    transitions.move(upload, Status.PROCESSING, Status.UPLOADING, error=error)
    logger.warning("upload %s not finished: %s", upload.pk, error)
    raise BadRequest(error)


def complete(upload, *, expected=None):
    """
    Finish an upload held for an explicit complete (Piece(hold=True)),
    checking the whole file against `expected` ({hashlib name: hex}) in
    finish()'s pass. `upload` is as the caller just read it. Raises
    FinishingFailed when the file could not be finished (upload.error says why).
    """
    ending.check_open(upload)
    if not transitions.move(
        upload, Status.UPLOADING, Status.PROCESSING, where={"received_bytes": F("size")}, error=""
    ):
        upload.refresh_from_db(fields=["status", "received_bytes", "size", "expires"])
        ending.check_not_ended(upload)
        if upload.status != Status.UPLOADING:
            raise BadRequest(f"the upload is already {upload.status}")
        raise BadRequest(f"the upload has {upload.received_bytes} of its {upload.size} bytes")
    upload = finish(upload, expected=expected)
    if upload.status != Status.COMPLETE:
        raise FinishingFailed(upload.error or f"the upload is {upload.status}")
    return upload
