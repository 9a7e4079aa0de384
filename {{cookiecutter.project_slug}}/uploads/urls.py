from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from . import api, views
from .protocols.flowjs import FlowJS
from .protocols.resumablejs import ResumableJS

app_name = "uploads"

# The endpoints check CSRF themselves (access.UploadEndpoint), from the header
# only, so that Django never parses a chunk's body before they stream it.
urlpatterns = [
    path("", views.index, name="index"),
    path("<uuid:upload_id>/download/", views.download, name="download"),
    path("flow/", csrf_exempt(FlowJS.as_view()), name="flow"),
    path("resumable/", csrf_exempt(ResumableJS.as_view()), name="resumable"),
    path("api/uploads/", csrf_exempt(api.UploadListView.as_view()), name="api-list"),
    path(
        "api/uploads/<uuid:upload_id>/",
        csrf_exempt(api.UploadDetailView.as_view()),
        name="api-detail",
    ),
]
