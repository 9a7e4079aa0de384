"""
The site's settings plus receivers that append every upload signal to the file
named by SIGNAL_LOG, one line each, so a test can count them across gunicorn
workers and management commands. Tests pass it as DJANGO_SETTINGS_MODULE.
"""

import os

from config.settings import *  # noqa: F403
from uploads.signals import upload_completed, upload_expired, upload_failed, upload_started

SIGNAL_LOG = os.environ["SIGNAL_LOG"]


def _recorder(name):
    def record(sender, upload, **kwargs):
        # O_APPEND: one short write per line, whole even with several writers.
        fd = os.open(SIGNAL_LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, f"{name} {upload.pk}\n".encode())
        finally:
            os.close(fd)

    return record


_RECEIVERS = {
    name: _recorder(name)
    for name in ("upload_started", "upload_completed", "upload_failed", "upload_expired")
}
upload_started.connect(_RECEIVERS["upload_started"])
upload_completed.connect(_RECEIVERS["upload_completed"])
upload_failed.connect(_RECEIVERS["upload_failed"])
upload_expired.connect(_RECEIVERS["upload_expired"])
