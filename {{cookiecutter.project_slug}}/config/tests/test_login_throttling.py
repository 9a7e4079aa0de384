"""Login throttling (django-axes): a guessed password is paused, nobody else is."""

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db
PASSWORD = "a-long-test-password"


def log_in(client, username, password, **headers):
    return client.post(
        "/accounts/login/", {"username": username, "password": password}, headers=headers
    )


def test_failed_logins_pause_that_username_from_that_address(settings, user, other_user):
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert log_in(Client(), "alice", "wrong").status_code == 200  # the form again
    assert log_in(Client(), "alice", "wrong").status_code == 429  # the last one allowed
    locked = log_in(Client(), "alice", PASSWORD)  # even the right password, for now
    assert locked.status_code == 429
    page = locked.content.decode()
    assert "Too many failed logins" in page and "alice" in page
    # Another user at the same address is not locked out by alice's attempts...
    assert log_in(Client(), "bob", PASSWORD).status_code == 302
    # ...nor is alice from another address.
    assert log_in(Client(REMOTE_ADDR="192.0.2.7"), "alice", PASSWORD).status_code == 302


def test_a_success_before_the_limit_forgets_the_failures(settings, user):
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        log_in(Client(), "alice", "wrong")
    assert log_in(Client(), "alice", PASSWORD).status_code == 302
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        log_in(Client(), "alice", "wrong")
    assert log_in(Client(), "alice", PASSWORD).status_code == 302


def test_behind_the_proxy_the_address_is_the_one_the_proxy_appended(settings, user):
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    # The first entry is the client's own claim; the proxy appended the last.
    for claimed in range(settings.AXES_FAILURE_LIMIT):
        log_in(Client(), "alice", "wrong", x_forwarded_for=f"10.0.0.{claimed}, 198.51.100.1")
    assert (
        log_in(Client(), "alice", PASSWORD, x_forwarded_for="10.9.9.9, 198.51.100.1").status_code
        == 429
    )
    assert log_in(Client(), "alice", PASSWORD, x_forwarded_for="198.51.100.2").status_code == 302
