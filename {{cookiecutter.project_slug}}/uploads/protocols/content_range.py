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

from .. import engine
from ..access import UploadEndpoint
from ..errors import BadRequest, OffsetMismatch, UploadError
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

    def error_response(self, exc):
        data = {"error": exc.message, "detail": exc.message}
        if isinstance(exc, OffsetMismatch):
            data["offset"] = exc.offset
        # django-chunked-upload answers 400 for all a client got wrong but 404 and 410.
        status = exc.status if exc.status in (403, 404, 410) or exc.status >= 500 else 400
        return JsonResponse(data, status=status)


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
        if upload is not None:
            engine.check_open(upload)
            if upload.status != Upload.Status.UPLOADING:
                raise BadRequest(f'Upload has already been marked as "{upload.status}"')
        match = CONTENT_RANGE.fullmatch(request.META.get("HTTP_CONTENT_RANGE", ""))
        if not match:
            raise BadRequest(
                "Error in request headers: Content-Range must read bytes START-END/TOTAL"
            )
        start, end, total = (
            whole_number(match[name], f"Content-Range {name.upper()}")
            for name in ("start", "end", "total")
        )
        if not start <= end < total:
            raise BadRequest(
                f"Content-Range bytes {start}-{end}/{total} is not a range of the file"
            )
        if upload is None:
            if start != 0:
                raise OffsetMismatch("Offsets do not match: a new upload starts at 0", offset=0)
            upload = engine.start(
                self.user, Upload.Protocol.CHUNKED, filename=part.filename, size=total
            )
            try:
                return self.append(upload, start, end, part)
            except UploadError:
                engine.cancel(upload)  # a first chunk that failed leaves nothing behind
                raise
        if total != upload.size:
            raise BadRequest(f"the total size changed from {upload.size} to {total}")
        return self.append(upload, start, end, part)

    def append(self, upload, start, end, part):
        try:
            return engine.append(upload, start, end - start + 1, part, finish_when_whole=False)
        except OffsetMismatch as exc:
            raise OffsetMismatch(
                f"Offsets do not match: {exc.message}", offset=exc.offset
            ) from None


class CompleteView(ChunkedEndpoint):
    """Finish an upload whose bytes are all in, if the client's md5 matches."""

    def post(self, request):
        upload_id, md5 = request.POST.get("upload_id"), request.POST.get("md5")
        if not upload_id or not md5:
            raise BadRequest("Both 'upload_id' and 'md5' are required")
        if not MD5_HEX.match(md5):
            raise BadRequest("md5 must be 32 hexadecimal digits")
        upload = self.get_upload(upload_id)
        if upload.status == Upload.Status.COMPLETE:
            raise BadRequest("Upload has already been marked as complete")
        upload = engine.complete(upload, expected={"md5": md5})
        if upload.status != Upload.Status.COMPLETE:
            raise UploadError(upload.error or f"the upload is {upload.status}", status=500)
        return JsonResponse(response_data(upload))
