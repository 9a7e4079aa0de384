from django.contrib import admin

from uploads.forms import with_uploader

from .models import Document


@admin.register(Document)
class DocumentAdmin(admin.ModelAdmin):
    list_display = ["title", "owner", "file", "created"]
    search_fields = ["title", "owner__username"]
    list_filter = ["created"]
    readonly_fields = ["owner", "created"]

    def get_form(self, request, obj=None, **kwargs):
        # The file field accepts only the admin user's own finished uploads.
        return with_uploader(super().get_form(request, obj, **kwargs), request.user)

    def save_model(self, request, obj, form, change):
        if not change:
            obj.owner = request.user
        super().save_model(request, obj, form, change)
