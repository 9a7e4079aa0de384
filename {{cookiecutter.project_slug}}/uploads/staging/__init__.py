"""
Where the bytes of unfinished uploads live until they are finished.

`backend` is the staging backend UPLOADS_STAGING names, built on first use:
the engine talks to it only through the contract in base.py. Backends:

    local   one sparse file per upload in UPLOADS_STAGING_DIR (local.py)
    s3      a multipart upload and piece objects in the bucket (s3.py)
"""

from django.core.signals import setting_changed
from django.dispatch import receiver
from django.utils.functional import LazyObject, empty
from django.utils.module_loading import import_string

from ..conf import upload_settings
from .base import BLOCK_SIZE, Gone, StagingBackend, drain, has_more

BACKENDS = {
    "local": "uploads.staging.local.LocalStaging",
    "s3": "uploads.staging.s3.S3Staging",
}
# Settings a backend reads when it is built: a change builds it again.
BUILT_FROM = ("UPLOADS_STAGING", "AWS_S3_ENDPOINT_URL", "AWS_S3_REGION_NAME")

__all__ = [
    "BACKENDS",
    "BLOCK_SIZE",
    "Gone",
    "StagingBackend",
    "backend",
    "drain",
    "for_upload",
    "has_more",
]


class ChosenBackend(LazyObject):
    def _setup(self):
        # upload_settings refuses a name that is not in BACKENDS (uploads.E011).
        self._wrapped = import_string(BACKENDS[upload_settings.STAGING])()


backend = ChosenBackend()


def for_upload(upload):
    """
    Where this upload's bytes are kept until it is finished: the chosen
    backend, except for a direct upload (protocol s3), whose bytes went
    straight into the bucket (uploads/direct/bucket.py).
    """
    if upload.protocol == "s3":
        from ..direct.bucket import direct_bucket  # it builds on this package

        return direct_bucket
    return backend


@receiver(setting_changed)
def _choose_again(setting, **kwargs):
    if setting in BUILT_FROM:
        backend._wrapped = empty
