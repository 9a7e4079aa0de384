"""
Writing a piece of a file: the one path every protocol's bytes take.

A protocol adapter describes its bytes as a Piece: where they go, and the few
things protocols differ in (in order or at their own offset, what a cut-off
body means, a checksum of the piece, whether a whole file waits for an
explicit complete). write() checks the piece against the upload's record,
writes it through staging under a byte-range lock and records it.
"""

import hashlib
import logging
from dataclasses import dataclass
from typing import Any

from django.utils.translation import gettext

from .. import staging
from ..conf import upload_settings
from ..errors import (
    BadRequest,
    ChecksumMismatch,
    ChunkConflict,
    OffsetMismatch,
    TooLarge,
    UploadGone,
)
from ..models import Upload
from . import ending, finishing, hashing, recording, runs, starting

logger = logging.getLogger(__name__)

Status = Upload.Status


@dataclass(frozen=True)
class Piece:
    """`length` bytes read from `stream`, for bytes [offset, offset + length) of a file."""

    offset: int
    length: int
    stream: Any
    # False: the bytes go at their offset, in any order, maybe more than once
    # (flow.js, resumable.js): a copy of bytes already received is read and
    # dropped. True: they must start where the received bytes end (tus,
    # Content-Range), else OffsetMismatch, which carries that offset.
    in_order: bool = False
    # A body that stops before `length` bytes (a client cut off mid-body)
    # keeps the bytes that arrived, so the client resumes from the server's
    # offset (tus); otherwise a short body records nothing.
    keep_cut_off: bool = False
    # (hashlib name, expected digest bytes) of this piece, computed while
    # writing; on a mismatch nothing is recorded (tus Upload-Checksum).
    checksum: tuple[str, bytes] | None = None
    # The whole file waits `uploading` for finishing.complete() (Content-Range's md5 step).
    hold: bool = False
    # The file's size, for an upload started without it (tus
    # creation-defer-length): recorded with these bytes, once.
    size: int | None = None

    @property
    def end(self):
        return self.offset + self.length


def write(upload, piece):
    """
    Write `piece` into the upload; returns the upload as it stands after it,
    and leaves it so also when it raises once the record was read again.

    `upload` is as the caller just read it: what may have changed since is
    read again under the byte-range lock. The request whose piece completes
    the file has it finished after its answer (finishing.finish_soon).
    """
    _check_fits(upload, piece)
    ending.check_open(upload)
    digest = hashlib.new(piece.checksum[0]) if piece.checksum else None
    try:
        with staging.backend.open_locked(upload, piece.offset, piece.length) as handle:
            recording.reload(upload, piece.offset, piece.end)
            if _already_has(upload, piece):
                return upload
            # The file's hash so far, fed with these bytes if they follow it.
            prefix = hashing.in_line(upload, piece.offset)
            written, cut_off = staging.backend.write(
                handle,
                piece.offset,
                piece.stream,
                piece.length,
                [d for d in (digest, prefix) if d is not None],
                # Else they are read back once the bytes before them are in.
                keep_readable=prefix is None and hashing.enabled(),
            )
            _check_body(piece, written, cut_off, digest)
            # What the runs around these bytes were, read under the lock: where
            # the bytes from 0 will end, for catching the hash up.
            around = upload.received_around
            finished = recording.record(
                upload,
                piece.offset,
                piece.offset + written,
                hold=piece.hold,
                size=piece.size,
                # Only a hash of exactly the bytes recorded: a body cut off
                # mid-part (S3) fed bytes that were not kept.
                hash_advance=None
                if prefix is None or prefix.length != piece.offset + written
                else (piece.offset, piece.offset + written, prefix.state()),
            ).finished
    except staging.Gone:
        # The upload finished, or was cancelled or expired, since it was read.
        recording.reload(upload, piece.offset, piece.end)
        if _already_has(upload, piece):
            return upload
        raise UploadGone(gettext("this upload's bytes are gone; start it again")) from None
    if cut_off:
        logger.info(
            "upload %s: body cut off after %d of %d bytes", upload.pk, written, piece.length
        )
        raise BadRequest(
            gettext(
                "the body ended after %(written)s of %(length)s bytes; they were kept, "
                "resume at offset %(offset)s"
            )
            % {"written": written, "length": piece.length, "offset": piece.offset + written}
        )
    if finished:
        finishing.finish_soon(upload)
    else:
        hashing.catch_up(upload, around.from_zero_after())
    return upload


def current_offset(upload):
    """
    Where the received bytes end, for protocols that send a file in order:
    the end of the run from byte 0, if that run holds every byte counted.
    Read again unless the upload was just read (recording.reload).
    """
    if getattr(upload, "received_around", None) is None:
        recording.reload(upload)
    from_zero = upload.received_around.from_zero
    if upload.received_bytes and not from_zero:
        raise ChunkConflict(
            gettext("the received bytes do not start at 0; the upload cannot continue")
        )
    if from_zero != upload.received_bytes:
        raise ChunkConflict(gettext("the received bytes have gaps; the upload cannot continue"))
    return from_zero


def has_range(upload, offset, length):
    """Whether bytes [offset, offset + length) are already received (one index seek)."""
    if length == 0:
        return upload.size == 0 and upload.status != Status.UPLOADING
    try:
        *_, around = runs.around(upload.pk, offset, offset + length)
    except Upload.DoesNotExist:
        return False
    return around.contains()


def _check_fits(upload, piece):
    """
    Refuse a piece that does not fit the file, before any byte is written.

    A size sent late by a client that deferred it may not change once known,
    nor be less than the bytes before the piece. While the size is unknown,
    UPLOADS_MAX_BYTES bounds the bytes instead, so a deferred upload cannot
    fill the disk.
    """
    offset, end, size = piece.offset, piece.end, piece.size
    if offset < 0 or piece.length < 0:
        raise BadRequest(
            gettext("bytes %(start)s-%(end)s are not a range of the file")
            % {"start": offset, "end": end}
        )
    if size is not None:
        if upload.size is not None and size != upload.size:
            raise BadRequest(recording.size_changed(upload.size, size))
        starting.check_size(size)
        if size < offset:
            raise BadRequest(
                gettext(
                    "the file's size cannot be %(size)s bytes: "
                    "%(offset)s bytes were sent before these"
                )
                % {"size": size, "offset": offset}
            )
    known = upload.size if size is None else size
    if known is None and end > upload_settings.MAX_BYTES:
        raise TooLarge(
            gettext("bytes %(start)s-%(end)s go past the largest upload accepted, %(max)s bytes")
            % {"start": offset, "end": end, "max": upload_settings.MAX_BYTES}
        )
    if known is not None and end > known:
        raise TooLarge(
            gettext("bytes %(start)s-%(end)s go past the file's length of %(size)s bytes")
            % {"start": offset, "end": end, "size": known}
        )


def _already_has(upload, piece):
    """
    True (after draining the piece) when the upload has these bytes already;
    raises when it may not take them; False when they are to be written.
    """
    start, end = piece.offset, piece.end
    # An empty range is "had" once the (empty) file is no longer uploading.
    if (
        not piece.in_order
        and upload.received_around.contains()
        and (start < end or upload.status != Status.UPLOADING)
    ):
        staging.drain(piece.stream, piece.length)
        return True
    ending.check_not_ended(upload)
    if upload.status != Status.UPLOADING:
        raise ChunkConflict(
            gettext("this upload is %(status)s; it takes no more bytes") % {"status": upload.status}
        )
    if piece.in_order:
        current = current_offset(upload)
        if current != start:
            raise OffsetMismatch(
                gettext("the upload's offset is %(current)s, not %(start)s")
                % {"current": current, "start": start},
                offset=current,
            )
    elif upload.received_around.overlaps():
        raise ChunkConflict(
            gettext(
                "bytes %(start)s-%(end)s overlap bytes already received; they cannot be changed"
            )
            % {"start": start, "end": end}
        )
    return False


def _check_body(piece, written, cut_off, digest):
    """Whether the bytes written may count: nothing is recorded when this raises."""
    if not cut_off and staging.has_more(piece.stream):
        raise BadRequest(
            gettext("the body is longer than the %(length)s bytes declared")
            % {"length": piece.length}
        )
    if digest is not None and (cut_off or digest.digest() != piece.checksum[1]):
        raise ChecksumMismatch(
            gettext(
                "the %(algorithm)s checksum of the %(written)s bytes received does not "
                "match Upload-Checksum; they were discarded"
            )
            % {"algorithm": piece.checksum[0], "written": written}
        )
    if cut_off and not piece.keep_cut_off:
        raise BadRequest(
            gettext("the body ended after %(written)s bytes; %(length)s were declared")
            % {"written": written, "length": piece.length}
        )
