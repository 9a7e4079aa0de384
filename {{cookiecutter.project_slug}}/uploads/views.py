"""The upload pages and downloads."""

from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404, render

from .models import Upload
from .widgets import widget_config, widget_media


@login_required
def index(request):
    uploads = Upload.objects.filter(owner=request.user)[:100]
    return render(
        request,
        "uploads/index.html",
        {
            "uploads": uploads,
            "unfinished": sum(upload.status == Upload.Status.UPLOADING for upload in uploads),
            "upload_config": widget_config(),
            "media": widget_media(),
        },
    )


@login_required
def download(request, upload_id):
    """A complete file, to its owner (or staff who may view uploads), always as an attachment."""
    # Staff who may view uploads in the admin follow its file links here too.
    uploads = Upload.objects.all()
    if not request.user.has_perm("uploads.view_upload"):
        uploads = uploads.filter(owner=request.user)
    upload = get_object_or_404(uploads, pk=upload_id)
    if upload.status != Upload.Status.COMPLETE or not upload.file:
        raise Http404("this upload is not complete")
    return FileResponse(upload.file.open("rb"), as_attachment=True, filename=upload.name)
