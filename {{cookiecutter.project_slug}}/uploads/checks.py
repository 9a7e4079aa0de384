"""
System checks for settings the uploads app cannot use, and for deployments that
would lose uploads or copy every finished file.

They only look: no folder is created, nothing is written. The README lists
every id with what it means and what to do.
"""

import os
from contextlib import suppress
from pathlib import Path

from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.core.files.storage import FileSystemStorage, storages

from .conf import upload_settings

DURATION_HINT = "Write a whole number with a unit: 90s, 15m, 6h, 2d or 1w."

# Per setting uploads.conf refuses to read: the check's id and what to do.
SETTING_ERRORS = {
    "STAGING_DIR": (
        "uploads.E001",
        "Give a folder every worker can write, such as /var/lib/site/staging.",
    ),
    "MAX_BYTES": ("uploads.E003", "Give the largest file size accepted, in bytes."),
    "EXPIRATION": ("uploads.E004", DURATION_HINT),
    "AUTH_RECHECK": ("uploads.E004", DURATION_HINT),
    "CLEANUP_GRACE": ("uploads.E004", DURATION_HINT),
    "CLIENT": ("uploads.E005", "Write flow.js or resumable.js."),
    "STORAGE": ("uploads.E007", "Name an alias of STORAGES, or add an entry for it."),
    "CHUNK_SIZE": ("uploads.E008", "Give the chunk size in bytes, such as 8388608 (8 MiB)."),
    "SIMULTANEOUS_CHUNKS": ("uploads.E008", "Give how many chunks a file sends at once: 3."),
    "LOCK_TIMEOUT": ("uploads.E009", "Give the seconds a chunk may wait, such as 30."),
    "ALLOWED_EXTENSIONS": (
        "uploads.E010",
        'A list such as ["pdf", "zip"]; in the environment, comma-separated: pdf,zip.',
    ),
    "STAGING": ("uploads.E011", "Write local or s3."),
    "STAGING_PREFIX": ("uploads.E011", "Write a key prefix ending in /, such as staging/."),
    "USER_QUOTA": ("uploads.E012", "Give the bytes one user may hold, such as 536870912000."),
    "MAX_ACTIVE_UPLOADS": ("uploads.E012", "Give how many unfinished uploads a user may have."),
    "MIN_FREE_BYTES": ("uploads.E013", "Give the bytes to keep free, such as 1073741824 (1 GiB)."),
    "DIRECT_PREFIX": ("uploads.E015", "Write a key prefix ending in /, such as direct/."),
    "DIRECT_URL_LIFETIME": ("uploads.E015", "Write a duration from 1s to 7d, such as 15m."),
}


@checks.register(checks.Tags.files)
def check_settings(app_configs, **kwargs):
    """Said at startup, rather than as a 500 on the first request that reads them."""
    errors = []
    for name, (check_id, hint) in SETTING_ERRORS.items():
        try:
            getattr(upload_settings, name)
        except ImproperlyConfigured as exc:
            errors.append(checks.Error(str(exc), hint=hint, id=check_id))
    return errors


@checks.register(checks.Tags.files)
def check_staging_dir(app_configs, **kwargs):
    """The staging folder is a folder this user can write, or can be made by it."""
    try:
        staging = upload_settings.STAGING_DIR
    except ImproperlyConfigured:
        return []  # uploads.E001
    if os.path.exists(staging) and not staging.is_dir():
        return [
            checks.Error(
                f"UPLOADS_STAGING_DIR {staging} exists and is not a folder.",
                hint="Point it at a folder, or at a path where one can be made.",
                id="uploads.E006",
            )
        ]
    # The folder is made when the first upload starts; until then, what decides
    # is the nearest folder that exists.
    existing = _nearest_existing(staging)
    if not existing.is_dir():
        problem = f"cannot be created: {existing} is not a folder"
    elif not os.access(existing, os.W_OK | os.X_OK):
        verb = "written" if existing == staging else "created"
        problem = f"cannot be {verb}: this user may not write into {existing}"
    else:
        return []
    return [
        checks.Error(
            f"UPLOADS_STAGING_DIR {staging} {problem}.",
            hint="Make the folder, owned by the user the site runs as, or choose another.",
            id="uploads.E002",
        )
    ]


@checks.register(checks.Tags.files)
def check_same_file_system(app_configs, **kwargs):
    # Finishing an upload renames the staging file into the storage's folder;
    # across file systems that rename becomes a full copy of the file.
    try:
        staging = upload_settings.STAGING_DIR
        storage = storages[upload_settings.STORAGE]
    except ImproperlyConfigured:  # also InvalidStorageError
        return []  # reported above
    if not isinstance(storage, FileSystemStorage):
        return []
    media = Path(storage.location)
    if _device(staging) == _device(media):
        return []
    return [
        checks.Warning(
            f"UPLOADS_STAGING_DIR ({staging}) and the storage's folder ({media}) are on "
            "different file systems: every finished upload will be copied instead of renamed.",
            hint="Put the staging folder on the same file system as MEDIA_ROOT.",
            id="uploads.W001",
        )
    ]


@checks.register(checks.Tags.files)
def check_staging_bucket(app_configs, **kwargs):
    """S3 staging keeps unfinished uploads in the bucket of the finished ones."""
    try:
        backend = upload_settings.STAGING
    except ImproperlyConfigured:
        return []  # uploads.E011
    if backend != "s3" or getattr(settings, "AWS_STORAGE_BUCKET_NAME", ""):
        return []
    return [
        checks.Error(
            "UPLOADS_STAGING is s3, but no bucket is named: AWS_STORAGE_BUCKET_NAME is empty.",
            hint="Set AWS_STORAGE_BUCKET_NAME (and AWS_S3_ENDPOINT_URL outside AWS), "
            "or write UPLOADS_STAGING=local.",
            id="uploads.E014",
        )
    ]


@checks.register(checks.Tags.files)
def check_direct_bucket(app_configs, **kwargs):
    """Direct uploads go into the bucket that holds the finished files: they are those files."""
    if not upload_settings.DIRECT:
        return []
    bucket = getattr(settings, "AWS_STORAGE_BUCKET_NAME", "")
    try:
        storage = storages[upload_settings.STORAGE]
    except ImproperlyConfigured:  # also InvalidStorageError: uploads.E007
        return []
    if bucket and getattr(storage, "bucket_name", None) == bucket:
        return []
    problem = (
        "no bucket is named: AWS_STORAGE_BUCKET_NAME is empty"
        if not bucket
        else f"the storage {upload_settings.STORAGE!r} (UPLOADS_STORAGE) is not that bucket"
    )
    return [
        checks.Error(
            f"UPLOADS_DIRECT is on, but {problem}.",
            hint="Set AWS_STORAGE_BUCKET_NAME (and AWS_S3_ENDPOINT_URL outside AWS) so that "
            "finished files are kept in the bucket, or turn UPLOADS_DIRECT off.",
            id="uploads.E015",
        )
    ]


@checks.register(checks.Tags.files)
def check_broker_needed(app_configs, **kwargs):
    """Settings that only make sense with background work on Celery."""
    if getattr(settings, "CELERY_BROKER_URL", ""):
        return []
    reasons = []
    if upload_settings.CELERY_BEAT:
        reasons.append("UPLOADS_CELERY_BEAT is on: nothing runs its schedule")
    with suppress(ImproperlyConfigured):  # uploads.E011
        if upload_settings.STAGING == "s3":
            reasons.append(
                "UPLOADS_STAGING is s3: each upload is finished in the web process that "
                "took its last chunk, and one that restarts leaves it to the lease"
            )
    return [
        checks.Warning(
            f"CELERY_BROKER_URL is empty, but {reason}.",
            hint="Set CELERY_BROKER_URL (redis://host:6379/0) and run `celery -A config worker`; "
            'see the README\'s "Running on several hosts".',
            id="uploads.W002",
        )
        for reason in reasons
    ]


def _nearest_existing(path):
    """The path itself if it exists, else its nearest ancestor that does."""
    while not os.path.exists(path) and path != path.parent:
        path = path.parent
    return path


def _device(path):
    """The file system a path is on, or will be on once its folders are made."""
    return os.stat(_nearest_existing(Path(path))).st_dev
