"""
Staging in an S3-compatible bucket: UPLOADS_STAGING=s3, for app hosts that
share nothing but the database and the bucket (AWS_STORAGE_BUCKET_NAME).

Layout: one multipart upload per file, created when the upload starts (its
part size, UploadId and key are Upload.staging_ref). When finished files go
to this bucket (UPLOADS_STORAGE an S3 storage of AWS_STORAGE_BUCKET_NAME), its
key is the finished file's own (models.upload_to, fixed when the upload
starts), so completing it stores the file; otherwise it is
`<UPLOADS_STAGING_PREFIX><upload id hex>/file`, and the finished file is
streamed from it to the other storage. Under the staging prefix also:

    <upload id hex>/pieces/<offset>
                         bytes that are not a whole part, one object each,
                         named by the offset of their first byte (20 digits)

The file is cut into parts ("slots") of the same size, so a part's number
says where its bytes go. flow.js and resumable.js chunks of at least 5 MiB
(S3's smallest part) are the parts: part number = chunk number, the last
chunk (up to 2 x chunkSize - 1 bytes) the last part, each streamed from its
request in an UploadPart. Anything else (tus PATCHes, Content-Range pieces,
chunks under 5 MiB) is cut at slot boundaries: a piece that covers a whole
slot is that part; a smaller one is kept as a piece object, and the request
whose piece completes a slot gathers the slot's pieces and its own bytes into
the part, as tusd's s3store does with its "incomplete part". The last slot,
which may be short, is gathered by the finisher. Finishing is then one
CompleteMultipartUpload at the finished file's key (no byte copied, and none
copied again: that is the stored file) and one streaming GET for the SHA-256.
Uploads started before their multipart upload was made at the finished key
(a staging_ref without one) are copied server-side as before.

What was received is the database's runs, never a listing of the bucket.
Locking: the engine relies on the staging lock for one thing, that between
reading an upload's ranges and recording its own, no other request writes or
records the same bytes. Here a lock is held per slot (slot_locks.py:
PostgreSQL advisory locks; all slots for finishing and expiry), so two copies
of one chunk are written one after the other, and the second sees the first
recorded and is drained. A part written twice (a copy whose record then
failed, a retry) is simply replaced: UploadPart of the same number keeps the
last bytes, which the engine recorded. The finisher lists the parts
(ListParts: their ETags are needed to complete) and re-gathers any slot whose
part is missing or of the wrong size.

Every byte is streamed, in blocks of at most BLOCK_SIZE: from the request
into an UploadPart or PutObject whose length is known beforehand
(ContentLength, a body that cannot seek, so boto3 neither buffers nor
retries it), and from piece objects into a gathered part. Nothing is written
to this host's disk. A bucket that cannot be reached is StagingUnavailable
(503 with Retry-After): the request recorded nothing and may be sent again.

Nothing here expires on its own: cancel, expiry and finishing remove an
upload's objects and abort its multipart upload (a cancelled one whose file
was already completed at the finished key has that object deleted);
cleanup_uploads aborts multipart uploads that no active upload owns, under
the staging prefix and under the finished files' folder (UPLOADS_UPLOAD_TO
up to its first strftime code). The bucket should also have a lifecycle
rule, AbortIncompleteMultipartUpload after a few days, for the whole bucket
(the README's "Staging in a bucket").
"""

import json
import logging
import math
import mimetypes
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from django.conf import settings
from django.core.files import File
from django.utils.translation import gettext

from ..conf import upload_settings
from ..errors import ChunkConflict, StagingUnavailable
from . import slot_locks
from .base import BLOCK_SIZE, Gone, StagingBackend

logger = logging.getLogger(__name__)

# S3's limits on a multipart upload: every part but the last at least 5 MiB, 10,000 parts.
MIN_PART_SIZE = 5 * 1024**2
MAX_PARTS = 10_000
# A gathered part is at least this big: fewer requests, still bounded per request.
GATHERED_PART_SIZE = 8 * 1024**2
# The largest object CopyObject copies; past it, parts of COPY_PART_SIZE are copied.
MAX_COPY_SIZE = 5 * 1024**3
COPY_PART_SIZE = 1024**3
# How S3 (and compatible stores) say that a key is not there.
MISSING_CODES = {"404", "NoSuchKey", "NotFound"}


@dataclass
class Handle:
    upload: object  # the engine's Upload: its runs around the piece are read under the lock
    key: str  # the multipart upload's, and the whole file's once it is completed
    upload_id: str
    part_size: int
    folder: str  # the upload's staging folder, where its pieces are
    # Set by seal(): `key` is then the whole file, to be read with one GET.
    sealed: bool = False


class S3Staging(StagingBackend):
    def __init__(self):
        options = {
            "endpoint_url": getattr(settings, "AWS_S3_ENDPOINT_URL", None) or None,
            "region_name": getattr(settings, "AWS_S3_REGION_NAME", None) or None,
        }
        # No checksum or payload hash that would need the body read twice.
        common = {
            "request_checksum_calculation": "when_required",
            "response_checksum_validation": "when_required",
            "s3": {"payload_signing_enabled": False},
            "connect_timeout": 5,
        }
        self.client = boto3.client("s3", config=Config(**common), **options)
        # A request's body can be read once: a failed send is the client's to retry.
        self.streaming = boto3.client(
            "s3", config=Config(retries={"total_max_attempts": 1}, **common), **options
        )

    # --- Where things are ----------------------------------------------------------------------

    @property
    def bucket(self):
        return settings.AWS_STORAGE_BUCKET_NAME

    def prefix(self):
        return upload_settings.STAGING_PREFIX

    def folder(self, upload_id):
        return f"{self.prefix()}{upload_id.hex}/"

    def directory(self):
        """This host's staging folder, which cleanup_uploads also scans: S3
        staging writes nothing there (anything in it is left from `local`)."""
        return upload_settings.STAGING_DIR

    def path_for(self, upload):
        return self.directory() / f"{upload.id.hex}.part"

    # --- The contract --------------------------------------------------------------------------

    def create(self, upload):
        """The multipart upload, at the finished file's key when finished files
        go to this bucket: completing it is then storing it (store())."""
        part_size = self._part_size(upload)
        storage = upload.file.storage
        if self._same_bucket(storage):
            name = upload.file.field.generate_filename(upload, upload.name)
            key = storage._normalize_name(name)
            options = {"ContentType": _content_type(name)}
        else:
            key, options = self.folder(upload.id) + "file", {}
        with self._reachable():
            created = self.client.create_multipart_upload(Bucket=self.bucket, Key=key, **options)
        upload.staging_ref = json.dumps(
            {"part_size": part_size, "upload_id": created["UploadId"], "key": key}
        )
        type(upload).objects.filter(pk=upload.pk).update(staging_ref=upload.staging_ref)

    def handle(self, upload):
        """
        The upload's multipart upload, as staging_ref names it: JSON with its
        part size, UploadId and key, or, for an upload started before the key
        was kept, `<part size>:<UploadId>` at `<folder>/file`.
        """
        ref, folder = upload.staging_ref, self.folder(upload.id)
        if ref.startswith("{"):
            ref = json.loads(ref)
            return Handle(upload, ref["key"], ref["upload_id"], int(ref["part_size"]), folder)
        part_size, _, upload_id = ref.partition(":")
        return Handle(upload, folder + "file", upload_id, int(part_size), folder)

    @contextmanager
    def open_locked(self, upload, start=0, length=0, *, timeout=None):
        handle = self._handle(upload)
        slots = None if length == 0 else self._slots(handle, start, start + length)
        if timeout is None:
            timeout = upload_settings.LOCK_TIMEOUT
        with slot_locks.locked(upload.id, slots, timeout=timeout):
            yield handle

    def reads_unsealed(self, upload):
        """
        When the chunks are the parts: a chunk the engine could not hash as it
        arrived (sent ahead of the bytes before it) is kept as a piece object,
        which can be read, where a part cannot before CompleteMultipartUpload;
        once hashed, hashed() makes it its part with a copy inside the bucket.
        Gathered parts (tus, small chunks) are read by the finisher instead.
        """
        # Uploads started before pieces were kept for hashing (a staging_ref of
        # the older `<part size>:<UploadId>` form) have their chunks as parts.
        ref = upload.staging_ref
        return ref.startswith("{") and self._direct(self._handle(upload))

    def hasher_locked(self, upload, *, timeout=0):
        # A slot number no part has: chunks never wait for it; finishing's
        # lock on all of an upload's slots covers it.
        return self._locked_slots(upload, range(MAX_PARTS, MAX_PARTS + 1), timeout)

    @contextmanager
    def _locked_slots(self, upload, slots, timeout):
        handle = self._handle(upload)
        with slot_locks.locked(upload.id, slots, timeout=timeout):
            yield handle

    def hashed(self, handle, start, end):
        """Each piece of [start, end), a whole chunk, becomes its part
        (UploadPartCopy: no byte passes through this host), then goes."""
        if not self._direct(handle):
            return
        # _slots() gives a chunk's one slot in this mode: every chunk of the range here.
        for slot in range(start // handle.part_size, -(-end // handle.part_size)):
            if start <= self._bounds(handle, slot)[0] < end:
                self._part_from_piece(handle, slot)

    def write(self, handle, offset, stream, limit, digests=(), *, keep_readable=False):
        """Each slot the bytes touch is one UploadPart or one piece object,
        streamed from the request; a body cut off keeps the slots before it."""
        if limit == 0:
            return 0, False
        written, position, end = 0, offset, offset + limit
        for slot in self._slots(handle, offset, end):
            stop = min(end, self._bounds(handle, slot)[1])
            body = RequestBody(stream, stop - position, digests)
            try:
                self._write_segment(handle, slot, position, stop, body, keep_readable)
            except Exception:
                if body.cut_off:
                    return written, True
                raise
            written += stop - position
            position = stop
        return written, False

    def write_block(self, handle, block, position):
        raise NotImplementedError("S3 staging writes whole segments: see write()")

    def size(self, handle):
        with self._reachable():
            try:
                head = self.client.head_object(Bucket=self.bucket, Key=handle.key)
            except ClientError as exc:
                if _code(exc) in MISSING_CODES:
                    return 0
                raise
        return head["ContentLength"]

    def seal(self, handle, size):
        """Join the parts into the one object `file`: gather the slots that are
        not parts yet (the last one, usually), then CompleteMultipartUpload.
        Done already (a finisher that stopped after it) is no error."""
        self._complete(handle, size)
        handle.sealed = True

    def _complete(self, handle, size):
        if size == 0:
            self._abort(handle)
            with self._reachable():
                self.client.put_object(Bucket=self.bucket, Key=handle.key, Body=b"")
            return
        started = time.monotonic()
        try:
            parts = self._parts(handle)
        except Gone:
            if self.size(handle) == size:
                return
            raise
        direct = self._direct(handle)
        count = max(size // handle.part_size, 1) if direct else math.ceil(size / handle.part_size)
        completed = []
        for slot in range(count):
            first = slot * handle.part_size
            last = size if slot == count - 1 else first + handle.part_size
            if parts.get(slot + 1, (None, -1))[1] != last - first:
                if direct:
                    # A chunk kept as a piece for hashing that hashed() did not move.
                    etag = self._part_from_piece(handle, slot, missing_ok=False)
                    completed.append({"PartNumber": slot + 1, "ETag": etag})
                    continue
                etag = self._upload_part(
                    handle, slot + 1, last - first, PieceChain(self, handle, first, last)
                )
            else:
                etag = parts[slot + 1][0]
            completed.append({"PartNumber": slot + 1, "ETag": etag})
        gathered = time.monotonic()
        with self._reachable():
            self.client.complete_multipart_upload(
                Bucket=self.bucket,
                Key=handle.key,
                UploadId=handle.upload_id,
                MultipartUpload={"Parts": completed},
            )
        # The benchmark (benchmarks/s3_hosts.py) reads the finishing's steps from these lines.
        logger.info(
            "upload %s: %d parts completed into %s in %.2f s, after %.2f s listing and gathering",
            handle.upload.pk,
            len(completed),
            handle.key,
            time.monotonic() - gathered,
            gathered - started,
        )

    def read_in_order(self, handle, size, start=0):
        """The sealed object's bytes, in one streaming GET (of a range, from
        `start`); before seal(), the piece objects kept for hashing, in order."""
        if start >= size:
            return
        if not handle.sealed:
            yield from _blocks(PieceChain(self, handle, start, size))
            return
        ranged = {"Range": f"bytes={start}-{size - 1}"} if start else {}
        with self._reachable():
            body = self.client.get_object(Bucket=self.bucket, Key=handle.key, **ranged)["Body"]
        try:
            while block := body.read(BLOCK_SIZE):
                yield block
        finally:
            body.close()

    def staged_file(self, upload):
        key = self.handle(upload).key
        with self._reachable():
            body = self.client.get_object(Bucket=self.bucket, Key=key)["Body"]
        return File(body, name=upload.name)

    def stored_in_place(self, upload, storage, name):
        """Whether completing the multipart upload stored the file as `name`:
        create() made it at that key of `storage`, this bucket."""
        return (
            bool(upload.staging_ref)
            and self._same_bucket(storage)
            and self.handle(upload).key == storage._normalize_name(name)
        )

    def store(self, upload, storage, name, *, progress=None):
        """
        Nothing to do when the file was completed at its finished key
        (stored_in_place). Otherwise, a server-side copy when finished files go
        to this bucket (an upload staged under the staging prefix, from before
        the finished key was used, or one whose name changed): no byte passes
        through this host (UploadPartCopy past 5 GiB). Any other storage gets
        the bytes streamed from the bucket. The staged object stays until the
        upload is recorded complete (remove()).
        """
        if self.stored_in_place(upload, storage, name):
            return name
        if not self._same_bucket(storage):
            return super().store(upload, storage, name, progress=progress)
        started = time.monotonic()
        source = {"Bucket": self.bucket, "Key": self.handle(upload).key}
        target = storage._normalize_name(name)
        content_type = _content_type(name)
        with self._reachable():
            if upload.size <= MAX_COPY_SIZE:
                self.client.copy_object(
                    Bucket=self.bucket,
                    Key=target,
                    CopySource=source,
                    ContentType=content_type,
                    MetadataDirective="REPLACE",
                )
            else:
                self._copy_in_parts(source, target, upload.size, content_type, progress)
        if progress is not None:
            progress()
        logger.info(
            "upload %s: copied server-side to %s in %.2f s",
            upload.pk,
            target,
            time.monotonic() - started,
        )
        return name

    def _copy_in_parts(self, source, target, size, content_type, progress=None):
        """A copy past CopyObject's 5 GiB: UploadPartCopy, one range after another,
        `progress()` after each (the finisher's lease). boto3's managed copy does
        the same with threads, and holds tens of MiB."""
        part = max(COPY_PART_SIZE, math.ceil(size / MAX_PARTS))
        created = self.client.create_multipart_upload(
            Bucket=self.bucket, Key=target, ContentType=content_type
        )
        parts = []
        for number, first in enumerate(range(0, size, part), start=1):
            copied = self.client.upload_part_copy(
                Bucket=self.bucket,
                Key=target,
                UploadId=created["UploadId"],
                PartNumber=number,
                CopySource=source,
                CopySourceRange=f"bytes={first}-{min(first + part, size) - 1}",
            )
            parts.append({"PartNumber": number, "ETag": copied["CopyPartResult"]["ETag"]})
            if progress is not None:
                progress()
        self.client.complete_multipart_upload(
            Bucket=self.bucket,
            Key=target,
            UploadId=created["UploadId"],
            MultipartUpload={"Parts": parts},
        )

    def remove(self, upload):
        """
        Abort the multipart upload and delete every staged object of the
        upload: its pieces, and the whole file it was completed into unless
        that is the upload's stored file (a `complete` upload finished in
        place). A bucket out of reach leaves them to cleanup_uploads, as a
        crash would.
        """
        try:
            if upload.staging_ref:
                handle = self.handle(upload)
                self._abort(handle)
                stored = upload.status == type(upload).Status.COMPLETE and upload.file.name
                if not handle.key.startswith(handle.folder) and not (
                    stored and self.stored_in_place(upload, upload.file.storage, stored)
                ):
                    # Completed at the finished key, never recorded (cancelled after
                    # a checksum that did not match): not a file anyone has.
                    with self._reachable():
                        self.client.delete_object(Bucket=self.bucket, Key=handle.key)
            self._delete_folder(self.folder(upload.id))
        except StagingUnavailable:
            logger.warning("upload %s: staged objects left to cleanup_uploads", upload.pk)

    def remove_abandoned(self, *, active, before, dry_run):
        """Multipart uploads (ListMultipartUploads) under the staging prefix
        and the finished files' folder, and objects under the staging prefix,
        whose upload is not active, started or written before `before`."""
        found, seen = [], set()
        with self._reachable():
            pages = self.client.get_paginator("list_multipart_uploads")
            for prefix in self._multipart_prefixes():
                for page in pages.paginate(Bucket=self.bucket, Prefix=prefix):
                    for item in page.get("Uploads", []):
                        # One prefix may hold the other (UPLOAD_TO "%Y/..."): listed once.
                        if item["UploadId"] not in seen:
                            seen.add(item["UploadId"])
                            found.append((item["Key"], item["UploadId"], item["Initiated"], 0))
            pages = self.client.get_paginator("list_objects_v2")
            for page in pages.paginate(Bucket=self.bucket, Prefix=self.prefix()):
                for item in page.get("Contents", []):
                    found.append((item["Key"], None, item["LastModified"], item["Size"]))
            kept = active({owner for key, *_ in found if (owner := self._owner(key))})
            removed = []
            for key, upload_id, when, size in found:
                owner = self._owner(key)
                if owner in kept or when > before:
                    continue
                if owner is None and not key.startswith(self.prefix()):
                    # Outside the staging prefix, only what names an upload of
                    # this site is ours: a direct upload's, or another app's in
                    # the same bucket, is left alone.
                    continue
                if dry_run:
                    pass
                elif upload_id is not None:
                    self.client.abort_multipart_upload(
                        Bucket=self.bucket, Key=key, UploadId=upload_id
                    )
                else:
                    self.client.delete_object(Bucket=self.bucket, Key=key)
                kind = "multipart upload " if upload_id else ""
                removed.append((f"{kind}s3://{self.bucket}/{key}", size))
        return removed

    # --- The work ------------------------------------------------------------------------------

    def _handle(self, upload):
        if not upload.staging_ref:
            raise Gone(f"upload {upload.pk} has no multipart upload")
        return self.handle(upload)

    def _part_size(self, upload):
        """Chunks of at least S3's smallest part are the parts; otherwise parts
        of GATHERED_PART_SIZE, or bigger when the largest file would need
        more than 10,000, a whole number of chunks each."""
        chunk, size = upload.chunk_size, upload.size
        if chunk and chunk >= MIN_PART_SIZE and size is not None and size // chunk <= MAX_PARTS:
            return chunk
        part = max(GATHERED_PART_SIZE, math.ceil(upload_settings.MAX_BYTES / MAX_PARTS))
        if chunk:
            part = math.ceil(part / chunk) * chunk
        return part

    def _direct(self, handle):
        """Whether the upload's chunks are its parts (else its parts are gathered)."""
        return handle.upload.chunk_size == handle.part_size

    def _slots(self, handle, start, end):
        """The slot numbers bytes [start, end) fall in."""
        if self._direct(handle):
            # A last chunk longer than chunkSize is still the last part.
            return range(start // handle.part_size, start // handle.part_size + 1)
        return range(start // handle.part_size, max(start, end - 1) // handle.part_size + 1)

    def _bounds(self, handle, slot):
        """[first, last) of a slot's bytes; the last slot ends with the file."""
        first = slot * handle.part_size
        size = handle.upload.size
        if self._direct(handle):
            count = max(size // handle.part_size, 1)
            return first, size if slot == count - 1 else first + handle.part_size
        last = first + handle.part_size
        return first, last if size is None else min(last, size)

    def _write_segment(self, handle, slot, start, end, body, keep_readable=False):
        first, last = self._bounds(handle, slot)
        if self._direct(handle):
            if start != first:
                raise ChunkConflict(
                    gettext("bytes from %(start)s do not start a chunk of this upload")
                    % {"start": start}
                )
            if keep_readable:
                self._put_piece(handle, start, end, body)
            else:
                self._upload_part(handle, slot + 1, end - start, body)
            return
        full = last - first == handle.part_size
        if full and (start, end) == (first, last):
            self._upload_part(handle, slot + 1, end - start, body)
        elif full and handle.upload.received_around.completes(first, last):
            # This piece completes the slot: the part is its received pieces and these bytes.
            gathered = PieceChain(self, handle, first, last, hole=(start, end, body))
            self._upload_part(handle, slot + 1, last - first, gathered)
        else:
            self._put_piece(handle, start, end, body)

    def _put_piece(self, handle, start, end, body):
        with self._reachable():
            self.streaming.put_object(
                Bucket=self.bucket,
                Key=_piece_key(handle, start),
                Body=body,
                ContentLength=end - start,
            )

    def _part_from_piece(self, handle, slot, *, missing_ok=True):
        """Copy the piece that starts the slot into its part, inside the bucket,
        and delete it; its ETag, or None when there is none (moved already)."""
        first = self._bounds(handle, slot)[0]
        source = {"Bucket": self.bucket, "Key": _piece_key(handle, first)}
        with self._reachable():
            try:
                copied = self.client.upload_part_copy(
                    Bucket=self.bucket,
                    Key=handle.key,
                    UploadId=handle.upload_id,
                    PartNumber=slot + 1,
                    CopySource=source,
                )
            except ClientError as exc:
                if missing_ok and _code(exc) in MISSING_CODES:
                    return None
                if _code(exc) in MISSING_CODES:
                    raise ValueError(f"part {slot + 1} is missing") from exc
                raise
            self.client.delete_object(Bucket=self.bucket, Key=source["Key"])
        return copied["CopyPartResult"]["ETag"]

    def _upload_part(self, handle, number, length, body):
        with self._reachable():
            answer = self.streaming.upload_part(
                Bucket=self.bucket,
                Key=handle.key,
                UploadId=handle.upload_id,
                PartNumber=number,
                Body=body,
                ContentLength=length,
            )
        return answer["ETag"]

    def _parts(self, handle):
        """{part number: (ETag, size)} of the multipart upload."""
        parts = {}
        with self._reachable():
            pages = self.client.get_paginator("list_parts")
            for page in pages.paginate(
                Bucket=self.bucket, Key=handle.key, UploadId=handle.upload_id
            ):
                for part in page.get("Parts", []):
                    parts[part["PartNumber"]] = (part["ETag"], part["Size"])
        return parts

    def _abort(self, handle):
        try:
            with self._reachable():
                self.client.abort_multipart_upload(
                    Bucket=self.bucket, Key=handle.key, UploadId=handle.upload_id
                )
        except Gone:
            pass  # aborted or completed already

    def _delete_folder(self, folder):
        with self._reachable():
            pages = self.client.get_paginator("list_objects_v2")
            for page in pages.paginate(Bucket=self.bucket, Prefix=folder):
                keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
                if keys:
                    self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": keys})

    def _owner(self, key):
        """The upload id the key names, or None: under the staging prefix, its
        first folder (the id's hex); a finished file's, the folder it is in
        (models.upload_to: `<UPLOAD_TO>/<upload id>/<name>`)."""
        if key.startswith(self.prefix()):
            head = key[len(self.prefix()) :].partition("/")[0]
            wanted = 32
        else:
            head = key.rpartition("/")[0].rpartition("/")[2]
            wanted = 36
        try:
            return uuid.UUID(head) if len(head) == wanted else None
        except ValueError:
            return None

    def _multipart_prefixes(self):
        """Where multipart uploads of this site's uploads are: the staging
        prefix, and the finished files' folder when it is in this bucket (the
        fixed part of UPLOADS_UPLOAD_TO, before any strftime code)."""
        prefixes = [self.prefix()]
        storage = _finished_storage()
        if self._same_bucket(storage):
            folder = upload_settings.UPLOAD_TO.partition("%")[0]
            finished = storage._normalize_name(folder) if folder else storage.location
            if not finished.startswith(self.prefix()):
                prefixes.append(finished)
        return prefixes

    def _same_bucket(self, storage):
        """Whether `storage` keeps finished files in this bucket (django-storages' S3Storage)."""
        return getattr(storage, "bucket_name", None) == self.bucket and hasattr(
            storage, "_normalize_name"
        )

    @contextmanager
    def _reachable(self):
        """
        Turn the bucket's failures into the engine's: Gone for a multipart
        upload that was aborted; StagingUnavailable (503) for anything else,
        out of reach or refusing us (a missing bucket, credentials), which
        the log says and which no client request should answer with a 500.
        """
        try:
            yield
        except ClientError as exc:
            if _code(exc) == "NoSuchUpload":
                raise Gone("the multipart upload is gone") from exc
            raise StagingUnavailable(_unavailable(exc)) from exc
        except BotoCoreError as exc:
            raise StagingUnavailable(_unavailable(exc)) from exc


def _unavailable(exc):
    logger.warning("the staging bucket cannot be used: %s", exc)
    reason = _code(exc) if isinstance(exc, ClientError) else type(exc).__name__
    return gettext(
        "the storage for unfinished uploads cannot be used now (%(reason)s); nothing was "
        "recorded, send this again in %(seconds)s seconds"
    ) % {"reason": reason, "seconds": StagingUnavailable.retry_after}


def _code(exc):
    return str(exc.response.get("Error", {}).get("Code", ""))


def _blocks(readable):
    while block := readable.read(BLOCK_SIZE):
        yield block


def _piece_key(handle, start):
    return f"{handle.folder}pieces/{start:020d}"


def _finished_storage():
    from ..models import Upload  # staging is loaded before the models are

    return Upload._meta.get_field("file").storage


def _content_type(name):
    return mimetypes.guess_type(name)[0] or "application/octet-stream"


class RequestBody:
    """
    Exactly `length` bytes of the request, for boto3 to send: read as it asks,
    never more than BLOCK_SIZE at once, feeding `digests`. It cannot seek, so
    boto3 streams it rather than buffering it. A body that ends early stops
    the send (the object or part is then not made) and says so in `cut_off`.
    """

    def __init__(self, stream, length, digests=()):
        self.stream, self.remaining, self.digests = stream, length, digests
        self.cut_off = False

    def read(self, size=-1):
        if self.remaining <= 0:
            return b""
        want = self.remaining if size is None or size < 0 else min(size, self.remaining)
        try:
            block = self.stream.read(min(want, BLOCK_SIZE))
        except Exception:
            block = b""
        if not block:
            self.cut_off = True
            raise CutOff(f"the body ended {self.remaining} bytes short")
        self.remaining -= len(block)
        for digest in self.digests:
            digest.update(block)
        return block


class CutOff(Exception):
    """A request's body ended before the bytes it declared."""


class PieceChain:
    """
    Bytes [first, last) of the upload read from its piece objects in order
    (each piece's length says where the next one starts), with the bytes
    [start, end) of `hole` taken from a request instead: the body of a
    gathered part, one GET open at a time.
    """

    def __init__(self, backend, handle, first, last, *, hole=None):
        self.backend, self.handle = backend, handle
        self.position, self.last, self.hole = first, last, hole
        self.current, self.current_end = None, first

    def read(self, size=-1):
        size = BLOCK_SIZE if size is None or size < 0 else min(size, BLOCK_SIZE)
        while self.position < self.last:
            if self.position == self.current_end:
                self._open_next()
            block = self.current.read(min(size, self.current_end - self.position))
            if block:
                self.position += len(block)
                return block
            raise ChunkConflict(
                gettext(
                    "a staged piece of this upload ended early at byte %(position)s; start it again"
                )
                % {"position": self.position}
            )
        return b""

    def _open_next(self):
        if self.current is not None and hasattr(self.current, "close"):
            self.current.close()
        if self.hole is not None and self.hole[0] == self.position:
            start, end, body = self.hole
            self.current, self.current_end = body, end
            return
        key = _piece_key(self.handle, self.position)
        backend = self.backend
        with backend._reachable():
            try:
                got = backend.client.get_object(Bucket=backend.bucket, Key=key)
            except ClientError as exc:
                if _code(exc) not in MISSING_CODES:
                    raise
                raise ChunkConflict(
                    gettext(
                        "the staged piece at byte %(position)s of this upload is missing; "
                        "start it again"
                    )
                    % {"position": self.position}
                ) from exc
        end = self.position + got["ContentLength"]
        if end > self.last or (self.hole is not None and self.position < self.hole[0] < end):
            raise ChunkConflict(
                gettext("the staged piece at byte %(position)s runs past its part")
                % {"position": self.position}
            )
        self.current, self.current_end = got["Body"], end
