"""
The upload engine: the one place that decides what happens to every chunk.

Protocol adapters (uploads/protocols/) turn a request into calls here: "find or
start this upload", "these bytes belong at this offset", "is this range here?",
"cancel". The engine checks them against the upload's record, writes through
staging.py under a byte-range lock, records the range atomically and finishes
the upload exactly once.

The life of a chunk, with its database queries:

1. find the upload                      SELECT            (find_or_start)
2. lock the chunk's bytes in the staging file
3. re-read status and received ranges   SELECT            (another request may
                                                           have written them)
4. write the bytes in place, or drain a duplicate without writing
5. record the range                     SELECT, UPDATE ... WHERE (conditional:
                                                           see _record)
6. if that made the upload whole: finish it (hash, move into storage, signal),
   in a thread after the answer (finishing.py)

Only the request whose step 5 receives the last byte moves the upload to
`processing`, in the same conditional UPDATE, so an upload is finished once
however many workers race on its chunks. The statements of steps 1, 3 and 5
are in statements.py: SQL written once, as these run on every chunk.
"""

import hashlib
import logging
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from . import ranges, staging, statements
from .conf import upload_settings
from .errors import (
    BadRequest,
    ChecksumMismatch,
    ChunkConflict,
    OffsetMismatch,
    TooLarge,
    TypeNotAllowed,
    UploadGone,
)
from .filenames import clean_filename, extension
from .finishing import finish, finish_soon
from .models import Upload
from .signals import upload_expired, upload_started

logger = logging.getLogger(__name__)

Status = Upload.Status


def check_declared_file(filename, size):
    """
    Refuse a file by its declared name and size, before any byte is kept.
    size None: not known yet (tus creation-defer-length); append() checks it later.
    """
    if not filename or not filename.strip():
        raise BadRequest("the file name is empty")
    if len(filename) > 255:
        raise BadRequest("the file name is longer than 255 characters")
    if "\x00" in filename:
        # Kept as data, the original name must fit every database; PostgreSQL
        # refuses NUL in text.
        raise BadRequest("the file name contains a NUL character")
    if size is not None:
        _check_size(size)
    allowed = upload_settings.ALLOWED_EXTENSIONS
    if allowed and extension(filename) not in allowed:
        raise TypeNotAllowed(
            f"files of type {extension(filename) or '(none)'!r} are not accepted; "
            f"allowed: {', '.join(sorted(allowed))}"
        )


def _check_size(size):
    if size < 0:
        raise BadRequest("the total size is negative")
    if size > upload_settings.MAX_BYTES:
        raise TooLarge(
            f"the file is {size} bytes; the largest accepted is {upload_settings.MAX_BYTES} bytes"
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
        expire(upload)
        if upload.status == Status.EXPIRED:
            raise UploadGone(expired_message(upload))
    if upload is None:
        upload = _just_completed(owner, protocol, client_id, size, chunk_size)
    if upload is None:
        try:
            with transaction.atomic():
                upload = start(
                    owner,
                    protocol,
                    client_id=client_id,
                    filename=filename,
                    size=size,
                    chunk_size=chunk_size,
                    relative_path=relative_path,
                )
        except IntegrityError:
            upload = find_active(owner, protocol, client_id) or _just_completed(
                owner, protocol, client_id, size, chunk_size
            )
            if upload is None:  # it was cancelled in between
                raise ChunkConflict("the upload changed state; retry the chunk") from None
    if upload.size != size:
        raise BadRequest(f"the total size changed from {upload.size} to {size} between chunks")
    if chunk_size is not None and upload.chunk_size != chunk_size:
        raise BadRequest(
            f"the chunk size changed from {upload.chunk_size} to {chunk_size} between chunks"
        )
    return upload


# How long after an upload completes a chunk with its identifier is taken for a
# late copy of one of its chunks (a retry whose first answer was lost, or a
# duplicate that raced the last chunk) rather than the start of a new upload.
LATE_CHUNK_WINDOW = timedelta(minutes=10)


def _just_completed(owner, protocol, client_id, size, chunk_size):
    """
    The upload of this very file that completed moments ago, if any. A chunk
    for it is drained and answered with the finished upload (receive() sees
    every byte received), instead of starting an upload that could never
    complete. Sending the same file again after the window starts afresh.
    """
    if not client_id:
        return None
    return (
        Upload.objects.filter(
            owner=owner,
            protocol=protocol,
            client_id=client_id,
            size=size,
            chunk_size=chunk_size,
            status=Status.COMPLETE,
            completed__gte=timezone.now() - LATE_CHUNK_WINDOW,
        )
        .order_by("-completed")
        .first()
    )


def start(owner, protocol, *, filename, size, client_id="", chunk_size=None, relative_path=""):
    """
    Create an upload's record and its empty staging file. size None defers the
    file's size: a later append(size=...) gives it, and until then the upload
    cannot complete and takes bytes up to UPLOADS_MAX_BYTES.
    """
    check_declared_file(filename, size)
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
        created=now,
        updated=now,
        expires=now + upload_settings.EXPIRATION,
    )
    staging.create(upload)
    transaction.on_commit(lambda: upload_started.send(sender=Upload, upload=upload))
    return upload


def has_range(upload, offset, length):
    """Whether bytes [offset, offset + length) are already received."""
    if length == 0:
        return upload.size == 0 and upload.status != Status.UPLOADING
    return ranges.contains(upload.received_ranges, offset, offset + length)


def receive(upload, offset, length, stream):
    """
    Write `length` bytes read from `stream` at `offset` of the upload.

    Bytes the upload already has are read and dropped, not written again; a
    chunk that overlaps received bytes only in part is refused, since it could
    change them. Returns the upload as it stands after this chunk.
    """
    end = offset + length
    if offset < 0 or length < 0 or end > upload.size:
        raise BadRequest(f"bytes {offset}-{end} lie outside the file's {upload.size} bytes")
    try:
        with staging.open_locked(upload, offset, length) as fd:
            _reload(upload)
            if _already_has(upload, offset, end, stream):
                return upload
            staging.write_at(fd, offset, stream, length)
            finished = _record(upload, offset, end)
    except FileNotFoundError:
        # No staging file: the upload finished, or was cancelled or expired.
        _reload(upload)
        if _already_has(upload, offset, end, stream):
            return upload
        raise UploadGone(f"this upload is {upload.status}; start it again") from None
    if finished:
        finish_soon(upload)
    return upload


def _reload(upload):
    """Fresh status, ranges and size: another request may have just changed them."""
    try:
        upload.status, upload.received_ranges, upload.size = statements.progress(upload.pk)
    except Upload.DoesNotExist:
        # Deleted (the admin, a cascade from its owner) while this chunk was on its way.
        raise UploadGone("this upload was deleted; start it again") from None
    upload.received_bytes = ranges.total(upload.received_ranges)


def _already_has(upload, start, end, stream):
    """
    True (after draining the chunk) when the upload has these bytes; raises
    when the chunk may not be written; False when it should be.
    """
    # An empty range is "had" once the (empty) file is no longer uploading.
    has = ranges.contains(upload.received_ranges, start, end)
    if has and (start < end or upload.status != Status.UPLOADING):
        staging.drain(stream, end - start)
        return True
    if upload.status in (Status.CANCELLED, Status.EXPIRED, Status.FAILED):
        raise UploadGone(f"this upload is {upload.status}; start it again")
    if upload.status != Status.UPLOADING or ranges.overlaps(upload.received_ranges, start, end):
        raise ChunkConflict(
            f"bytes {start}-{end} overlap bytes already received; they cannot be changed"
        )
    return False


def _record(upload, start, end, *, finish_when_whole=True, size=None, reread=True):
    """
    Add [start, end) to the upload's ranges, and a deferred size if `size` is
    given; True if this completed the file (and, unless finish_when_whole is
    False, moved it to `processing`).

    One conditional UPDATE, no transaction: it applies only while the upload
    is still uploading with the byte count `upload` was read with. Ranges only
    grow, so an unchanged count means unchanged ranges. If another chunk
    recorded its own range in between, read again and retry: the caller holds
    the byte-range lock on [start, end), so nobody else can have recorded
    these bytes, and only the request that records the last byte sees the
    file whole.

    reread: read the ranges again first. Chunks sent in parallel record theirs
    while this one is written, so the count read before writing is usually
    stale (seven times in ten in the benchmark), and a failed UPDATE costs
    more than the read. A client that sends in order (tus) passes False.
    """
    if reread:
        _reload(upload)
    while True:
        if upload.status != Status.UPLOADING:
            raise UploadGone(f"this upload is {upload.status}; start it again")
        if size is not None and upload.size is not None and size != upload.size:
            # Another request gave the size since append() checked it.
            raise BadRequest(_size_changed(upload.size, size))
        received = ranges.add(upload.received_ranges, start, end)
        now = timezone.now()
        fields = {
            "received_ranges": received,
            "received_bytes": ranges.total(received),
            "updated": now,
            "expires": now + upload_settings.EXPIRATION,
        }
        if size is not None and upload.size is None:
            fields["size"] = size
        finished = finish_when_whole and fields["received_bytes"] == fields.get("size", upload.size)
        if finished:
            fields["status"] = Status.PROCESSING
        if statements.record(
            upload.pk,
            status=Status.UPLOADING,
            received_bytes=upload.received_bytes,
            size=upload.size,
            values=fields,
        ):
            break
        _reload(upload)
    for name, value in fields.items():
        setattr(upload, name, value)
    return finished


def current_offset(upload):
    """Where the received bytes end, for protocols that send a file in order."""
    if upload.received_ranges and upload.received_ranges[0][0] != 0:
        raise ChunkConflict("the received bytes do not start at 0; the upload cannot continue")
    if len(upload.received_ranges) > 1:
        raise ChunkConflict("the received bytes have gaps; the upload cannot continue")
    return upload.received_ranges[0][1] if upload.received_ranges else 0


def check_open(upload):
    """
    Raise unless the upload still takes bytes; one past its time is expired
    first. Holds no lock: expire() takes the staging file's.
    """
    if upload.status == Status.UPLOADING and upload.expires <= timezone.now():
        expire(upload)
    _check_not_ended(upload)


def _check_not_ended(upload):
    if upload.status == Status.EXPIRED:
        raise UploadGone(expired_message(upload))
    if upload.status in (Status.CANCELLED, Status.FAILED):
        raise UploadGone(f"this upload is {upload.status}; start it again")


def append(
    upload,
    offset,
    length,
    stream,
    *,
    partial=False,
    checksum=None,
    finish_when_whole=True,
    size=None,
):
    """
    Write up to `length` bytes from `stream` where the received bytes end
    (tus and Content-Range send a file in order): `offset` must be that
    point, else OffsetMismatch, which carries it.

    partial: when the stream stops before `length` bytes (a client cut off
    mid-body), the bytes that arrived are recorded, so the client resumes
    from the server's offset (tus); otherwise a short body records nothing.
    checksum: (hashlib name, expected digest bytes) of this request's bytes,
    computed while writing; on a mismatch nothing is recorded (ChecksumMismatch)
    and the next request overwrites those bytes.
    finish_when_whole=False keeps a whole upload `uploading` until complete()
    (Content-Range's md5 step).
    size: the file's size, for an upload started without it (tus
    creation-defer-length); recorded with these bytes, once: see _check_fits().
    `upload` is as the caller just read it: what may have changed since is
    read again under the byte-range lock. Returns the upload as it stands.
    """
    end = offset + length
    if offset < 0 or length < 0:
        raise BadRequest(f"bytes {offset}-{end} are not a range of the file")
    _check_fits(upload, offset, end, size)
    digest = hashlib.new(checksum[0]) if checksum else None
    check_open(upload)
    try:
        with staging.open_locked(upload, offset, length) as fd:
            _reload(upload)
            _check_not_ended(upload)
            if upload.status != Status.UPLOADING:
                raise ChunkConflict(f"this upload is {upload.status}; it takes no more bytes")
            current = current_offset(upload)
            if current != offset:
                raise OffsetMismatch(
                    f"the upload's offset is {current}, not {offset}", offset=current
                )
            written, cut_off = staging.write_available(fd, offset, stream, length, digest)
            if not cut_off and _has_more(stream):
                raise BadRequest(f"the body is longer than the {length} bytes declared")
            if digest is not None and (cut_off or digest.digest() != checksum[1]):
                raise ChecksumMismatch(
                    f"the {checksum[0]} checksum of the {written} bytes received does not "
                    "match Upload-Checksum; they were discarded"
                )
            if cut_off and not partial:
                raise BadRequest(f"the body ended after {written} bytes; {length} were declared")
            finished = _record(
                upload,
                offset,
                offset + written,
                finish_when_whole=finish_when_whole,
                size=size,
                reread=False,
            )
    except FileNotFoundError:
        # No staging file: the upload finished, or was cancelled or expired.
        _reload(upload)
        _check_not_ended(upload)
        raise ChunkConflict(f"this upload is {upload.status}; it takes no more bytes") from None
    if cut_off:
        logger.info("upload %s: body cut off after %d of %d bytes", upload.pk, written, length)
        raise BadRequest(
            f"the body ended after {written} of {length} bytes; they were kept, "
            f"resume at offset {offset + written}"
        )
    if finished:
        finish_soon(upload)
    return upload


def _check_fits(upload, offset, end, size):
    """
    Refuse bytes [offset, end) that do not fit the file, before any is written.

    `size` is the file's size sent late by a client that deferred it: it may
    not change once known, nor be less than the bytes before `offset`. While
    the size is unknown, UPLOADS_MAX_BYTES bounds the bytes instead, so a
    deferred upload cannot fill the disk.
    """
    if size is not None:
        if upload.size is not None and size != upload.size:
            raise BadRequest(_size_changed(upload.size, size))
        _check_size(size)
        if size < offset:
            raise BadRequest(
                f"the file's size cannot be {size} bytes: {offset} bytes were sent before these"
            )
    known = upload.size if size is None else size
    if known is None and end > upload_settings.MAX_BYTES:
        raise TooLarge(
            f"bytes {offset}-{end} go past the largest upload accepted, "
            f"{upload_settings.MAX_BYTES} bytes"
        )
    if known is not None and end > known:
        raise TooLarge(f"bytes {offset}-{end} go past the file's length of {known} bytes")


def _size_changed(known, size):
    return f"the file's size is {known} bytes; it cannot change to {size}"


def _has_more(stream):
    try:
        return bool(stream.read(1))
    except Exception:  # a broken stream has nothing more to give
        return False


def complete(upload, *, expected=None):
    """
    Finish an upload held back with finish_when_whole=False, checking the
    whole file against `expected` ({hashlib name: hex}) in finish()'s pass.
    """
    upload.refresh_from_db(fields=["status", "expires"])
    check_open(upload)
    with transaction.atomic():
        row = (
            Upload.objects.select_for_update()
            .only("status", "received_bytes", "size")
            .get(pk=upload.pk)
        )
        upload.status = row.status
        _check_not_ended(upload)
        if row.status != Status.UPLOADING:
            raise BadRequest(f"the upload is already {row.status}")
        if row.received_bytes != row.size:
            raise BadRequest(f"the upload has {row.received_bytes} of its {row.size} bytes")
        Upload.objects.filter(pk=upload.pk).update(status=Status.PROCESSING, error="")
    upload.status, upload.received_bytes, upload.error = Status.PROCESSING, row.received_bytes, ""
    return finish(upload, expected=expected)


def _end(upload, status, allowed_from):
    """Move an unfinished upload to a final status and drop its staged bytes."""
    with transaction.atomic():
        row = Upload.objects.select_for_update().only("status").get(pk=upload.pk)
        if row.status in allowed_from:
            Upload.objects.filter(pk=upload.pk).update(status=status, updated=timezone.now())
            row.status = status
    upload.status = row.status
    if upload.status == status:
        staging.remove(upload)
    return upload


def cancel(upload):
    """Cancel an unfinished upload and remove its staged bytes (idempotent)."""
    upload = _end(upload, Status.CANCELLED, allowed_from=(Status.UPLOADING,))
    if upload.status == Status.PROCESSING:
        raise ChunkConflict("the upload is being finished and can no longer be cancelled")
    if upload.status == Status.COMPLETE:
        raise ChunkConflict("a complete upload cannot be cancelled")
    return upload


def expire(upload, *, before=None):
    """
    Mark an unfinished upload whose time ran out (by `before`, default now)
    `expired`, remove its staged bytes and send upload_expired, once.

    It takes the staging file's whole-file lock first, so it waits for any chunk
    being written, then re-reads the row under its lock: a chunk that landed in
    the meantime moved `expires` on, and the upload lives. Raises Busy when a
    chunk holds the file for longer than LOCK_TIMEOUT. Idempotent; returns the
    upload with its current status.
    """
    expire_if_due(upload, before=before)
    return upload


def expire_if_due(upload, *, before=None):
    """expire(), answering whether this call expired the upload (cleanup_uploads counts)."""
    try:
        with staging.open_locked(upload):
            expired = _mark_expired(upload, before or timezone.now())
            if expired:
                staging.remove(upload)
    except FileNotFoundError:
        # No staged bytes (never written, or already removed): only the record.
        expired = _mark_expired(upload, before or timezone.now())
    if expired:
        logger.info("upload %s expired: its time ran out at %s", upload.pk, upload.expires)
        upload_expired.send(sender=Upload, upload=upload)
    return expired


def _mark_expired(upload, before):
    """UPLOADING -> EXPIRED if still past its time; True if this call changed it."""
    with transaction.atomic():
        row = (
            Upload.objects.select_for_update()
            .only("status", "expires", "updated", "received_ranges")
            .get(pk=upload.pk)
        )
        expired = row.status == Status.UPLOADING and row.expires <= before
        if expired:
            row.updated = timezone.now()
            Upload.objects.filter(pk=upload.pk).update(status=Status.EXPIRED, updated=row.updated)
    upload.status = Status.EXPIRED if expired else row.status
    upload.updated = row.updated
    upload.expires, upload.received_ranges = row.expires, row.received_ranges
    upload.received_bytes = ranges.total(row.received_ranges)
    return expired


def expired_message(upload):
    return (
        f"this upload expired at {upload.expires.isoformat()}: no chunk arrived for "
        f"{upload_settings.EXPIRATION}; start it again"
    )
