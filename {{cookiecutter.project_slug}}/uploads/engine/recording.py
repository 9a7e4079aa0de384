"""
Recording which bytes an upload has: the received ranges, in the database.

A chunk's range is added with one conditional UPDATE (statements.py) and no
transaction. The same UPDATE moves the upload to `processing` when it adds the
last byte (an edge of transitions.EDGES made here), so exactly one request
sees the file whole and finishes it.
"""

from django.utils import timezone
from django.utils.translation import gettext

from .. import ranges
from ..conf import upload_settings
from ..errors import BadRequest, UploadGone
from ..models import Upload
from . import ending, finishing, leases, statements

Status = Upload.Status


def reload(upload):
    """Fresh status, ranges and size: another request may have just changed them."""
    try:
        (
            upload.status,
            upload.received_ranges,
            upload.size,
            upload.hashed_bytes,
            upload.hash_state,
        ) = statements.progress(upload.pk)
    except Upload.DoesNotExist:
        # Deleted (the admin, a cascade from its owner) while this chunk was on its way.
        raise UploadGone(gettext("this upload was deleted; start it again")) from None
    upload.received_bytes = ranges.total(upload.received_ranges)


def record(upload, start, end, *, hold=False, size=None, reread=True, hashed=None):
    """
    Add [start, end) to the upload's ranges, and a deferred size if `size` is
    given; True if this completed the file (and, unless `hold`, moved it to
    `processing`). BrokerUnavailable, with nothing recorded, when this would
    complete the file and the broker that finishes it cannot be reached
    (finishing.check_finisher).

    hashed: the hash of the upload's first `end` bytes (hashing.in_line), fed
    with these bytes as they were written, saved in the same UPDATE if the
    saved one is still of the first `start` bytes.

    The UPDATE applies only while the upload is still uploading with the byte
    count `upload` was read with. Ranges only grow, so an unchanged count
    means unchanged ranges. If another chunk recorded its own range in
    between, read again and retry: the caller holds the byte-range lock on
    [start, end), so nobody else can have recorded these bytes, and only the
    request that records the last byte sees the file whole.

    reread: read the ranges again first. Chunks sent in parallel record theirs
    while this one is written, so the count read before writing is usually
    stale (seven times in ten in the benchmark), and a failed UPDATE costs
    more than the read. Bytes sent in order (tus) need not.
    """
    if reread:
        reload(upload)
    while True:
        if upload.status != Status.UPLOADING:
            raise UploadGone(ending.gone_message(upload))
        if size is not None and upload.size is not None and size != upload.size:
            # Another request gave the size since writing.py checked it.
            raise BadRequest(size_changed(upload.size, size))
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
        finished = not hold and fields["received_bytes"] == fields.get("size", upload.size)
        if finished:
            # Before the last byte is recorded: a file whose finish nobody can
            # take now is refused with nothing recorded, and its chunk sent again.
            finishing.check_finisher()
            fields["status"] = Status.PROCESSING
            fields["finishing_until"] = leases.granted(now)
        if statements.record(
            upload.pk,
            status=Status.UPLOADING,
            received_bytes=upload.received_bytes,
            size=upload.size,
            values=fields,
            hash_advance=None if hashed is None else (start, end, hashed.state()),
        ):
            break
        reload(upload)
    for name, value in fields.items():
        setattr(upload, name, value)
    if hashed is not None and upload.hashed_bytes == start:
        upload.hashed_bytes, upload.hash_state = end, hashed.state()
    return finished


def size_changed(known, size):
    return f"the file's size is {known} bytes; it cannot change to {size}"
