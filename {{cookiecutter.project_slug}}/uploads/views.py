"""The upload pages and downloads."""

from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404, render
from django.urls import reverse

from .conf import upload_settings
from .models import Upload


@login_required
def index(request):
    return render(
        request,
        "uploads/index.html",
        {
            "uploads": Upload.objects.filter(owner=request.user)[:100],
            "max_bytes": upload_settings.MAX_BYTES,
            "allowed_extensions": sorted(upload_settings.ALLOWED_EXTENSIONS),
            "upload_config": {
                "target": reverse("uploads:flow"),
                "chunkSize": upload_settings.CHUNK_SIZE,
                "simultaneousChunks": upload_settings.SIMULTANEOUS_CHUNKS,
            },
        },
    )


@login_required
def download(request, upload_id):
    """A complete file, to its owner only, always as an attachment."""
    upload = get_object_or_404(Upload, pk=upload_id, owner=request.user)
    if upload.status != Upload.Status.COMPLETE or not upload.file:
        raise Http404("this upload is not complete")
    return FileResponse(upload.file.open("rb"), as_attachment=True, filename=upload.name)
