"""
What one user may hold: UPLOADS_USER_QUOTA bytes (the declared sizes of their
unfinished uploads and the sizes of their stored files) in at most
UPLOADS_MAX_ACTIVE_UPLOADS unfinished uploads. Checked when an upload is
created, before any byte is kept, on every protocol.

Exact under races: check_room() runs in the transaction that creates the
upload and first locks the owner's row (SELECT ... FOR UPDATE on PostgreSQL),
so two creations for one user take turns; SQLite's IMMEDIATE transactions
(config/settings.py) already let one writer at a time.
"""

from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.db.models import Count, Q, Sum, Value
from django.db.models.functions import Coalesce
from django.utils.translation import gettext, ngettext

from ..conf import upload_settings
from ..errors import QuotaExceeded, TooManyUploads
from ..models import Upload

Status = Upload.Status


@dataclass(frozen=True)
class Usage:
    used_bytes: int
    active_uploads: int

    def as_json(self):
        return {
            "quota_bytes": upload_settings.USER_QUOTA,
            "used_bytes": self.used_bytes,
            "active_uploads": self.active_uploads,
            "max_active_uploads": upload_settings.MAX_ACTIVE_UPLOADS,
        }


def usage(owner):
    """The owner's bytes held and unfinished uploads, as stored now: one query."""
    counted = Upload.objects.filter(owner=owner, status__in=(*Upload.ACTIVE, Status.COMPLETE))
    totals = counted.aggregate(
        # A deferred tus size may grow up to UPLOADS_MAX_BYTES until it is known.
        used=Sum(Coalesce("size", Value(upload_settings.MAX_BYTES))),
        active=Count("pk", filter=Q(status__in=Upload.ACTIVE)),
    )
    return Usage(used_bytes=totals["used"] or 0, active_uploads=totals["active"])


def check_room(owner, size):
    """
    Refuse a new upload of `size` bytes (None: deferred) that would take its
    owner past a limit. Call it inside the transaction that creates the upload.
    """
    # Creations for one owner take turns from here to their commit.
    list(get_user_model().objects.select_for_update().filter(pk=owner.pk).values_list("pk"))
    held = usage(owner)
    if held.active_uploads >= upload_settings.MAX_ACTIVE_UPLOADS:
        raise TooManyUploads(
            ngettext(
                "you already have %(count)d unfinished upload, the most allowed "
                "(UPLOADS_MAX_ACTIVE_UPLOADS); finish or cancel it, then start this one again",
                "you already have %(count)d unfinished uploads, the most allowed "
                "(UPLOADS_MAX_ACTIVE_UPLOADS); finish or cancel one, then start this one again",
                held.active_uploads,
            )
            % {"count": held.active_uploads}
        )
    size = upload_settings.MAX_BYTES if size is None else size
    quota = upload_settings.USER_QUOTA
    if held.used_bytes + size > quota:
        raise QuotaExceeded(
            gettext(
                "this upload of %(size)s bytes would pass your quota of %(quota)s bytes "
                "(UPLOADS_USER_QUOTA): you use %(used)s bytes in unfinished uploads "
                "and stored files; delete files or cancel uploads to make room"
            )
            % {"size": size, "quota": quota, "used": held.used_bytes}
        )
