import uuid

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.files.storage import Storage, storages
from django.db import models
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .conf import upload_settings


class _UnknownStorage(Storage):
    """Stands in when UPLOADS_STORAGE names no storage, so that the apps still load
    and `manage.py check` reports uploads.E007; any use raises that same error."""

    def __init__(self, error):
        self.error = error

    def __getattribute__(self, name):
        if name == "error" or name.startswith("__"):
            return super().__getattribute__(name)
        raise self.error


def _storage():
    try:
        alias = upload_settings.STORAGE
    except ImproperlyConfigured as exc:
        return _UnknownStorage(exc)
    return storages[alias]


def upload_to(upload, filename):
    """
    uploads/2026/11/22/<upload id>/<clean name>: one folder per upload, no name
    clashes. Dated by the upload's start, so a finish run again stores the file
    under the name an earlier, interrupted run used.
    """
    folder = upload.created.strftime(upload_settings.UPLOAD_TO)
    return f"{folder}/{upload.id}/{upload.name}"


class Upload(models.Model):
    """One file being received, in chunks, by any protocol; then the file itself."""

    class Status(models.TextChoices):
        UPLOADING = "uploading", _("Uploading")
        PROCESSING = "processing", _("Processing")
        COMPLETE = "complete", _("Complete")
        FAILED = "failed", _("Failed")
        CANCELLED = "cancelled", _("Cancelled")
        EXPIRED = "expired", _("Expired")
        # Its owner deleted the finished file; the record stays.
        DELETED = "deleted", _("Deleted")

    class Protocol(models.TextChoices):
        FLOW = "flow", "flow.js"
        RESUMABLE = "resumable", "resumable.js"
        TUS = "tus", "tus"
        CHUNKED = "chunked", "Content-Range"
        # Straight into the bucket (uploads/direct/): the site only signs.
        S3 = "s3", "S3 direct (Uppy)"

    # Statuses in which an upload still owns its client identifier.
    ACTIVE = (Status.UPLOADING, Status.PROCESSING)

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="uploads"
    )
    protocol = models.CharField(max_length=16, choices=Protocol.choices)
    client_id = models.CharField(
        "client identifier",
        max_length=255,
        blank=True,
        help_text="The identifier the client gave the file (flowIdentifier, resumableIdentifier).",
    )
    filename = models.CharField(max_length=255, help_text="The name the client gave.")
    name = models.CharField(max_length=255, help_text="The cleaned name the file is stored under.")
    relative_path = models.CharField(max_length=1024, blank=True)
    metadata = models.JSONField(
        default=dict,
        blank=True,
        help_text="What the client said about the file (tus Upload-Metadata), as it said it.",
    )
    size = models.BigIntegerField(
        null=True,
        blank=True,
        help_text="Total size in bytes; empty until a tus client that deferred it sends it.",
    )
    chunk_size = models.BigIntegerField(null=True, blank=True)
    received_bytes = models.BigIntegerField(default=0)
    received_ranges = models.JSONField(
        default=list, blank=True, help_text="Received bytes as sorted [start, end) pairs."
    )
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.UPLOADING, db_index=True
    )
    staging_ref = models.CharField(
        max_length=1024,
        blank=True,
        editable=False,
        help_text="Where the staging backend keeps the unfinished bytes (S3: part size and "
        "multipart UploadId); empty for the local backend.",
    )
    error = models.TextField(blank=True)
    sha256 = models.CharField(max_length=64, blank=True)
    file = models.FileField(upload_to=upload_to, storage=_storage, max_length=500, blank=True)
    created = models.DateTimeField(default=timezone.now, db_index=True)
    updated = models.DateTimeField(default=timezone.now)
    expires = models.DateTimeField()
    completed = models.DateTimeField(null=True, blank=True)
    finishing_until = models.DateTimeField(
        null=True,
        blank=True,
        help_text="While processing: the finisher's lease, renewed as it works. Past it, "
        "the finisher is taken to have stopped and another run takes the upload over.",
    )

    class Meta:
        ordering = ["-created"]
        constraints = [
            models.UniqueConstraint(
                fields=["owner", "protocol", "client_id"],
                condition=Q(status__in=["uploading", "processing"]) & ~Q(client_id=""),
                name="uploads_one_active_upload_per_client_id",
            ),
        ]
        indexes = [models.Index(fields=["status", "expires"], name="uploads_status_expires")]

    def __str__(self):
        return self.filename

    def get_absolute_url(self):
        """
        The upload's row on the upload page, for a person (the admin's "View
        on site"): it shows the status whatever it is, with the download link
        once complete. The download itself would start a transfer of what may
        be many gigabytes from a click meant to look; the JSON API is for
        programs (representation.upload_json gives its URL).
        """
        return f"{reverse('uploads:index')}#upload-{self.id}"

    def get_download_url(self):
        return reverse("uploads:download", args=[self.id])

    @property
    def is_active(self):
        return self.status in self.ACTIVE

    @property
    def progress(self):
        """Share of the bytes received, 0.0 to 1.0; None while the size is not known."""
        if self.size is None:
            return None
        return 1.0 if self.size == 0 else self.received_bytes / self.size


class UploadToken(models.Model):
    """
    An API token that uploads as its owner without a browser session
    (`Authorization: Bearer <token>`). Only a SHA-256 of the token is kept:
    the token itself is shown once, when it is made (uploads/tokens.py).
    """

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="upload_tokens"
    )
    name = models.CharField(max_length=100, help_text="What the token is for, e.g. a script.")
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    prefix = models.CharField(
        max_length=12, editable=False, help_text="The token's first characters, to recognise it."
    )
    created = models.DateTimeField(default=timezone.now, editable=False)
    last_used = models.DateTimeField(null=True, blank=True, editable=False)
    expires = models.DateTimeField(
        null=True, blank=True, help_text="Refused after this time; empty: never expires."
    )
    revoked = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-created"]

    def __str__(self):
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_usable(self):
        return self.revoked is None and (self.expires is None or self.expires > timezone.now())
