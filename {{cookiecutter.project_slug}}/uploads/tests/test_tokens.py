"""API tokens: made once, kept hashed, accepted on every upload endpoint, refused when revoked."""

import hashlib
import re
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone

from uploads import tokens
from uploads.models import Upload, UploadToken

from .chunking import post_chunk

pytestmark = pytest.mark.django_db
DATA = b"x" * 3000


def script(token=None):
    """A client as a script is: no session, CSRF checks enforced as in production."""
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return Client(enforce_csrf_checks=True, headers=headers)


def test_the_command_prints_the_token_once_and_keeps_only_its_hash(user):
    out, err = StringIO(), StringIO()
    call_command(
        "create_upload_token",
        "alice",
        "--name",
        "backup",
        "--expires-in",
        "30d",
        stdout=out,
        stderr=err,
    )
    token = out.getvalue().strip()
    assert re.fullmatch(r"bfu_[A-Za-z0-9_-]{43}", token)
    record = UploadToken.objects.get()
    assert (record.owner, record.name) == (user, "backup")
    assert record.key_hash == hashlib.sha256(token.encode()).hexdigest()
    assert token not in str(record.__dict__)
    assert timedelta(days=29) < record.expires - timezone.now() <= timedelta(days=30)
    assert "shown only now" in err.getvalue()


@pytest.mark.parametrize(
    "args, message",
    [(["nobody", "--name", "x"], "no user"), (["alice", "--name", " "], "--name")],
)
def test_the_command_refuses_bad_input(user, args, message):
    with pytest.raises(CommandError, match=message):
        call_command("create_upload_token", *args, stdout=StringIO(), stderr=StringIO())


def test_a_script_uploads_with_a_token_without_csrf(user):
    record, token = tokens.create(user, "script")
    response = post_chunk(script(token), "/uploads/flow/", "flow", DATA, 1, chunk_size=4096)
    assert response.status_code == 200, response.content
    upload_id = response.json()["id"]
    status = script(token).get(f"/uploads/api/uploads/{upload_id}/").json()
    assert status["status"] == "complete"
    assert Upload.objects.get(pk=upload_id).owner == user
    record.refresh_from_db()
    assert record.last_used is not None


def test_without_a_token_the_same_script_is_refused(user):
    response = post_chunk(script(), "/uploads/flow/", "flow", DATA, 1, chunk_size=4096)
    assert response.status_code == 403


@pytest.mark.parametrize("state", ["revoked", "expired", "unknown", "empty"])
def test_bad_tokens_get_403_and_401_on_tus(user, state):
    record, token = tokens.create(user, "script")
    if state == "revoked":
        tokens.revoke(UploadToken.objects.filter(pk=record.pk))
    elif state == "expired":
        UploadToken.objects.filter(pk=record.pk).update(
            expires=timezone.now() - timedelta(seconds=1)
        )
    elif state == "unknown":
        token = token[:-2] + "zz"
    else:
        token = ""
    response = script(token).get("/uploads/api/uploads/")
    assert response.status_code == 403
    assert "token" in response.json()["error"]
    tus = script(token).post("/uploads/tus/", HTTP_TUS_RESUMABLE="1.0.0")
    assert tus.status_code == 401


def test_another_users_token_cannot_see_or_touch_an_upload(user, other_user):
    alice, bob = script(tokens.create(user, "a")[1]), script(tokens.create(other_user, "b")[1])
    upload_id = post_chunk(alice, "/uploads/flow/", "flow", DATA, 1, chunk_size=1000).json()["id"]
    assert bob.get(f"/uploads/api/uploads/{upload_id}/").status_code == 404
    assert bob.delete(f"/uploads/api/uploads/{upload_id}/").status_code == 404
    assert bob.get("/uploads/api/uploads/").json()["results"] == []
    tus = bob.head(f"/uploads/tus/{upload_id}", HTTP_TUS_RESUMABLE="1.0.0")
    assert tus.status_code == 404
    assert Upload.objects.get(pk=upload_id).status == "uploading"


def test_the_admin_shows_a_new_token_once_and_revokes_it(client, django_user_model, user):
    admin = django_user_model.objects.create_superuser("root", "root@example.com", "pw-123456789")
    client.force_login(admin)
    response = client.post(
        "/admin/uploads/uploadtoken/add/",
        {"name": "ci", "owner": user.pk, "expires_0": "", "expires_1": ""},
    )
    assert response.status_code == 200
    shown = re.findall(r"bfu_[A-Za-z0-9_-]{43}", response.content.decode())
    assert len(shown) == 1
    assert "no-store" in response["Cache-Control"]
    # Never through a cookie: the messages cookie is signed, not encrypted.
    assert all(shown[0] not in morsel.value for morsel in response.cookies.values())
    record = UploadToken.objects.get()
    assert record.owner == user
    assert record.key_hash == tokens.hash_of(shown[0])
    # Shown once: the token's own page does not have it.
    page = client.get(f"/admin/uploads/uploadtoken/{record.pk}/change/").content.decode()
    assert shown[0] not in page
    client.post(
        "/admin/uploads/uploadtoken/",
        {"action": "revoke", "_selected_action": [record.pk]},
    )
    record.refresh_from_db()
    assert record.revoked is not None
    assert script(shown[0]).get("/uploads/api/uploads/").status_code == 403


def test_staff_without_superuser_make_tokens_only_for_themselves(client, django_user_model, user):
    """The "add upload token" permission alone must not mint a token that uploads as anyone."""
    from django.contrib.auth.models import Permission

    root = django_user_model.objects.create_superuser("root", "root@example.com", "pw-123456789")
    tokens.create(root, "root's own")
    clerk = django_user_model.objects.create_user("clerk", password="pw-123456789", is_staff=True)
    clerk.user_permissions.add(
        *Permission.objects.filter(codename__in=["add_uploadtoken", "view_uploadtoken"])
    )
    client.force_login(clerk)
    form = client.get("/admin/uploads/uploadtoken/add/").content.decode()
    assert 'name="owner"' not in form
    response = client.post(
        "/admin/uploads/uploadtoken/add/",
        {"name": "sneaky", "owner": root.pk, "expires_0": "", "expires_1": ""},
    )
    assert response.status_code == 200
    made = UploadToken.objects.get(name="sneaky")
    assert made.owner == clerk
    listing = client.get("/admin/uploads/uploadtoken/").content.decode()
    assert "sneaky" in listing
    assert "root&#x27;s own" not in listing and "root's own" not in listing
