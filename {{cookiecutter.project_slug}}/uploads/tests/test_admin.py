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
    engine.receive(done, 0, 3, io.BytesIO(b"abc"))
    done.refresh_from_db()
    going = engine.start(staff, Upload.Protocol.FLOW, filename="going.txt", size=3)
    page = client.get("/admin/uploads/upload/")
    assert page.status_code == 200
    assert b"done.txt" in page.content and b"going.txt" in page.content
    upload_admin = admin.site._registry[Upload]
    assert upload_admin.expiry(done) == "—"
    assert upload_admin.expiry(going) == going.expires


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
