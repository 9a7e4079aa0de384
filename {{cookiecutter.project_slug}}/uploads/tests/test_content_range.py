"""
Content-Range at /uploads/chunked/, as a django-chunked-upload client (the
jQuery-File-Upload protocol) sends it: chunks in order with Content-Range, then
`complete` with the file's md5.
"""

import hashlib
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from uploads.models import Upload

pytestmark = pytest.mark.django_db
DATA = bytes(range(251)) * 50  # 12,550 bytes: the last chunk is short
CHUNK = 5000
MD5 = hashlib.md5(DATA, usedforsecurity=False).hexdigest()


class NamedBytes:
    def __init__(self, data, name):
        self._data, self.name = data, name

    def read(self):
        return self._data


def send_chunk(client, data, start, upload_id=None, *, total=None, body=None, headers=None):
    """One chunk as jQuery-File-Upload sends it: form data first, then the file."""
    chunk = data[start : start + CHUNK] if body is None else body
    end = start + len(data[start : start + CHUNK]) - 1
    fields = {"upload_id": upload_id} if upload_id else {}
    fields["file"] = NamedBytes(chunk, "holiday.mp4")
    content_range = f"bytes {start}-{end}/{len(data) if total is None else total}"
    # The test client encodes a dict as multipart/form-data, fields in order.
    return client.post(
        "/uploads/chunked/",
        data=fields,
        **({"HTTP_CONTENT_RANGE": content_range} if headers is None else headers),
    )


def upload_all(client, data):
    upload_id = None
    for start in range(0, len(data), CHUNK):
        response = send_chunk(client, data, start, upload_id)
        assert response.status_code == 200, response.content
        body = response.json()
        upload_id = body["upload_id"]
        assert body["offset"] == min(start + CHUNK, len(data))
        assert body["expires"]
    return upload_id


def complete(client, upload_id, md5):
    return client.post("/uploads/chunked/complete/", {"upload_id": upload_id, "md5": md5})


def test_upload_then_complete_with_md5(alice):
    upload_id = upload_all(alice, DATA)
    status = alice.get(f"/uploads/api/uploads/{upload_id}/").json()
    # Whole, but not complete until the client's md5 is checked.
    assert (status["status"], status["received_bytes"]) == ("uploading", len(DATA))
    response = complete(alice, upload_id, MD5)
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "complete"
    status = alice.get(f"/uploads/api/uploads/{upload_id}/").json()
    assert status["status"] == "complete"
    assert status["filename"] == "holiday.mp4"
    assert status["sha256"] == hashlib.sha256(DATA).hexdigest()
    assert b"".join(alice.get(status["download_url"]).streaming_content) == DATA


def test_a_wrong_md5_leaves_the_upload_unfinished(alice):
    upload_id = upload_all(alice, DATA)
    response = complete(alice, upload_id, "0" * 32)
    assert response.status_code == 400
    assert "md5 checksum does not match" in response.json()["error"]
    upload = Upload.objects.get(pk=upload_id)
    assert upload.status == "uploading"
    assert "md5" in upload.error
    assert not upload.file
    # With the right md5 (the client had computed it wrongly), it completes.
    assert complete(alice, upload_id, MD5).status_code == 200
    assert complete(alice, upload_id, MD5).status_code == 400


def test_complete_before_every_byte_is_in(alice):
    response = send_chunk(alice, DATA, 0)
    upload_id = response.json()["upload_id"]
    response = complete(alice, upload_id, MD5)
    assert response.status_code == 400
    assert f"5000 of its {len(DATA)} bytes" in response.json()["error"]


def test_offset_mismatch_answers_400_with_the_servers_offset(alice):
    upload_id = send_chunk(alice, DATA, 0).json()["upload_id"]
    response = send_chunk(alice, DATA, 2 * CHUNK, upload_id)
    assert response.status_code == 400
    assert response.json()["offset"] == CHUNK
    assert "Offsets do not match" in response.json()["detail"]


ERRORS = [
    ("missing chunk", lambda c, u: c.post("/uploads/chunked/", {"upload_id": u}), 400, "No chunk"),
    ("missing header", lambda c, u: send_chunk(c, DATA, CHUNK, u, headers={}), 400, "headers"),
    (
        "malformed header",
        lambda c, u: send_chunk(c, DATA, CHUNK, u, headers={"HTTP_CONTENT_RANGE": "bytes 5-x/9"}),
        400,
        "headers",
    ),
    (
        "over the size limit",
        lambda c, u: send_chunk(c, DATA, 0, total=10**15),
        400,
        "largest accepted",
    ),
    (
        "thousands of digits",
        lambda c, u: send_chunk(
            c, DATA, CHUNK, u, headers={"HTTP_CONTENT_RANGE": f"bytes 5000-{'9' * 5000}/12550"}
        ),
        400,
        "Content-Range END is too large",
    ),
    (
        "past 64 bits",
        lambda c, u: send_chunk(c, DATA, CHUNK, u, total=2**63),
        400,
        "Content-Range TOTAL is too large",
    ),
    (
        "total changed",
        lambda c, u: send_chunk(c, DATA, CHUNK, u, total=len(DATA) + 1),
        400,
        "total",
    ),
    (
        "short chunk",
        lambda c, u: send_chunk(c, DATA, CHUNK, u, body=DATA[CHUNK : CHUNK + 10]),
        400,
        "ended",
    ),
    ("unknown upload_id", lambda c, u: send_chunk(c, DATA, CHUNK, "0" * 32), 404, "upload"),
    (
        "malformed upload_id",
        lambda c, u: send_chunk(c, DATA, CHUNK, "nope"),
        404,
        "not an upload id",
    ),
    (
        "complete without md5",
        lambda c, u: c.post("/uploads/chunked/complete/", {"upload_id": u}),
        400,
        "md5",
    ),
    ("md5 not hex", lambda c, u: complete(c, u, "xyz"), 400, "hexadecimal"),
    ("complete unknown", lambda c, u: complete(c, "0" * 32, "0" * 32), 404, "upload"),
]


@pytest.mark.parametrize("case, send, status, words", ERRORS, ids=[e[0] for e in ERRORS])
def test_every_error_has_its_status(alice, case, send, status, words):
    upload_id = send_chunk(alice, DATA, 0).json()["upload_id"]
    response = send(alice, upload_id)
    assert response.status_code == status, response.content
    assert words in response.json()["error"]
    assert Upload.objects.get(pk=upload_id).received_bytes == CHUNK, "nothing else was kept"


def test_an_expired_upload_is_410(alice):
    upload_id = send_chunk(alice, DATA, 0).json()["upload_id"]
    Upload.objects.filter(pk=upload_id).update(expires=timezone.now() - timedelta(seconds=1))
    response = send_chunk(alice, DATA, CHUNK, upload_id)
    assert response.status_code == 410
    assert Upload.objects.get(pk=upload_id).status == "expired"


def test_a_failed_first_chunk_leaves_no_upload_behind(alice):
    response = send_chunk(alice, DATA, 0, body=DATA[:10])
    assert response.status_code == 400
    assert not Upload.objects.filter(status="uploading").exists()


def test_another_users_upload_is_404(alice, other_user):
    upload_id = send_chunk(alice, DATA, 0).json()["upload_id"]
    bob = Client()
    bob.force_login(other_user)
    assert send_chunk(bob, DATA, CHUNK, upload_id).status_code == 404
    assert complete(bob, upload_id, "0" * 32).status_code == 404


def test_without_credentials_403(client):
    assert send_chunk(client, DATA, 0).status_code == 403


@pytest.mark.parametrize(
    "disposition, filename",
    [
        (b'form-data; name="file"; filename="report;v2.pdf"', "report;v2.pdf"),
        (b'form-data; name="file"; filename="the \\"final\\" cut.mp4"', 'the "final" cut.mp4'),
        (b"form-data; name=\"file\"; filename*=UTF-8''%C3%A9t%C3%A9%202026.mp4", "été 2026.mp4"),
    ],
    ids=["semicolon", "escaped-quotes", "rfc2231"],
)
def test_the_file_keeps_the_name_its_form_part_gives(alice, disposition, filename):
    body = b"--B\r\nContent-Disposition: " + disposition + b"\r\n\r\n" + DATA + b"\r\n--B--\r\n"
    response = alice.generic(
        "POST",
        "/uploads/chunked/",
        body,
        content_type="multipart/form-data; boundary=B",
        HTTP_CONTENT_RANGE=f"bytes 0-{len(DATA) - 1}/{len(DATA)}",
    )
    assert response.status_code == 200, response.content
    upload = Upload.objects.get(pk=response.json()["upload_id"])
    assert upload.filename == filename
    assert upload.name.endswith(filename.rsplit(".", 1)[1]), "the extension is kept"
