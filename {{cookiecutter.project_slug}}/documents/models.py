from django.conf import settings
from django.db import models
from django.urls import reverse

from uploads.fields import ResumableFileField


class Document(models.Model):
    """A title and a file of any size, uploaded in chunks by the form's widget."""

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="documents"
    )
    title = models.CharField(max_length=200)
    # The same stored file as the upload it came from: see uploads/fields.py.
    file = ResumableFileField()
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created"]

    def __str__(self):
        return self.title

    @property
    def filename(self):
        return self.file.name.rsplit("/", 1)[-1]

    def get_download_url(self):
        return reverse("documents:download", args=[self.pk])
