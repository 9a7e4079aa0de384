"""
Every status an upload can go to from another, and what each move does.

An upload is created `uploading` (upload_started, once the record is
committed). From there it only moves along the edges in EDGES, each made by
move(): one conditional `UPDATE ... WHERE id = <id> AND status = <from>`, so
of two requests racing to make the same move exactly one does, and only that
one removes the staged bytes or sends the edge's signal. Nothing else in the
app writes a status.

One edge is also made elsewhere: the chunk that records an upload's last byte
moves it `uploading` -> `processing` in the same UPDATE that records its
range (recording.py), since that UPDATE is what decides which request saw the
file whole.
"""

from dataclasses import dataclass

from django.db import transaction
from django.dispatch import Signal
from django.utils import timezone

from .. import staging
from ..models import Upload
from ..signals import upload_completed, upload_expired, upload_failed, upload_started

Status = Upload.Status


@dataclass(frozen=True)
class Edge:
    why: str
    signal: Signal | None = None
    # Fields of the upload the signal is sent with, besides the upload itself.
    signal_fields: tuple = ()
    # An ended upload's staged bytes go with it.
    drops_staging: bool = False


EDGES = {
    (Status.UPLOADING, Status.PROCESSING): Edge(
        "every byte is in: the last chunk's UPDATE (recording.py), or complete() for "
        "an upload held for an explicit complete"
    ),
    (Status.PROCESSING, Status.COMPLETE): Edge(
        # Only now do the staged bytes go: until this is recorded, a finish
        # that stopped can be run again from them (finishing.py).
        "the file is verified, hashed and in storage",
        signal=upload_completed,
        drops_staging=True,
    ),
    (Status.PROCESSING, Status.FAILED): Edge(
        "finishing failed", signal=upload_failed, signal_fields=("error",)
    ),
    (Status.PROCESSING, Status.UPLOADING): Edge(
        "the whole file's checksum did not match the client's; it may send bytes again"
    ),
    (Status.UPLOADING, Status.CANCELLED): Edge("its owner cancelled it", drops_staging=True),
    (Status.UPLOADING, Status.EXPIRED): Edge(
        "no chunk arrived within UPLOADS_EXPIRATION", signal=upload_expired, drops_staging=True
    ),
    (Status.COMPLETE, Status.FAILED): Edge(
        "verify_uploads found the stored file missing or changed"
    ),
    (Status.COMPLETE, Status.DELETED): Edge(
        "its owner deleted the file (ending.delete_file removes it from storage)"
    ),
}


class TransitionNotAllowed(ValueError):
    """A move the table does not have: a mistake in the code, never a client's."""


def started(upload):
    """The record was created: upload_started, once its transaction commits."""
    transaction.on_commit(lambda: upload_started.send(sender=Upload, upload=upload))


def move(upload, source, target, *, where=None, **values):
    """
    Move `upload` from `source` to `target`, also setting `values` (and
    `updated`), if the row is still `source` and matches `where` (field
    lookups). True if this call moved it: then `upload` carries the new
    values, the staged bytes are removed if the edge drops them, and the
    edge's signal is sent. False if another request changed the row first:
    nothing is done and `upload` is left as it was.
    """
    edge = EDGES.get((source, target))
    if edge is None:
        raise TransitionNotAllowed(f"an upload cannot go from {source} to {target}")
    values = {"status": target, "updated": timezone.now(), **values}
    rows = Upload.objects.filter(pk=upload.pk, status=source, **(where or {}))
    if not rows.update(**values):
        return False
    for name, value in values.items():
        setattr(upload, name, value)
    if edge.drops_staging:
        staging.for_upload(upload).remove(upload)
    if edge.signal is not None:
        extra = {name: getattr(upload, name) for name in edge.signal_fields}
        edge.signal.send(sender=Upload, upload=upload, **extra)
    return True
