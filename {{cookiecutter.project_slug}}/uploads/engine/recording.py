"""
Recording which bytes an upload has: a byte counter on the upload, and the
received runs (runs.py), in one transaction.

The counter UPDATE adds the chunk's length (received_bytes = received_bytes +
length, done by the database, so chunks recorded at once each add theirs) and
moves the upload to `processing` when it reaches the size, in the same
statement (an edge of transitions.EDGES made here): exactly one request sees
the file whole and finishes it. No re-read and retry: the caller holds the
byte-range lock on the chunk's bytes and checked under it that they overlap
nothing received, which stays true until it records them, as nobody else may
record these bytes; so each byte is counted once.

The run is written after the counter in the same transaction: a crash or a
broken connection between the two rolls both back, and the client's retry of
the chunk finds the bytes missing, writes and counts them again. Counting
first takes the upload's row lock first, so that one upload's recordings come
one at a time (runs.py needs that) and hold that lock only for the run's
statement.
"""

from dataclasses import dataclass

from django.db import router, transaction
from django.utils import timezone
from django.utils.translation import gettext

from ..conf import upload_settings
from ..errors import BadRequest, UploadGone
from ..models import Upload
from . import ending, finishing, leases, runs, statements

Status = Upload.Status


@dataclass(frozen=True)
class Recorded:
    # This chunk made the file whole and moved it to `processing` (unless held).
    finished: bool
    # The upload's hashed_bytes after the UPDATE (see hash_advance).
    hashed_bytes: int


def reload(upload, start=0, end=0):
    """
    Fresh status, size and byte count, and what the runs hold around bytes
    [start, end) (upload.received_around): another request may have just
    changed them.
    """
    try:
        (
            upload.status,
            upload.size,
            upload.received_bytes,
            upload.hashed_bytes,
            upload.hash_state,
            upload.received_around,
        ) = runs.around(upload.pk, start, end)
    except Upload.DoesNotExist:
        # Deleted (the admin, a cascade from its owner) while this chunk was on its way.
        raise UploadGone(gettext("this upload was deleted; start it again")) from None


def record(upload, start, end, *, hold=False, size=None, hash_advance=None):
    """
    Add [start, end) to the upload's bytes, and a deferred size if `size` is
    given; Recorded(finished, hashed_bytes). finished: this completed the file
    (and, unless `hold`, moved it to `processing`). BrokerUnavailable, with
    nothing recorded, when this would complete the file and the broker that
    finishes it cannot be reached (finishing.check_finisher).

    `upload` is as reload() read it under the byte-range lock on [start, end).
    hash_advance: (from_offset, to_offset, hash state bytes), stored in the
    same UPDATE if the upload's hashed_bytes is still from_offset.
    """
    if upload.status != Status.UPLOADING:
        raise UploadGone(ending.gone_message(upload))
    if size is not None and upload.size is not None and size != upload.size:
        # Another request gave the size since writing.py checked it.
        raise BadRequest(size_changed(upload.size, size))
    now = timezone.now()
    expires = now + upload_settings.EXPIRATION
    lease = None if hold else leases.granted(now)
    # No savepoint when called inside a transaction (the tests): the two writes
    # need one transaction, not two more statements per chunk.
    with transaction.atomic(using=router.db_for_write(Upload), savepoint=False):
        counted = statements.count(
            upload.pk,
            end - start,
            updated=now,
            expires=expires,
            size=size,
            finish=lease,
            hash_advance=hash_advance,
        )
        if counted is not None:
            if counted[0] == Status.PROCESSING:
                # This chunk completed the file (the database says so, whatever
                # this request read before): a finish nobody can take now is
                # refused, the transaction undoes the count, and the chunk is
                # sent again.
                finishing.check_finisher()
            runs.add(upload.pk, start, end, getattr(upload, "received_around", None))
    if counted is None:
        # It stopped uploading, or was given another size, since it was read.
        reload(upload, start, end)
        if upload.status != Status.UPLOADING:
            raise UploadGone(ending.gone_message(upload))
        raise BadRequest(size_changed(upload.size, size))
    upload.status, upload.received_bytes, upload.size, upload.hashed_bytes = counted
    if hash_advance is not None and upload.hashed_bytes == hash_advance[1]:
        upload.hash_state = hash_advance[2]
    upload.updated, upload.expires = now, expires
    # Read before these bytes: current_offset() reads again rather than trust it.
    upload.received_around = None
    finished = upload.status == Status.PROCESSING
    if finished:
        upload.finishing_until = lease
    return Recorded(finished, upload.hashed_bytes)


def size_changed(known, size):
    return f"the file's size is {known} bytes; it cannot change to {size}"
