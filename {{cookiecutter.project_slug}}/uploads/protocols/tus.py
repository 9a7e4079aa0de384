"""
tus 1.0.0 (https://tus.io/protocols/resumable-upload): the core protocol and
the creation, creation-with-upload, creation-defer-length, termination,
expiration and checksum extensions.

`POST /uploads/tus/` makes an upload with engine.start(); the upload's id is
the one in its URL, `/uploads/tus/<id>`, and in the status API. `HEAD` tells
how many bytes the server has, `PATCH` appends bytes at that offset through
engine.write(), keeping what arrived of a body that was cut off, and `DELETE`
cancels. A client that does not know the file's size yet creates the upload
with `Upload-Defer-Length: 1` and sends `Upload-Length` with a later PATCH;
engine.write() checks and records it. Not implemented, so not advertised:
concatenation.
"""

import base64
import io
import logging
import re

from django.http import HttpResponse
from django.urls import reverse
from django.utils.http import http_date
from django.utils.translation import gettext

from .. import engine
from ..access import UploadEndpoint
from ..conf import upload_settings
from ..errors import (
    BadRequest,
    BrokerUnavailable,
    InsufficientStorage,
    NotAuthenticated,
    TypeNotAllowed,
    UploadCancelled,
    UploadError,
)
from ..models import Upload
from .numbers import whole_number

logger = logging.getLogger(__name__)

TUS_VERSION = "1.0.0"
EXTENSIONS = (
    "creation",
    "creation-with-upload",
    "creation-defer-length",
    "termination",
    "expiration",
    "checksum",
)
CHECKSUM_ALGORITHMS = ("md5", "sha1", "sha256")
OFFSET_CONTENT_TYPE = "application/offset+octet-stream"
# A metadata key is printable ASCII without spaces or commas.
METADATA_KEY = re.compile(r"^[!-+\--~]+$")
MIME_TYPE = re.compile(r"^[\w.+-]+/[\w.+-]+$")
MAX_METADATA_CHARS = 4096


class VersionNotSupported(UploadError):
    status = 412


class ChecksumAlgorithmNotSupported(BadRequest):
    pass


def non_negative(value, header):
    if value is None or value == "":
        raise BadRequest(gettext("the %(header)s header is missing") % {"header": header})
    return whole_number(value, header)


def creation_length(meta):
    """POST's Upload-Length, or None when the client defers it (Upload-Defer-Length: 1)."""
    length, defer = meta.get("HTTP_UPLOAD_LENGTH"), meta.get("HTTP_UPLOAD_DEFER_LENGTH")
    if defer is None:
        if length is None:
            raise BadRequest(
                gettext(
                    "the Upload-Length header is missing (or send Upload-Defer-Length: 1 "
                    "and Upload-Length with a later PATCH)"
                )
            )
        return non_negative(length, "Upload-Length")
    if length is not None:
        raise BadRequest(gettext("send either Upload-Length or Upload-Defer-Length, not both"))
    if defer.strip() != "1":
        raise BadRequest(
            gettext("Upload-Defer-Length must be 1, not %(value)r") % {"value": defer[:20]}
        )
    return None


def parse_metadata(header):
    """Upload-Metadata: `key base64value` pairs, comma-separated -> {key: str or None}."""
    if len(header) > MAX_METADATA_CHARS:
        raise BadRequest(
            gettext("Upload-Metadata is longer than %(limit)s characters")
            % {"limit": MAX_METADATA_CHARS}
        )
    metadata = {}
    for pair in filter(None, (item.strip() for item in header.split(","))):
        key, _, value = pair.partition(" ")
        if not METADATA_KEY.match(key):
            raise BadRequest(
                gettext("Upload-Metadata key %(key)r is not printable ASCII") % {"key": key[:40]}
            )
        if key in metadata:
            raise BadRequest(gettext("Upload-Metadata has the key %(key)r twice") % {"key": key})
        if not value.strip():
            metadata[key] = None
            continue
        try:
            text = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except ValueError:
            # binascii.Error, UnicodeDecodeError, and the ValueError b64decode
            # raises for a non-ASCII str: WSGI hands headers over as latin-1.
            raise BadRequest(
                gettext("Upload-Metadata %(key)r is not base64 of UTF-8 text") % {"key": key}
            ) from None
        if "\x00" in text:
            # Stored in a JSONField: PostgreSQL refuses NUL in jsonb text.
            raise BadRequest(
                gettext("Upload-Metadata %(key)r contains a NUL character") % {"key": key}
            )
        metadata[key] = text
    return metadata


def format_metadata(metadata):
    """The inverse of parse_metadata(), for HEAD: a key without a value stays a bare key."""
    return ",".join(
        key if value is None else f"{key} {base64.b64encode(value.encode()).decode('ascii')}"
        # Sorted: PostgreSQL's jsonb does not keep the client's order.
        for key, value in sorted(metadata.items())
    )


def parse_checksum(header):
    """Upload-Checksum: `<algorithm> <base64 digest>` -> (hashlib name, digest bytes)."""
    algorithm, _, value = header.strip().partition(" ")
    if algorithm not in CHECKSUM_ALGORITHMS:
        raise ChecksumAlgorithmNotSupported(
            gettext(
                "Upload-Checksum algorithm %(algorithm)r is not supported; use one of %(supported)s"
            )
            % {"algorithm": algorithm[:20], "supported": ", ".join(CHECKSUM_ALGORITHMS)}
        )
    try:
        return algorithm, base64.b64decode(value.strip(), validate=True)
    except ValueError:  # binascii.Error, or a non-ASCII str (a latin-1 header)
        raise BadRequest(gettext("the Upload-Checksum digest is not valid base64")) from None


class TusView(UploadEndpoint):
    """`/uploads/tus/` (OPTIONS, POST) and `/uploads/tus/<id>` (HEAD, PATCH, DELETE)."""

    http_method_names = ["options", "post", "head", "patch", "delete"]
    protocol = Upload.Protocol.TUS
    # The statuses tus gives its own: VersionNotSupported is 412 and
    # ChecksumMismatch 460 of themselves. A cancelled (terminated) upload is
    # gone for good (404); an expired one is 410, as the expiration extension says.
    error_statuses = {NotAuthenticated: 401, UploadCancelled: 404}
    error_headers = {
        NotAuthenticated: {"WWW-Authenticate": 'Bearer realm="uploads"'},
        VersionNotSupported: {"Tus-Version": TUS_VERSION},
        ChecksumAlgorithmNotSupported: {"Tus-Checksum-Algorithm": ",".join(CHECKSUM_ALGORITHMS)},
    }

    def dispatch(self, request, *args, **kwargs):
        # For clients and proxies that can only send GET and POST.
        override = request.META.get("HTTP_X_HTTP_METHOD_OVERRIDE", "").strip().upper()
        if override and request.method == "POST":
            request.method = override
        response = super().dispatch(request, *args, **kwargs)
        response["Tus-Resumable"] = TUS_VERSION
        response["Cache-Control"] = "no-store"
        return response

    def check_protocol(self, request):
        if request.method != "OPTIONS" and request.META.get("HTTP_TUS_RESUMABLE") != TUS_VERSION:
            raise VersionNotSupported(
                gettext("Tus-Resumable must be %(version)s, not %(value)r")
                % {
                    "version": TUS_VERSION,
                    "value": request.META.get("HTTP_TUS_RESUMABLE", "(none)")[:20],
                }
            )

    def get_upload(self, upload_id):
        if upload_id is None:
            raise BadRequest(gettext("this method needs an upload's URL, /uploads/tus/<id>"))
        return super().get_upload(upload_id)

    def options(self, request, upload_id=None):
        response = HttpResponse(status=204)
        response["Tus-Version"] = TUS_VERSION
        response["Tus-Extension"] = ",".join(EXTENSIONS)
        response["Tus-Max-Size"] = str(upload_settings.MAX_BYTES)
        response["Tus-Checksum-Algorithm"] = ",".join(CHECKSUM_ALGORITHMS)
        return response

    def post(self, request, upload_id=None):
        """creation, and creation-with-upload when the request has a body."""
        if upload_id is not None:
            raise BadRequest(gettext("create an upload with POST /uploads/tus/, not its URL"))
        if "HTTP_UPLOAD_CONCAT" in request.META:
            raise BadRequest(gettext("the concatenation extension is not supported"))
        size = creation_length(request.META)
        metadata = parse_metadata(request.META.get("HTTP_UPLOAD_METADATA", ""))
        # Uppy sends `name` as well; tus-js-client and tuspy send what they are given.
        filename = metadata.get("filename") or metadata.get("name")
        if not filename:
            raise BadRequest(
                gettext("Upload-Metadata needs a filename (base64 of the file's name)")
            )
        filetype = metadata.get("filetype")
        if filetype is not None and not MIME_TYPE.match(filetype):
            raise BadRequest(
                gettext("Upload-Metadata filetype %(filetype)r is not a media type")
                % {"filetype": filetype[:60]}
            )
        # As tusd does: a body is the file's first bytes only when typed as such.
        length = self.body_length(request, required=False) if self.is_offset_body(request) else 0
        upload = engine.start(
            self.user, Upload.Protocol.TUS, filename=filename, size=size, metadata=metadata
        )
        if length or size == 0:
            try:
                self.append(request, upload, 0, length)
            except (InsufficientStorage, BrokerUnavailable):
                # As a creation refused for room (or, for a file this request
                # completes, for its finish): the client, which gets no
                # Location, creates the upload again later.
                engine.cancel(upload)
                raise
            except UploadError as exc:
                # The upload exists: the client learns its offset (the engine
                # leaves `upload` as it stands) and carries on with PATCH.
                logger.info("upload %s: creation-with-upload stopped: %s", upload.pk, exc.message)
        response = HttpResponse(status=201)
        response["Location"] = request.build_absolute_uri(reverse("uploads:tus", args=[upload.id]))
        response["Upload-Expires"] = http_date(upload.expires.timestamp())
        if length:
            response["Upload-Offset"] = str(upload.received_bytes)
        return response

    def head(self, request, upload_id=None):
        upload = self.get_upload(upload_id)
        engine.check_open(upload)
        response = HttpResponse(status=200)
        response["Upload-Offset"] = str(engine.current_offset(upload))
        if upload.size is None:
            response["Upload-Defer-Length"] = "1"
        else:
            response["Upload-Length"] = str(upload.size)
        # Uploads made before their metadata was kept only have the name.
        response["Upload-Metadata"] = format_metadata(
            upload.metadata or {"filename": upload.filename}
        )
        if upload.status == Upload.Status.UPLOADING:
            response["Upload-Expires"] = http_date(upload.expires.timestamp())
        return response

    def patch(self, request, upload_id=None):
        upload = self.get_upload(upload_id)
        self.check_content_type(request)
        offset = non_negative(request.META.get("HTTP_UPLOAD_OFFSET"), "Upload-Offset")
        length = self.body_length(request, required=True)
        # A client that deferred the length sends it once known (creation-defer-length).
        size = request.META.get("HTTP_UPLOAD_LENGTH")
        size = None if size is None else non_negative(size, "Upload-Length")
        upload = self.append(request, upload, offset, length, size=size)
        response = HttpResponse(status=204)
        response["Upload-Offset"] = str(upload.received_bytes)
        if upload.status == Upload.Status.UPLOADING:
            response["Upload-Expires"] = http_date(upload.expires.timestamp())
        return response

    def delete(self, request, upload_id=None):
        engine.cancel(self.get_upload(upload_id))
        return HttpResponse(status=204)

    def append(self, request, upload, offset, length, *, size=None):
        header = request.META.get("HTTP_UPLOAD_CHECKSUM")
        checksum = parse_checksum(header) if header is not None else None
        stream = request if length else io.BytesIO()
        piece = engine.Piece(
            offset, length, stream, in_order=True, keep_cut_off=True, checksum=checksum, size=size
        )
        return engine.write(upload, piece)

    def is_offset_body(self, request):
        content_type = request.META.get("CONTENT_TYPE", "").split(";")[0].strip().lower()
        return content_type == OFFSET_CONTENT_TYPE

    def check_content_type(self, request):
        if not self.is_offset_body(request):
            raise TypeNotAllowed(
                gettext("the body's Content-Type must be %(expected)s, not %(value)r")
                % {
                    "expected": OFFSET_CONTENT_TYPE,
                    "value": request.META.get("CONTENT_TYPE", "")[:80],
                }
            )

    def body_length(self, request, *, required):
        value = request.META.get("CONTENT_LENGTH", "")
        if not value:
            if required:
                raise BadRequest(gettext("the request needs a Content-Length header"))
            return 0
        return non_negative(value, "Content-Length")
