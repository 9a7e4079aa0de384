"""
The upload engine: the one place that decides what happens to every chunk.

Protocol adapters (uploads/protocols/) turn a request into calls here: "find or
start this upload", "write this piece", "is this range here?", "cancel". The
engine checks them against the upload's record, writes through the staging
backend (uploads/staging/) under a byte-range lock, records the range
atomically and finishes the upload exactly once. Its modules follow the life
of a chunk:

1. find the upload                      SELECT            starting.py (find_or_start)
2. lock the piece's bytes in the staging file                writing.py (write)
3. re-read status, byte count, saved    SELECT            (another request may
   hash and the runs around the piece                      have written them)
4. write the bytes in place, or drain a duplicate without writing; bytes
   that follow the hashed ones feed the file's SHA-256 as they are written
                                                             hashing.py
5. record them: count (and the new     UPDATE, UPDATE     recording.py, runs.py
   hash), then the run                  or INSERT, in one
                                        transaction
6. if that made the upload whole: finish it (hash the rest, store, record,
   signal), in a thread after the answer, under a lease  finishing.py, leases.py;
   else, if bytes sent ahead are now contiguous behind the hashed ones, hash
   them from staging                                         hashing.py

Only the request whose step 5 counts the last byte moves the upload to
`processing`, in the same UPDATE, so an upload is finished once however many
workers race on its chunks. The statements of steps 1, 3 and 5 are in
statements.py: SQL written once, as these run on every chunk; each costs the
same whether the upload has one run or a hundred thousand.

Every other status change is an edge of the table in transitions.py, made by
one conditional UPDATE that also sends the edge's signal: finishing (complete,
failed, back to uploading on a wrong checksum), cancel, expiry and deleting a
finished file (ending.py), and verify_uploads.

Starting an upload checks its owner's limits (quotas.py) in the transaction
that creates it.

A protocol differs from another only in what it says about its bytes: a Piece
(writing.py) is in order or at its own offset, keeps a cut-off body or not,
carries a checksum, or holds a whole file for an explicit complete().
"""

from . import quotas
from .ending import cancel, check_open, delete_file, expire, expire_if_due
from .finishing import complete, finish_upload, recover, take_over_if_stalled
from .starting import (
    LATE_CHUNK_WINDOW,
    check_declared_file,
    find_active,
    find_or_start,
    start,
    start_with,
)
from .writing import Piece, current_offset, has_range, write

__all__ = [
    "LATE_CHUNK_WINDOW",
    "Piece",
    "cancel",
    "check_declared_file",
    "check_open",
    "complete",
    "current_offset",
    "delete_file",
    "expire",
    "expire_if_due",
    "finish_upload",
    "find_active",
    "find_or_start",
    "has_range",
    "quotas",
    "recover",
    "start",
    "start_with",
    "take_over_if_stalled",
    "write",
]
