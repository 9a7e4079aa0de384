"""
The Companion-compatible S3 routes, under /uploads/companion/s3/: what Uppy's
AwsS3 plugin (`companionEndpoint: '/uploads/companion'`) calls.

    POST   multipart                          {filename, type, metadata} -> {key, uploadId}
    GET    multipart/<uploadId>/<partNumber>  ?key= -> {url}, a signed UploadPart
    GET    multipart/<uploadId>               ?key= -> [{PartNumber, ETag, Size}]
    POST   multipart/<uploadId>/complete      ?key=, {parts} -> {location, key}
    DELETE multipart/<uploadId>               ?key= -> {}, the upload cancelled
    GET    params                             ?filename=&type= -> {method, url, fields}

`uploadId` is the site's upload id (the status API's); the bucket's own
UploadId never leaves the site. A `key` that is not the upload's, like an
upload of another user, is a 404. The declared size, when the client gives
one (`size`, or `metadata.size` / `metadata[size]`: Uppy sends none of its
own), is checked at creation like any protocol's; without one, at complete,
from the parts in the bucket.

CSRF: Uppy 6's AwsS3 sends no headers of its own to Companion, so no
X-CSRFToken. A session's request is taken as the site's own when it carries
a valid X-CSRFToken (Django's check), or when the browser says it comes from
this origin (Sec-Fetch-Site: same-origin, or an Origin header that is this
site's or in CSRF_TRUSTED_ORIGINS); the bodies must be JSON, which a form on
another site cannot send without a CORS preflight this site never grants.
A token-authenticated request needs none of it.
"""

import json
import math
import re
from contextlib import contextmanager

from django.conf import settings
from django.http import JsonResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext

from .. import engine
from ..access import UploadEndpoint, csrf_rejection
from ..conf import upload_settings
from ..engine import leases, transitions
from ..engine.finishing import finish_soon
from ..errors import BadRequest, NotAuthenticated, TooLarge, UploadError, UploadGone, UploadNotFound
from ..models import Upload
from ..protocols.numbers import whole_number
from ..staging import Gone
from .bucket import MAX_PARTS, MAX_POST_SIZE, MIN_PART_SIZE, direct_bucket, key_for

Status = Upload.Status

# A create or complete body: names and metadata, or up to 10,000 parts of ~60 bytes.
MAX_JSON_BODY = 1024**2
MAX_TYPE_CHARS = 255
# Whole and ASCII: the type goes into a header of the request to the bucket.
MIME_TYPE = re.compile(r"[\w.+-]+/[\w.+-]+", re.ASCII)


class DirectOff(UploadError):
    status = 404


class CrossSite(NotAuthenticated):
    """A session request that did not come from this site's own pages."""


class DirectEndpoint(UploadEndpoint):
    protocol = Upload.Protocol.S3

    def check_protocol(self, request):
        if not upload_settings.DIRECT:
            raise DirectOff(
                gettext("direct uploads into the bucket are off on this site (UPLOADS_DIRECT)")
            )

    def csrf_rejection(self, request):
        """None for a request from the site's own pages; else the 403 (see the docstring)."""
        if request.META.get(settings.CSRF_HEADER_NAME):
            return csrf_rejection(request)
        fetch_site = request.META.get("HTTP_SEC_FETCH_SITE")
        origin = request.META.get("HTTP_ORIGIN")
        if fetch_site is not None and fetch_site != "same-origin":
            raise CrossSite(
                gettext("a request from another site (Sec-Fetch-Site: %(site)s) is refused")
                % {"site": fetch_site[:40]}
            )
        if origin is not None and not _our_origin(request, origin):
            raise CrossSite(
                gettext("a request from another site (Origin: %(origin)s) is refused")
                % {"origin": origin[:100]}
            )
        if request.method not in ("GET", "HEAD") and fetch_site is None and origin is None:
            raise CrossSite(
                gettext("the request does not say where it comes from: send X-CSRFToken")
            )
        return None

    def get_direct_upload(self, request, upload_id):
        """The user's direct upload `upload_id`, if `key` is its key; else a 404."""
        key = request.GET.get("key")
        if not key:
            raise BadRequest(gettext("the key parameter is missing"))
        upload = self.get_upload(upload_id)
        if key != key_for(upload):
            raise UploadNotFound(gettext("no such upload"))
        return upload

    def read_json(self, request):
        content_type = request.META.get("CONTENT_TYPE", "").partition(";")[0].strip().lower()
        if content_type != "application/json":
            raise BadRequest(gettext("send the body as JSON (Content-Type: application/json)"))
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = -1
        if not 0 < length <= MAX_JSON_BODY:
            raise BadRequest(
                gettext("the JSON body must be between 1 byte and %(max)s bytes")
                % {"max": MAX_JSON_BODY}
            )
        try:
            data = json.loads(request.read(length))
            _refuse_nul(data)
        except (UnicodeDecodeError, ValueError, RecursionError):  # nested past any use too
            raise BadRequest(gettext("the body is not valid JSON")) from None
        if not isinstance(data, dict):
            raise BadRequest(gettext("the JSON body must be an object"))
        return data


class CreateMultipart(DirectEndpoint):
    http_method_names = ["post"]

    def post(self, request):
        data = self.read_json(request)
        metadata = data.get("metadata", {})
        if metadata is None:
            metadata = {}
        if not isinstance(metadata, dict):
            raise BadRequest(gettext("metadata must be an object"))
        filename = _text(data.get("filename"), "filename")
        content_type = _content_type(data.get("type"))
        size = _declared_size(data.get("size", metadata.get("size")))
        upload = _start(
            self.user,
            filename,
            size,
            metadata,
            lambda upload: direct_bucket.create(upload, content_type),
        )
        return JsonResponse({"key": key_for(upload), "uploadId": str(upload.id)})


class SignPart(DirectEndpoint):
    http_method_names = ["get"]

    def get(self, request, upload_id, part_number):
        upload = self.get_direct_upload(request, upload_id)
        number = whole_number(part_number, "partNumber")
        largest = _most_parts(upload)
        if not 1 <= number <= largest:
            raise BadRequest(
                gettext("partNumber must be from 1 to %(max)s for this upload") % {"max": largest}
            )
        _check_taking_parts(upload)
        # A part on its way is a sign of life: the upload expires that long after it.
        now = timezone.now()
        Upload.objects.filter(pk=upload.pk, status=Status.UPLOADING).update(
            expires=now + upload_settings.EXPIRATION, updated=now
        )
        return JsonResponse({"url": direct_bucket.sign_part(upload, number)})


class MultipartUpload(DirectEndpoint):
    http_method_names = ["get", "delete"]

    def get(self, request, upload_id):
        """The parts in the bucket, for a client that resumes."""
        upload = self.get_direct_upload(request, upload_id)
        _check_taking_parts(upload)
        with _still_in_the_bucket():
            parts = direct_bucket.parts(upload)
        return JsonResponse(parts, safe=False)

    def delete(self, request, upload_id):
        upload = self.get_direct_upload(request, upload_id)
        engine.cancel(upload)
        return JsonResponse({})


class CompleteMultipart(DirectEndpoint):
    http_method_names = ["post"]

    def post(self, request, upload_id):
        upload = self.get_direct_upload(request, upload_id)
        parts = _parts(self.read_json(request).get("parts"))
        if upload.status in (Status.PROCESSING, Status.COMPLETE) and upload.staging_ref:
            return self.completed(request, upload)  # a retry whose answer was lost
        _check_taking_parts(upload)
        with _still_in_the_bucket():
            size = upload.size
            if size is None:
                # No size was declared: the parts in the bucket give it, checked now.
                listed = {part["PartNumber"]: part["Size"] for part in direct_bucket.parts(upload)}
                size = sum(listed.get(part["PartNumber"], 0) for part in parts)
                try:
                    engine.check_declared_file(upload.filename, size)
                except TooLarge:
                    engine.cancel(upload)
                    raise
            direct_bucket.complete(upload, parts)
        if transitions.move(
            upload,
            Status.UPLOADING,
            Status.PROCESSING,
            size=size,
            received_bytes=size,
            error="",
            finishing_until=leases.granted(timezone.now()),
        ):
            finish_soon(upload)
        else:
            upload.refresh_from_db()
        return self.completed(request, upload)

    def completed(self, request, upload):
        return JsonResponse(
            {
                # The upload's status resource: the object itself is private.
                "location": request.build_absolute_uri(
                    reverse("uploads:api-detail", args=[upload.id])
                ),
                "key": key_for(upload),
                "bucket": direct_bucket.bucket,
                "uploadId": str(upload.id),
                "status": upload.status,
            }
        )


class SignedPost(DirectEndpoint):
    """One signed POST for a small file (Uppy below its multipart threshold)."""

    http_method_names = ["get"]

    def get(self, request):
        query = request.GET
        metadata = {
            name[len("metadata[") : -1]: value
            for name, value in query.items()
            if name.startswith("metadata[") and name.endswith("]")
        }
        _refuse_nul(metadata)
        filename = _text(query.get("filename"), "filename")
        content_type = _content_type(query.get("type"))
        size = _declared_size(query.get("size", metadata.get("size")))
        if size is not None and size > MAX_POST_SIZE:
            raise BadRequest(
                gettext("a file over %(max)s bytes goes in parts: use a multipart upload")
                % {"max": MAX_POST_SIZE}
            )
        # No multipart upload to make: the POST itself makes the object.
        upload = _start(self.user, filename, size, metadata, lambda upload: None)
        largest = min(upload_settings.MAX_BYTES, MAX_POST_SIZE)
        signed = direct_bucket.sign_post(
            upload, content_type, (size, size) if size is not None else (0, largest)
        )
        return JsonResponse(
            {
                "method": "POST",
                "url": signed["url"],
                "fields": signed["fields"],
                "uploadId": str(upload.id),
            }
        )


@contextmanager
def _still_in_the_bucket():
    """A multipart upload the bucket no longer has (aborted by its lifecycle rule, say)."""
    try:
        yield
    except Gone:
        raise UploadGone(gettext("the bucket no longer has this upload; start it again")) from None


def _refuse_nul(data):
    """What the client says is kept as data, and PostgreSQL refuses NUL in text and JSON."""
    if isinstance(data, dict):
        items = [*data.keys(), *data.values()]
    elif isinstance(data, list):
        items = data
    else:
        items = []
    if isinstance(data, str) and "\x00" in data:
        raise BadRequest(gettext("the request contains a NUL character"))
    for item in items:
        _refuse_nul(item)


def _our_origin(request, origin):
    own = f"{request.scheme}://{request.get_host()}"
    return origin == own or origin in getattr(settings, "CSRF_TRUSTED_ORIGINS", [])


def _text(value, name):
    if not isinstance(value, str) or not value:
        raise BadRequest(gettext("%(name)s is missing") % {"name": name})
    return value


def _content_type(value):
    if value in (None, ""):
        return "application/octet-stream"
    if not isinstance(value, str) or len(value) > MAX_TYPE_CHARS or not MIME_TYPE.fullmatch(value):
        raise BadRequest(gettext("type must be a media type such as application/pdf"))
    return value


def _start(user, filename, size, metadata, stage):
    """The site's Upload for a direct upload, under the limits every protocol
    has (engine.start); `stage` makes its room in the bucket, if any."""
    return engine.start(
        user,
        Upload.Protocol.S3,
        filename=filename,
        size=size,
        relative_path=_relative_path(metadata),
        metadata=metadata,
        stage=stage,
    )


def _declared_size(value):
    """The size the client declared (an int, or digits), or None if it declared none."""
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise BadRequest(gettext("size must be a whole number of bytes"))
    return whole_number(str(value), "size")


def _relative_path(metadata):
    path = metadata.get("relativePath")
    return path if isinstance(path, str) else ""


def _most_parts(upload):
    """Every part but the last has at least S3's 5 MiB: a declared size bounds their count."""
    if upload.size is None:
        return MAX_PARTS
    return min(MAX_PARTS, max(1, math.ceil(upload.size / MIN_PART_SIZE)))


def _check_taking_parts(upload):
    engine.check_open(upload)  # expired, cancelled, failed, deleted: the client starts again
    if upload.status != Status.UPLOADING:
        raise UploadGone(
            gettext("this upload is %(status)s; it takes no more parts") % {"status": upload.status}
        )
    if not upload.staging_ref:
        raise BadRequest(gettext("this upload is sent as one signed POST; it has no parts"))


def _parts(parts):
    if not isinstance(parts, list) or not parts:
        raise BadRequest(gettext("parts must be a list of {PartNumber, ETag}"))
    if len(parts) > MAX_PARTS:
        raise BadRequest(gettext("an upload has at most %(max)s parts") % {"max": MAX_PARTS})
    cleaned, last = [], 0
    for part in parts:
        if not isinstance(part, dict):
            raise BadRequest(gettext("parts must be a list of {PartNumber, ETag}"))
        number, etag = part.get("PartNumber"), part.get("ETag")
        whole = isinstance(number, int) and not isinstance(number, bool)
        if not whole or not last < number <= MAX_PARTS:
            raise BadRequest(gettext("PartNumber must rise from 1 to %(max)s") % {"max": MAX_PARTS})
        if not isinstance(etag, str) or not 0 < len(etag) <= 100:
            raise BadRequest(gettext("each part needs the ETag the bucket gave it"))
        cleaned.append({"PartNumber": number, "ETag": etag})
        last = number
    return cleaned
