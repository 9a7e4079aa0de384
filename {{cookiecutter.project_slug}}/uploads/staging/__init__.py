"""
Where the bytes of unfinished uploads live until they are finished.

`backend` is the staging backend UPLOADS_STAGING names, built on first use:
the engine talks to it only through the contract in base.py. Backends:

    local   one sparse file per upload in UPLOADS_STAGING_DIR (local.py)
"""

from django.core.signals import setting_changed
from django.dispatch import receiver
from django.utils.functional import LazyObject, empty
from django.utils.module_loading import import_string

from ..conf import upload_settings
from .base import BLOCK_SIZE, Gone, StagingBackend, drain, has_more

BACKENDS = {"local": "uploads.staging.local.LocalStaging"}

__all__ = ["BACKENDS", "BLOCK_SIZE", "Gone", "StagingBackend", "backend", "drain", "has_more"]


class ChosenBackend(LazyObject):
    def _setup(self):
        # upload_settings refuses a name that is not in BACKENDS (uploads.E011).
        self._wrapped = import_string(BACKENDS[upload_settings.STAGING])()


backend = ChosenBackend()


@receiver(setting_changed)
def _choose_again(setting, **kwargs):
    if setting == "UPLOADS_STAGING":
        backend._wrapped = empty
