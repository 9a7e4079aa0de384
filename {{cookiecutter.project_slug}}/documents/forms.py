from django import forms

from uploads.forms import UploaderFormMixin

from .models import Document


class DocumentForm(UploaderFormMixin, forms.ModelForm):
    class Meta:
        model = Document
        fields = ["title", "file"]
