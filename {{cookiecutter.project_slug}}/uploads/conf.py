"""
The uploads app's settings, read from django.conf.settings with their defaults.

One place for every default, so that code asks `upload_settings.MAX_BYTES` and
never repeats a fallback. The project's settings.py fills them from the
environment; the README's table documents each one.
"""

import re
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

DEFAULTS = {
    # Where unfinished uploads are kept: a name in uploads.staging.BACKENDS.
    "STAGING": "local",
    # Where the local backend writes them, one file each. Absolute path.
    "STAGING_DIR": None,
    # Largest file accepted, in bytes. Finite on purpose.
    "MAX_BYTES": 50 * 1024**3,
    # File name extensions accepted ("pdf", ".zip"...); empty means any.
    "ALLOWED_EXTENSIONS": (),
    # How long an unfinished upload lives after its last chunk.
    "EXPIRATION": timedelta(days=1),
    # The browser library the upload widget drives: "flow.js" or "resumable.js".
    "CLIENT": "flow.js",
    # Chunk size and parallel chunks the upload page asks the browser for.
    "CHUNK_SIZE": 8 * 1024**2,
    "SIMULTANEOUS_CHUNKS": 3,
    # Seconds a chunk waits for another request writing the same bytes.
    "LOCK_TIMEOUT": 30.0,
    # How long a worker trusts a session or API token it has checked before it
    # checks it against the database again (0: on every request). A logout or
    # a revoked token takes up to this long to stop chunks already on their way.
    "AUTH_RECHECK": timedelta(seconds=5),
    # Finish a whole upload (hash, move into storage) after answering its last
    # chunk, in a thread of the worker, rather than before.
    "FINISH_IN_BACKGROUND": True,
    # cleanup_uploads leaves a staging file no upload owns alone until it is this
    # old: an upload's file exists a moment before its record is committed.
    "CLEANUP_GRACE": timedelta(hours=1),
    # Folder inside the storage where finished files go (strftime allowed).
    "UPLOAD_TO": "uploads/%Y/%m/%d",
    # Alias in settings.STORAGES of the storage finished files go to.
    "STORAGE": "default",
}

# The browser clients the widget can drive, and the endpoint each one talks to.
CLIENTS = {"flow.js": "flow", "resumable.js": "resumable"}

_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw]?)\s*$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(value):
    """'90', '90s', '15m', '6h', '2d', '1w' or a timedelta -> timedelta."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, int | float):
        return timedelta(seconds=value)
    match = _DURATION.match(str(value))
    if not match:
        raise ValueError(f"{value!r} is not a duration such as 90s, 15m, 6h or 2d")
    number, unit = match.groups()
    return timedelta(seconds=int(number) * _UNITS[unit])


class UploadSettings:
    def __getattr__(self, name):
        if name not in DEFAULTS:
            raise AttributeError(name)
        value = getattr(settings, f"UPLOADS_{name}", DEFAULTS[name])
        return getattr(self, f"_clean_{name.lower()}", lambda v: v)(value)

    def _clean_staging_dir(self, value):
        if not value:
            return Path(settings.BASE_DIR) / "var" / "staging"
        path = Path(value)
        if not path.is_absolute():
            raise ImproperlyConfigured(
                f"UPLOADS_STAGING_DIR must be an absolute path, not {value!r}."
            )
        return path

    def _clean_client(self, value):
        if value not in CLIENTS:
            raise ImproperlyConfigured(
                f"UPLOADS_CLIENT must be one of {', '.join(CLIENTS)}, not {value!r}."
            )
        return value

    def _clean_allowed_extensions(self, value):
        return frozenset(ext.lower().lstrip(".") for ext in value if ext.strip())

    def _clean_expiration(self, value):
        try:
            return parse_duration(value)
        except ValueError as exc:
            raise ImproperlyConfigured(f"UPLOADS_EXPIRATION: {exc}.") from exc

    def _clean_auth_recheck(self, value):
        try:
            return parse_duration(value)
        except ValueError as exc:
            raise ImproperlyConfigured(f"UPLOADS_AUTH_RECHECK: {exc}.") from exc

    def _clean_cleanup_grace(self, value):
        try:
            return parse_duration(value)
        except ValueError as exc:
            raise ImproperlyConfigured(f"UPLOADS_CLEANUP_GRACE: {exc}.") from exc


upload_settings = UploadSettings()
