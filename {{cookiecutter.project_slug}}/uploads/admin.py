from django.contrib import admin, messages
from django.contrib.admin.utils import quote
from django.template.defaultfilters import filesizeformat
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.cache import add_never_cache_headers
from django.utils.html import format_html
from django.utils.text import capfirst
from django.utils.translation import gettext, gettext_lazy, ngettext

from . import engine, tokens
from .errors import UploadError
from .fields import file_in_use
from .models import ReceivedRange, Upload, UploadToken


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
        "expiry",
    ]
    list_filter = ["status", "protocol", "created"]
    search_fields = ["filename", "owner__username", "owner__email"]
    date_hierarchy = "created"
    list_select_related = ["owner"]
    # The record mirrors bytes on disk: editing it by hand would break them, so
    # its page only shows it (has_change_permission), in words a person reads.
    fieldsets = [
        (None, {"fields": ["filename", "owner", "status", "error", "download"]}),
        (
            gettext_lazy("Bytes"),
            {"fields": ["human_size", "received", "received_summary", "sha256"]},
        ),
        (gettext_lazy("Dates"), {"fields": ["created", "updated", "expiry", "completed"]}),
        (
            gettext_lazy("As the client sent it"),
            {
                "fields": [
                    "protocol",
                    "client_id",
                    "relative_path",
                    "name",
                    "chunk_size",
                    "metadata",
                ]
            },
        ),
    ]
    readonly_fields = [name for _, options in fieldsets for name in options["fields"]]
    actions = ["cancel_uploads"]

    class Media:
        css = {"all": ["uploads/css/admin.css"]}

    def has_change_permission(self, request, obj=None):
        return False

    @admin.display(description=gettext_lazy("received"))
    def received(self, upload):
        if upload.progress is None:
            return gettext("%(size)s so far") % {"size": filesizeformat(upload.received_bytes)}
        return f"{filesizeformat(upload.received_bytes)} ({upload.progress:.0%})"

    @admin.display(description=gettext_lazy("received ranges"))
    def received_summary(self, upload):
        # A fragmented upload may hold a hundred thousand runs: their number
        # (counted on the index) and the first gap, never the list.
        runs = upload.received_ranges.all()
        count = runs.count()
        if not count:
            return gettext("none yet")
        first_gap = runs.filter(start=0).values_list("end", flat=True).first() or 0
        if count == 1 and first_gap == upload.size:
            return gettext("all of it, in one piece")
        return ngettext(
            "%(count)d piece; the first missing byte is at %(offset)s",
            "%(count)d pieces; the first missing byte is at %(offset)s",
            count,
        ) % {"count": count, "offset": filesizeformat(first_gap)}

    @admin.display(description=gettext_lazy("file"))
    def download(self, upload):
        if upload.status != Upload.Status.COMPLETE or not upload.file:
            return "—"
        return format_html('<a href="{}">{}</a>', upload.get_download_url(), upload.name)

    @admin.display(description=gettext_lazy("size"), ordering="size")
    def human_size(self, upload):
        # A tus client may defer the size until its last bytes.
        return gettext("not known yet") if upload.size is None else filesizeformat(upload.size)

    @admin.display(description=gettext_lazy("expires"), ordering="expires")
    def expiry(self, upload):
        # Only an unfinished upload expires; for the others the date means nothing.
        return upload.expires if upload.status == Upload.Status.UPLOADING else "—"

    @admin.display(description=gettext_lazy("progress"))
    def percent(self, upload):
        if upload.progress is None:
            return gettext("%(size)s so far") % {"size": filesizeformat(upload.received_bytes)}
        return f"{upload.progress:.0%}"

    def has_add_permission(self, request):
        return False

    def get_deleted_objects(self, objs, request):
        """
        What deleting these uploads deletes, for the confirmation page: the
        uploads, and their received runs only counted. Django's own fetches
        and lists every run, a hundred thousand lines for one fragmented
        upload. Should another model point at uploads, Django's is used.
        """
        relations = {related.related_model for related in Upload._meta.related_objects}
        if relations != {ReceivedRange}:
            return super().get_deleted_objects(objs, request)
        uploads = list(objs)
        to_delete = [
            format_html(
                '{}: <a href="{}">{}</a>',
                capfirst(Upload._meta.verbose_name),
                reverse("admin:uploads_upload_change", args=[quote(upload.pk)]),
                upload,
            )
            for upload in uploads
        ]
        model_count = {Upload._meta.verbose_name_plural: len(uploads)}
        runs = ReceivedRange.objects.filter(upload__in=uploads).count()
        if runs:
            model_count[ReceivedRange._meta.verbose_name_plural] = runs
        perms_needed = set() if self.has_delete_permission(request) else {Upload._meta.verbose_name}
        return to_delete, model_count, perms_needed, []

    def get_actions(self, request):
        actions = super().get_actions(request)
        if "delete_selected" in actions:
            # Deleting here always removes the files too (delete_queryset below).
            function, name, _ = actions["delete_selected"]
            actions["delete_selected"] = (
                function,
                name,
                gettext_lazy("Delete selected uploads and their files"),
            )
        return actions

    @admin.action(description=gettext_lazy("Cancel the selected unfinished uploads"))
    def cancel_uploads(self, request, queryset):
        cancelled = skipped = 0
        for upload in queryset.filter(status=Upload.Status.UPLOADING):
            try:
                engine.cancel(upload)
                cancelled += 1
            except UploadError:
                skipped += 1  # it finished in the meantime
        cancelled_words = ngettext(
            "%(count)d upload cancelled.", "%(count)d uploads cancelled.", cancelled
        )
        self.message_user(request, cancelled_words % {"count": cancelled}, messages.SUCCESS)
        if skipped:
            skipped_words = ngettext(
                "%(count)d had finished already.", "%(count)d had finished already.", skipped
            )
            self.message_user(request, skipped_words % {"count": skipped}, messages.WARNING)

    def delete_model(self, request, obj):
        self.delete_queryset(request, Upload.objects.filter(pk=obj.pk))

    def delete_queryset(self, request, queryset):
        """Records, staged bytes and stored files, except files a model still uses."""
        kept = []
        for upload in queryset:
            if upload.status == Upload.Status.PROCESSING:
                kept.append(upload.filename)
                continue
            try:
                if upload.status == Upload.Status.UPLOADING:
                    engine.cancel(upload)
            except UploadError:  # it reached its last byte in the meantime
                kept.append(upload.filename)
                continue
            if upload.file and not file_in_use(upload.file.name):
                upload.file.delete(save=False)
            upload.delete()
        if kept:
            self.message_user(
                request,
                gettext("Not deleted, being finished right now: %(names)s.")
                % {"names": ", ".join(kept)},
                messages.WARNING,
            )


@admin.register(UploadToken)
class UploadTokenAdmin(admin.ModelAdmin):
    """
    API tokens: the token is shown once, when it is made; revoking keeps the record.

    A token uploads as its owner, so only a superuser may make one for somebody
    else: any other staff user with the "add" permission makes tokens for
    themselves and sees only their own. The new token is shown on the page that
    answers the form, never through the messages framework, whose cookie is
    signed but not encrypted.
    """

    list_display = ["name", "owner", "prefix", "created", "last_used", "expires", "revoked"]
    list_filter = ["created", "expires", "revoked"]
    search_fields = ["name", "owner__username", "prefix"]
    list_select_related = ["owner"]
    autocomplete_fields = ["owner"]
    fields = ["name", "owner", "expires", "prefix", "created", "last_used", "revoked"]
    readonly_fields = ["prefix", "created", "last_used", "revoked"]
    actions = ["revoke"]

    def get_queryset(self, request):
        tokens = super().get_queryset(request)
        return tokens if request.user.is_superuser else tokens.filter(owner=request.user)

    def get_fields(self, request, obj=None):
        if request.user.is_superuser:
            return self.fields
        return [name for name in self.fields if name != "owner"]

    def get_readonly_fields(self, request, obj=None):
        # A token's owner never changes: it would hand the owner's uploads to someone else.
        return self.readonly_fields + (["owner"] if obj is not None else [])

    def save_model(self, request, obj, form, change):
        if not change:
            if not request.user.is_superuser:
                obj.owner = request.user
            # Kept on the request for response_add(), which shows it once.
            request._new_upload_token = tokens.issue(obj)
        super().save_model(request, obj, form, change)

    def response_add(self, request, obj, post_url_continue=None):
        token = getattr(request, "_new_upload_token", None)
        if token is None:
            return super().response_add(request, obj, post_url_continue)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": gettext("API token %(name)r") % {"name": obj.name},
            "record": obj,
            "token": token,
        }
        response = TemplateResponse(request, "admin/uploads/uploadtoken/created.html", context)
        # The token is on this page only: never kept by a browser or a proxy.
        add_never_cache_headers(response)
        return response

    @admin.action(description=gettext_lazy("Revoke the selected tokens"))
    def revoke(self, request, queryset):
        count = tokens.revoke(queryset)
        words = ngettext("%(count)d token revoked.", "%(count)d tokens revoked.", count)
        self.message_user(request, words % {"count": count}, messages.SUCCESS)
