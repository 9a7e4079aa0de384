from django.urls import include, path
from django.views.decorators.csrf import csrf_exempt

from . import api, views
from .protocols.content_range import CompleteView, ContentRangeView
from .protocols.flowjs import FlowJS
from .protocols.resumablejs import ResumableJS
from .protocols.tus import TusView

app_name = "uploads"

# The endpoints check CSRF themselves (access.UploadEndpoint), from the header
# only, so that Django never parses a chunk's body before they stream it.
urlpatterns = [
    path("", views.index, name="index"),
    path("<uuid:upload_id>/download/", views.download, name="download"),
    path("flow/", csrf_exempt(FlowJS.as_view()), name="flow"),
    path("resumable/", csrf_exempt(ResumableJS.as_view()), name="resumable"),
    path("tus/", csrf_exempt(TusView.as_view()), name="tus-create"),
    # <str:...>, not <uuid:...>: a malformed id gets tus's JSON 404, not Django's page.
    path("tus/<str:upload_id>", csrf_exempt(TusView.as_view()), name="tus"),
    path("chunked/", csrf_exempt(ContentRangeView.as_view()), name="chunked"),
    path("chunked/complete/", csrf_exempt(CompleteView.as_view()), name="chunked-complete"),
    # Straight into the bucket: what Uppy's AwsS3 plugin calls (uploads/direct/).
    path("companion/", include("uploads.direct.urls")),
    path("api/uploads/", csrf_exempt(api.UploadListView.as_view()), name="api-list"),
    path(
        "api/uploads/<uuid:upload_id>/",
        csrf_exempt(api.UploadDetailView.as_view()),
        name="api-detail",
    ),
]
