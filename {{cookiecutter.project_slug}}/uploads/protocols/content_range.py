"""
Content-Range uploads, as django-chunked-upload and jQuery-File-Upload send
them (https://github.com/juliomalegria/django-chunked-upload).

`POST /uploads/chunked/`: a multipart form with the chunk in the file field
`file` and a `Content-Range: bytes START-END/TOTAL` header; the first chunk
has no `upload_id` and starts the upload, later ones send the `upload_id` the
answers give. Chunks come in order: each must start where the received bytes
end. `POST /uploads/chunked/complete/` with `upload_id` and `md5` finishes the
file, checking the md5 in the same pass as the sha256 (engine.complete).

Answers and errors keep that package's shape (`upload_id`, `offset`,
`expires`; `detail` beside our `error`) and its statuses: 404 unknown upload,
410 expired, 400 for everything else the client got wrong.
"""

import re

from django.http import JsonResponse
from django.utils.translation import gettext

from .. import engine
from ..access import UploadEndpoint
from ..errors import (
    BadRequest,
    NotAuthenticated,
    OffsetMismatch,
    QuotaExceeded,
    TooManyUploads,
    UploadError,
    UploadGone,
    UploadNotFound,
)
from ..models import Upload
from ..multipart import read_until_file
from ..representation import upload_json
from .numbers import whole_number

CONTENT_RANGE = re.compile(r"bytes (?P<start>\d+)-(?P<end>\d+)/(?P<total>\d+)", re.ASCII)
MD5_HEX = re.compile(r"^[0-9a-fA-F]{32}$")


def response_data(upload):
    return {
        **upload_json(upload),
        "upload_id": str(upload.id),
        "offset": upload.received_bytes,
        "expires": upload.expires.isoformat(),
    }


class ChunkedEndpoint(UploadEndpoint):
    http_method_names = ["post"]
    protocol = Upload.Protocol.CHUNKED
    # django-chunked-upload answers 400 for all a client got wrong but 404 and
    # 410; a user's limits keep their own statuses, as on every protocol.
    error_statuses = {
        QuotaExceeded: 413,
        TooManyUploads: 429,
        UploadError: 400,
        NotAuthenticated: 403,
        UploadNotFound: 404,
        UploadGone: 410,
    }

    def error_data(self, exc):
        if isinstance(exc, OffsetMismatch):
            # django-chunked-upload's words, and the offset to carry on from.
            message = f"Offsets do not match: {exc.message}"
            return {"error": message, "detail": message, "offset": exc.offset}
        return {"error": exc.message, "detail": exc.message}


class ContentRangeView(ChunkedEndpoint):
    """One chunk, in order, with its Content-Range."""

    def post(self, request):
        query = {key: request.GET[key] for key in ("upload_id",) if key in request.GET}
        fields, part = read_until_file(
            request,
            request.META.get("CONTENT_TYPE", ""),
            query,
            missing="No chunk file was submitted",  # django-chunked-upload's words
        )
        upload = self.receive(request, fields.get("upload_id"), part)
        return JsonResponse(response_data(upload))

    def receive(self, request, upload_id, part):
        upload = self.get_upload(upload_id) if upload_id else None
        match = CONTENT_RANGE.fullmatch(request.META.get("HTTP_CONTENT_RANGE", ""))
        if not match:
            raise BadRequest(
                gettext("Error in request headers: Content-Range must read bytes START-END/TOTAL")
            )
        start, end, total = (
            whole_number(match[name], f"Content-Range {name.upper()}")
            for name in ("start", "end", "total")
        )
        if not start <= end < total:
            raise BadRequest(
                gettext(
                    "Content-Range bytes %(start)s-%(end)s/%(total)s is not a range of the file"
                )
                % {"start": start, "end": end, "total": total}
            )
        # Chunks come in order; the whole file waits for complete/ and its md5.
        piece = engine.Piece(start, end - start + 1, part, in_order=True, hold=True)
        if upload is None:
            return engine.start_with(
                self.user, self.protocol, piece, filename=part.filename, size=total
            )
        if total != upload.size:
            raise BadRequest(
                gettext("the total size changed from %(old)s to %(new)s")
                % {"old": upload.size, "new": total}
            )
        return engine.write(upload, piece)


class CompleteView(ChunkedEndpoint):
    """Finish an upload whose bytes are all in, if the client's md5 matches."""

    def post(self, request):
        upload_id, md5 = request.POST.get("upload_id"), request.POST.get("md5")
        if not upload_id or not md5:
            raise BadRequest(gettext("Both 'upload_id' and 'md5' are required"))
        if not MD5_HEX.match(md5):
            raise BadRequest(gettext("md5 must be 32 hexadecimal digits"))
        upload = engine.complete(self.get_upload(upload_id), expected={"md5": md5})
        return JsonResponse(response_data(upload))
