"""
Finding an upload for a chunk, or starting one: the declared file is checked
here, before any byte is kept.
"""

from datetime import timedelta

from django.db import IntegrityError, transaction
from django.db.models import F, Q, Sum
from django.utils import timezone
from django.utils.translation import gettext

from .. import staging
from ..conf import upload_settings
from ..errors import (
    BadRequest,
    ChunkConflict,
    InsufficientStorage,
    OffsetMismatch,
    TooLarge,
    TypeNotAllowed,
    UploadCancelled,
    UploadError,
    UploadGone,
)
from ..filenames import clean_filename, extension
from ..models import Upload
from . import ending, quotas, statements, transitions, writing

Status = Upload.Status

# How long after an upload completes a chunk with its identifier is taken for a
# late copy of one of its chunks (a retry whose first answer was lost, or a
# duplicate that raced the last chunk) rather than the start of a new upload.
LATE_CHUNK_WINDOW = timedelta(minutes=10)


def check_declared_file(filename, size):
    """
    Refuse a file by its declared name and size, before any byte is kept.
    size None: not known yet (tus creation-defer-length); writing checks it later.
    """
    if not filename or not filename.strip():
        raise BadRequest(gettext("the file name is empty"))
    if len(filename) > 255:
        raise BadRequest(gettext("the file name is longer than 255 characters"))
    if "\x00" in filename:
        # Kept as data, the original name must fit every database; PostgreSQL
        # refuses NUL in text.
        raise BadRequest(gettext("the file name contains a NUL character"))
    if size is not None:
        check_size(size)
    allowed = upload_settings.ALLOWED_EXTENSIONS
    if allowed and extension(filename) not in allowed:
        raise TypeNotAllowed(
            gettext("files of type %(type)r are not accepted; allowed: %(allowed)s")
            % {
                "type": extension(filename) or gettext("(none)"),
                "allowed": ", ".join(sorted(allowed)),
            }
        )


def check_size(size):
    if size < 0:
        raise BadRequest(gettext("the total size is negative"))
    if size > upload_settings.MAX_BYTES:
        raise TooLarge(
            gettext("the file is %(size)s bytes; the largest accepted is %(max)s bytes")
            % {"size": size, "max": upload_settings.MAX_BYTES}
        )


def find_active(owner, protocol, client_id):
    """The owner's unfinished upload with this client identifier, or None."""
    return statements.active_upload(owner.pk, protocol, client_id)


def find_or_start(owner, protocol, client_id, *, filename, size, chunk_size=None, relative_path=""):
    """
    The active upload for (owner, protocol, client_id), created on the first
    chunk. Parallel first chunks race to create it; the unique constraint
    lets one win and the others use its row.
    """
    check_declared_file(filename, size)
    upload = find_active(owner, protocol, client_id)
    if (
        upload is not None
        and upload.expires <= timezone.now()
        and upload.status == Status.UPLOADING
    ):
        # Refused, not silently restarted: a client carrying on from the middle
        # of the file would fill a new upload that can never complete. Once
        # expired, the identifier is free, so the client's retry starts afresh.
        ending.expire(upload)
        if upload.status == Status.EXPIRED:
            raise UploadGone(ending.expired_message(upload))
    if upload is None:
        upload = _ended_recently(owner, protocol, client_id, size, chunk_size)
    if upload is None:
        try:
            with transaction.atomic():
                upload = _create(
                    owner,
                    protocol,
                    client_id=client_id,
                    filename=filename,
                    size=size,
                    chunk_size=chunk_size,
                    relative_path=relative_path,
                )
        except IntegrityError:
            upload = find_active(owner, protocol, client_id) or _ended_recently(
                owner, protocol, client_id, size, chunk_size
            )
            if upload is None:  # it was cancelled in between
                raise ChunkConflict(gettext("the upload changed state; retry the chunk")) from None
    if upload.size != size:
        raise BadRequest(
            gettext("the total size changed from %(old)s to %(new)s between chunks")
            % {"old": upload.size, "new": size}
        )
    if chunk_size is not None and upload.chunk_size != chunk_size:
        raise BadRequest(
            gettext("the chunk size changed from %(old)s to %(new)s between chunks")
            % {"old": upload.chunk_size, "new": chunk_size}
        )
    return upload


def _ended_recently(owner, protocol, client_id, size, chunk_size):
    """
    The upload of this client identifier that ended moments ago, if any: one
    query, on the first chunk of an upload only.

    Completed within LATE_CHUNK_WINDOW (of this very file): a chunk for it is
    drained and answered with the finished upload (writing sees every byte
    received), instead of starting an upload that could never complete.
    Sending the same file again after the window starts afresh.

    Cancelled within UPLOADS_EXPIRATION: UploadCancelled. A chunk that was on
    its way when its owner pressed Cancel must not start the file again; a
    client that means to send it again gives it a new identifier.
    """
    if not client_id:
        return None
    now = timezone.now()
    upload = (
        Upload.objects.filter(owner=owner, protocol=protocol, client_id=client_id)
        .filter(
            Q(
                status=Status.COMPLETE,
                size=size,
                chunk_size=chunk_size,
                completed__gte=now - LATE_CHUNK_WINDOW,
            )
            | Q(status=Status.CANCELLED, updated__gte=now - upload_settings.EXPIRATION)
        )
        .order_by("-updated")
        .first()
    )
    if upload is not None and upload.status == Status.CANCELLED:
        raise UploadCancelled(
            gettext(
                "this upload was cancelled; to send the file again, start a new upload "
                "with a new identifier"
            )
        )
    return upload


def start(
    owner,
    protocol,
    *,
    filename,
    size,
    client_id="",
    chunk_size=None,
    relative_path="",
    metadata=None,
    stage=None,
):
    """
    Create an upload's record and its empty staging file. size None defers the
    file's size: a later piece with a size gives it, and until then the upload
    cannot complete and takes bytes up to UPLOADS_MAX_BYTES. metadata: what the
    client said of the file, kept whole (tus's Upload-Metadata, for HEAD).
    stage(upload): makes the place for its bytes instead of the staging backend
    (see _create).
    """
    check_declared_file(filename, size)
    return _create(
        owner,
        protocol,
        filename=filename,
        size=size,
        client_id=client_id,
        chunk_size=chunk_size,
        relative_path=relative_path,
        metadata=metadata,
        stage=stage,
    )


def check_free_space(size):
    """
    Refuse a new upload of `size` bytes that the staging disk cannot hold, before
    any byte: its free space, less UPLOADS_MIN_FREE_BYTES, must cover the upload
    and what the unfinished uploads still need (their declared sizes less what
    they have). Staging files are sparse, so nothing is set aside on the disk
    itself: this counts the uploads the site knows of, not other writers of the
    disk, nor uploads whose size is not known yet.
    """
    free = staging.backend.free_bytes()
    if free is None or size is None:
        return
    room = free - upload_settings.MIN_FREE_BYTES
    # One query per new upload, none per chunk; a file that alone does not fit costs none.
    if size > room or size + _still_needed() > room:
        raise InsufficientStorage(
            gettext("the server has no room for a file of %(size)s bytes now; try again later")
            % {"size": size}
        )


def _still_needed():
    """Bytes the unfinished uploads of known size have yet to receive."""
    unfinished = Upload.objects.filter(
        status=Status.UPLOADING, size__isnull=False, expires__gt=timezone.now()
    )
    return unfinished.aggregate(bytes=Sum(F("size") - F("received_bytes")))["bytes"] or 0


def _create(
    owner,
    protocol,
    *,
    filename,
    size,
    client_id,
    chunk_size,
    relative_path,
    metadata=None,
    stage=None,
):
    """
    The upload's record and empty staging file, within the user's limits and the disk's.
    stage: what makes the place its bytes go instead (a direct upload's multipart
    upload in the bucket), so no staging file and no staging disk's room.
    """
    with transaction.atomic():
        # The user's limits first: a refusal that waiting does not change.
        quotas.check_room(owner, size)
        if stage is None:
            check_free_space(size)
            stage = staging.backend.create
        now = timezone.now()
        upload = Upload.objects.create(
            owner=owner,
            protocol=protocol,
            client_id=client_id,
            filename=filename,
            name=clean_filename(filename),
            relative_path=relative_path[:1024],
            size=size,
            chunk_size=chunk_size,
            metadata=metadata or {},
            created=now,
            updated=now,
            expires=now + upload_settings.EXPIRATION,
        )
        # In the same transaction: staging that cannot be made leaves no record.
        stage(upload)
        transitions.started(upload)
    return upload


def start_with(owner, protocol, first, *, filename, size):
    """
    Start an upload with its first bytes, `first` (a writing.Piece), for a
    protocol whose first request carries them and whose client learns the
    upload's id only from a successful answer (Content-Range). If they are
    refused, the upload is cancelled: the client, which never got its id,
    starts again, and nothing of this one stays in use.
    """
    if first.in_order and first.offset != 0:
        raise OffsetMismatch(gettext("a new upload starts at 0"), offset=0)
    upload = start(owner, protocol, filename=filename, size=size)
    try:
        return writing.write(upload, first)
    except UploadError:
        ending.cancel(upload)
        raise
