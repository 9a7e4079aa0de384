"""
tus 1.0.0 at /uploads/tus/, exchange by exchange, with Django's test client.
tuspy and tus-js-client against gunicorn are in test_tus_clients.py.
"""

import base64
import hashlib
import io
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from uploads import tokens
from uploads.models import Upload
from uploads.signals import upload_completed

pytestmark = pytest.mark.django_db
TUS = {"HTTP_TUS_RESUMABLE": "1.0.0"}
OCTETS = "application/offset+octet-stream"
DATA = bytes(range(256)) * 40  # 10,240 bytes


def b64(text):
    return base64.b64encode(text.encode()).decode()


def create(client, size=None, metadata=None, **headers):
    if metadata is None:
        metadata = f"filename {b64('report.pdf')},filetype {b64('application/pdf')}"
    return client.post(
        "/uploads/tus/",
        HTTP_UPLOAD_LENGTH=str(len(DATA) if size is None else size),
        HTTP_UPLOAD_METADATA=metadata,
        **{**TUS, **headers},
    )


def path_of(response):
    return response["Location"].removeprefix("http://testserver")


def patch(client, path, offset, body, **headers):
    # The test client leaves out the type and length of an empty body; tus clients send them.
    empty = {} if body else {"CONTENT_TYPE": OCTETS, "CONTENT_LENGTH": "0"}
    return client.patch(
        path,
        body,
        content_type=OCTETS,
        HTTP_UPLOAD_OFFSET=str(offset),
        **{**TUS, **empty, **headers},
    )


def checksum(name, body):
    return f"{name} {base64.b64encode(hashlib.new(name, body).digest()).decode()}"


def test_options_advertises_exactly_what_is_implemented(alice, settings):
    settings.UPLOADS_MAX_BYTES = 123456
    response = alice.options("/uploads/tus/")
    assert response.status_code == 204
    assert response["Tus-Version"] == "1.0.0"
    assert response["Tus-Extension"].split(",") == [
        "creation",
        "creation-with-upload",
        "creation-defer-length",
        "termination",
        "expiration",
        "checksum",
    ]
    assert response["Tus-Max-Size"] == "123456"
    assert set(response["Tus-Checksum-Algorithm"].split(",")) == {"md5", "sha1", "sha256"}


def test_a_file_in_three_patches_is_the_same_upload_everywhere(alice, user):
    completed = []

    def on_completed(sender, upload, **kwargs):
        completed.append(upload.pk)

    upload_completed.connect(on_completed)
    try:
        created = create(alice)
        assert created.status_code == 201, created.content
        assert created["Tus-Resumable"] == "1.0.0"
        assert "Upload-Expires" in created
        path = path_of(created)
        upload_id = path.rsplit("/", 1)[1]
        head = alice.head(path, **TUS)
        assert (head.status_code, head["Upload-Offset"], head["Upload-Length"]) == (
            200,
            "0",
            str(len(DATA)),
        )
        assert head["Cache-Control"] == "no-store"
        for start in range(0, len(DATA), 4096):
            response = patch(alice, path, start, DATA[start : start + 4096])
            assert response.status_code == 204, response.content
            assert response["Upload-Offset"] == str(min(start + 4096, len(DATA)))
    finally:
        upload_completed.disconnect(on_completed)
    status = alice.get(f"/uploads/api/uploads/{upload_id}/").json()
    assert status["status"] == "complete"
    assert status["filename"] == "report.pdf"
    assert status["protocol"] == "tus"
    assert status["sha256"] == hashlib.sha256(DATA).hexdigest()
    assert b"".join(alice.get(status["download_url"]).streaming_content) == DATA
    assert [str(pk) for pk in completed] == [upload_id]
    assert Upload.objects.get(pk=upload_id).owner == user


def test_head_gives_back_all_the_metadata_the_client_sent(alice, admin_client):
    sent = {"filename": "café.pdf", "filetype": "application/pdf", "tag": "Q3 report, final"}
    metadata = ",".join(f"{key} {b64(value)}" for key, value in sent.items()) + ",draft"
    path = path_of(create(alice, metadata=metadata))
    change_page = admin_client.get(f"/admin/uploads/upload/{path.rsplit('/', 1)[1]}/change/")
    assert "Q3 report, final" in change_page.content.decode(), "the admin shows it too"
    echoed = alice.head(path, **TUS)["Upload-Metadata"]
    pairs = dict(item.partition(" ")[::2] for item in echoed.split(","))
    assert {key: base64.b64decode(value).decode() for key, value in pairs.items()} == {
        **sent,
        "draft": "",
    }
    assert "draft" in echoed.split(","), "a key without a value stays a bare key"


def test_creation_with_upload_and_an_empty_file(alice):
    response = create(alice, data=DATA[:1000], content_type=OCTETS)
    assert response.status_code == 201
    assert response["Upload-Offset"] == "1000"
    empty = create(alice, size=0)
    assert empty.status_code == 201
    upload_id = path_of(empty).rsplit("/", 1)[1]
    assert alice.get(f"/uploads/api/uploads/{upload_id}/").json()["status"] == "complete"


def test_x_http_method_override(alice):
    path = path_of(create(alice, size=3))
    response = alice.post(
        path,
        b"abc",
        content_type=OCTETS,
        HTTP_X_HTTP_METHOD_OVERRIDE="PATCH",
        HTTP_UPLOAD_OFFSET="0",
        **TUS,
    )
    assert response.status_code == 204
    assert response["Upload-Offset"] == "3"


@pytest.mark.parametrize("algorithm", ["sha1", "md5", "sha256"])
def test_checksum_accepts_matching_bytes(alice, algorithm):
    path = path_of(create(alice))
    response = patch(
        alice, path, 0, DATA[:500], HTTP_UPLOAD_CHECKSUM=checksum(algorithm, DATA[:500])
    )
    assert response.status_code == 204
    assert response["Upload-Offset"] == "500"


def test_checksum_mismatch_is_460_and_the_bytes_are_discarded(alice):
    path = path_of(create(alice))
    wrong = checksum("sha1", b"something else")
    response = patch(alice, path, 0, DATA[:500], HTTP_UPLOAD_CHECKSUM=wrong)
    assert response.status_code == 460
    assert "checksum" in response.json()["error"]
    assert alice.head(path, **TUS)["Upload-Offset"] == "0"
    # The client sends the same bytes again, intact this time.
    good = patch(alice, path, 0, DATA[:500], HTTP_UPLOAD_CHECKSUM=checksum("sha1", DATA[:500]))
    assert good["Upload-Offset"] == "500"


def test_a_patch_cut_off_mid_body_keeps_what_arrived(alice):
    path = path_of(create(alice))
    # The body claims 4,000 bytes and ends after 1,500, as when a connection drops.
    # A BytesIO gives short reads, as a server's socket does (the test client's payload raises).
    response = patch(
        alice,
        path,
        0,
        DATA[:1500],
        CONTENT_LENGTH="4000",
        **{"wsgi.input": io.BytesIO(DATA[:1500])},
    )
    assert response.status_code == 400
    assert alice.head(path, **TUS)["Upload-Offset"] == "1500"
    assert patch(alice, path, 1500, DATA[1500:]).status_code == 204
    upload = Upload.objects.get(pk=path.rsplit("/", 1)[1])
    assert upload.status == "complete"
    assert upload.sha256 == hashlib.sha256(DATA).hexdigest()


def test_termination(alice):
    path = path_of(create(alice))
    patch(alice, path, 0, DATA[:100])
    response = alice.delete(path, **TUS)
    assert response.status_code == 204
    # Gone for good: 404, where an expired upload is 410.
    assert alice.head(path, **TUS).status_code == 404
    assert patch(alice, path, 100, DATA[100:200]).status_code == 404
    upload = Upload.objects.get(pk=path.rsplit("/", 1)[1])
    assert upload.status == "cancelled"


def test_expiration(alice):
    path = path_of(create(alice))
    patch(alice, path, 0, DATA[:100])
    head = alice.head(path, **TUS)
    upload = Upload.objects.get(pk=path.rsplit("/", 1)[1])
    assert head["Upload-Expires"].endswith("GMT")
    Upload.objects.filter(pk=upload.pk).update(expires=timezone.now() - timedelta(seconds=1))
    assert alice.head(path, **TUS).status_code == 410
    response = patch(alice, path, 100, DATA[100:200])
    assert response.status_code == 410
    assert "expired" in response.json()["error"]
    upload.refresh_from_db()
    assert upload.status == "expired"


# (what is wrong, request, expected status, words in the error)
ERRORS = [
    ("no Tus-Resumable", lambda c, p: c.delete(p), 412, "Tus-Resumable"),
    ("old Tus-Resumable", lambda c, p: c.delete(p, HTTP_TUS_RESUMABLE="0.2.2"), 412, "1.0.0"),
    (
        "wrong content type",
        lambda c, p: c.patch(
            p, b"x", content_type="application/octet-stream", HTTP_UPLOAD_OFFSET="0", **TUS
        ),
        415,
        OCTETS,
    ),
    ("offset ahead", lambda c, p: patch(c, p, 10, b"x"), 409, "offset is 0"),
    (
        "no Upload-Offset",
        lambda c, p: c.patch(p, b"x", content_type=OCTETS, **TUS),
        400,
        "Upload-Offset",
    ),
    ("negative offset", lambda c, p: patch(c, p, "-1", b"x"), 400, "must not be negative"),
    (
        "offset past 64 bits",
        lambda c, p: patch(c, p, "9223372036854775808", b"x"),
        400,
        "Upload-Offset is too large",
    ),
    (
        "a length of a thousand digits",
        lambda c, p: patch(c, p, 0, b"x", HTTP_UPLOAD_LENGTH="9" * 1000),
        400,
        "Upload-Length is too large",
    ),
    (
        "a checksum with latin-1 bytes",
        lambda c, p: patch(c, p, 0, b"x", HTTP_UPLOAD_CHECKSUM="sha1 \xe9t\xe9"),
        400,
        "base64",
    ),
    ("past the length", lambda c, p: patch(c, p, 0, DATA + b"x"), 413, "length"),
    (
        "unknown checksum algorithm",
        lambda c, p: patch(c, p, 0, b"x", HTTP_UPLOAD_CHECKSUM="crc32 AAAA"),
        400,
        "not supported",
    ),
    (
        "checksum not base64",
        lambda c, p: patch(c, p, 0, b"x", HTTP_UPLOAD_CHECKSUM="sha1 !!!"),
        400,
        "base64",
    ),
    ("unknown upload", lambda c, p: patch(c, "/uploads/tus/" + "0" * 32, 0, b"x"), 404, "no such"),
    (
        "malformed id",
        lambda c, p: patch(c, "/uploads/tus/not-an-id", 0, b"x"),
        404,
        "not an upload id",
    ),
    ("no Upload-Length", lambda c, p: c.post("/uploads/tus/", **TUS), 400, "Upload-Length"),
    ("too large", lambda c, p: create(c, size=10**15), 413, "largest accepted"),
    ("no filename", lambda c, p: create(c, metadata=f"filetype {b64('a/b')}"), 400, "filename"),
    ("metadata not base64", lambda c, p: create(c, metadata="filename %%%"), 400, "base64"),
    # WSGI gives a header's bytes as latin-1 text: these are bytes 0xC3 0xA9.
    ("metadata not ASCII", lambda c, p: create(c, metadata="filename \xc3\xa9"), 400, "base64"),
    (
        "metadata with a NUL",
        lambda c, p: create(c, metadata=f"filename {b64('a.txt')},note {b64(chr(0))}"),
        400,
        "NUL",
    ),
    (
        "bad filetype",
        lambda c, p: create(c, metadata=f"filename {b64('a.txt')},filetype {b64('nonsense')}"),
        400,
        "media type",
    ),
    (
        "a length that changes",
        lambda c, p: patch(c, p, 0, b"x", HTTP_UPLOAD_LENGTH=str(len(DATA) - 1)),
        400,
        f"size is {len(DATA)} bytes; it cannot change",
    ),
    ("concatenation", lambda c, p: create(c, HTTP_UPLOAD_CONCAT="partial"), 400, "not supported"),
]


@pytest.mark.parametrize("case, send, status, words", ERRORS, ids=[case[0] for case in ERRORS])
def test_every_error_has_its_status(alice, case, send, status, words):
    path = path_of(create(alice))
    response = send(alice, path)
    assert response.status_code == status, response.content
    assert words in response.json()["error"]
    assert response["Tus-Resumable"] == "1.0.0"
    if status == 412:
        assert response["Tus-Version"] == "1.0.0"
    assert alice.head(path, **TUS)["Upload-Offset"] == "0", "nothing was kept"


def test_without_credentials_tus_answers_401(client):
    response = create(client)
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_another_users_upload_is_404(alice, other_user):
    path = path_of(create(alice))
    client = Client()
    client.force_login(other_user)
    assert client.head(path, **TUS).status_code == 404
    assert patch(client, path, 0, b"abc").status_code == 404
    assert client.delete(path, **TUS).status_code == 404
    assert alice.head(path, **TUS).status_code == 200


def test_a_token_uploads_without_session_or_csrf(client, user):
    _, token = tokens.create(user, "script")
    auth = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    created = create(client, **auth)
    assert created.status_code == 201
    response = patch(client, path_of(created), 0, DATA, **auth)
    assert response.status_code == 204
    assert Upload.objects.get().status == "complete"


# --- creation-defer-length ------------------------------------------------------------------


def create_deferred(client, **headers):
    return client.post(
        "/uploads/tus/",
        **{
            "HTTP_UPLOAD_DEFER_LENGTH": "1",
            "HTTP_UPLOAD_METADATA": f"filename {b64('stream.bin')}",
            **TUS,
            **headers,
        },
    )


def test_a_deferred_length_is_sent_with_the_last_bytes(alice):
    created = create_deferred(alice)
    assert created.status_code == 201, created.content
    path = path_of(created)
    upload_id = path.rsplit("/", 1)[1]
    head = alice.head(path, **TUS)
    assert (head.status_code, head["Upload-Offset"], head["Upload-Defer-Length"]) == (200, "0", "1")
    assert "Upload-Length" not in head
    for start in range(0, 8192, 4096):
        assert patch(alice, path, start, DATA[start : start + 4096]).status_code == 204
    status = alice.get(f"/uploads/api/uploads/{upload_id}/").json()
    assert (status["status"], status["size"], status["received_bytes"]) == ("uploading", None, 8192)
    assert alice.head(path, **TUS)["Upload-Defer-Length"] == "1"

    last = patch(alice, path, 8192, DATA[8192:], HTTP_UPLOAD_LENGTH=str(len(DATA)))
    assert (last.status_code, last["Upload-Offset"]) == (204, str(len(DATA)))
    status = alice.get(f"/uploads/api/uploads/{upload_id}/").json()
    assert (status["status"], status["size"]) == ("complete", len(DATA))
    assert status["sha256"] == hashlib.sha256(DATA).hexdigest()
    assert b"".join(alice.get(status["download_url"]).streaming_content) == DATA


def test_a_deferred_length_known_early_then_an_empty_patch_at_the_end(alice):
    path = path_of(create_deferred(alice, data=DATA[:1000], content_type=OCTETS))
    assert alice.head(path, **TUS)["Upload-Offset"] == "1000"
    # The length, with more bytes to come: HEAD now tells it.
    early = patch(alice, path, 1000, DATA[1000:5000], HTTP_UPLOAD_LENGTH=str(len(DATA)))
    assert early.status_code == 204
    head = alice.head(path, **TUS)
    assert (head["Upload-Length"], "Upload-Defer-Length" in head) == (str(len(DATA)), False)
    # The same length again is no change; then the rest without it.
    same = patch(alice, path, 5000, DATA[5000:9000], HTTP_UPLOAD_LENGTH=str(len(DATA)))
    assert same.status_code == 204
    assert patch(alice, path, 9000, DATA[9000:]).status_code == 204
    upload = Upload.objects.get(pk=path.rsplit("/", 1)[1])
    assert (upload.status, upload.size) == ("complete", len(DATA))

    # A stream that ends on a PATCH boundary: an empty PATCH tells the length.
    other = path_of(create_deferred(alice))
    assert patch(alice, other, 0, DATA[:4096]).status_code == 204
    end = patch(alice, other, 4096, b"", HTTP_UPLOAD_LENGTH="4096")
    assert (end.status_code, end["Upload-Offset"]) == (204, "4096")
    upload = Upload.objects.get(pk=other.rsplit("/", 1)[1])
    assert (upload.status, upload.size) == ("complete", 4096)
    assert upload.sha256 == hashlib.sha256(DATA[:4096]).hexdigest()


def test_a_deferred_empty_file(alice):
    path = path_of(create_deferred(alice))
    assert patch(alice, path, 0, b"", HTTP_UPLOAD_LENGTH="0").status_code == 204
    upload = Upload.objects.get(pk=path.rsplit("/", 1)[1])
    assert (upload.status, upload.size, upload.sha256) == (
        "complete",
        0,
        hashlib.sha256(b"").hexdigest(),
    )


# Every case starts from a deferred upload holding 100 bytes, with
# UPLOADS_MAX_BYTES at len(DATA): (what is wrong, request, status, words in the error).
DEFERRED_ERRORS = [
    (
        "both lengths on POST",
        lambda c, p: create_deferred(c, HTTP_UPLOAD_LENGTH="10"),
        400,
        "not both",
    ),
    (
        "defer other than 1",
        lambda c, p: create_deferred(c, HTTP_UPLOAD_DEFER_LENGTH="0"),
        400,
        "must be 1",
    ),
    (
        "defer not a number",
        lambda c, p: create_deferred(c, HTTP_UPLOAD_DEFER_LENGTH="yes"),
        400,
        "must be 1",
    ),
    (
        "neither length on POST",
        lambda c, p: c.post("/uploads/tus/", HTTP_UPLOAD_METADATA=f"filename {b64('a')}", **TUS),
        400,
        "Upload-Defer-Length: 1",
    ),
    (
        "length under the offset",
        lambda c, p: patch(c, p, 100, b"", HTTP_UPLOAD_LENGTH="99"),
        400,
        "100 bytes were sent before",
    ),
    (
        "length not a number",
        lambda c, p: patch(c, p, 100, b"x", HTTP_UPLOAD_LENGTH="lots"),
        400,
        "whole number",
    ),
    (
        "length over UPLOADS_MAX_BYTES",
        lambda c, p: patch(c, p, 100, b"x", HTTP_UPLOAD_LENGTH=str(len(DATA) + 1)),
        413,
        f"largest accepted is {len(DATA)} bytes",
    ),
    (
        "bytes past the length sent with them",
        lambda c, p: patch(c, p, 100, DATA[100:300], HTTP_UPLOAD_LENGTH="200"),
        413,
        "go past the file's length of 200 bytes",
    ),
    (
        "bytes past UPLOADS_MAX_BYTES before the length is known",
        lambda c, p: patch(c, p, 100, DATA + b"x" * 100),
        413,
        f"go past the largest upload accepted, {len(DATA)} bytes",
    ),
    (
        "offset ahead with a length",
        lambda c, p: patch(c, p, 200, b"x", HTTP_UPLOAD_LENGTH="500"),
        409,
        "offset is 100",
    ),
]


@pytest.mark.parametrize(
    "case, send, status, words", DEFERRED_ERRORS, ids=[case[0] for case in DEFERRED_ERRORS]
)
def test_every_deferred_length_error_has_its_status(alice, settings, case, send, status, words):
    settings.UPLOADS_MAX_BYTES = len(DATA)
    path = path_of(create_deferred(alice))
    assert patch(alice, path, 0, DATA[:100]).status_code == 204
    response = send(alice, path)
    assert response.status_code == status, response.content
    assert words in response.json()["error"]
    head = alice.head(path, **TUS)
    assert (head["Upload-Offset"], head["Upload-Defer-Length"]) == ("100", "1"), "nothing kept"
    assert Upload.objects.filter(protocol="tus").count() == 1, "no upload made"


def test_a_length_once_sent_cannot_change(alice):
    path = path_of(create_deferred(alice))
    assert patch(alice, path, 0, DATA[:100], HTTP_UPLOAD_LENGTH="500").status_code == 204
    response = patch(alice, path, 100, DATA[100:200], HTTP_UPLOAD_LENGTH="600")
    assert response.status_code == 400
    assert response.json()["error"] == "the file's size is 500 bytes; it cannot change to 600"
    head = alice.head(path, **TUS)
    assert (head["Upload-Offset"], head["Upload-Length"]) == ("100", "500")


def test_an_unknown_size_reads_as_such_in_the_page_and_the_admin(alice, admin_client):
    path = path_of(create_deferred(alice))
    patch(alice, path, 0, DATA[:2048])
    page = alice.get("/uploads/").content.decode()
    assert "not known yet" in page
    assert "(2.0\xa0KB)" in page
    changelist = admin_client.get("/admin/uploads/upload/").content.decode()
    assert "not known yet" in changelist
    assert "2.0\xa0KB so far" in changelist


def test_a_patch_costs_at_most_four_queries(alice):
    """
    As a flow.js chunk: find the upload, read it again under the lock, count
    the bytes and extend the run from 0 (in one transaction: no savepoint).
    """
    path = path_of(create(alice, size=300))
    patch(alice, path, 0, DATA[:100])
    with CaptureQueriesContext(connection) as queries:
        assert patch(alice, path, 100, DATA[100:200]).status_code == 204
    sql = [q["sql"] for q in queries.captured_queries]
    assert len(sql) <= 4, sql
