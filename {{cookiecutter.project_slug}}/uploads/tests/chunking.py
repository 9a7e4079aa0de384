"""
Test helpers that cut a file into chunks and describe them the way flow.js and
resumable.js do (same parameters, same rounding), for Django's test client.
"""

import hashlib
from urllib.parse import urlencode


def chunk_count(total, chunk_size):
    """flow.js/resumable.js without forceChunkSize: the last chunk takes the rest."""
    return max(total // chunk_size, 1)


def chunk_bounds(total, chunk_size, number):
    count = chunk_count(total, chunk_size)
    start = (number - 1) * chunk_size
    end = total if number == count else start + chunk_size
    return start, end


def params(
    prefix, data, number, *, chunk_size, identifier="file-1", filename="data.bin", **overrides
):
    start, end = chunk_bounds(len(data), chunk_size, number)
    values = {
        "ChunkNumber": number,
        "ChunkSize": chunk_size,
        "CurrentChunkSize": end - start,
        "TotalSize": len(data),
        "Identifier": identifier,
        "Filename": filename,
        "RelativePath": filename,
        "TotalChunks": chunk_count(len(data), chunk_size),
    }
    values.update(overrides)
    return {prefix + key: value for key, value in values.items() if value is not None}


def post_chunk(
    client, url, prefix, data, number, *, chunk_size, method="multipart", body=None, **kw
):
    """POST one chunk; `body` replaces the chunk's real bytes (for bad input)."""
    query = params(prefix, data, number, chunk_size=chunk_size, **kw)
    start, end = chunk_bounds(len(data), chunk_size, number)
    chunk = data[start:end] if body is None else body
    if method == "octet":
        return client.post(
            f"{url}?{urlencode(query)}", data=chunk, content_type="application/octet-stream"
        )
    fields = dict(query)
    fields["file"] = _NamedBytes(chunk, "blob")
    # The test client encodes a dict as multipart/form-data, fields in order.
    return client.post(url, data=fields)


def probe_chunk(client, url, prefix, data, number, *, chunk_size, **kw):
    return client.get(url, params(prefix, data, number, chunk_size=chunk_size, **kw))


def sha256(data):
    return hashlib.sha256(data).hexdigest()


class _NamedBytes:
    """A file-like the test client's multipart encoder accepts."""

    def __init__(self, data, name):
        self._data, self.name = data, name

    def read(self):
        return self._data


class Body:
    """A request body as the engine reads one: in blocks, not seekable."""

    def __init__(self, data):
        self._data, self._at = data, 0

    def read(self, size=-1):
        end = len(self._data) if size < 0 else self._at + size
        block, self._at = self._data[self._at : end], min(end, len(self._data))
        return block
