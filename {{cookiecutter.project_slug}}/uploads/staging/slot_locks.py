"""
Locks for staging that keeps no file of its own (the S3 backend): a lock on
some "slots" of an upload (its parts), or on all of them.

The local backend locks byte ranges of the upload's own file; a bucket has
nothing to lock. So the locks live where every host already meets:

- on PostgreSQL, session advisory locks. Slots take the upload's lock shared
  and each slot's lock exclusive; "all of them" (finishing, expiry) takes the
  upload's lock exclusive, so it waits for every slot being written.
- elsewhere (SQLite: one machine), Linux's byte-range locks (locks.py) on one
  empty file in the temporary folder, each upload owning a region of it: no
  byte of an upload is written there, and nothing accumulates.

Either way a lock that cannot be had within the timeout raises Busy (503).
"""

import os
import tempfile
import time
from contextlib import contextmanager

from django.db import connection
from django.utils.translation import gettext

from .. import locks
from ..errors import Busy

# Slots per upload: S3 allows 10,000 parts; the region's first byte stands for "all".
REGION = 1 << 20
LOCK_FILE = "uploads-staging.lock"


@contextmanager
def locked(upload_id, slots, *, timeout):
    """Hold the locks on `slots` (a range of slot numbers) of the upload, or on
    all of its slots when `slots` is None."""
    if connection.vendor == "postgresql":
        with _advisory(upload_id, slots, timeout):
            yield
    else:
        with _file_region(upload_id, slots, timeout):
            yield


@contextmanager
def _advisory(upload_id, slots, timeout):
    """All the locks tried in one statement, released in one: two per chunk."""
    whole = int.from_bytes(upload_id.bytes[:8], "big", signed=True)
    group = int.from_bytes(upload_id.bytes[:4], "big", signed=True)
    if slots is None:
        wanted = [("pg_try_advisory_lock(%s)", "pg_advisory_unlock(%s)", [whole])]
    else:
        wanted = [("pg_try_advisory_lock_shared(%s)", "pg_advisory_unlock_shared(%s)", [whole])]
        wanted += [
            ("pg_try_advisory_lock(%s, %s)", "pg_advisory_unlock(%s, %s)", [group, slot])
            for slot in slots
        ]
    deadline = time.monotonic() + timeout
    pause = 0.005
    with connection.cursor() as cursor:
        while True:
            cursor.execute(
                f"SELECT {', '.join(take for take, _, _ in wanted)}",
                [value for _, _, params in wanted for value in params],
            )
            taken = cursor.fetchone()
            held = [lock for lock, got in zip(wanted, taken, strict=True) if got]
            if len(held) == len(wanted):
                break
            _release(cursor, held)  # none kept while waiting, so nobody deadlocks
            if time.monotonic() >= deadline:
                raise Busy(gettext("another request is writing these bytes; retry shortly"))
            time.sleep(pause)
            pause = min(pause * 2, 0.2)
        try:
            yield
        finally:
            _release(cursor, held)


def _release(cursor, held):
    if held:
        cursor.execute(
            f"SELECT {', '.join(release for _, release, _ in held)}",
            [value for _, _, params in held for value in params],
        )


@contextmanager
def _file_region(upload_id, slots, timeout):
    path = os.path.join(tempfile.gettempdir(), LOCK_FILE)
    base = (upload_id.int & ((1 << 40) - 1)) * REGION
    if slots is None:
        start, length = base, REGION
    else:
        start, length = base + 1 + slots.start, len(slots)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o600)
    try:
        with locks.locked(fd, path, start, max(length, 1), timeout=timeout):
            yield
    finally:
        os.close(fd)
