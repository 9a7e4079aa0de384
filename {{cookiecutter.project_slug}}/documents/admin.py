from django.contrib import admin
from django.utils.html import format_html
from django.utils.translation import gettext_lazy

from uploads.forms import with_uploader

from .models import Document


@admin.register(Document)
class DocumentAdmin(admin.ModelAdmin):
    list_display = ["title", "owner", "file_link", "created"]
    search_fields = ["title", "owner__username"]
    list_filter = ["created"]
    readonly_fields = ["owner", "created"]

    class Media:
        css = {"all": ["uploads/css/admin.css"]}

    @admin.display(description=gettext_lazy("file"), ordering="file")
    def file_link(self, obj):
        # The download view, not the storage URL: media is not served at /media/.
        if not obj.file:
            return "-"
        return format_html('<a href="{}">{}</a>', obj.get_download_url(), obj.filename)

    def get_form(self, request, obj=None, **kwargs):
        # The file field accepts only the admin user's own finished uploads.
        return with_uploader(super().get_form(request, obj, **kwargs), request.user)

    def save_model(self, request, obj, form, change):
        if not change:
            obj.owner = request.user
        super().save_model(request, obj, form, change)
