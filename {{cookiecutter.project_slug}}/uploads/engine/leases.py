"""
The lease of the run that finishes an upload: how a finish whose process died
is noticed within minutes and taken over, and how two runs never finish one
upload at once.

The move to `processing` grants the first lease (finishing_until = now +
LEASE): to the request whose chunk completed the file, or to complete(). The
finisher renews it as it hashes and copies (Heartbeat). A lease that ran out
means its finisher stopped (a killed worker, a restart): take_over() claims
the upload with one conditional UPDATE, so of the status API's reads and
cleanup_uploads' runs racing for it exactly one finishes it again.
"""

import logging
import time
from datetime import timedelta

from django.db import DatabaseError, connection
from django.db.models import Q
from django.utils import timezone

from ..models import Upload

logger = logging.getLogger(__name__)

Status = Upload.Status

# How long a finisher is trusted without a sign of life; a finish that stopped
# is taken over this long after its last renewal.
LEASE = timedelta(minutes=2)
# How often a working finisher renews its lease: several times per LEASE, so a
# slow disk or a short database outage does not lose it.
RENEW_EVERY = LEASE / 6


class LeaseLost(Exception):
    """Another run took the upload over: this one stops and leaves it to that one."""


def granted(now):
    """The lease a run that starts finishing now holds."""
    return now + LEASE


def _ran_out(now):
    # An upload made `processing` before leases existed has none: its `updated` counts.
    return Q(finishing_until__lt=now) | Q(finishing_until__isnull=True, updated__lt=now - LEASE)


def stalled(now=None):
    """Uploads being finished whose finisher stopped."""
    return Upload.objects.filter(_ran_out(now or timezone.now()), status=Status.PROCESSING)


def ran_out(upload, now=None):
    """Whether the lease of `upload` (as read) has run out, without a query."""
    now = now or timezone.now()
    if upload.status != Status.PROCESSING:
        return False
    if upload.finishing_until is None:
        return upload.updated < now - LEASE
    return upload.finishing_until < now


def take_over(upload):
    """Claim a `processing` upload whose lease ran out; True if this call has it now."""
    now = timezone.now()
    lease = granted(now)
    rows = stalled(now).filter(pk=upload.pk)
    if not rows.update(finishing_until=lease, updated=now):
        return False
    upload.finishing_until = lease
    return True


class Heartbeat:
    """
    Called as the finisher works (after each block hashed or copied): renews
    the lease every RENEW_EVERY with one conditional UPDATE. Raises LeaseLost
    when another run took the upload over. A database that cannot be reached
    for a moment is no reason to stop: the work goes on, the next beat tries
    again, and if the outage outlasts the lease the upload is taken over.
    """

    def __init__(self, upload):
        self.upload = upload
        self.due = time.monotonic() + RENEW_EVERY.total_seconds()

    def __call__(self):
        if time.monotonic() < self.due:
            return
        self.due = time.monotonic() + RENEW_EVERY.total_seconds()
        upload = self.upload
        lease = granted(timezone.now())
        rows = Upload.objects.filter(
            pk=upload.pk, status=Status.PROCESSING, finishing_until=upload.finishing_until
        )
        try:
            renewed = rows.update(finishing_until=lease)
        except DatabaseError as exc:
            logger.warning("upload %s: could not renew the finishing lease: %s", upload.pk, exc)
            forget_broken_connection()
            return
        if not renewed:
            raise LeaseLost(f"upload {upload.pk} was taken over by another finishing run")
        upload.finishing_until = lease


def forget_broken_connection():
    """After a database error outside a transaction, the next query opens a new
    connection (a killed backend, a restarted server) instead of failing again."""
    if not connection.in_atomic_block:
        connection.close()
