from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.core.management import call_command

from uploads.access import recently_checked


@pytest.fixture(scope="session", autouse=True)
def compiled_translations():
    """The .mo files are build output (not committed): compiled when missing or stale."""
    for po in Path(django_settings.LOCALE_PATHS[0]).glob("*/LC_MESSAGES/*.po"):
        mo = po.with_suffix(".mo")
        if not mo.exists() or mo.stat().st_mtime < po.stat().st_mtime:
            # Django skips the ones that are up to date; a virtualenv here is not ours.
            call_command("compilemessages", ignore=[".venv", "venv"], verbosity=0)
            return


@pytest.fixture(autouse=True)
def isolated_settings(settings, tmp_path):
    """Each test gets its own media and staging folders, and fast password hashing."""
    # Production hashing takes most of a second per user; tests make many.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    # In-process tests run inside a transaction another thread cannot see, so
    # they finish uploads before answering; the gunicorn tests use the thread.
    settings.UPLOADS_FINISH_IN_BACKGROUND = False
    # A broker in the developer's .env would take those finishes away.
    settings.CELERY_BROKER_URL = ""
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.UPLOADS_STAGING_DIR = tmp_path / "staging"
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    # Users a test logged in are not remembered into the next one.
    recently_checked.forget_all()
    return tmp_path


@pytest.fixture
def user(django_user_model):
    return django_user_model.objects.create_user("alice", password="a-long-test-password")


@pytest.fixture
def other_user(django_user_model):
    return django_user_model.objects.create_user("bob", password="a-long-test-password")


@pytest.fixture
def alice(client, user):
    client.force_login(user)
    return client
