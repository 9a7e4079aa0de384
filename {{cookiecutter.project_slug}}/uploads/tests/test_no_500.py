"""No request, however malformed, answers 500 (the spec's promise), on any database."""

from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, given
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
