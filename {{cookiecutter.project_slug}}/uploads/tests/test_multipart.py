import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from uploads.errors import BadRequest
from uploads.multipart import MultipartReader, boundary_from

BOUNDARY = b"----flowBoundary7MA4YWxkTrZu0gW"


class Trickle(io.RawIOBase):
    """A stream that returns at most `step` bytes a read, like a slow socket."""

    def __init__(self, data, step):
        self._data, self._pos, self._step = data, 0, step

    def read(self, n=-1):
        n = self._step if n < 0 else min(n, self._step)
        out = self._data[self._pos : self._pos + n]
        self._pos += len(out)
        return out


def body(fields, file_bytes, filename="blob"):
    out = b""
    for name, value in fields.items():
        out += b"--" + BOUNDARY + b"\r\n"
        out += f'Content-Disposition: form-data; name="{name}"\r\n\r\n'.encode() + value + b"\r\n"
    out += b"--" + BOUNDARY + b"\r\n"
    out += f'Content-Disposition: form-data; name="file"; filename="{filename}"\r\n'.encode()
    out += b"Content-Type: application/octet-stream\r\n\r\n" + file_bytes + b"\r\n"
    out += b"--" + BOUNDARY + b"--\r\n"
    return out


def read_all(stream, block_size, read_size):
    fields, files = {}, {}
    for part in MultipartReader(stream, BOUNDARY, block_size=block_size):
        if part.filename is None:
            fields[part.name] = part.read_small(10_000)
        else:
            chunks = []
            while data := part.read(read_size):
                chunks.append(data)
            files[part.name] = b"".join(chunks)
    return fields, files


nasty = st.binary(max_size=3000).map(lambda b: b + b"\r\n--" + BOUNDARY[:10] + b"\r\n-")


@given(
    fields=st.dictionaries(st.sampled_from(["flowChunkNumber", "a", "b"]), st.binary(max_size=50)),
    file_bytes=st.one_of(st.binary(max_size=5000), nasty),
    step=st.integers(1, 700),
    block_size=st.integers(1, 4096),
    read_size=st.integers(1, 3000),
)
@settings(max_examples=300, deadline=None)
def test_parts_survive_any_split_of_the_stream(fields, file_bytes, step, block_size, read_size):
    stream = Trickle(body(fields, file_bytes), step)
    got_fields, got_files = read_all(stream, block_size, read_size)
    assert got_fields == fields
    assert got_files == {"file": file_bytes}


def test_boundary_from_content_type():
    assert boundary_from('multipart/form-data; boundary="abc"') == b"abc"
    with pytest.raises(BadRequest):
        boundary_from("multipart/form-data")


@pytest.mark.parametrize(
    "data",
    [
        b"no boundary at all",
        b"--"
        + BOUNDARY
        + b'\r\nContent-Disposition: form-data; name="file"; filename="x"\r\n\r\nabc',
        b"--" + BOUNDARY + b"\r\nContent-Disposition: form-data" + b"x" * 20000,
    ],
    ids=["no-boundary", "cut-in-body", "endless-headers"],
)
def test_truncated_or_malformed_bodies_are_refused(data):
    with pytest.raises(BadRequest):
        read_all(io.BytesIO(data), 1024, 1024)


def test_a_long_field_is_refused():
    with pytest.raises(BadRequest, match="longer than"):
        for part in MultipartReader(io.BytesIO(body({"a": b"x" * 5000}, b"")), BOUNDARY):
            part.read_small(4096)


def file_part(disposition):
    """A body of one file part whose Content-Disposition is `disposition` (bytes)."""
    return (
        b"--" + BOUNDARY + b"\r\nContent-Disposition: " + disposition + b"\r\n\r\nabc\r\n"
        b"--" + BOUNDARY + b"--\r\n"
    )


@pytest.mark.parametrize(
    "disposition, name, filename",
    [
        (b'form-data; name="file"; filename="report;v2.pdf"', "file", "report;v2.pdf"),
        (b'form-data; name="file"; filename="say \\"hi\\".txt"', "file", 'say "hi".txt'),
        (b"form-data; name=\"file\"; filename*=UTF-8''r%C3%A9sum%C3%A9.pdf", "file", "résumé.pdf"),
        # What browsers send: a plain fallback first, the exact name after it.
        (
            b'form-data; name="file"; filename="resume.pdf"; '
            b"filename*=UTF-8''r%C3%A9sum%C3%A9.pdf",
            "file",
            "résumé.pdf",
        ),
        (b'form-data; name="a;b"', "a;b", None),
    ],
    ids=["semicolon", "escaped-quotes", "rfc2231", "rfc2231-after-fallback", "field-name"],
)
def test_content_disposition_is_read_as_django_reads_it(disposition, name, filename):
    (part,) = MultipartReader(io.BytesIO(file_part(disposition)), BOUNDARY)
    assert (part.name, part.filename) == (name, filename)


def test_an_unknown_rfc2231_charset_is_refused():
    data = file_part(b"form-data; name=\"file\"; filename*=no-such-charset''x.txt")
    with pytest.raises(BadRequest, match="Content-Disposition"):
        read_all(io.BytesIO(data), 1024, 1024)
