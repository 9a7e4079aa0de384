"""
The upload widget: a drop zone whose files go up in chunks in the background.

The page (`/uploads/`) and ResumableFileWidget (any form) draw the same
template and run the same native ES modules, entered at uploads/js/main.js.
Their settings are passed in a JSON <script> inside the widget, built here
from uploads.conf, so that no number is hard-coded in JavaScript.
"""

import uuid

from django import forms
from django.conf import settings
from django.db.models.fields.files import FieldFile
from django.shortcuts import resolve_url
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


def widget_config(*, single=False):
    """What the widget's script needs to know, as JSON-ready data."""
    protocol = CLIENTS[upload_settings.CLIENT]
    return {
        # "flow" or "resumable": which client drives the widget, and the
        # protocol its uploads show in the status API.
        "protocol": protocol,
        "target": reverse(f"uploads:{protocol}"),
        "api": reverse("uploads:api-list"),
        "chunkSize": upload_settings.CHUNK_SIZE,
        "simultaneousChunks": upload_settings.SIMULTANEOUS_CHUNKS,
        "maxBytes": upload_settings.MAX_BYTES,
        "allowedExtensions": sorted(upload_settings.ALLOWED_EXTENSIONS),
        "single": single,
        # Where a person whose session ended logs in again.
        "loginUrl": resolve_url(settings.LOGIN_URL),
    }


def widget_media():
    return forms.Media(
        css={"all": ["uploads/css/uploads.css"]},
        js=[
            # window.gettext for the widget's words, before its module runs.
            reverse("javascript-catalog"),
            CLIENT_SCRIPTS[upload_settings.CLIENT],
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
