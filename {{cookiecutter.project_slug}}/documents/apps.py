from django.apps import AppConfig


class DocumentsConfig(AppConfig):
    """A demo of ResumableFileField: documents whose file uploads in the background."""

    name = "documents"
    default_auto_field = "django.db.models.BigAutoField"
