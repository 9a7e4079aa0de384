"""The Document form accepts only the user's own finished upload, and keeps its stored file."""

import io

import pytest
from django.core.files.base import File

from documents.models import Document
from uploads import engine
from uploads.models import Upload

pytestmark = pytest.mark.django_db

DATA = b"a small file" * 100


def upload_for(owner, *, finished=True, name="notes.txt"):
    upload = engine.start(owner, Upload.Protocol.FLOW, filename=name, size=len(DATA))
    if finished:
        upload.file.save(upload.name, File(io.BytesIO(DATA)), save=False)
        upload.status = Upload.Status.COMPLETE
        upload.save()
    return upload


def post(client, upload_id, title="Minutes"):
    return client.post("/documents/new/", {"title": title, "file": str(upload_id)})


def test_a_finished_upload_becomes_the_document_file_without_a_copy(alice, user):
    upload = upload_for(user)
    response = post(alice, upload.id)
    assert response.status_code == 302
    document = Document.objects.get()
    assert document.owner == user
    assert document.file.name == upload.file.name
    assert document.file.read() == DATA


def test_an_unfinished_upload_is_a_clear_form_error(alice, user):
    upload = upload_for(user, finished=False)
    response = post(alice, upload.id)
    assert response.status_code == 200
    assert "has not finished uploading yet" in response.content.decode()
    assert not Document.objects.exists()


def test_an_upload_still_being_checked_says_so(alice, user):
    upload = upload_for(user, finished=False)
    Upload.objects.filter(pk=upload.pk).update(status=Upload.Status.PROCESSING)
    response = post(alice, upload.id)
    assert "being checked (SHA-256): save again in a moment" in response.content.decode()
    assert not Document.objects.exists()


def test_someone_elses_upload_is_refused_as_if_it_did_not_exist(alice, other_user):
    upload = upload_for(other_user)
    response = post(alice, upload.id)
    assert "does not exist or is not yours" in response.content.decode()
    assert not Document.objects.exists()


@pytest.mark.parametrize("value", ["", "not-a-uuid"])
def test_no_upload_or_garbage_is_refused(alice, value):
    response = post(alice, value)
    assert response.status_code == 200
    assert not Document.objects.exists()


def test_the_admin_delete_keeps_a_file_a_document_uses(admin_client, admin_user):
    upload = upload_for(admin_user)
    Document.objects.create(owner=admin_user, title="Kept", file=upload.file.name)
    response = admin_client.post(
        "/admin/uploads/upload/",
        {"action": "delete_selected", "_selected_action": [upload.pk], "post": "yes"},
    )
    assert response.status_code == 302
    assert not Upload.objects.filter(pk=upload.pk).exists()
    assert Document.objects.get().file.read() == DATA


def test_the_admin_delete_removes_an_unused_file(admin_client, admin_user):
    upload = upload_for(admin_user)
    storage, name = upload.file.storage, upload.file.name
    admin_client.post(
        "/admin/uploads/upload/",
        {"action": "delete_selected", "_selected_action": [upload.pk], "post": "yes"},
    )
    assert not storage.exists(name)


def test_the_admin_cancel_action_drops_staged_bytes(admin_client, admin_user):
    upload = upload_for(admin_user, finished=False)
    admin_client.post(
        "/admin/uploads/upload/", {"action": "cancel_uploads", "_selected_action": [upload.pk]}
    )
    upload.refresh_from_db()
    assert upload.status == Upload.Status.CANCELLED
