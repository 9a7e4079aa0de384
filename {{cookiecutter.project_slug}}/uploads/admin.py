from django.contrib import admin
from django.template.defaultfilters import filesizeformat

from .models import Upload


@admin.register(Upload)
class UploadAdmin(admin.ModelAdmin):
    list_display = [
        "filename",
        "owner",
        "human_size",
        "percent",
        "status",
        "protocol",
        "created",
        "expires",
    ]
    list_filter = ["status", "protocol", "created"]
    search_fields = ["filename", "owner__username", "owner__email"]
    date_hierarchy = "created"
    list_select_related = ["owner"]
    # The record mirrors bytes on disk: editing it by hand would break them.
    readonly_fields = [field.name for field in Upload._meta.fields]

    @admin.display(description="size", ordering="size")
    def human_size(self, upload):
        return filesizeformat(upload.size)

    @admin.display(description="progress")
    def percent(self, upload):
        return f"{upload.progress:.0%}"

    def has_add_permission(self, request):
        return False
