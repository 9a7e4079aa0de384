"""The status API and downloads: what the owner sees, and what nobody else does."""

import io

import pytest
from django.test import Client

from uploads import engine, staging
from uploads.models import Upload

from .chunking import sha256

pytestmark = pytest.mark.django_db


def make(user, data=b"hello world", *, complete=True, name="hello.txt"):
    upload = engine.start(user, Upload.Protocol.FLOW, filename=name, size=len(data))
    if complete:
        engine.write(upload, engine.Piece(0, len(data), io.BytesIO(data)))
    else:
        engine.write(upload, engine.Piece(0, 1, io.BytesIO(data[:1])))
    upload.refresh_from_db()
    return upload


def test_detail_shows_the_contract_fields(alice, user):
    upload = make(user)
    body = alice.get(f"/uploads/api/uploads/{upload.id}/").json()
    assert body["id"] == str(upload.id)
    assert body["filename"] == "hello.txt"
    assert body["size"] == body["received_bytes"] == 11
    assert body["status"] == "complete"
    assert body["sha256"] == sha256(b"hello world")
    assert body["download_url"] == f"/uploads/{upload.id}/download/"
    assert body["created"] and body["expires"]


def test_an_unfinished_upload_has_no_hash_or_download_yet(alice, user):
    body = alice.get(f"/uploads/api/uploads/{make(user, complete=False).id}/").json()
    assert body["status"] == "uploading"
    assert body["received_bytes"] == 1
    assert body["sha256"] is None
    assert body["download_url"] is None


def test_the_list_is_the_users_own_newest_first_and_paginated(alice, user, other_user):
    make(other_user, name="theirs.txt")
    for i in range(52):
        engine.start(user, Upload.Protocol.FLOW, filename=f"f{i}.txt", size=10)
    first = alice.get("/uploads/api/uploads/").json()
    assert first["count"] == 52
    assert len(first["results"]) == 50
    assert first["results"][0]["filename"] == "f51.txt"
    assert first["next"] == "/uploads/api/uploads/?page=2"
    second = alice.get(first["next"]).json()
    assert [r["filename"] for r in second["results"]] == ["f1.txt", "f0.txt"]
    assert "theirs.txt" not in {r["filename"] for r in first["results"] + second["results"]}
    assert alice.get("/uploads/api/uploads/?page=x").status_code == 400
    assert alice.get("/uploads/api/uploads/?page=9").status_code == 404


def test_another_users_upload_is_404_everywhere(alice, other_user):
    theirs = make(other_user)
    for response in [
        alice.get(f"/uploads/api/uploads/{theirs.id}/"),
        alice.delete(f"/uploads/api/uploads/{theirs.id}/"),
        alice.get(f"/uploads/{theirs.id}/download/"),
    ]:
        assert response.status_code == 404
    theirs.refresh_from_db()
    assert theirs.status == "complete"


def test_delete_cancels_and_removes_staged_bytes(alice, user):
    upload = make(user, complete=False)
    assert staging.backend.path_for(upload).exists()
    assert alice.delete(f"/uploads/api/uploads/{upload.id}/").status_code == 204
    upload.refresh_from_db()
    assert upload.status == "cancelled"
    assert not staging.backend.path_for(upload).exists()
    # Cancelling again is harmless.
    assert alice.delete(f"/uploads/api/uploads/{upload.id}/").status_code == 204


def test_a_complete_upload_cannot_be_cancelled(alice, user):
    upload = make(user)
    response = alice.delete(f"/uploads/api/uploads/{upload.id}/")
    assert response.status_code == 409
    assert "complete" in response.json()["error"]


def test_delete_needs_the_csrf_header(user):
    upload = make(user, complete=False)
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(user)
    browser.get("/uploads/")
    assert browser.delete(f"/uploads/api/uploads/{upload.id}/").status_code == 403
    token = browser.cookies["csrftoken"].value
    response = browser.delete(f"/uploads/api/uploads/{upload.id}/", headers={"X-CSRFToken": token})
    assert response.status_code == 204


def test_download_is_an_attachment_for_the_owner(alice, user):
    upload = make(user, b"\x00binary\xff" * 100, name="report final.pdf")
    response = alice.get(upload.get_download_url())
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == b"\x00binary\xff" * 100
    assert response["Content-Disposition"].startswith("attachment;")
    assert "report final.pdf" in response["Content-Disposition"]


def test_an_unfinished_upload_cannot_be_downloaded(alice, user):
    assert alice.get(make(user, complete=False).get_download_url()).status_code == 404


def test_anonymous_users_get_403_from_the_api_and_a_login_page_for_downloads(client, user):
    upload = make(user)
    assert client.get("/uploads/api/uploads/").status_code == 403
    assert client.get(f"/uploads/api/uploads/{upload.id}/").status_code == 403
    response = client.get(upload.get_download_url())
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_the_upload_page_lists_the_users_uploads(alice, user):
    make(user, name="visible.txt")
    page = alice.get("/uploads/")
    assert page.status_code == 200
    assert b"visible.txt" in page.content
