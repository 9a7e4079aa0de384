"""The JSON an upload is shown as, in chunk responses and the status API."""

from django.urls import reverse


def upload_json(upload):
    complete = upload.status == upload.Status.COMPLETE
    return {
        "id": str(upload.id),
        "filename": upload.filename,
        "name": upload.name,
        "protocol": upload.protocol,
        "status": upload.status,
        "size": upload.size,
        "received_bytes": upload.received_bytes,
        "sha256": upload.sha256 if complete else None,
        "download_url": upload.get_download_url() if complete else None,
        "url": reverse("uploads:api-detail", args=[upload.id]),
        "error": upload.error or None,
        "created": upload.created.isoformat(),
        "updated": upload.updated.isoformat(),
        "expires": upload.expires.isoformat(),
        "completed": upload.completed.isoformat() if upload.completed else None,
    }
