"""
Sending a stored file, whole or one byte range of it (RFC 9110 section 14).

A download manager or `curl -C -` that lost its connection asks for the rest
with `Range: bytes=START-`; a player seeks with `bytes=START-END`. One range is
honoured: `206` with `Content-Range`. Several ranges, or a header that is not
a byte range, get the whole file (`200`), as the RFC allows; a range that
starts past the end gets `416` with `Content-Range: bytes */SIZE`. `If-Range`
with another validator than the file's ETag (its SHA-256) gets the whole file.
"""

import re

from django.http import FileResponse, HttpResponse, StreamingHttpResponse
from django.utils.http import content_disposition_header

# Up to 30 digits: past any file size, short of Python's int() limit.
BYTE_RANGE = re.compile(r"bytes=(?P<start>\d{0,30})-(?P<end>\d{0,30})", re.ASCII)
BLOCK = 64 * 1024


class RangeNotSatisfiable(Exception):
    pass


def requested_range(header, size):
    """(first, last) byte of `size` the Range header asks for; None for the whole file."""
    match = BYTE_RANGE.fullmatch(header.strip())
    if match is None or not (match["start"] or match["end"]):
        return None
    if not match["start"]:  # bytes=-N: the last N bytes
        suffix = int(match["end"])
        if suffix == 0 or size == 0:
            raise RangeNotSatisfiable
        return max(size - suffix, 0), size - 1
    start = int(match["start"])
    end = int(match["end"]) if match["end"] else size - 1
    if match["end"] and end < start:
        return None  # not a valid range: ignored
    if start >= size:
        raise RangeNotSatisfiable
    return start, min(end, size - 1)


class FileRange:
    """Bytes first..last of an open file, in blocks; closed with the response."""

    def __init__(self, file, first, last):
        self.file, self.first, self.left = file, first, last - first + 1

    def __iter__(self):
        self.file.seek(self.first)
        while self.left > 0:
            block = self.file.read(min(BLOCK, self.left))
            if not block:
                return
            self.left -= len(block)
            yield block

    def close(self):
        self.file.close()


def file_response(request, fieldfile, filename, *, etag=None):
    """The stored file as an attachment, or the one range the request asks for."""
    size = fieldfile.size
    header = request.META.get("HTTP_RANGE", "")
    if_range = request.META.get("HTTP_IF_RANGE")
    try:
        wanted = requested_range(header, size) if header else None
    except RangeNotSatisfiable:
        response = HttpResponse(status=416)
        response["Content-Range"] = f"bytes */{size}"
        return response
    if wanted is not None and if_range is not None and if_range.strip() != etag:
        wanted = None
    if wanted is None:
        response = FileResponse(fieldfile.open("rb"), as_attachment=True, filename=filename)
    else:
        first, last = wanted
        response = StreamingHttpResponse(
            FileRange(fieldfile.open("rb"), first, last),
            status=206,
            content_type="application/octet-stream",
        )
        response["Content-Length"] = str(last - first + 1)
        response["Content-Range"] = f"bytes {first}-{last}/{size}"
        response["Content-Disposition"] = content_disposition_header(True, filename)
    response["Accept-Ranges"] = "bytes"
    if etag:
        response["ETag"] = etag
    return response
