"""
The bucket direct uploads go into, and the signing.

Every upload gets its key here, `<UPLOADS_DIRECT_PREFIX><owner id>/<upload
id hex>/<cleaned name>`: a client names a file, never a key, and a key it
sends back is only compared with the one its upload has. That key is also
the finished file's name in the storage (AWS_STORAGE_BUCKET_NAME with no
location), so finishing copies nothing.

A multipart upload's UploadId is the record's staging_ref; an upload sent
as one signed POST (small files) has none. Signed URLs are SigV4 and live
UPLOADS_DIRECT_URL_LIFETIME: an UploadPart URL signs the key, the UploadId
and the part number, so it writes that part of that upload and nothing else.
"""

import logging
import uuid
from contextlib import contextmanager, nullcontext

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.utils.translation import gettext

from ..conf import upload_settings
from ..errors import StagingUnavailable
from ..staging import Gone

logger = logging.getLogger(__name__)

# S3's limits on a multipart upload.
MIN_PART_SIZE = 5 * 1024**2
MAX_PARTS = 10_000
# The largest object a signed POST may create (S3's limit for one PUT or POST).
MAX_POST_SIZE = 5 * 1024**3
# How S3 says a key or a multipart upload is not there.
MISSING_CODES = {"404", "NoSuchKey", "NotFound", "NoSuchUpload"}


def key_for(upload):
    return f"{upload_settings.DIRECT_PREFIX}{upload.owner_id}/{upload.id.hex}/{upload.name}"


def owner_of(key):
    """The upload id a key under the prefix names (its second folder), or None."""
    parts = key[len(upload_settings.DIRECT_PREFIX) :].split("/")
    if len(parts) < 3 or len(parts[1]) != 32:
        return None
    try:
        return uuid.UUID(hex=parts[1])
    except ValueError:
        return None


class DirectBucket:
    """The bucket, as the engine and the routes use it for direct uploads."""

    def __init__(self):
        self._client = None

    @property
    def bucket(self):
        return settings.AWS_STORAGE_BUCKET_NAME

    @property
    def client(self):
        if self._client is None:
            self._client = boto3.client(
                "s3",
                endpoint_url=getattr(settings, "AWS_S3_ENDPOINT_URL", None) or None,
                region_name=getattr(settings, "AWS_S3_REGION_NAME", None) or None,
                config=Config(
                    signature_version="s3v4",
                    # Reading an object back needs no checksum the body would be read for.
                    request_checksum_calculation="when_required",
                    response_checksum_validation="when_required",
                    connect_timeout=5,
                ),
            )
        return self._client

    def forget_client(self):
        self._client = None

    # --- The staging contract, as far as the engine uses it for these uploads -----------------

    def create(self, upload, content_type="application/octet-stream"):
        """The multipart upload, in the transaction that creates the record."""
        with reachable():
            created = self.client.create_multipart_upload(
                Bucket=self.bucket, Key=key_for(upload), ContentType=content_type
            )
        upload.staging_ref = created["UploadId"]
        type(upload).objects.filter(pk=upload.pk).update(staging_ref=upload.staging_ref)

    def open_locked(self, upload, *args, **kwargs):
        # No bytes on a disk of ours to lock: the record's conditional UPDATEs decide.
        return nullcontext()

    def remove(self, upload):
        """
        An upload that ended unfinished (cancelled, expired): abort its
        multipart upload and delete any object it made. A complete upload's
        object is its file and stays. A bucket out of reach leaves them to
        cleanup_uploads and the bucket's lifecycle rule.
        """
        if upload.status == upload.Status.COMPLETE:
            return
        try:
            if upload.staging_ref:
                self.abort(upload)
            with reachable():
                self.client.delete_object(Bucket=self.bucket, Key=key_for(upload))
        except StagingUnavailable:
            logger.warning("upload %s: its direct upload is left to cleanup_uploads", upload.pk)

    def abort(self, upload):
        try:
            with reachable():
                self.client.abort_multipart_upload(
                    Bucket=self.bucket, Key=key_for(upload), UploadId=upload.staging_ref
                )
        except Gone:
            pass  # aborted or completed already

    def remove_abandoned(self, *, active, before, dry_run):
        """Multipart uploads under the prefix whose upload is not active, begun before `before`."""
        found = []
        with reachable():
            pages = self.client.get_paginator("list_multipart_uploads")
            prefix = upload_settings.DIRECT_PREFIX
            for page in pages.paginate(Bucket=self.bucket, Prefix=prefix):
                for item in page.get("Uploads", []):
                    if item["Initiated"] <= before:
                        found.append((item["Key"], item["UploadId"]))
            kept = active({owner for key, _ in found if (owner := owner_of(key))})
            removed = []
            for key, upload_id in found:
                if owner_of(key) in kept:
                    continue
                if not dry_run:
                    self.client.abort_multipart_upload(
                        Bucket=self.bucket, Key=key, UploadId=upload_id
                    )
                removed.append((f"multipart upload s3://{self.bucket}/{key}", 0))
        return removed

    # --- What the routes do --------------------------------------------------------------------

    def sign_part(self, upload, number):
        return self.client.generate_presigned_url(
            "upload_part",
            Params={
                "Bucket": self.bucket,
                "Key": key_for(upload),
                "UploadId": upload.staging_ref,
                "PartNumber": number,
            },
            ExpiresIn=int(upload_settings.DIRECT_URL_LIFETIME.total_seconds()),
        )

    def sign_post(self, upload, content_type, length_range):
        """A POST policy for this one key, this type and a size in `length_range` (min, max)."""
        return self.client.generate_presigned_post(
            Bucket=self.bucket,
            Key=key_for(upload),
            Fields={"Content-Type": content_type},
            Conditions=[
                {"Content-Type": content_type},
                ["content-length-range", *length_range],
            ],
            ExpiresIn=int(upload_settings.DIRECT_URL_LIFETIME.total_seconds()),
        )

    def parts(self, upload):
        """[{PartNumber, ETag, Size}] of the upload's multipart upload, in order."""
        parts = []
        with reachable():
            pages = self.client.get_paginator("list_parts")
            for page in pages.paginate(
                Bucket=self.bucket, Key=key_for(upload), UploadId=upload.staging_ref
            ):
                for part in page.get("Parts", []):
                    parts.append(
                        {
                            "PartNumber": part["PartNumber"],
                            "ETag": part["ETag"],
                            "Size": part["Size"],
                        }
                    )
        return parts

    def complete(self, upload, parts):
        with reachable():
            self.client.complete_multipart_upload(
                Bucket=self.bucket,
                Key=key_for(upload),
                UploadId=upload.staging_ref,
                MultipartUpload={"Parts": parts},
            )

    def head(self, upload):
        """The object's size, or None if there is none (yet)."""
        try:
            with reachable():
                answer = self.client.head_object(Bucket=self.bucket, Key=key_for(upload))
        except Gone:
            return None
        return answer["ContentLength"]

    def delete(self, upload):
        with reachable():
            self.client.delete_object(Bucket=self.bucket, Key=key_for(upload))


@contextmanager
def reachable():
    """
    The bucket's failures as the engine's: Gone for a key or a multipart
    upload that is not there; StagingUnavailable (503 with Retry-After) for
    anything else, out of reach or refusing us, never a 500.
    """
    try:
        yield
    except ClientError as exc:
        if code(exc) in MISSING_CODES:
            raise Gone(f"not in the bucket: {code(exc)}") from exc
        raise StagingUnavailable(_unavailable(exc)) from exc
    except BotoCoreError as exc:
        raise StagingUnavailable(_unavailable(exc)) from exc


def code(exc):
    return str(exc.response.get("Error", {}).get("Code", ""))


def _unavailable(exc):
    logger.warning("the bucket for direct uploads cannot be used: %s", exc)
    reason = code(exc) if isinstance(exc, ClientError) else type(exc).__name__
    return gettext(
        "the bucket cannot be used now (%(reason)s); nothing was recorded, send this "
        "again in %(seconds)s seconds"
    ) % {"reason": reason, "seconds": StagingUnavailable.retry_after}


direct_bucket = DirectBucket()


@receiver(setting_changed)
def _build_again(setting, **kwargs):
    if setting in ("AWS_S3_ENDPOINT_URL", "AWS_S3_REGION_NAME"):
        direct_bucket.forget_client()
