"""
The form side of ResumableFileField: the submitted value is an upload's id,
accepted only when that upload is complete and belongs to the user.

The field has to know the user: forms built with UploaderFormMixin take
`user=request.user`; for the admin, `with_uploader(form_class, user)` does it.
"""

import uuid

from django import forms
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.template.defaultfilters import filesizeformat
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from .models import Upload
from .widgets import ResumableFileWidget


class ResumableFileFormField(forms.FileField):
    widget = ResumableFileWidget
    default_error_messages = {
        "required": _("Choose a file and wait until it has finished uploading."),
        "missing": _("This upload does not exist or is not yours."),
        "unfinished": _(
            "“%(name)s” has not finished uploading yet (%(done)s of %(size)s). "
            "Wait until it is complete, then save again."
        ),
        "processing": _(
            "“%(name)s” is uploaded and being checked (SHA-256): save again in a moment."
        ),
        "ended": _("“%(name)s” can no longer be used (%(status)s): upload the file again."),
    }

    def __init__(self, *, max_length=None, allow_empty_file=True, **kwargs):
        self.user = None  # set per form by UploaderFormMixin
        super().__init__(max_length=max_length, allow_empty_file=allow_empty_file, **kwargs)

    def to_python(self, data):
        if data in self.empty_values:
            return None
        if self.user is None:
            raise ImproperlyConfigured(
                "A ResumableFileField's form needs the uploading user: use UploaderFormMixin "
                "and pass user=request.user (or uploads.forms.with_uploader in the admin)."
            )
        try:
            upload = Upload.objects.get(pk=uuid.UUID(str(data)), owner=self.user)
        except (ValueError, Upload.DoesNotExist):
            raise ValidationError(self.error_messages["missing"], code="missing") from None
        if upload.status == Upload.Status.PROCESSING:
            raise ValidationError(
                self.error_messages["processing"],
                code="processing",
                params={"name": upload.filename},
            )
        if upload.status == Upload.Status.UPLOADING:
            raise ValidationError(
                self.error_messages["unfinished"],
                code="unfinished",
                params={
                    "name": upload.filename,
                    "done": filesizeformat(upload.received_bytes),
                    "size": gettext("a size not known yet")
                    if upload.size is None
                    else filesizeformat(upload.size),
                },
            )
        if upload.status != Upload.Status.COMPLETE or not upload.file:
            raise ValidationError(
                self.error_messages["ended"],
                code="ended",
                params={"name": upload.filename, "status": upload.get_status_display()},
            )
        return upload

    def bound_data(self, data, initial):
        return data or initial

    def has_changed(self, initial, data):
        return not self.disabled and bool(data)


class UploaderFormMixin:
    """Gives every ResumableFileFormField of the form the user who uploads."""

    uploader = None

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        user = user or self.uploader
        for field in self.fields.values():
            if isinstance(field, ResumableFileFormField):
                field.user = field.widget.user = user


def with_uploader(form_class, user):
    """form_class, bound to `user`: for ModelAdmin.get_form, which takes no arguments."""
    base = (
        form_class
        if issubclass(form_class, UploaderFormMixin)
        else type(form_class.__name__, (UploaderFormMixin, form_class), {})
    )
    return type(form_class.__name__, (base,), {"uploader": user})
