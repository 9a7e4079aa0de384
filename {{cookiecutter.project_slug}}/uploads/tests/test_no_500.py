"""No request, however malformed, answers 500 (the spec's promise), on any database."""

from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, example, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from uploads.models import Upload

pytestmark = pytest.mark.django_db

NAMES = [
    "ChunkNumber",
    "ChunkSize",
    "CurrentChunkSize",
    "TotalSize",
    "Identifier",
    "Filename",
    "RelativePath",
    "TotalChunks",
]
text = st.text(st.characters(exclude_categories=["Cs"]), max_size=40)
numbers = st.integers(-5, 3000).map(str)
values = st.one_of(numbers, text, st.sampled_from(["", "0", "1", "1000", "99999999999999999999"]))
fields = st.dictionaries(st.sampled_from(NAMES), values, max_size=len(NAMES))


@given(prefix=st.sampled_from(["flow", "resumable"]), query=fields, body=st.binary(max_size=3000))
@hsettings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_malformed_chunks_never_answer_500(alice, prefix, query, body):
    url = f"/uploads/{prefix}/"
    params = {prefix + key: value for key, value in query.items()}
    for response in (
        alice.get(url, params),
        alice.post(url, {**params, "file": _File(body)}),
        alice.generic(
            "POST",
            f"{url}?{urlencode(params)}",
            body,
            content_type="application/octet-stream",
        ),
    ):
        assert response.status_code in (200, 204, 400, 409, 413, 415), response.content
        if response.status_code >= 400:
            assert response.json()["error"]
    assert all(upload.received_bytes <= upload.size for upload in Upload.objects.all())


class _File:
    name = "blob"

    def __init__(self, data):
        self._data = data

    def read(self):
        return self._data


# What a header can carry through WSGI: latin-1 text.
header_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF), max_size=40)
header_values = st.one_of(header_text, numbers, st.sampled_from(["", "1", "0", "²", "1.0.0"]))
TUS_HEADERS = [
    "HTTP_TUS_RESUMABLE",
    "HTTP_UPLOAD_LENGTH",
    "HTTP_UPLOAD_DEFER_LENGTH",
    "HTTP_UPLOAD_OFFSET",
    "HTTP_UPLOAD_METADATA",
    "HTTP_UPLOAD_CHECKSUM",
    "HTTP_X_HTTP_METHOD_OVERRIDE",
]


@given(
    headers=st.dictionaries(st.sampled_from(TUS_HEADERS), header_values, max_size=len(TUS_HEADERS)),
    body=st.binary(max_size=200),
    content_type=st.sampled_from(["application/offset+octet-stream", "text/plain", ""]),
)
# Found by this test: "²" passes str.isdigit() but not int().
@example(headers={"HTTP_UPLOAD_LENGTH": "²"}, body=b"", content_type="")
@example(
    headers={"HTTP_UPLOAD_OFFSET": "²"}, body=b"x", content_type="application/offset+octet-stream"
)
@hsettings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_malformed_tus_requests_never_answer_500(alice, headers, body, content_type):
    headers = {"HTTP_TUS_RESUMABLE": "1.0.0", **headers}
    created = alice.post("/uploads/tus/", content_type=content_type, data=body, **headers)
    assert created.status_code < 500, created.content
    target = created.get("Location") or "/uploads/tus/00000000000000000000000000000000"
    for method in ("HEAD", "PATCH", "DELETE"):
        response = alice.generic(method, target, body, content_type=content_type, **headers)
        assert response.status_code < 500 or response.status_code == 503, response.content


@given(
    content_range=st.one_of(header_text, st.sampled_from(["bytes 0-9/10", "bytes ²-9/10"])),
    upload_id=st.one_of(st.none(), text),
    body=st.binary(max_size=50),
)
@hsettings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_malformed_content_range_requests_never_answer_500(alice, content_range, upload_id, body):
    fields = {"file": _File(body)}
    if upload_id is not None:
        fields["upload_id"] = upload_id
    response = alice.post("/uploads/chunked/", fields, HTTP_CONTENT_RANGE=content_range)
    assert response.status_code < 500, response.content
    done = alice.post(
        "/uploads/chunked/complete/", {"upload_id": upload_id or "", "md5": content_range}
    )
    assert done.status_code < 500, done.content
