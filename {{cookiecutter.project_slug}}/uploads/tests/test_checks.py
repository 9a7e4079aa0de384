"""
System checks: each setting the app cannot use is its own error in
`manage.py check`, with a hint, and the checks change nothing on disk.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core import checks

SITE_ROOT = Path(__file__).resolve().parents[2]


def uploads_messages():
    """What `manage.py check` would say about the uploads app: {id: [message, ...]}."""
    found = {}
    for message in checks.run_checks(tags=[checks.Tags.files]):
        if message.id.startswith("uploads."):
            assert message.hint, message.id
            found.setdefault(message.id, []).append(message.msg)
    return found


def test_the_default_settings_pass_the_checks():
    assert uploads_messages() == {}


@pytest.mark.parametrize(
    ("setting", "value", "check_id", "message"),
    [
        ("UPLOADS_STAGING_DIR", "var/staging", "uploads.E001", "must be an absolute path"),
        ("UPLOADS_MAX_BYTES", 0, "uploads.E003", "UPLOADS_MAX_BYTES must be a positive whole"),
        ("UPLOADS_MAX_BYTES", "50G", "uploads.E003", "not '50G'"),
        ("UPLOADS_MAX_BYTES", 1.5, "uploads.E003", "not 1.5"),
        ("UPLOADS_EXPIRATION", "soon", "uploads.E004", "UPLOADS_EXPIRATION: 'soon' is not a"),
        ("UPLOADS_AUTH_RECHECK", "5 minutes", "uploads.E004", "UPLOADS_AUTH_RECHECK: '5 minutes'"),
        ("UPLOADS_CLEANUP_GRACE", -60, "uploads.E004", "UPLOADS_CLEANUP_GRACE: -60 is a negative"),
        ("UPLOADS_EXPIRATION", "9" * 20 + "w", "uploads.E004", "longer than any duration"),
        ("UPLOADS_AUTH_RECHECK", 1e300, "uploads.E004", "longer than any duration"),
        ("UPLOADS_CLIENT", "uppy", "uploads.E005", "must be one of flow.js, resumable.js, not"),
        ("UPLOADS_STORAGE", "uploads", "uploads.E007", "names 'uploads', which is not in STORAGES"),
        ("UPLOADS_CHUNK_SIZE", "8MiB", "uploads.E008", "UPLOADS_CHUNK_SIZE must be a positive"),
        ("UPLOADS_SIMULTANEOUS_CHUNKS", 0, "uploads.E008", "UPLOADS_SIMULTANEOUS_CHUNKS must be"),
        ("UPLOADS_LOCK_TIMEOUT", "half a minute", "uploads.E009", "must be a number of seconds"),
        ("UPLOADS_LOCK_TIMEOUT", -1, "uploads.E009", "must be a number of seconds"),
        ("UPLOADS_ALLOWED_EXTENSIONS", "pdf", "uploads.E010", "must be a list of extensions"),
        ("UPLOADS_STAGING", "ftp", "uploads.E011", "must be one of local, s3, not 'ftp'"),
        ("UPLOADS_STAGING_PREFIX", "staging", "uploads.E011", "a key prefix ending in /"),
        ("UPLOADS_USER_QUOTA", "lots", "uploads.E012", "UPLOADS_USER_QUOTA must be a positive"),
        ("UPLOADS_MAX_ACTIVE_UPLOADS", 0, "uploads.E012", "UPLOADS_MAX_ACTIVE_UPLOADS must be"),
        ("UPLOADS_MIN_FREE_BYTES", -1, "uploads.E013", "must be a whole number of bytes"),
        ("UPLOADS_DIRECT_PREFIX", "/direct/", "uploads.E015", "a key prefix ending in /"),
        ("UPLOADS_DIRECT_URL_LIFETIME", "8d", "uploads.E015", "is not between 1s and 7d"),
        ("UPLOADS_DIRECT_URL_LIFETIME", "0", "uploads.E015", "is not between 1s and 7d"),
        ("UPLOADS_DIRECT_URL_LIFETIME", "soon", "uploads.E015", "is not a duration"),
    ],
)
def test_a_setting_the_app_cannot_use_is_its_own_check_error(
    settings, setting, value, check_id, message
):
    setattr(settings, setting, value)
    found = uploads_messages()
    assert list(found) == [check_id]
    assert len(found[check_id]) == 1
    assert message in found[check_id][0]


def test_s3_staging_needs_a_bucket(settings):
    settings.UPLOADS_STAGING = "s3"
    settings.AWS_STORAGE_BUCKET_NAME = ""
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:6379/0"
    found = uploads_messages()
    assert list(found) == ["uploads.E014"]
    assert "AWS_STORAGE_BUCKET_NAME is empty" in found["uploads.E014"][0]
    settings.AWS_STORAGE_BUCKET_NAME = "site-bucket"
    assert uploads_messages() == {}


def test_direct_uploads_need_the_bucket_of_the_finished_files(settings):
    settings.UPLOADS_DIRECT = True
    settings.AWS_STORAGE_BUCKET_NAME = ""
    found = uploads_messages()
    assert list(found) == ["uploads.E015"]
    assert "UPLOADS_DIRECT is on, but no bucket is named" in found["uploads.E015"][0]
    # A bucket named, but finished files still on this host's disk.
    settings.AWS_STORAGE_BUCKET_NAME = "site-bucket"
    found = uploads_messages()
    assert "is not that bucket" in found["uploads.E015"][0]
    for options in ({"location": "files"}, {}):
        settings.STORAGES = {
            **settings.STORAGES,
            "default": {
                "BACKEND": "storages.backends.s3.S3Storage",
                "OPTIONS": {"bucket_name": "site-bucket", **options},
            },
        }
        found = uploads_messages()
        if options:
            assert "under a location ('files')" in found["uploads.E015"][0]
    assert found == {}


def test_settings_that_need_a_broker_warn_without_one(settings):
    settings.CELERY_BROKER_URL = ""
    settings.UPLOADS_CELERY_BEAT = True
    found = uploads_messages()
    assert list(found) == ["uploads.W002"]
    assert "UPLOADS_CELERY_BEAT is on: nothing runs its schedule" in found["uploads.W002"][0]
    settings.UPLOADS_STAGING = "s3"
    settings.AWS_STORAGE_BUCKET_NAME = "site-bucket"
    assert len(uploads_messages()["uploads.W002"]) == 2
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:6379/0"
    assert uploads_messages() == {}


def test_text_from_the_environment_is_read_as_numbers_and_durations(settings):
    from uploads.conf import upload_settings

    settings.UPLOADS_MAX_BYTES = "1048576"
    settings.UPLOADS_LOCK_TIMEOUT = "0.5"
    settings.UPLOADS_EXPIRATION = "6h"
    assert uploads_messages() == {}
    assert upload_settings.MAX_BYTES == 1024**2
    assert upload_settings.LOCK_TIMEOUT == 0.5
    assert upload_settings.EXPIRATION.total_seconds() == 6 * 3600


def test_a_staging_path_that_is_a_file_is_not_a_folder(settings, tmp_path):
    settings.UPLOADS_STAGING_DIR = tmp_path / "staging"
    settings.UPLOADS_STAGING_DIR.write_text("")
    found = uploads_messages()
    assert list(found) == ["uploads.E006"]
    assert "exists and is not a folder" in found["uploads.E006"][0]


def test_a_staging_folder_under_a_file_cannot_be_created(settings, tmp_path):
    (tmp_path / "a-file").write_text("")
    settings.UPLOADS_STAGING_DIR = tmp_path / "a-file" / "staging"
    found = uploads_messages()
    assert list(found) == ["uploads.E002"]
    assert f"cannot be created: {tmp_path / 'a-file'} is not a folder" in found["uploads.E002"][0]


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write into any folder")
@pytest.mark.parametrize("exists", [False, True], ids=["to-create", "existing"])
def test_a_staging_folder_this_user_may_not_write_is_an_error(settings, tmp_path, exists):
    locked = tmp_path / "locked"
    locked.mkdir()
    if exists:
        (locked / "staging").mkdir()
        locked = locked / "staging"
    settings.UPLOADS_STAGING_DIR = tmp_path / "locked" / "staging"
    locked.chmod(0o500)
    try:
        found = uploads_messages()
    finally:
        locked.chmod(0o700)
    assert list(found) == ["uploads.E002"]
    verb = "written" if exists else "created"
    assert f"cannot be {verb}: this user may not write into {locked}" in found["uploads.E002"][0]


def test_the_checks_create_no_folder(settings, tmp_path):
    settings.UPLOADS_STAGING_DIR = tmp_path / "var" / "staging"
    settings.MEDIA_ROOT = tmp_path / "media" / "files"
    assert uploads_messages() == {}
    assert list(tmp_path.iterdir()) == []


def test_staging_on_another_file_system_than_media_is_a_warning(settings, tmp_path):
    other = Path("/dev/shm")
    if not other.is_dir() or os.stat(other).st_dev == os.stat(tmp_path).st_dev:
        pytest.skip("no second file system at /dev/shm")
    settings.UPLOADS_STAGING_DIR = other / f"staging-{os.getpid()}-never-made"
    found = uploads_messages()
    assert list(found) == ["uploads.W001"]
    assert "copied instead of renamed" in found["uploads.W001"][0]


def test_manage_py_check_reports_mistakes_in_the_environment_without_a_traceback():
    # As a deployment sets them: settings.py must pass a relative path on as given
    # (not made absolute from the current folder), a number as text, and the
    # models must load with a storage alias that does not exist.
    env = {
        **os.environ,
        "UPLOADS_STAGING_DIR": "var/staging",
        "UPLOADS_MAX_BYTES": "lots",
        "UPLOADS_STORAGE": "nowhere",
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--tag", "files"],
        cwd=SITE_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    said = result.stderr
    assert "(uploads.E001) UPLOADS_STAGING_DIR must be an absolute path, not 'var/staging'" in said
    assert "(uploads.E003) UPLOADS_MAX_BYTES must be a positive whole number, not 'lots'" in said
    assert "(uploads.E007) UPLOADS_STORAGE names 'nowhere', which is not in STORAGES" in said
