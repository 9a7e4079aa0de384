"""The upload pages and downloads."""

from urllib.parse import quote

from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.core.files.storage import FileSystemStorage
from django.db.models import Case, Value, When
from django.http import Http404, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.utils.http import content_disposition_header
from storages.backends.s3 import S3Storage

from . import tokens
from .access import error_response
from .conf import upload_settings
from .downloads import file_response
from .errors import NotAuthenticated
from .models import Upload
from .widgets import widget_config, widget_media


@login_required
def index(request):
    # Unfinished uploads first: after a reload they are what the person
    # came back for.
    uploads = Upload.objects.filter(owner=request.user).order_by(
        Case(When(status=Upload.Status.UPLOADING, then=Value(0)), default=Value(1)), "-created"
    )[:100]
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


def download(request, upload_id):
    """
    A complete file, to its owner (or staff who may view uploads), always as an
    attachment, with a session or an API token (Authorization: Bearer), whole
    or one byte range (downloads.py).
    """
    token = tokens.bearer_token(request)
    if token is not None:
        try:
            user = tokens.authenticate(token)
        except NotAuthenticated as exc:
            return error_response(exc)
    elif request.user.is_authenticated:
        user = request.user
    else:
        return redirect_to_login(request.get_full_path())
    # Staff who may view uploads in the admin follow its file links here too.
    uploads = Upload.objects.all()
    if not user.has_perm("uploads.view_upload"):
        uploads = uploads.filter(owner=user)
    upload = get_object_or_404(uploads, pk=upload_id)
    if upload.status != Upload.Status.COMPLETE or not upload.file:
        raise Http404("this upload is not complete")
    # A file in MEDIA_ROOT behind nginx: nginx serves it (and its ranges) from
    # its internal location, so no worker thread streams it. A bucket serves
    # its own files: the browser is sent there.
    if upload_settings.ACCEL_REDIRECT and isinstance(upload.file.storage, FileSystemStorage):
        return accel_redirect(upload)
    if isinstance(upload.file.storage, S3Storage):
        return bucket_redirect(upload)
    return file_response(request, upload.file, upload.name, etag=f'"{upload.sha256}"')


# Seconds a download link into the bucket works: long enough to follow the
# redirect, short enough that a copied link soon stops working. A download
# manager that resumes later asks this page again and gets a fresh one.
SIGNED_URL_LIFE = 300


def bucket_redirect(upload):
    """A redirect to a signed URL of the bucket, which answers with the stored name
    as an attachment and serves Range requests itself."""
    url = upload.file.storage.url(
        upload.file.name,
        parameters={"ResponseContentDisposition": content_disposition_header(True, upload.name)},
        expire=SIGNED_URL_LIFE,
    )
    return HttpResponseRedirect(url)


def accel_redirect(upload):
    """An empty answer that tells nginx which file to send, with the headers it keeps."""
    response = HttpResponse(content_type="application/octet-stream")
    response["Content-Disposition"] = content_disposition_header(True, upload.name)
    location = upload_settings.ACCEL_REDIRECT.rstrip("/")
    response["X-Accel-Redirect"] = f"{location}/{quote(upload.file.name)}"
    return response
