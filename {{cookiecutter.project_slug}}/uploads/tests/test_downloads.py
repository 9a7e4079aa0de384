"""Downloads: a session or an API token, the whole file or one byte range."""

import io

import pytest
from django.test import Client

from uploads import engine, tokens
from uploads.models import Upload

pytestmark = pytest.mark.django_db
DATA = bytes(range(256)) * 4  # 1,024 bytes


@pytest.fixture
def upload(user):
    upload = engine.start(user, Upload.Protocol.FLOW, filename="film.mp4", size=len(DATA))
    engine.write(upload, engine.Piece(0, len(DATA), io.BytesIO(DATA)))
    upload.refresh_from_db()
    assert upload.status == "complete"
    return upload


def body(response):
    return b"".join(response.streaming_content)


@pytest.mark.parametrize(
    ("header", "first", "last"),
    [
        ("bytes=0-9", 0, 9),
        ("bytes=1000-", 1000, 1023),
        ("bytes=-24", 1000, 1023),
        ("bytes=1000-999999999999999999999999", 1000, 1023),
        ("bytes=-5000", 0, 1023),
    ],
)
def test_one_range_is_206_with_its_bytes(alice, upload, header, first, last):
    response = alice.get(upload.get_download_url(), HTTP_RANGE=header)
    assert response.status_code == 206
    assert response["Content-Range"] == f"bytes {first}-{last}/1024"
    assert response["Content-Length"] == str(last - first + 1)
    assert response["Content-Disposition"].startswith("attachment;")
    assert body(response) == DATA[first : last + 1]


@pytest.mark.parametrize("header", ["bytes=1024-", "bytes=5000-6000", "bytes=-0"])
def test_a_range_past_the_end_is_416(alice, upload, header):
    response = alice.get(upload.get_download_url(), HTTP_RANGE=header)
    assert response.status_code == 416
    assert response["Content-Range"] == "bytes */1024"


@pytest.mark.parametrize(
    "header", ["bytes=0-1,5-6", "bytes=9-2", "items=0-1", "bytes=" + "9" * 5000 + "-"]
)
def test_other_range_headers_get_the_whole_file(alice, upload, header):
    response = alice.get(upload.get_download_url(), HTTP_RANGE=header)
    assert response.status_code == 200
    assert response["Accept-Ranges"] == "bytes"
    assert body(response) == DATA


def test_if_range_with_another_validator_gets_the_whole_file(alice, upload):
    url = upload.get_download_url()
    etag = alice.get(url)["ETag"]
    assert alice.get(url, HTTP_RANGE="bytes=0-9", HTTP_IF_RANGE=etag).status_code == 206
    stale = alice.get(url, HTTP_RANGE="bytes=0-9", HTTP_IF_RANGE='"other"')
    assert stale.status_code == 200
    assert body(stale) == DATA


def test_an_api_token_downloads_with_a_range(user, upload):
    _, token = tokens.create(user, "script")
    script = Client(headers={"Authorization": f"Bearer {token}"})
    response = script.get(upload.get_download_url(), HTTP_RANGE="bytes=10-19")
    assert response.status_code == 206
    assert body(response) == DATA[10:20]


def test_a_bad_token_is_403_json_and_another_users_token_404(upload, other_user):
    bad = Client(headers={"Authorization": "Bearer nope"}).get(upload.get_download_url())
    assert bad.status_code == 403
    assert "not valid" in bad.json()["error"]
    _, token = tokens.create(other_user, "theirs")
    theirs = Client(headers={"Authorization": f"Bearer {token}"})
    assert theirs.get(upload.get_download_url()).status_code == 404


def test_behind_nginx_the_range_is_left_to_nginx(alice, upload, settings):
    settings.UPLOADS_ACCEL_REDIRECT = "/protected-media/"
    response = alice.get(upload.get_download_url(), HTTP_RANGE="bytes=0-9")
    assert response.status_code == 200
    assert response["X-Accel-Redirect"] == f"/protected-media/{upload.file.name}"
    assert response.content == b""
