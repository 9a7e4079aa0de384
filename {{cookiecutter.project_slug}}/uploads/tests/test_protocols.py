"""flow.js and resumable.js through Django's test client: the HTTP contract in the spec."""

import os
import random
from urllib.parse import urlencode

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from uploads import staging
from uploads.models import Upload

from .chunking import chunk_count, params, post_chunk, probe_chunk, sha256

pytestmark = pytest.mark.django_db

PROTOCOLS = {"flow": "/uploads/flow/", "resumable": "/uploads/resumable/"}
CHUNK = 1000


@pytest.fixture(params=["flow", "resumable"])
def protocol(request):
    return request.param, PROTOCOLS[request.param]


@pytest.fixture(params=["multipart", "octet"])
def method(request):
    return request.param


def data_of(size, seed=0):
    return random.Random(seed).randbytes(size)


def staged_files():
    folder = staging.backend.directory()
    return sorted(os.listdir(folder)) if folder.exists() else []


def test_a_file_sent_in_any_order_is_stored_whole(alice, protocol, method):
    prefix, url = protocol
    data = data_of(10 * CHUNK + 777)  # the last chunk holds 1777 bytes
    numbers = list(range(1, chunk_count(len(data), CHUNK) + 1))
    random.Random(1).shuffle(numbers)
    for number in numbers:
        response = post_chunk(alice, url, prefix, data, number, chunk_size=CHUNK, method=method)
        assert response.status_code == 200, response.content
        body = response.json()
        assert {"id", "status", "received_bytes", "size"} <= body.keys()
        assert body["size"] == len(data)
    assert body["status"] == "complete"
    assert body["received_bytes"] == len(data)
    assert body["sha256"] == sha256(data)
    upload = Upload.objects.get(pk=body["id"])
    assert upload.protocol == prefix
    with upload.file.open("rb") as f:
        assert f.read() == data
    assert staged_files() == []


def test_the_test_request_answers_200_or_204_never_404(alice, protocol):
    prefix, url = protocol
    data = data_of(3 * CHUNK)
    assert probe_chunk(alice, url, prefix, data, 2, chunk_size=CHUNK).status_code == 204
    post_chunk(alice, url, prefix, data, 2, chunk_size=CHUNK)
    assert probe_chunk(alice, url, prefix, data, 2, chunk_size=CHUNK).status_code == 200
    assert probe_chunk(alice, url, prefix, data, 1, chunk_size=CHUNK).status_code == 204
    other = probe_chunk(alice, url, prefix, data, 1, chunk_size=CHUNK, identifier="unknown")
    assert other.status_code == 204


def test_a_repeated_chunk_is_accepted_once(alice, protocol):
    prefix, url = protocol
    data = data_of(2 * CHUNK)
    first = post_chunk(alice, url, prefix, data, 1, chunk_size=CHUNK).json()
    again = post_chunk(alice, url, prefix, data, 1, chunk_size=CHUNK).json()
    assert first["id"] == again["id"]
    assert again["received_bytes"] == CHUNK
    assert Upload.objects.count() == 1


def test_the_last_chunk_may_hold_up_to_two_chunks_less_one_byte(alice, protocol, method):
    prefix, url = protocol
    data = data_of(2 * CHUNK - 1)  # one chunk of 1999 bytes
    response = post_chunk(alice, url, prefix, data, 1, chunk_size=CHUNK, method=method)
    assert response.status_code == 200
    assert response.json()["status"] == "complete"


def test_forced_chunk_size_rounding_is_accepted_too(alice, protocol):
    prefix, url = protocol
    data = data_of(2 * CHUNK + 5)  # forceChunkSize: 3 chunks, the last of 5 bytes
    for number in (1, 2, 3):
        start = (number - 1) * CHUNK
        chunk = data[start : start + CHUNK]
        response = post_chunk(
            alice,
            url,
            prefix,
            data,
            number,
            chunk_size=CHUNK,
            body=chunk,
            TotalChunks=3,
            CurrentChunkSize=len(chunk),
        )
        assert response.status_code == 200, response.content
    assert response.json()["sha256"] == sha256(data)


BAD_INPUT = [
    # (description, overrides of the chunk's parameters, body, expected status, message part)
    ("missing number", {"ChunkNumber": None}, None, 400, "ChunkNumber is missing"),
    ("missing identifier", {"Identifier": None}, None, 400, "Identifier is missing"),
    ("missing total size", {"TotalSize": None}, None, 400, "TotalSize is missing"),
    ("missing filename", {"Filename": None}, None, 400, "Filename is missing"),
    ("non-integer number", {"ChunkNumber": "two"}, None, 400, "whole number"),
    ("number with underscores", {"ChunkNumber": "0_2"}, None, 400, "whole number"),
    ("number with spaces", {"ChunkNumber": " 2"}, None, 400, "whole number"),
    ("non-ASCII digits", {"ChunkNumber": "\u0662"}, None, 400, "whole number"),
    ("NUL in the file name", {"Filename": "a\x00.bin"}, None, 400, "NUL"),
    ("NUL in the identifier", {"Identifier": "a\x00"}, None, 400, "NUL"),
    ("negative total", {"TotalSize": "-5"}, None, 400, "must not be negative"),
    ("total past 64 bits", {"TotalSize": str(2**63)}, None, 400, "TotalSize is too large"),
    ("a thousand digits", {"ChunkSize": "1" * 1000}, None, 400, "ChunkSize is too large"),
    ("chunk number zero", {"ChunkNumber": 0}, None, 400, "starts at 1"),
    ("chunk number past the end", {"ChunkNumber": 9}, None, 400, "out of range"),
    ("zero chunk size", {"ChunkSize": 0}, None, 400, "at least 1"),
    ("wrong chunk count", {"TotalChunks": 7}, None, 400, "totalChunks is 7"),
    ("declared length wrong", {"CurrentChunkSize": 999}, None, 400, "must hold 1000 bytes"),
    ("body shorter than declared", {}, b"x" * 10, 400, "1000"),
    ("body longer than declared", {}, b"x" * 1500, 400, ""),
    ("identifier too long", {"Identifier": "i" * 300}, None, 400, "longer than"),
]


@pytest.mark.parametrize(
    "overrides, body, status, message",
    [case[1:] for case in BAD_INPUT],
    ids=[case[0] for case in BAD_INPUT],
)
def test_malformed_chunks_get_400_and_nothing_is_kept(
    alice, protocol, method, overrides, body, status, message
):
    prefix, url = protocol
    data = data_of(3 * CHUNK)
    response = post_chunk(
        alice, url, prefix, data, 2, chunk_size=CHUNK, method=method, body=body, **overrides
    )
    assert response.status_code == status, response.content
    assert message in response.json()["error"]
    # Nothing counts as received. (A multipart chunk's length is known only at
    # its end, so some of its bytes may sit in the staging file, in a range
    # that is not recorded; the right chunk overwrites them, as checked here.)
    assert all(upload.received_bytes == 0 for upload in Upload.objects.all())
    for number in (1, 2, 3):
        post_chunk(alice, url, prefix, data, number, chunk_size=CHUNK, method=method)
    upload = Upload.objects.get(status="complete")
    assert upload.sha256 == sha256(data)


def test_bad_test_requests_get_400_too(alice, protocol):
    prefix, url = protocol
    response = alice.get(url, {f"{prefix}ChunkNumber": "x"})
    assert response.status_code == 400
    assert "error" in response.json()


def test_total_size_may_not_change_between_chunks(alice, protocol):
    prefix, url = protocol
    data = data_of(3 * CHUNK)
    post_chunk(alice, url, prefix, data, 1, chunk_size=CHUNK)
    bigger = data + b"x" * CHUNK
    response = post_chunk(alice, url, prefix, bigger, 2, chunk_size=CHUNK)
    assert response.status_code == 400
    assert "total size changed" in response.json()["error"]
    assert Upload.objects.get().received_bytes == CHUNK


def test_too_large_is_413_and_forbidden_type_is_415_before_any_byte(alice, protocol, settings):
    prefix, url = protocol
    settings.UPLOADS_MAX_BYTES = 2 * CHUNK
    settings.UPLOADS_ALLOWED_EXTENSIONS = ["bin", "txt"]
    data = data_of(3 * CHUNK)
    response = post_chunk(alice, url, prefix, data, 1, chunk_size=CHUNK)
    assert response.status_code == 413
    assert "largest accepted" in response.json()["error"]
    assert probe_chunk(alice, url, prefix, data, 1, chunk_size=CHUNK).status_code == 413
    small = data[:CHUNK]
    response = post_chunk(alice, url, prefix, small, 1, chunk_size=CHUNK, filename="run.exe")
    assert response.status_code == 415
    assert "'exe'" in response.json()["error"]
    assert Upload.objects.count() == 0
    assert staged_files() == []


def test_a_multipart_body_without_the_file_field_is_400(alice, protocol):
    prefix, url = protocol
    response = alice.post(url, params(prefix, data_of(CHUNK), 1, chunk_size=CHUNK))
    assert response.status_code == 400
    assert "no file field" in response.json()["error"]


def test_an_octet_chunk_needs_a_content_length_of_plain_digits(alice, protocol):
    prefix, url = protocol
    data = data_of(10)
    query = urlencode(params(prefix, data, 1, chunk_size=CHUNK))
    # int() reads "1_0" as 10.
    response = alice.generic(
        "POST",
        f"{url}?{query}",
        data,
        content_type="application/octet-stream",
        CONTENT_LENGTH="1_0",
    )
    assert response.status_code == 400
    assert "Content-Length must be a whole number" in response.json()["error"]
    assert Upload.objects.count() == 0


def test_a_file_part_named_only_by_rfc2231_is_the_chunk(alice, protocol):
    prefix, url = protocol
    data = data_of(10)
    body = b"".join(
        b'--B\r\nContent-Disposition: form-data; name="%s"\r\n\r\n%s\r\n'
        % (key.encode(), str(value).encode())
        for key, value in params(prefix, data, 1, chunk_size=CHUNK).items()
    )
    # filename*= alone, without a plain filename= beside it, still marks the file part.
    body += b'--B\r\nContent-Disposition: form-data; name="file"; '
    body += b"filename*=UTF-8''r%C3%A9sum%C3%A9.bin\r\n\r\n" + data + b"\r\n--B--\r\n"
    response = alice.generic("POST", url, body, content_type="multipart/form-data; boundary=B")
    assert response.status_code == 200, response.content
    assert Upload.objects.get().sha256 == sha256(data)


def test_a_truncated_multipart_body_is_400(alice, protocol):
    prefix, url = protocol
    body = b'--B\r\nContent-Disposition: form-data; name="file"; filename="x"\r\n\r\nabc'
    response = alice.generic("POST", url, body, content_type="multipart/form-data; boundary=B")
    assert response.status_code == 400


def test_names_are_cleaned_and_stay_inside_media(alice, protocol, settings):
    prefix, url = protocol
    data = data_of(10)
    response = post_chunk(
        alice, url, prefix, data, 1, chunk_size=CHUNK, filename="../../../etc/passwd\x07"
    )
    upload = Upload.objects.get(pk=response.json()["id"])
    assert upload.filename == "../../../etc/passwd\x07"
    assert upload.name == "passwd"
    assert os.path.realpath(upload.file.path).startswith(os.path.realpath(settings.MEDIA_ROOT))


def test_anonymous_requests_are_refused(client, protocol):
    prefix, url = protocol
    data = data_of(CHUNK)
    assert post_chunk(client, url, prefix, data, 1, chunk_size=CHUNK).status_code == 403
    assert probe_chunk(client, url, prefix, data, 1, chunk_size=CHUNK).status_code == 403
    assert Upload.objects.count() == 0


def test_identifiers_belong_to_their_owner(alice, user, other_user, protocol):
    prefix, url = protocol
    data = data_of(2 * CHUNK)
    mine = post_chunk(alice, url, prefix, data, 1, chunk_size=CHUNK).json()
    bob = Client()
    bob.force_login(other_user)
    # Bob's client uses the same identifier: he sees nothing of Alice's upload.
    assert probe_chunk(bob, url, prefix, data, 1, chunk_size=CHUNK).status_code == 204
    his = post_chunk(bob, url, prefix, data, 2, chunk_size=CHUNK).json()
    assert his["id"] != mine["id"]
    assert his["received_bytes"] == CHUNK
    assert Upload.objects.get(pk=mine["id"]).received_bytes == CHUNK


def test_csrf_token_is_required_in_the_header(user, protocol):
    prefix, url = protocol
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(user)
    browser.get("/uploads/")  # sets the CSRF cookie, as the page does
    token = browser.cookies["csrftoken"].value
    data = data_of(CHUNK)
    refused = post_chunk(browser, url, prefix, data, 1, chunk_size=CHUNK)
    assert refused.status_code == 403
    assert "CSRF" in refused.json()["error"]
    assert Upload.objects.count() == 0
    browser.defaults["HTTP_X_CSRFTOKEN"] = token
    assert post_chunk(browser, url, prefix, data, 1, chunk_size=CHUNK).status_code == 200


def test_a_chunk_costs_at_most_four_queries(alice, protocol, method):
    """
    Once the session is known to the worker (access.recently_checked): find the
    upload, read its progress and the runs around the chunk under the
    byte-range lock, and after writing count the bytes and extend the run
    (one transaction, no savepoint when already in one).
    """
    prefix, url = protocol
    data = data_of(6 * CHUNK)
    post_chunk(alice, url, prefix, data, 1, chunk_size=CHUNK, method=method)
    for number in (2, 3, 4):
        with CaptureQueriesContext(connection) as queries:
            response = post_chunk(alice, url, prefix, data, number, chunk_size=CHUNK, method=method)
        assert response.status_code == 200
        sql = [q["sql"] for q in queries.captured_queries]
        assert len(sql) <= 4, sql
