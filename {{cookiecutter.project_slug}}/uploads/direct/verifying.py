"""
Finishing a direct upload: the browser completed it in the bucket, and the
site reads the object back once, checks its size against the recorded one,
records its SHA-256 and moves it `complete` (upload_completed, once).

It is the engine's finish for protocol s3 (finishing.finish dispatches
here), so it runs where every finish runs: on a Celery worker with a broker
(tasks.finish_upload), else in a thread of the web process, under the
lease the move to `processing` granted, renewed as it reads. An object of
another size is no file of this upload: it is deleted and the upload
`failed`. A bucket that cannot be read leaves the upload `processing`, and
once the lease runs out the status API or cleanup_uploads takes it over.
"""

import hashlib
import logging

from django.db import DatabaseError
from django.utils import timezone

from ..engine import leases, transitions
from ..engine.finishing import finish_soon
from ..errors import StagingUnavailable
from ..models import Upload
from ..staging import BLOCK_SIZE, Gone
from .bucket import direct_bucket, key_for, reachable

logger = logging.getLogger(__name__)

Status = Upload.Status


def verify(upload):
    """Verify and record the `processing` direct upload whose lease the caller holds."""
    heartbeat = leases.Heartbeat(upload)
    key = key_for(upload)
    try:
        size = direct_bucket.head(upload)
        if size is None:
            _fail(upload, "the bucket has no object for this upload; upload it again")
            return upload
        if upload.size is not None and size != upload.size:
            _refuse(upload, f"the object has {size} bytes, not the {upload.size} declared")
            return upload
        digest, read = _sha256(key, heartbeat)
        if read != size:
            _refuse(upload, f"read {read} bytes of the object's {size}")
            return upload
    except leases.LeaseLost as exc:
        logger.info("upload %s: left to the run verifying it: %s", upload.pk, exc)
        return upload
    except (StagingUnavailable, Gone) as exc:
        # Gone mid-read: deleted under us; the next run says so from the HEAD.
        logger.warning("upload %s: not verified yet, tried again later: %s", upload.pk, exc)
        return upload
    except DatabaseError:
        logger.exception("upload %s: the database failed while verifying", upload.pk)
        leases.forget_broken_connection()
        return upload
    moved = transitions.move(
        upload,
        Status.PROCESSING,
        Status.COMPLETE,
        where={"finishing_until": upload.finishing_until},
        size=size,
        received_bytes=size,
        received_ranges=[[0, size]] if size else [],
        sha256=digest,
        file=key,
        completed=timezone.now(),
        finishing_until=None,
        error="",
    )
    if moved:
        logger.info(
            "upload %s complete in the bucket: %d bytes, sha256 %s", upload.pk, size, digest
        )
    return upload


def notice_posted(upload):
    """
    A signed POST ends in the bucket, which tells the site nothing: when a
    direct upload sent so is read (the status API, cleanup_uploads) and its
    object is there, it is taken as completed and verified like any other.
    True if this call moved it to `processing`.
    """
    if upload.protocol != Upload.Protocol.S3 or upload.status != Status.UPLOADING:
        return False
    if upload.staging_ref:
        return False  # a multipart upload: its client completes it
    try:
        size = direct_bucket.head(upload)
    except StagingUnavailable:
        return False  # asked again on the next read
    if size is None:
        return False
    if not transitions.move(
        upload,
        Status.UPLOADING,
        Status.PROCESSING,
        size=upload.size if upload.size is not None else size,
        error="",
        finishing_until=leases.granted(timezone.now()),
    ):
        return False
    finish_soon(upload)
    return True


def _sha256(key, heartbeat):
    """One streaming GET of the object: its SHA-256 and how many bytes it had."""
    digest, read = hashlib.sha256(), 0
    with reachable():
        body = direct_bucket.client.get_object(Bucket=direct_bucket.bucket, Key=key)["Body"]
        try:
            for block in body.iter_chunks(BLOCK_SIZE):
                digest.update(block)
                read += len(block)
                heartbeat()
        finally:
            body.close()
    return digest.hexdigest(), read


def _refuse(upload, error):
    """Not this upload's file: it goes from the bucket, and the upload fails."""
    try:
        direct_bucket.delete(upload)
    except (StagingUnavailable, Gone):
        logger.warning("upload %s: the refused object could not be deleted", upload.pk)
    _fail(upload, error)


def _fail(upload, error):
    logger.warning("upload %s failed: %s", upload.pk, error)
    transitions.move(upload, Status.PROCESSING, Status.FAILED, error=error, finishing_until=None)
