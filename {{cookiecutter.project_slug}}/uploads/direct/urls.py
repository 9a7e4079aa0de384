"""The Companion-compatible routes, mounted at /uploads/companion/ (uploads/urls.py)."""

from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from . import views

# Exempt from the middleware: DirectEndpoint checks where a request comes from itself.
urlpatterns = [
    path("s3/multipart", csrf_exempt(views.CreateMultipart.as_view()), name="direct-create"),
    path(
        "s3/multipart/<str:upload_id>",
        csrf_exempt(views.MultipartUpload.as_view()),
        name="direct-upload",
    ),
    path(
        "s3/multipart/<str:upload_id>/complete",
        csrf_exempt(views.CompleteMultipart.as_view()),
        name="direct-complete",
    ),
    path(
        "s3/multipart/<str:upload_id>/<str:part_number>",
        csrf_exempt(views.SignPart.as_view()),
        name="direct-part",
    ),
    path("s3/params", csrf_exempt(views.SignedPost.as_view()), name="direct-params"),
]
