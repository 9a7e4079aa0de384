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
            raise BadRequest("chunkSize must be at least 1")
        if self.number < 1:
            raise BadRequest("chunkNumber starts at 1")
        total, size = self.total_size, self.chunk_size
        # flow.js and resumable.js round down (the last chunk takes the rest)
        # unless forceChunkSize is set, when they round up.
        valid_counts = {max(total // size, 1), max(-(-total // size), 1)}
        if self.total_chunks not in valid_counts:
            raise BadRequest(
                f"totalChunks is {self.total_chunks}, but a file of {total} bytes in chunks of "
                f"{size} has {' or '.join(map(str, sorted(valid_counts)))}"
            )
        if self.number > self.total_chunks:
            raise BadRequest(
                f"chunkNumber {self.number} is out of range: there are {self.total_chunks} chunks"
            )
        expected = size if self.number < self.total_chunks else total - self.offset
        if expected < 0 or self.current_size != expected:
            raise BadRequest(
                f"chunk {self.number} must hold {max(expected, 0)} bytes, "
                f"not currentChunkSize {self.current_size}"
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
                raise BadRequest(f"{key} is missing")
            return ""
        if not integer:
            if len(value) > 1024:
                raise BadRequest(f"{key} is longer than 1024 characters")
            if "\x00" in value:
                raise BadRequest(f"{key} contains a NUL character")
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
            raise BadRequest(f"{self.prefix}Identifier is longer than 255 characters")
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
            raise BadRequest("an octet chunk needs a Content-Length header")
        length = whole_number(length, "Content-Length")
        if length != chunk.current_size:
            raise BadRequest(
                f"the body has {length} bytes but {self.prefix}CurrentChunkSize is "
                f"{chunk.current_size}"
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
