"""
The uploads app's settings: each one's default, written once, and how it is read.

config/settings.py reads every `UPLOADS_<NAME>` from the environment with the
default in DEFAULTS below; a project that leaves one out gets the same default.
Code asks `upload_settings.MAX_BYTES` and never repeats a fallback. `.env.example`
and the README's table document each one (a template test compares the values).

Numbers and durations may arrive as the environment's text: reading them here,
not in settings.py, turns a mistake into a `manage.py check` error (uploads.checks)
instead of a traceback while the settings load. Importing this module has no side
effect and needs no configured settings, so config/settings.py can import it.
"""

import math
import re
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

DEFAULTS = {
    # Where unfinished uploads are kept: a name in uploads.staging.BACKENDS.
    "STAGING": "local",
    # Key prefix in AWS_STORAGE_BUCKET_NAME under which the s3 backend keeps
    # unfinished uploads (a multipart upload and pieces each).
    "STAGING_PREFIX": "staging/",
    # Absolute path of the folder the local backend writes unfinished uploads
    # to, one file each. None: var/staging in the project folder (BASE_DIR).
    "STAGING_DIR": None,
    # Bytes: the largest file accepted (50 GiB). Finite on purpose.
    "MAX_BYTES": 50 * 1024**3,
    # File name extensions accepted ("pdf", ".zip"...); empty accepts any.
    "ALLOWED_EXTENSIONS": (),
    # Duration: how long an unfinished upload lives after its last chunk.
    "EXPIRATION": timedelta(days=1),
    # The browser library the upload widget drives: "flow.js" or "resumable.js".
    "CLIENT": "{{ cookiecutter.upload_client }}",
    # Bytes: the chunk size the upload page asks the browser for (8 MiB).
    "CHUNK_SIZE": 8 * 1024**2,
    # Chunks of one file the upload page sends at once.
    "SIMULTANEOUS_CHUNKS": 3,
    # Bytes of the staging file system kept free: a new upload whose declared
    # size (plus what the unfinished ones still need) would eat into them is
    # refused with 507 before any byte (1 GiB).
    "MIN_FREE_BYTES": 1024**3,
    # Seconds a chunk waits for another request writing the same bytes (then 503).
    "LOCK_TIMEOUT": 30.0,
    # Duration a worker trusts a session or API token it has checked before it
    # checks it against the database again (0: on every request). A logout or
    # a revoked token takes up to this long to stop chunks already on their way.
    "AUTH_RECHECK": timedelta(seconds=5),
    # Finish a whole upload (hash, move into storage) after answering its last
    # chunk, in a thread of the worker, rather than before.
    "FINISH_IN_BACKGROUND": True,
    # Duration: cleanup_uploads leaves a staging file no upload owns alone until
    # it is this old, since an upload's file exists a moment before its record.
    "CLEANUP_GRACE": timedelta(hours=1),
    # Folder inside the storage where finished files go (strftime codes allowed).
    "UPLOAD_TO": "uploads/%Y/%m/%d",
    # Alias in settings.STORAGES of the storage finished files go to.
    "STORAGE": "default",
    # URL prefix of the proxy's internal location over MEDIA_ROOT (nginx's
    # X-Accel-Redirect, "/protected-media/"): downloads are then handed to the
    # proxy, which serves the file and its ranges. Empty: the worker streams it.
    "ACCEL_REDIRECT": "",
    # Bytes one user may hold (500 GiB): the declared sizes of their unfinished
    # uploads (UPLOADS_MAX_BYTES while a tus size is deferred) and the sizes of
    # their stored files. Finite on purpose: staging files are sparse, so
    # nothing else reserves the room an upload will need.
    "USER_QUOTA": 500 * 1024**3,
    # Unfinished uploads one user may have at once.
    "MAX_ACTIVE_UPLOADS": 100,
    # Run cleanup_uploads (hourly) and verify_uploads (weekly) from Celery's
    # beat schedule, for sites on a broker that use no cron or systemd timer.
    "CELERY_BEAT": False,
    # Let browsers upload straight into AWS_STORAGE_BUCKET_NAME through the
    # Companion-compatible routes under /uploads/companion/s3/ (Uppy's AwsS3
    # plugin): the site signs each request and keeps the record, no byte of
    # the file passes through it. Off: those routes answer 404.
    "DIRECT": False,
    # Key prefix in the bucket under which direct uploads go, one folder per
    # user (<prefix><user id>/<upload id>/<name>); the client never names a key.
    "DIRECT_PREFIX": "direct/",
    # Duration a signed part URL or signed POST may be used for. Short: a URL
    # that leaks writes only its one part of its one upload, until then.
    "DIRECT_URL_LIFETIME": timedelta(minutes=15),
}

# The longest a SigV4 presigned URL may live (S3 refuses longer).
LONGEST_SIGNED_URL = timedelta(days=7)

# The browser clients the widget can drive, and the endpoint each one talks to.
CLIENTS = {"flow.js": "flow", "resumable.js": "resumable"}

_DIGITS = re.compile(r"^\s*[0-9]+\s*$")
_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw]?)\s*$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(value):
    """'90', '90s', '15m', '6h', '2d', '1w', a number of seconds or a timedelta -> timedelta."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = value
    else:
        match = _DURATION.match(str(value))
        if not match:
            raise ValueError(f"{value!r} is not a duration such as 90s, 15m, 6h or 2d")
        number, unit = match.groups()
        seconds = int(number) * _UNITS[unit]
    try:
        return timedelta(seconds=seconds)
    except OverflowError:
        raise ValueError(f"{value!r} is longer than any duration Python can hold") from None


def _positive_int(name, value):
    """A whole number above 0, given as an int or as the environment's text."""
    if isinstance(value, str) and _DIGITS.match(value):
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ImproperlyConfigured(
            f"UPLOADS_{name} must be a positive whole number, not {value!r}."
        )
    return value


def _seconds(name, value):
    """A finite number of seconds, 0 or more, given as a number or as text."""
    try:
        seconds = float(value) if isinstance(value, str) else value
    except ValueError:
        seconds = None
    number = isinstance(seconds, int | float) and not isinstance(seconds, bool)
    if not number or not 0 <= seconds < math.inf:
        raise ImproperlyConfigured(f"UPLOADS_{name} must be a number of seconds, not {value!r}.")
    return float(seconds)


class UploadSettings:
    """
    `upload_settings.NAME` is settings.UPLOADS_NAME (or its default), read and
    checked. Looked up on every access, so `override_settings` applies at once;
    a value that cannot be used raises ImproperlyConfigured naming the setting.
    """

    def __getattr__(self, name):
        if name not in DEFAULTS:
            raise AttributeError(name)
        value = getattr(settings, f"UPLOADS_{name}", DEFAULTS[name])
        return getattr(self, f"_clean_{name.lower()}", lambda v: v)(value)

    def _clean_staging_dir(self, value):
        if value is None or value == "":
            return Path(settings.BASE_DIR) / "var" / "staging"
        if not isinstance(value, str | Path) or not Path(value).is_absolute():
            raise ImproperlyConfigured(
                f"UPLOADS_STAGING_DIR must be an absolute path, not {str(value)!r}."
            )
        return Path(value)

    def _clean_max_bytes(self, value):
        return _positive_int("MAX_BYTES", value)

    def _clean_user_quota(self, value):
        return _positive_int("USER_QUOTA", value)

    def _clean_max_active_uploads(self, value):
        return _positive_int("MAX_ACTIVE_UPLOADS", value)

    def _clean_min_free_bytes(self, value):
        if isinstance(value, str) and _DIGITS.match(value):
            value = int(value)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ImproperlyConfigured(
                f"UPLOADS_MIN_FREE_BYTES must be a whole number of bytes, 0 or more, not {value!r}."
            )
        return value

    def _clean_chunk_size(self, value):
        return _positive_int("CHUNK_SIZE", value)

    def _clean_simultaneous_chunks(self, value):
        return _positive_int("SIMULTANEOUS_CHUNKS", value)

    def _clean_lock_timeout(self, value):
        return _seconds("LOCK_TIMEOUT", value)

    def _clean_staging(self, value):
        from .staging import BACKENDS  # the staging package reads these settings

        if value not in BACKENDS:
            raise ImproperlyConfigured(
                f"UPLOADS_STAGING must be one of {', '.join(BACKENDS)}, not {value!r}."
            )
        return value

    def _clean_staging_prefix(self, value):
        # A prefix that is not a folder of its own would make other keys look like uploads.
        if not isinstance(value, str) or not value.endswith("/") or value.startswith("/"):
            raise ImproperlyConfigured(
                f"UPLOADS_STAGING_PREFIX must be a key prefix ending in /, not {value!r}."
            )
        return value

    def _clean_direct_prefix(self, value):
        # Under its own folder, like the staging prefix: the user's id comes next.
        if not isinstance(value, str) or not value.endswith("/") or value.startswith("/"):
            raise ImproperlyConfigured(
                f"UPLOADS_DIRECT_PREFIX must be a key prefix ending in /, not {value!r}."
            )
        return value

    def _clean_direct_url_lifetime(self, value):
        duration = self._duration("DIRECT_URL_LIFETIME", value)
        if not timedelta(seconds=1) <= duration <= LONGEST_SIGNED_URL:
            raise ImproperlyConfigured(
                f"UPLOADS_DIRECT_URL_LIFETIME: {value!r} is not between 1s and 7d, "
                "the longest a signed S3 URL may live."
            )
        return duration

    def _clean_client(self, value):
        if value not in CLIENTS:
            raise ImproperlyConfigured(
                f"UPLOADS_CLIENT must be one of {', '.join(CLIENTS)}, not {value!r}."
            )
        return value

    def _clean_allowed_extensions(self, value):
        # A string would be taken letter by letter: "pdf" would allow "p", "d", "f".
        if isinstance(value, str) or not all(isinstance(ext, str) for ext in value):
            raise ImproperlyConfigured(
                f"UPLOADS_ALLOWED_EXTENSIONS must be a list of extensions, not {value!r}."
            )
        return frozenset(ext.strip().lower().lstrip(".") for ext in value if ext.strip())

    def _clean_expiration(self, value):
        return self._duration("EXPIRATION", value)

    def _clean_auth_recheck(self, value):
        return self._duration("AUTH_RECHECK", value)

    def _clean_cleanup_grace(self, value):
        return self._duration("CLEANUP_GRACE", value)

    def _clean_storage(self, value):
        if value not in settings.STORAGES:
            raise ImproperlyConfigured(
                f"UPLOADS_STORAGE names {value!r}, which is not in STORAGES "
                f"({', '.join(settings.STORAGES)})."
            )
        return value

    @staticmethod
    def _duration(name, value):
        try:
            duration = parse_duration(value)
        except ValueError as exc:
            raise ImproperlyConfigured(f"UPLOADS_{name}: {exc}.") from exc
        if duration < timedelta(0):
            raise ImproperlyConfigured(f"UPLOADS_{name}: {value!r} is a negative duration.")
        return duration


upload_settings = UploadSettings()
