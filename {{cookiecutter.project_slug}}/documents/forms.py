from django import forms
from django.utils.translation import gettext_lazy as _

from uploads.forms import UploaderFormMixin

from .models import Document


class DocumentForm(UploaderFormMixin, forms.ModelForm):
    class Meta:
        model = Document
        fields = ["title", "file"]
        # Here rather than as the model's verbose names: those would need a migration.
        labels = {"title": _("Title"), "file": _("File")}
