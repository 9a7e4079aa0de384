"""The uploads admin: what its list shows."""

import io

import pytest
from django.contrib import admin

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
