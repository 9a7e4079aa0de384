"""
The ceiling: the least a WSGI app can do with a flow.js chunk under gunicorn.

upload_throughput.py copies this module into its temp dir and serves it with
the generated site's own gunicorn.conf.py, so the site's numbers can be read
against what the same server, workers and threads achieve with no framework,
no database and no locks.

- flow.js's test request (GET) always answers 204, "not stored yet", so the
  client sends every chunk, as it does to a fresh upload on the site.
- octet: the body is read in 1 MiB blocks and each block is pwrite()n at the
  chunk's offset, which the query string gives.
- multipart: the layout flow.js (a browser's FormData) produces is trusted:
  the fields first, the file part last, then the closing delimiter. The first
  block gives the fields and where the file's bytes start; the bytes up to
  Content-Length minus the closing delimiter are then copied like an octet
  body. The file's bytes are never scanned for the boundary, as a real parser
  must scan them: the site's multipart row pays for that scan, this one does not.

Writes land where the site's do, in the same sizes: 1 MiB blocks at 1 MiB
steps from the chunk's offset, each written 64 KiB at a time (a multipart body
realigns after its first block). It matters: on the machine this was written
on, aligned 1 MiB pwrites into a fresh file sometimes cost several times the
CPU of shifted ones, and a ceiling that wrote shifted blocks would dodge a cost
the site pays.
"""

import os
import re
from urllib.parse import parse_qs

BLOCK_SIZE = 1024 * 1024
WRITE_SIZE = 64 * 1024
OUT_DIR = os.environ.get("CEILING_OUT_DIR", ".")
FIELD = re.compile(rb'name="(flow\w+)"\r\n\r\n([^\r]*)\r\n')
UNSAFE = re.compile(r"[^0-9A-Za-z_-]")


class BadChunk(Exception):
    pass


def application(environ, start_response):
    if environ["REQUEST_METHOD"] != "POST":
        return _reply(start_response, "204 No Content", b"")
    try:
        written = _receive(environ)
    except (BadChunk, KeyError, ValueError) as exc:
        return _reply(start_response, "400 Bad Request", str(exc).encode())
    return _reply(start_response, "200 OK", b'{"status": "uploading", "written": %d}' % written)


def _receive(environ):
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"]
    content_type = environ.get("CONTENT_TYPE", "")
    if content_type.startswith("multipart/form-data"):
        boundary = content_type.partition("boundary=")[2].strip('"').encode("latin-1")
        return _receive_multipart(body, length, boundary)
    params = {key: values[0] for key, values in parse_qs(environ.get("QUERY_STRING", "")).items()}
    with _target(params) as (fd, offset):
        return _copy(body, fd, offset, offset, length)


def _receive_multipart(body, length, boundary):
    first = body.read(min(BLOCK_SIZE, length))
    file_header = first.find(b'name="file"')
    start = first.find(b"\r\n\r\n", file_header) + 4
    if file_header < 0 or start < 4:
        raise BadChunk("no file part in the first block")
    params = {key.decode(): value.decode() for key, value in FIELD.findall(first[:file_header])}
    closing = b"\r\n--" + boundary + b"--\r\n"
    data_length = length - start - len(closing)
    head = first[start : start + data_length]
    with _target(params) as (fd, offset):
        _pwrite_all(fd, head, offset)
        _copy(body, fd, offset, offset + len(head), data_length - len(head))
    tail = first[start + len(head) :] + body.read(len(closing))
    if tail != closing:
        raise BadChunk("the body does not end with the closing delimiter")
    return data_length


class _target:
    """The output file of this identifier, opened for one chunk, and the chunk's offset."""

    def __init__(self, params):
        name = UNSAFE.sub("", params["flowIdentifier"]) or "unnamed"
        self.path = os.path.join(OUT_DIR, name)
        self.offset = (int(params["flowChunkNumber"]) - 1) * int(params["flowChunkSize"])

    def __enter__(self):
        self.fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600)
        return self.fd, self.offset

    def __exit__(self, *exc_info):
        os.close(self.fd)


def _copy(body, fd, base, offset, length):
    """`length` bytes of the body to `offset`, in reads that end on base + k x BLOCK_SIZE."""
    position, end = offset, offset + length
    while position < end:
        step = BLOCK_SIZE - (position - base) % BLOCK_SIZE
        block = body.read(min(step, end - position))
        if not block:
            raise BadChunk("the body ended early")
        _pwrite_all(fd, block, position)
        position += len(block)
    return length


def _pwrite_all(fd, data, position):
    # In WRITE_SIZE pieces, as the site's staging.py writes: see "Write size" in
    # the README for why a 1 MiB write on a 1 MiB boundary is slow here.
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view[:WRITE_SIZE], position)
        view, position = view[written:], position + written


def _reply(start_response, status, body):
    start_response(
        status,
        [("Content-Type", "application/json"), ("Content-Length", str(len(body)))],
    )
    return [body]
