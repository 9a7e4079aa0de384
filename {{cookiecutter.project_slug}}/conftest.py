import pytest

from uploads.access import recently_checked


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
