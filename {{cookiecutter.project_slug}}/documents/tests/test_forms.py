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


def test_a_document_is_edited_keeping_its_file_or_taking_a_new_one(alice, user):
    first = upload_for(user)
    document = Document.objects.create(owner=user, title="Draft", file=first.file.name)
    page = alice.get(f"/documents/{document.pk}/edit/").content.decode()
    assert "Edit “Draft”" in page
    response = alice.post(f"/documents/{document.pk}/edit/", {"title": "Final", "file": ""})
    assert response.status_code == 302
    document.refresh_from_db()
    assert (document.title, document.file.name) == ("Final", first.file.name)
    second = upload_for(user, name="final.txt")
    alice.post(f"/documents/{document.pk}/edit/", {"title": "Final", "file": str(second.id)})
    document.refresh_from_db()
    assert document.file.name == second.file.name


def test_deleting_a_document_keeps_the_upload_and_its_file(alice, user):
    upload = upload_for(user)
    document = Document.objects.create(owner=user, title="Old", file=upload.file.name)
    confirm = alice.get(f"/documents/{document.pk}/delete/").content.decode()
    assert "Delete “Old”?" in confirm and "stays in" in confirm
    assert alice.post(f"/documents/{document.pk}/delete/").status_code == 302
    assert not Document.objects.exists()
    upload.refresh_from_db()
    assert upload.file.read() == DATA


def test_another_users_document_cannot_be_edited_deleted_or_downloaded(alice, other_user):
    upload = upload_for(other_user)
    document = Document.objects.create(owner=other_user, title="Bob's", file=upload.file.name)
    for path in ["edit/", "delete/", "download/"]:
        assert alice.get(f"/documents/{document.pk}/{path}").status_code == 404
    assert alice.post(f"/documents/{document.pk}/delete/").status_code == 404
    assert Document.objects.filter(pk=document.pk).exists()


def test_the_admin_list_links_each_file_to_a_download_that_works(admin_client, user):
    upload = upload_for(user)
    document = Document.objects.create(owner=user, title="Report", file=upload.file.name)
    listing = admin_client.get("/admin/documents/document/").content.decode()
    assert f'href="/documents/{document.pk}/download/"' in listing
    assert "/media/" not in listing
    download = admin_client.get(f"/documents/{document.pk}/download/")
    assert download.status_code == 200
    assert b"".join(download.streaming_content) == DATA


def test_the_edit_form_shows_the_current_file_by_name_size_and_link(alice, user):
    upload = upload_for(user, name="minutes.txt")
    document = Document.objects.create(owner=user, title="Minutes", file=upload.file.name)
    page = alice.get(f"/documents/{document.pk}/edit/").content.decode()
    assert (
        f'Current file: <a href="/documents/{document.pk}/download/"><strong>minutes.txt</strong>'
        "</a> (1.2\xa0KB)."
    ) in page
    assert upload.file.name not in page  # the storage path is no business of the user
    # Gone from storage: the name is still shown, with no size, and the page works.
    upload.file.storage.delete(upload.file.name)
    page = alice.get(f"/documents/{document.pk}/edit/").content.decode()
    assert "<strong>minutes.txt</strong></a>. Choose another file" in page


def test_every_form_shows_the_limits_and_accepts_only_the_allowed_types(alice, settings):
    settings.UPLOADS_MAX_BYTES = 5 * 1024 * 1024
    settings.UPLOADS_ALLOWED_EXTENSIONS = ["pdf", "txt"]
    for path in ["/documents/new/", "/uploads/"]:
        page = alice.get(path).content.decode()
        assert 'accept=".pdf,.txt"' in page, path
        assert "Up to 5.0\xa0MB each; types: pdf, txt." in page, path
