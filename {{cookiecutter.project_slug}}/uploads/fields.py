"""
ResumableFileField: a model FileField whose form uploads in the background.

The form sends the finished upload's id (uploads.forms checks it is complete
and the user's own); the field then stores the Upload's own storage name. The
file is not copied: the object and the Upload point at the same stored file,
which is why deleting an upload's file (the admin action) skips files that a
ResumableFileField still uses.
"""

from django.apps import apps
from django.db import models

from .models import Upload, _storage


class ResumableFileField(models.FileField):
    def __init__(self, *args, **kwargs):
        # The uploads' own storage: the stored name must mean the same file.
        kwargs.setdefault("storage", _storage)
        kwargs.setdefault("max_length", 500)
        super().__init__(*args, **kwargs)

    def formfield(self, **kwargs):
        from .forms import ResumableFileFormField
        from .widgets import ResumableFileWidget

        # The admin hands every FileField its AdminFileWidget: this field's
        # value is an upload id, which only our widget can fill.
        widget = kwargs.get("widget")
        if not (isinstance(widget, type) and issubclass(widget, ResumableFileWidget)):
            kwargs["widget"] = ResumableFileWidget
        return super().formfield(**{"form_class": ResumableFileFormField, **kwargs})

    def save_form_data(self, instance, data):
        if isinstance(data, Upload):
            data = data.file.name
        super().save_form_data(instance, data)


def file_in_use(name):
    """Whether any model's ResumableFileField refers to this stored name."""
    return file_user(name) is not None


def file_user(name):
    """The first object whose ResumableFileField refers to this stored name, or None."""
    if not name:
        return None
    for model in apps.get_models():
        for field in model._meta.get_fields():
            if isinstance(field, ResumableFileField):
                found = model._default_manager.filter(**{field.name: name}).first()
                if found is not None:
                    return found
    return None
