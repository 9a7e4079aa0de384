"""
A streaming reader for multipart/form-data request bodies.

Django's MultiPartParser hands a file to upload handlers that must put it
somewhere (memory or a temporary file) before the view runs; for a chunk that
means writing every byte twice. This reader yields the parts in order and lets
the caller copy a file part straight to where it belongs. It holds at most one
block plus one boundary in memory.

flow.js and resumable.js send their parameters before the file, so by the time
the file part starts the caller knows where its bytes go.
"""

from .errors import BadRequest

BLOCK_SIZE = 1024 * 1024
MAX_HEADER_BYTES = 16 * 1024


def boundary_from(content_type):
    """The boundary parameter of a multipart Content-Type, as bytes."""
    for param in content_type.split(";")[1:]:
        key, _, value = param.strip().partition("=")
        if key.strip().lower() == "boundary":
            value = value.strip().strip('"')
            if 0 < len(value) <= 200:
                return value.encode("latin-1", "replace")
    raise BadRequest("the multipart Content-Type has no valid boundary")


def _parse_disposition(value):
    """name and filename from a Content-Disposition header value."""
    params = {}
    for item in value.split(";")[1:]:
        key, sep, val = item.strip().partition("=")
        if sep:
            val = val.strip()
            if len(val) >= 2 and val[0] == val[-1] == '"':
                val = val[1:-1].replace('\\"', '"').replace("\\\\", "\\")
            params[key.strip().lower()] = val
    return params.get("name"), params.get("filename")


class Part:
    """One part of the body; read it with read(n) until it returns b''."""

    def __init__(self, reader, headers):
        self._reader = reader
        self.headers = headers
        disposition = headers.get("content-disposition", "")
        self.name, self.filename = _parse_disposition(disposition)
        self.done = False

    def read(self, size=BLOCK_SIZE):
        if self.done:
            return b""
        data, self.done = self._reader._read_part(size)
        return data

    def read_small(self, limit):
        """The whole part, for a form field; refused when longer than `limit`."""
        chunks, length = [], 0
        while data := self.read(limit + 1 - length):
            chunks.append(data)
            length += len(data)
            if length > limit:
                raise BadRequest(f"the form field {self.name!r} is longer than {limit} bytes")
        return b"".join(chunks)

    def skip(self):
        while self.read():
            pass


class MultipartReader:
    def __init__(self, stream, boundary, block_size=BLOCK_SIZE):
        self._stream = stream
        self._block_size = block_size
        # The first boundary has no CRLF before it; pretend it has.
        self._buffer = bytearray(b"\r\n")
        self._delimiter = b"\r\n--" + boundary
        self._eof = False
        self._finished = False
        self._part = None

    def _fill(self, wanted):
        while len(self._buffer) < wanted and not self._eof:
            block = self._stream.read(self._block_size)
            if not block:
                self._eof = True
            else:
                self._buffer += block

    def _read_part(self, size):
        """Up to `size` bytes of the current part; (data, part_ended)."""
        delimiter = self._delimiter
        self._fill(size + len(delimiter))
        buffer = self._buffer
        index = buffer.find(delimiter, 0, size + len(delimiter))
        if index != -1 and index <= size:
            data = bytes(buffer[:index])
            del buffer[:index]
            return data, True
        if self._eof and len(buffer) < size + len(delimiter):
            raise BadRequest("the multipart body ended in the middle of a part")
        data = bytes(buffer[:size])
        del buffer[:size]
        return data, False

    def __iter__(self):
        while True:
            if self._part is not None and not self._part.done:
                self._part.skip()
            part = self._next_part()
            if part is None:
                return
            self._part = part
            yield part

    def _next_part(self):
        if self._finished:
            return None
        if self._part is None:
            # Skip the preamble up to the first delimiter.
            while True:
                self._fill(len(self._delimiter) + self._block_size)
                index = self._buffer.find(self._delimiter)
                if index != -1:
                    del self._buffer[:index]
                    break
                if self._eof:
                    raise BadRequest("the multipart body has no boundary")
                del self._buffer[: max(0, len(self._buffer) - len(self._delimiter))]
        # The buffer now starts with the delimiter.
        self._fill(len(self._delimiter) + 2)
        del self._buffer[: len(self._delimiter)]
        if self._buffer[:2] == b"--":
            self._finished = True
            return None
        header_end = -1
        while header_end == -1:
            header_end = self._buffer.find(b"\r\n\r\n")
            if header_end == -1:
                if len(self._buffer) > MAX_HEADER_BYTES:
                    raise BadRequest("a multipart part has headers over 16 KiB")
                if self._eof:
                    raise BadRequest("the multipart body ended in a part's headers")
                self._fill(len(self._buffer) + 4096)
        raw = bytes(self._buffer[:header_end])
        del self._buffer[: header_end + 4]
        headers = {}
        for line in raw.split(b"\r\n"):
            if not line.strip():
                continue  # the CRLF (and padding) after the delimiter
            key, sep, value = line.decode("utf-8", "replace").partition(":")
            if not sep:
                raise BadRequest("a multipart part has a malformed header line")
            headers[key.strip().lower()] = value.strip()
        return Part(self, headers)
