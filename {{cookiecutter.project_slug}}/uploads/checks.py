"""System checks for deployments that would lose or corrupt uploads."""

import os

from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.core.files.storage import FileSystemStorage, storages

from .conf import upload_settings


@checks.register(checks.Tags.compatibility)
def check_staging(app_configs, **kwargs):
    errors = []
    staging = upload_settings.STAGING_DIR
    media = getattr(settings, "MEDIA_ROOT", "")
    if not staging.is_absolute():
        errors.append(
            checks.Error(
                "UPLOADS_STAGING_DIR must be an absolute path.",
                hint="A folder every worker can write, e.g. /var/lib/site/staging.",
                id="uploads.E001",
            )
        )
        return errors
    storage = storages[upload_settings.STORAGE]
    if isinstance(storage, FileSystemStorage) and media:
        # Finishing an upload renames the staging file into MEDIA_ROOT; across
        # file systems that rename becomes a full copy of the file.
        try:
            staging.mkdir(parents=True, exist_ok=True)
            os.makedirs(media, exist_ok=True)
            if os.stat(staging).st_dev != os.stat(media).st_dev:
                errors.append(
                    checks.Warning(
                        "UPLOADS_STAGING_DIR and MEDIA_ROOT are on different file systems: "
                        "every finished upload will be copied instead of renamed.",
                        hint="Put the staging folder on the same file system as MEDIA_ROOT.",
                        id="uploads.W001",
                    )
                )
        except OSError as exc:
            errors.append(
                checks.Error(
                    f"The staging folder {staging} cannot be created: {exc}.",
                    id="uploads.E002",
                )
            )
    if not upload_settings.MAX_BYTES or upload_settings.MAX_BYTES <= 0:
        errors.append(
            checks.Error("UPLOADS_MAX_BYTES must be a positive number of bytes.", id="uploads.E003")
        )
    # Said at startup rather than as a 500 on the first request that reads them.
    for name in ("CLIENT", "EXPIRATION", "CLEANUP_GRACE", "AUTH_RECHECK"):
        try:
            getattr(upload_settings, name)
        except ImproperlyConfigured as exc:
            errors.append(checks.Error(str(exc), id="uploads.E004"))
    return errors
