"""
Who may send chunks: each worker trusts a session or token it has checked for
UPLOADS_AUTH_RECHECK, then checks it against the database again.
"""

import pytest
from django.contrib.sessions.models import Session
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from uploads import access, tokens
from uploads.models import UploadToken

from .chunking import post_chunk

pytestmark = pytest.mark.django_db

URL = "/uploads/flow/"
DATA = bytes(range(256)) * 20
CHUNK = 1000


@pytest.fixture
def clock(monkeypatch):
    """access.py's monotonic clock, moved by hand."""
    now = [1000.0]
    monkeypatch.setattr(access.time, "monotonic", lambda: now[0])
    return now


def send(client, number):
    return post_chunk(client, URL, "flow", DATA, number, chunk_size=CHUNK, method="octet")


def queries_of(client, number):
    with CaptureQueriesContext(connection) as queries:
        response = send(client, number)
    assert response.status_code == 200, response.content
    return [q["sql"] for q in queries.captured_queries]


def test_a_checked_session_is_not_looked_up_again_for_each_chunk(alice):
    first = queries_of(alice, 1)
    assert any("django_session" in sql for sql in first)
    later = queries_of(alice, 2)
    assert not any("django_session" in sql or '"auth_user"' in sql for sql in later)


def test_a_session_ended_elsewhere_is_refused_once_the_recheck_is_due(alice, clock):
    """Logging out everywhere (the session deleted) stops chunks within UPLOADS_AUTH_RECHECK."""
    assert send(alice, 1).status_code == 200
    Session.objects.all().delete()
    clock[0] += 4
    assert send(alice, 2).status_code == 200  # checked 4 s ago: still trusted
    clock[0] += 2
    refused = send(alice, 3)
    assert refused.status_code == 403
    # A browser is told what it can do; an API token is for scripts.
    assert refused.json()["error"] == "your session has ended: log in again"


def test_a_deactivated_user_is_refused_at_once_without_the_recheck(alice, user, settings):
    settings.UPLOADS_AUTH_RECHECK = 0
    assert send(alice, 1).status_code == 200
    user.is_active = False
    user.save()
    assert send(alice, 2).status_code == 403


def test_a_revoked_token_is_refused_once_the_recheck_is_due(user, clock):
    _, token = tokens.create(user, "script")
    script = Client(headers={"Authorization": f"Bearer {token}"})
    assert send(script, 1).status_code == 200
    tokens.revoke(UploadToken.objects.all())
    assert send(script, 2).status_code == 200
    clock[0] += 6
    refused = send(script, 3)
    assert refused.status_code == 403
    assert "revoked" in refused.json()["error"]


def test_a_refused_session_is_never_remembered(client, user, settings):
    settings.UPLOADS_AUTH_RECHECK = "1h"
    client.cookies["sessionid"] = "not-a-session"
    assert send(client, 1).status_code == 403
    client.force_login(user)
    assert send(client, 1).status_code == 200
    client.cookies["sessionid"] = "not-a-session"
    assert send(client, 2).status_code == 403


def test_a_chunk_answer_varies_with_the_session_cookie(alice):
    send(alice, 1)
    response = send(alice, 2)  # the session is not loaded for this one
    assert "Cookie" in response.headers["Vary"]
