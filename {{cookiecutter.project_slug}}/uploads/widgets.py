"""
The upload widget: a drop zone whose files go up in chunks in the background.

The page (`/uploads/`) and ResumableFileWidget (any form) draw the same
template and run the same native ES modules, entered at uploads/js/main.js.
Their settings are passed in a JSON <script> inside the widget, built here
from uploads.conf, so that no number is hard-coded in JavaScript.

In direct mode (UPLOADS_DIRECT with a bucket) the widget sends straight to the
bucket instead, through Uppy's AwsS3 plugin and the site's Companion-compatible
routes (uploads/js/drivers/s3.js): the same rows, buttons and resuming.
"""

import uuid

from django import forms
from django.conf import settings
from django.db.models.fields.files import FieldFile
from django.shortcuts import resolve_url
from django.templatetags.static import static
from django.urls import reverse

from .conf import CLIENTS, upload_settings
from .models import Upload
from .representation import upload_json

# The vendored library each client loads (uploads/static/uploads/vendor/): a
# classic script defining a global, so it comes before the widget's module,
# which (like every module) runs once the page is parsed.
CLIENT_SCRIPTS = {
    "flow.js": "uploads/vendor/flow.js/flow.min.js",
    "resumable.js": "uploads/vendor/resumable.js/resumable.js",
}


# The vendored Uppy bundle (an ES module) that the s3 driver imports itself.
UPPY_MODULE = "uploads/vendor/uppy/uppy.min.mjs"
# S3's smallest part but the last: a smaller UPLOADS_CHUNK_SIZE is raised to it.
MIN_PART_SIZE = 5 * 1024**2


def direct_mode():
    """Whether the widget sends straight to the bucket: UPLOADS_DIRECT, and a bucket to send to."""
    return bool(upload_settings.DIRECT and settings.AWS_STORAGE_BUCKET_NAME)


def widget_config(*, single=False):
    """What the widget's script needs to know, as JSON-ready data."""
    if direct_mode():
        return {
            **_common_config(single),
            # Uploads of the s3 protocol, sent by Uppy's AwsS3 plugin to the
            # routes under <companion>/s3/, parts of chunkSize bytes.
            "protocol": "s3",
            "companion": reverse("uploads:index") + "companion",
            "uppy": static(UPPY_MODULE),
            "chunkSize": max(upload_settings.CHUNK_SIZE, MIN_PART_SIZE),
        }
    protocol = CLIENTS[upload_settings.CLIENT]
    return {
        **_common_config(single),
        # "flow" or "resumable": which client drives the widget, and the
        # protocol its uploads show in the status API.
        "protocol": protocol,
        "target": reverse(f"uploads:{protocol}"),
        "chunkSize": upload_settings.CHUNK_SIZE,
    }


def _common_config(single):
    return {
        "api": reverse("uploads:api-list"),
        "simultaneousChunks": upload_settings.SIMULTANEOUS_CHUNKS,
        "maxBytes": upload_settings.MAX_BYTES,
        "allowedExtensions": sorted(upload_settings.ALLOWED_EXTENSIONS),
        "single": single,
        # Where a person whose session ended logs in again.
        "loginUrl": resolve_url(settings.LOGIN_URL),
    }


def widget_media():
    # In direct mode the s3 driver imports Uppy itself: no classic script.
    client = [] if direct_mode() else [CLIENT_SCRIPTS[upload_settings.CLIENT]]
    return forms.Media(
        css={"all": ["uploads/css/uploads.css"]},
        js=[
            # window.gettext for the widget's words, before its module runs.
            reverse("javascript-catalog"),
            *client,
            forms.Script("uploads/js/main.js", type="module"),
        ],
    )


def describe_file(field_file):
    """A stored file as a person reads it: its name, size and where to download it."""
    try:
        size = field_file.size
    except OSError:  # gone from storage: say so by showing no size
        size = None
    # The object's own download view (documents link there), else the upload's:
    # storage URLs are not served (see uploads.views.download).
    instance = field_file.instance
    if hasattr(instance, "get_download_url"):
        url = instance.get_download_url()
    else:
        upload = Upload.objects.filter(file=field_file.name).first()
        url = upload.get_download_url() if upload else ""
    return {"name": field_file.name.rsplit("/", 1)[-1], "size": size, "url": url}


class ResumableFileWidget(forms.Widget):
    """
    A hidden input holding the finished upload's id, and the drop zone that
    fills it. The form field (uploads.forms) checks the id on the server.
    """

    template_name = "uploads/widgets/resumable_file.html"
    user = None  # the uploading user, set by uploads.forms.UploaderFormMixin

    @property
    def media(self):
        # A property, so that UPLOADS_CLIENT is read when the page is drawn.
        return widget_media()

    def get_context(self, name, value, attrs):
        context = super().get_context(name, value, attrs)
        current = value if isinstance(value, FieldFile) and value else None
        upload_id = "" if current is not None or value is None else str(value)
        config = widget_config(single=True)
        # A form shown again with an error keeps the file already uploaded.
        uploaded = self.finished_upload(upload_id)
        if uploaded is not None:
            config["uploaded"] = upload_json(uploaded)
        context["widget"].update(
            {
                "config": config,
                "config_id": f"{context['widget']['attrs'].get('id', name)}-config",
                # An existing file (editing an object) is shown, not resent.
                "current": current and describe_file(current),
                "upload_id": upload_id,
            }
        )
        return context

    def finished_upload(self, upload_id):
        if not upload_id or self.user is None:
            return None
        try:
            return Upload.objects.filter(
                pk=uuid.UUID(upload_id), owner=self.user, status=Upload.Status.COMPLETE
            ).first()
        except ValueError:
            return None

    def format_value(self, value):
        return value

    def value_from_datadict(self, data, files, name):
        return data.get(name)
