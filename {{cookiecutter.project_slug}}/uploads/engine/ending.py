"""
Ending an unfinished upload early: its owner cancels it, or its time runs out.
Either way its staged bytes go and its record stays (transitions.EDGES).
"""

import logging

from django.utils import timezone
from django.utils.translation import gettext

from .. import staging
from ..conf import upload_settings
from ..errors import ChunkConflict, UploadCancelled, UploadGone
from ..fields import file_user
from ..models import Upload
from . import transitions

logger = logging.getLogger(__name__)

Status = Upload.Status
PROGRESS = ["status", "expires", "updated", "received_ranges", "received_bytes"]


def check_open(upload):
    """
    Raise unless the upload still takes bytes; one past its time is expired
    first. Holds no lock: expire() takes the staging file's.
    """
    if upload.status == Status.UPLOADING and upload.expires <= timezone.now():
        expire(upload)
    check_not_ended(upload)


def check_not_ended(upload):
    """UploadGone for an upload that ended before it was whole: the client starts again."""
    if upload.status == Status.EXPIRED:
        raise UploadGone(expired_message(upload))
    if upload.status == Status.CANCELLED:
        raise UploadCancelled(gettext("this upload was cancelled; start it again"))
    if upload.status in (Status.FAILED, Status.DELETED):
        raise UploadGone(gone_message(upload))


def cancel(upload):
    """
    Cancel an unfinished upload and remove its staged bytes. Cancelling it
    again is no error; an upload being finished or complete is left as it is,
    and ChunkConflict says so.
    """
    if transitions.move(upload, Status.UPLOADING, Status.CANCELLED):
        return upload
    try:
        upload.refresh_from_db(fields=["status"])
    except Upload.DoesNotExist:
        raise UploadGone(gettext("this upload was deleted")) from None
    if upload.status == Status.PROCESSING:
        raise ChunkConflict(gettext("the upload is being finished and can no longer be cancelled"))
    if upload.status == Status.COMPLETE:
        raise ChunkConflict(gettext("a complete upload cannot be cancelled"))
    return upload


def delete_file(upload):
    """
    Delete a complete upload's stored file; the record stays, `deleted`.
    Refused with ChunkConflict while a ResumableFileField still uses the file
    (the object would lose it). Deleting it again is no error.
    """
    user = file_user(upload.file.name)
    if user is not None:
        raise ChunkConflict(
            gettext(
                "the file is used by %(model)s %(object)r (id %(id)s); "
                "delete that or give it another file first"
            )
            % {"model": user._meta.verbose_name, "object": str(user), "id": user.pk}
        )
    name, storage = upload.file.name, upload.file.storage
    if transitions.move(upload, Status.COMPLETE, Status.DELETED, file=""):
        # Recorded first: a file left behind by a failing storage is only
        # bytes, where a record pointing at a missing file would be a lie.
        try:
            storage.delete(name)
        except OSError:
            logger.exception("upload %s: its file %s could not be removed", upload.pk, name)
        return upload
    upload.refresh_from_db(fields=["status"])
    if upload.status != Status.DELETED:
        raise ChunkConflict(
            gettext("this upload is %(status)s; only a complete file can be deleted")
            % {"status": upload.status}
        )
    return upload


def expire(upload, *, before=None):
    """
    Mark an unfinished upload whose time ran out (by `before`, default now)
    `expired`, remove its staged bytes and send upload_expired, once.

    It takes the staging file's whole-file lock first, so it waits for any chunk
    being written; a chunk that landed in the meantime moved `expires` on, the
    conditional UPDATE does not apply, and the upload lives. Raises Busy when a
    chunk holds the file for longer than LOCK_TIMEOUT. Idempotent; returns the
    upload with its current status.
    """
    expire_if_due(upload, before=before)
    return upload


def expire_if_due(upload, *, before=None):
    """expire(), answering whether this call expired the upload (cleanup_uploads counts)."""
    before = before or timezone.now()
    try:
        with staging.for_upload(upload).open_locked(upload):
            expired = _mark_expired(upload, before)
    except staging.Gone:
        # No staged bytes (never written, or already removed): only the record.
        expired = _mark_expired(upload, before)
    if expired:
        logger.info("upload %s expired: its time ran out at %s", upload.pk, upload.expires)
    return expired


def _mark_expired(upload, before):
    """UPLOADING -> EXPIRED if still past its time; True if this call moved it."""
    if transitions.move(upload, Status.UPLOADING, Status.EXPIRED, where={"expires__lte": before}):
        return True
    # Another request moved it first, or a chunk moved `expires` on: as it is now.
    upload.refresh_from_db(fields=PROGRESS)
    return False


def expired_message(upload):
    return gettext(
        "this upload expired at %(expires)s: no chunk arrived for %(expiration)s; start it again"
    ) % {"expires": upload.expires.isoformat(), "expiration": upload_settings.EXPIRATION}


def gone_message(upload):
    """Why a failed or deleted upload takes no more chunks (the status word as the API gives it)."""
    return gettext("this upload is %(status)s; start it again") % {"status": upload.status}
