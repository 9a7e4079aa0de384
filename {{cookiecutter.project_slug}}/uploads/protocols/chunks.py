"""
Numbered-chunk protocols: flow.js and resumable.js.

Both cut a file into chunks of `chunkSize` bytes, number them from 1, and send
each with the same eight parameters under their own prefix. Unless the client
forces the chunk size, the last chunk takes the remainder, so it may hold up to
2 x chunkSize - 1 bytes. A chunk goes as a multipart form (parameters, then
the file field `file`) or, in flow.js's `octet` method, as the raw body with
the parameters in the query string.

Subclasses only name their prefix (flowjs.py, resumablejs.py).
"""

from dataclasses import dataclass

from django.http import HttpResponse, JsonResponse
from django.utils.translation import gettext

from .. import engine
from ..access import UploadEndpoint
from ..errors import BadRequest, UploadGone
from ..multipart import read_until_file
from ..representation import upload_json
from .numbers import whole_number


@dataclass(frozen=True)
class Chunk:
    client_id: str
    filename: str
    relative_path: str
    number: int
    chunk_size: int
    current_size: int
    total_size: int
    total_chunks: int

    @property
    def offset(self):
        return (self.number - 1) * self.chunk_size

    def check(self):
        """The parameters must describe one chunk of one consistent file."""
        if self.chunk_size < 1:
            raise BadRequest(gettext("chunkSize must be at least 1"))
        if self.number < 1:
            raise BadRequest(gettext("chunkNumber starts at 1"))
        total, size = self.total_size, self.chunk_size
        # flow.js and resumable.js round down (the last chunk takes the rest)
        # unless forceChunkSize is set, when they round up.
        valid_counts = {max(total // size, 1), max(-(-total // size), 1)}
        if self.total_chunks not in valid_counts:
            raise BadRequest(
                gettext(
                    "totalChunks is %(given)s, but a file of %(total)s bytes in chunks of "
                    "%(size)s has %(counts)s"
                )
                % {
                    "given": self.total_chunks,
                    "total": total,
                    "size": size,
                    "counts": gettext(" or ").join(map(str, sorted(valid_counts))),
                }
            )
        if self.number > self.total_chunks:
            raise BadRequest(
                gettext("chunkNumber %(number)s is out of range: there are %(count)s chunks")
                % {"number": self.number, "count": self.total_chunks}
            )
        expected = size if self.number < self.total_chunks else total - self.offset
        if expected < 0 or self.current_size != expected:
            raise BadRequest(
                gettext(
                    "chunk %(number)s must hold %(expected)s bytes, not currentChunkSize %(given)s"
                )
                % {"number": self.number, "expected": max(expected, 0), "given": self.current_size}
            )


class ChunkProtocol(UploadEndpoint):
    """One view per protocol: GET tests for a chunk, POST sends one."""

    prefix = None  # "flow" or "resumable"
    protocol = None  # an Upload.Protocol

    http_method_names = ["get", "post", "options"]
    # Cancelled or expired: flow.js and resumable.js retry a 410 forever; 404
    # is in both clients' permanentErrors, so the file stops there.
    error_statuses = {UploadGone: 404}

    def param(self, params, name, *, integer=False, required=True):
        key = self.prefix + name
        value = params.get(key)
        if value is None or value == "":
            if required:
                raise BadRequest(gettext("%(key)s is missing") % {"key": key})
            return ""
        if not integer:
            if len(value) > 1024:
                raise BadRequest(gettext("%(key)s is longer than 1024 characters") % {"key": key})
            if "\x00" in value:
                raise BadRequest(gettext("%(key)s contains a NUL character") % {"key": key})
            return value
        return whole_number(value, key)

    def parse(self, params):
        chunk = Chunk(
            client_id=self.param(params, "Identifier"),
            filename=self.param(params, "Filename"),
            relative_path=self.param(params, "RelativePath", required=False),
            number=self.param(params, "ChunkNumber", integer=True),
            chunk_size=self.param(params, "ChunkSize", integer=True),
            current_size=self.param(params, "CurrentChunkSize", integer=True),
            total_size=self.param(params, "TotalSize", integer=True),
            total_chunks=self.param(params, "TotalChunks", integer=True),
        )
        if len(chunk.client_id) > 255:
            raise BadRequest(
                gettext("%(key)s is longer than 255 characters")
                % {"key": f"{self.prefix}Identifier"}
            )
        chunk.check()
        return chunk

    def find_or_start(self, chunk):
        return engine.find_or_start(
            self.user,
            self.protocol,
            chunk.client_id,
            filename=chunk.filename,
            size=chunk.total_size,
            chunk_size=chunk.chunk_size,
            relative_path=chunk.relative_path,
        )

    def get(self, request):
        """The test request: 200 if the chunk is stored, 204 if not (never 404)."""
        chunk = self.parse(request.GET)
        # Refused here as a chunk's POST would be (engine.find_or_start checks it there).
        engine.check_declared_file(chunk.filename, chunk.total_size)
        upload = engine.find_active(self.user, self.protocol, chunk.client_id)
        if (
            upload is not None
            and upload.size == chunk.total_size
            and upload.chunk_size == chunk.chunk_size
            and engine.has_range(upload, chunk.offset, chunk.current_size)
        ):
            return JsonResponse(upload_json(upload))
        return HttpResponse(status=204)

    def post(self, request):
        content_type = request.META.get("CONTENT_TYPE", "")
        if content_type.lower().startswith("multipart/form-data"):
            upload = self.receive_multipart(request, content_type)
        else:
            upload = self.receive_octet(request)
        return JsonResponse(upload_json(upload))

    def receive_octet(self, request):
        chunk = self.parse(request.GET)
        length = request.META.get("CONTENT_LENGTH")
        if not length:
            raise BadRequest(gettext("an octet chunk needs a Content-Length header"))
        length = whole_number(length, "Content-Length")
        if length != chunk.current_size:
            raise BadRequest(
                gettext("the body has %(length)s bytes but %(key)s is %(size)s")
                % {
                    "length": length,
                    "key": f"{self.prefix}CurrentChunkSize",
                    "size": chunk.current_size,
                }
            )
        return self.write(chunk, request)

    def receive_multipart(self, request, content_type):
        # Some clients (resumable.js) repeat the parameters in the query string.
        query = {key: request.GET[key] for key in request.GET if key.startswith(self.prefix)}
        fields, part = read_until_file(request, content_type, query)
        chunk = self.parse(fields)
        return self.write(chunk, part)

    def write(self, chunk, stream):
        upload = self.find_or_start(chunk)
        return engine.write(upload, engine.Piece(chunk.offset, chunk.current_size, stream))
