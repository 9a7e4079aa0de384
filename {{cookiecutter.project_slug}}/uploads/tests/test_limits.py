"""
What a user may hold (UPLOADS_USER_QUOTA, UPLOADS_MAX_ACTIVE_UPLOADS), a late
chunk after Cancel, and deleting a finished file, on every protocol.
"""

import base64
import io
import threading

import pytest
from django.db import close_old_connections, connection

from documents.models import Document
from uploads import engine
from uploads.models import Upload

from .chunking import post_chunk

pytestmark = pytest.mark.django_db
TUS = {"HTTP_TUS_RESUMABLE": "1.0.0"}
DATA = bytes(range(256)) * 4  # 1,024 bytes
CHUNK = 256


def b64(text):
    return base64.b64encode(text.encode()).decode()


def tus_create(client, size=len(DATA), **headers):  # noqa: B008
    length = {"HTTP_UPLOAD_LENGTH": str(size)} if size is not None else {}
    return client.post(
        "/uploads/tus/",
        HTTP_UPLOAD_METADATA=f"filename {b64('big.bin')}",
        **{**TUS, **length, **headers},
    )


def flow(client, identifier, number=1, data=DATA, prefix="flow"):
    return post_chunk(
        client, f"/uploads/{prefix}/", prefix, data, number, chunk_size=CHUNK, identifier=identifier
    )


def content_range(client, data=DATA, upload_id=None, start=0):
    fields = {"file": io.BytesIO(data[start : start + CHUNK])}
    fields["file"].name = "big.bin"
    if upload_id:
        fields = {"upload_id": upload_id, **fields}
    end = start + len(fields["file"].getvalue()) - 1
    return client.post(
        "/uploads/chunked/", data=fields, HTTP_CONTENT_RANGE=f"bytes {start}-{end}/{len(data)}"
    )


def complete_file(user, data=b"hello world", name="hello.txt"):
    upload = engine.start(user, Upload.Protocol.FLOW, filename=name, size=len(data))
    engine.write(upload, engine.Piece(0, len(data), io.BytesIO(data)))
    upload.refresh_from_db()
    return upload


# --- UPLOADS_USER_QUOTA and UPLOADS_MAX_ACTIVE_UPLOADS ------------------------


NEW_UPLOAD = {
    "flow": lambda client, n: flow(client, f"file-{n}"),
    "resumable": lambda client, n: flow(client, f"file-{n}", prefix="resumable"),
    "tus": lambda client, n: tus_create(client),
    "chunked": lambda client, n: content_range(client),
}


@pytest.mark.parametrize("protocol", NEW_UPLOAD)
def test_an_upload_past_the_quota_is_413_naming_the_quota_and_the_use(
    alice, user, settings, protocol
):
    complete_file(user, b"x" * 1000)  # a stored file counts
    settings.UPLOADS_USER_QUOTA = 1500
    before = Upload.objects.count()
    response = NEW_UPLOAD[protocol](alice, 1)
    assert response.status_code == 413, response.content
    error = response.json()["error"]
    assert "quota of 1500 bytes" in error
    assert "you use 1000 bytes" in error
    assert Upload.objects.count() == before
    settings.UPLOADS_USER_QUOTA = 2024
    assert NEW_UPLOAD[protocol](alice, 1).status_code in (200, 201)


@pytest.mark.parametrize("protocol", NEW_UPLOAD)
def test_one_unfinished_upload_too_many_is_429_saying_to_finish_or_cancel(
    alice, settings, protocol
):
    settings.UPLOADS_MAX_ACTIVE_UPLOADS = 2
    assert flow(alice, "first").status_code == 200
    assert flow(alice, "second").status_code == 200
    response = NEW_UPLOAD[protocol](alice, 3)
    assert response.status_code == 429, response.content
    assert "finish or cancel one" in response.json()["error"]
    assert Upload.objects.count() == 2
    # Chunks of the uploads already started still go in.
    assert flow(alice, "first", 2).status_code == 200
    first = Upload.objects.get(client_id="first")
    assert alice.delete(f"/uploads/api/uploads/{first.id}/").status_code == 204
    assert NEW_UPLOAD[protocol](alice, 3).status_code in (200, 201)


def test_a_deferred_tus_size_counts_as_the_largest_file_until_known(alice, settings):
    settings.UPLOADS_MAX_BYTES = 10_000
    settings.UPLOADS_USER_QUOTA = 15_000
    assert tus_create(alice, size=None, HTTP_UPLOAD_DEFER_LENGTH="1").status_code == 201
    response = tus_create(alice, size=6000)
    assert response.status_code == 413
    assert "you use 10000 bytes" in response.json()["error"]
    assert tus_create(alice, size=5000).status_code == 201


def test_the_defaults_refuse_a_thousand_uploads_of_the_largest_size(alice):
    statuses = [tus_create(alice, size=50 * 1024**3).status_code for _ in range(11)]
    accepted = statuses.index(next(code for code in statuses if code != 201))
    # 500 GiB holds ten files of 50 GiB: the eleventh is over the quota (413),
    # unless the staging disk ran out of room for them first (507).
    assert accepted <= 10
    assert statuses[accepted] == (413 if accepted == 10 else 507)


def test_limits_are_per_user(alice, other_user, settings):
    settings.UPLOADS_MAX_ACTIVE_UPLOADS = 1
    engine.start(other_user, Upload.Protocol.FLOW, filename="theirs.bin", size=10)
    assert flow(alice, "mine").status_code == 200


def test_the_status_list_shows_the_quota_and_the_use(alice, user, settings):
    settings.UPLOADS_USER_QUOTA = 10_000
    settings.UPLOADS_MAX_ACTIVE_UPLOADS = 5
    complete_file(user, b"x" * 100)
    flow(alice, "unfinished")
    usage = alice.get("/uploads/api/uploads/").json()["usage"]
    assert usage == {
        "quota_bytes": 10_000,
        "used_bytes": 100 + len(DATA),
        "active_uploads": 1,
        "max_active_uploads": 5,
    }


@pytest.mark.django_db(transaction=True)
def test_parallel_creations_do_not_pass_the_limit(user, settings):
    """Each creation locks its owner's row (SQLite: one writer at a time), so it is exact."""
    if connection.vendor == "sqlite":
        pytest.skip(
            "SQLite's in-memory test database answers threads 'table is locked'; "
            "run with DATABASE_URL=postgres://... (a file database takes one writer at a time)"
        )
    settings.UPLOADS_MAX_ACTIVE_UPLOADS = 3
    results, barrier = [], threading.Barrier(8)

    def create(n):
        barrier.wait()
        try:
            engine.start(user, Upload.Protocol.TUS, filename=f"{n}.bin", size=10)
            results.append("created")
        except engine.quotas.TooManyUploads:
            results.append("refused")
        finally:
            close_old_connections()

    threads = [threading.Thread(target=create, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == ["created"] * 3 + ["refused"] * 5
    assert Upload.objects.filter(owner=user).count() == 3


# --- a chunk after Cancel -----------------------------------------------------


@pytest.mark.parametrize("prefix", ["flow", "resumable"])
def test_a_chunk_after_cancel_is_404_and_starts_nothing(alice, prefix):
    assert flow(alice, "late", 1, prefix=prefix).status_code == 200
    upload = Upload.objects.get()
    assert alice.delete(f"/uploads/api/uploads/{upload.id}/").status_code == 204
    response = flow(alice, "late", 2, prefix=prefix)
    assert response.status_code == 404
    assert "cancelled" in response.json()["error"]
    assert "new identifier" in response.json()["error"]
    assert list(Upload.objects.values_list("status", flat=True)) == ["cancelled"]
    # Sending the file again, deliberately, under a new identifier starts afresh.
    assert flow(alice, "late-2", 1, prefix=prefix).status_code == 200
    assert Upload.objects.filter(status="uploading", client_id="late-2").exists()


def test_a_cancelled_identifier_is_free_again_after_the_expiry_period(alice, settings):
    flow(alice, "again")
    upload = Upload.objects.get()
    engine.cancel(upload)
    Upload.objects.filter(pk=upload.pk).update(
        updated=upload.updated - settings.UPLOADS_EXPIRATION - engine.LATE_CHUNK_WINDOW
    )
    assert flow(alice, "again").status_code == 200


def test_a_tus_patch_after_termination_is_404(alice):
    path = tus_create(alice)["Location"].removeprefix("http://testserver")
    assert alice.delete(path, **TUS).status_code == 204
    response = alice.patch(
        path,
        DATA[:10],
        content_type="application/offset+octet-stream",
        HTTP_UPLOAD_OFFSET="0",
        **TUS,
    )
    assert response.status_code == 404
    assert Upload.objects.get().status == "cancelled"


def test_a_content_range_chunk_after_cancel_is_410(alice):
    upload_id = content_range(alice).json()["upload_id"]
    assert alice.delete(f"/uploads/api/uploads/{upload_id}/").status_code == 204
    response = content_range(alice, upload_id=upload_id, start=CHUNK)
    assert response.status_code == 410
    assert Upload.objects.get().status == "cancelled"


# --- deleting a finished file -------------------------------------------------


def test_delete_of_a_complete_upload_removes_its_file_and_keeps_the_record(alice, user):
    upload = complete_file(user)
    path = upload.file.path
    response = alice.delete(f"/uploads/api/uploads/{upload.id}/")
    assert response.status_code == 204
    upload.refresh_from_db()
    assert upload.status == "deleted"
    assert not upload.file
    assert not __import__("os").path.exists(path)
    body = alice.get(f"/uploads/api/uploads/{upload.id}/").json()
    assert body["status"] == "deleted"
    assert body["download_url"] is None
    assert alice.get(f"/uploads/{upload.id}/download/").status_code == 404
    # Again: nothing left to delete, no error.
    assert alice.delete(f"/uploads/api/uploads/{upload.id}/").status_code == 204
    # A deleted file no longer counts against the quota.
    assert alice.get("/uploads/api/uploads/").json()["usage"]["used_bytes"] == 0


def test_a_deleted_file_sends_no_upload_failed(alice, user):
    from uploads.signals import upload_failed

    upload, failed = complete_file(user), []
    upload_failed.connect(failed.append, weak=False, dispatch_uid="test-deleted")
    try:
        assert alice.delete(f"/uploads/api/uploads/{upload.id}/").status_code == 204
    finally:
        upload_failed.disconnect(dispatch_uid="test-deleted")
    assert failed == []


def test_a_file_a_document_uses_is_409_naming_the_document(alice, user):
    upload = complete_file(user)
    document = Document.objects.create(owner=user, title="Quarterly", file=upload.file.name)
    response = alice.delete(f"/uploads/api/uploads/{upload.id}/")
    assert response.status_code == 409
    assert "'Quarterly'" in response.json()["error"]
    assert f"id {document.pk}" in response.json()["error"]
    upload.refresh_from_db()
    assert upload.status == "complete"
    assert upload.file.storage.exists(upload.file.name)


def test_the_upload_page_offers_delete_for_a_finished_file(alice, user):
    upload = complete_file(user, name="holiday.mp4")
    page = alice.get("/uploads/").content.decode()
    row = page[page.index(f'id="upload-{upload.id}"') :].split("</tr>")[0]
    assert f'data-cancel="{upload.id}"' in row
    assert "Delete holiday.mp4 from the server?" in row
    assert ">Delete</button>" in row
