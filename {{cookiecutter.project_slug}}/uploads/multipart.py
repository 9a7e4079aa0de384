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

from django.utils.http import parse_header_parameters
from django.utils.translation import gettext

from .errors import BadRequest

BLOCK_SIZE = 1024 * 1024
MAX_HEADER_BYTES = 16 * 1024
# An uploader's form: a few small fields, then the file field.
FILE_FIELD = "file"
MAX_FIELDS = 64
MAX_FIELD_BYTES = 4096


def header_parameters(value, header):
    """
    The parameters of a header value (`type; key=value; ...`), through Django's
    own parser: it keeps a `;` inside a quoted value, unescapes quotes, and
    decodes RFC 2231 `filename*=UTF-8''...` into `filename`.
    """
    try:
        return parse_header_parameters(value)[1]
    except ValueError as exc:  # an unknown RFC 2231 charset, or (Django 6) a value too long
        raise BadRequest(
            gettext("the multipart %(header)s cannot be read: %(error)s")
            % {"header": header, "error": exc}
        ) from None


def boundary_from(content_type):
    """The boundary parameter of a multipart Content-Type, as bytes."""
    boundary = header_parameters(content_type, "Content-Type").get("boundary", "")
    if not 0 < len(boundary) <= 200:
        raise BadRequest(gettext("the multipart Content-Type has no valid boundary"))
    return boundary.encode("latin-1", "replace")


class Part:
    """One part of the body; read it with read(n) until it returns b''."""

    def __init__(self, reader, headers):
        self._reader = reader
        self.headers = headers
        disposition = header_parameters(
            headers.get("content-disposition", ""), "Content-Disposition"
        )
        self.name, self.filename = disposition.get("name"), disposition.get("filename")
        self.done = False

    def read(self, size=BLOCK_SIZE):
        """
        Up to `size` bytes of the part, b'' at its end. The bytes come as a
        memoryview of the block the stream returned, not a copy: keep it only
        as long as needed (os.pwrite, hashlib and b"".join take it as it is).
        """
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
                raise BadRequest(
                    gettext("the form field %(name)r is longer than %(limit)s bytes")
                    % {"name": self.name, "limit": limit}
                )
        return b"".join(chunks)

    def skip(self):
        while self.read():
            pass


class MultipartReader:
    """
    The buffer is the last block read (immutable bytes) and a position in it.
    A file part's bytes are handed out as views of that block, so each byte is
    copied once, by the stream, and scanned once for the delimiter. Only a
    block's last few bytes that could begin a delimiter are held back and
    joined to the next block, which for file data is rare.
    """

    def __init__(self, stream, boundary, block_size=BLOCK_SIZE):
        self._stream = stream
        self._block_size = block_size
        # The first boundary has no CRLF before it; pretend it has.
        self._buffer = b"\r\n"
        self._pos = 0
        self._delimiter = b"\r\n--" + boundary
        self._eof = False
        self._finished = False
        self._part = None

    def _available(self):
        return len(self._buffer) - self._pos

    def _more(self):
        """Read one more block; what is left of the buffer goes before it."""
        rest = self._buffer[self._pos :]
        # Let go of the last block before reading the next, so that the
        # allocator can hand its memory back: fresh pages cost page faults.
        self._buffer = b""
        block = self._stream.read(self._block_size)
        if not block:
            self._buffer, self._pos, self._eof = rest, 0, True
            return
        self._buffer = rest + block if rest else block
        self._pos = 0

    def _fill(self, wanted):
        while self._available() < wanted and not self._eof:
            self._more()

    def _held_back(self):
        """How many bytes at the end of the buffer could start a delimiter cut off by it."""
        buffer, delimiter = self._buffer, self._delimiter
        cut = buffer.find(b"\r", max(self._pos, len(buffer) - len(delimiter) + 1))
        while cut != -1:
            if delimiter.startswith(buffer[cut:]):
                return len(buffer) - cut
            cut = buffer.find(b"\r", cut + 1)
        return 0

    def _read_part(self, size):
        """Up to `size` bytes of the current part; (data, part_ended)."""
        delimiter = self._delimiter
        while True:
            buffer, pos = self._buffer, self._pos
            index = buffer.find(delimiter, pos, pos + size + len(delimiter))
            if index != -1 and index - pos <= size:
                self._pos = index
                return memoryview(buffer)[pos:index], True
            safe = len(buffer) - (0 if self._eof else self._held_back())
            count = min(size, safe - pos)
            if count > 0:
                self._pos = pos + count
                return memoryview(buffer)[pos : pos + count], False
            if self._eof:
                raise BadRequest(gettext("the multipart body ended in the middle of a part"))
            self._more()

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
        delimiter = self._delimiter
        if self._part is None:
            # Skip the preamble up to the first delimiter.
            while (index := self._buffer.find(delimiter, self._pos)) == -1:
                if self._eof:
                    raise BadRequest(gettext("the multipart body has no boundary"))
                self._pos = max(self._pos, len(self._buffer) - len(delimiter))
                self._more()
            self._pos = index
        # The buffer now starts with the delimiter.
        self._fill(len(delimiter) + 2)
        self._pos += len(delimiter)
        if self._buffer[self._pos : self._pos + 2] == b"--":
            self._finished = True
            return None
        while (header_end := self._buffer.find(b"\r\n\r\n", self._pos)) == -1:
            if self._available() > MAX_HEADER_BYTES:
                raise BadRequest(gettext("a multipart part has headers over 16 KiB"))
            if self._eof:
                raise BadRequest(gettext("the multipart body ended in a part's headers"))
            self._fill(self._available() + 4096)
        raw = self._buffer[self._pos : header_end]
        self._pos = header_end + 4
        headers = {}
        for line in raw.split(b"\r\n"):
            if not line.strip():
                continue  # the CRLF (and padding) after the delimiter
            key, sep, value = line.decode("utf-8", "replace").partition(":")
            if not sep:
                raise BadRequest(gettext("a multipart part has a malformed header line"))
            headers[key.strip().lower()] = value.strip()
        return Part(self, headers)


def read_until_file(stream, content_type, fields=None, *, file_field=FILE_FIELD, missing=None):
    """
    The form fields sent before the file field, and the file's part, ready to
    be streamed where it belongs. `fields` are values from elsewhere (the
    query string) that the form's own override. Refuses a form without the
    file field (saying `missing`, if given), with more than MAX_FIELDS
    fields, or a field over MAX_FIELD_BYTES.
    """
    fields = dict(fields or {})
    for count, part in enumerate(MultipartReader(stream, boundary_from(content_type))):
        if count >= MAX_FIELDS:
            raise BadRequest(
                gettext("the form has more than %(count)s fields") % {"count": MAX_FIELDS}
            )
        if part.name == file_field and part.filename is not None:
            return fields, part
        if part.name:
            fields[part.name] = part.read_small(MAX_FIELD_BYTES).decode("utf-8", "replace")
    raise BadRequest(
        missing or gettext("the form has no file field %(name)r") % {"name": file_field}
    )
