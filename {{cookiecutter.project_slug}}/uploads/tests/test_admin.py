"""The uploads admin: what its list shows."""

import io

import pytest
from django.contrib import admin
from django.contrib.contenttypes.models import ContentType

from uploads import engine
from uploads.models import Upload

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(client, django_user_model):
    boss = django_user_model.objects.create_superuser("boss", password="a-long-test-password")
    client.force_login(boss)
    return boss


def test_the_list_shows_expiry_only_for_unfinished_uploads(client, staff):
    done = engine.start(staff, Upload.Protocol.FLOW, filename="done.txt", size=3)
    engine.write(done, engine.Piece(0, 3, io.BytesIO(b"abc")))
    done.refresh_from_db()
    going = engine.start(staff, Upload.Protocol.FLOW, filename="going.txt", size=3)
    page = client.get("/admin/uploads/upload/")
    assert page.status_code == 200
    assert b"done.txt" in page.content and b"going.txt" in page.content
    upload_admin = admin.site._registry[Upload]
    assert upload_admin.expiry(done) == "—"
    assert upload_admin.expiry(going) == going.expires


def test_an_upload_page_only_shows_it_in_words_a_person_reads(client, staff, django_user_model):
    owner = django_user_model.objects.create_user("carol", password="a-long-test-password")
    done = engine.start(owner, Upload.Protocol.FLOW, filename="report.pdf", size=2048)
    engine.write(done, engine.Piece(0, 2048, io.BytesIO(b"r" * 2048)))
    page = client.get(f"/admin/uploads/upload/{done.pk}/change/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'name="_save"' not in html and 'name="_continue"' not in html
    assert "2.0\xa0KB" in html and "2048" not in html
    assert "all of it, in one piece" in html
    # No expiry for a finished upload: the field reads a dash.
    expiry_row = html.split("field-expiry", 1)[1].split("field-completed", 1)[0]
    assert "—" in expiry_row and str(done.expires.year) not in expiry_row
    # The file link is the download view, and it works for staff.
    assert f'href="/uploads/{done.pk}/download/"' in html
    download = client.get(f"/uploads/{done.pk}/download/")
    assert download.status_code == 200
    assert b"".join(download.streaming_content) == b"r" * 2048
    # Posting the page changes nothing.
    client.post(f"/admin/uploads/upload/{done.pk}/change/", {"filename": "evil.exe"})
    done.refresh_from_db()
    assert done.filename == "report.pdf"


def test_a_fragmented_upload_is_summed_up_not_listed(client, staff):
    going = engine.start(staff, Upload.Protocol.FLOW, filename="gaps.bin", size=4096)
    for start in (0, 2048, 3072):
        engine.write(going, engine.Piece(start, 512, io.BytesIO(b"g" * 512)))
    html = client.get(f"/admin/uploads/upload/{going.pk}/change/").content.decode()
    assert "3 pieces; the first missing byte is at 512\xa0bytes" in html


def test_deleting_a_fragmented_upload_counts_its_runs_and_lists_none(client, staff):
    going = engine.start(staff, Upload.Protocol.FLOW, filename="many.bin", size=4000)
    for start in range(0, 4000, 2):
        engine.write(going, engine.Piece(start, 1, io.BytesIO(b"m")))
    page = client.get(f"/admin/uploads/upload/{going.pk}/delete/").content.decode()
    assert "many.bin" in page
    assert "2000" in page  # the runs, counted in the summary
    assert "Received range:" not in page
    html = client.get(f"/admin/uploads/upload/{going.pk}/change/").content.decode()
    assert "2000 pieces; the first missing byte is at 1\xa0byte" in html
    deleted = client.post(f"/admin/uploads/upload/{going.pk}/delete/", {"post": "yes"})
    assert deleted.status_code == 302
    assert not Upload.objects.filter(pk=going.pk).exists()


def test_view_on_site_opens_the_uploads_row_on_the_upload_page(client, staff):
    upload = engine.start(staff, Upload.Protocol.FLOW, filename="report.pdf", size=3)
    change_page = client.get(f"/admin/uploads/upload/{upload.pk}/change/").content.decode()
    assert "View on site" in change_page
    content_type = ContentType.objects.get_for_model(Upload)
    response = client.get(f"/admin/r/{content_type.pk}/{upload.pk}/")
    assert response.status_code == 302
    page, _, fragment = response["Location"].partition("#")
    assert fragment == f"upload-{upload.pk}"
    assert f'id="{fragment}"' in client.get(page).content.decode()
