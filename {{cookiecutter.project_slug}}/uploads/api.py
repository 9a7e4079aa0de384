"""The status API: the user's uploads as JSON, and cancelling one."""

from django.core.paginator import EmptyPage, PageNotAnInteger, Paginator
from django.http import HttpResponse, JsonResponse
from django.utils.translation import gettext

from . import engine
from .access import UploadEndpoint
from .direct.verifying import notice_posted
from .errors import BadRequest, UploadNotFound
from .models import Upload
from .representation import upload_json

PAGE_SIZE = 50


class UploadListView(UploadEndpoint):
    http_method_names = ["get"]

    def get(self, request):
        paginator = Paginator(Upload.objects.filter(owner=self.user), PAGE_SIZE)
        try:
            page = paginator.page(request.GET.get("page", 1))
        except PageNotAnInteger:
            raise BadRequest(gettext("page must be a whole number")) from None
        except EmptyPage:
            raise UploadNotFound(gettext("no such page")) from None
        base = request.path
        return JsonResponse(
            {
                "count": paginator.count,
                "next": f"{base}?page={page.next_page_number()}" if page.has_next() else None,
                "previous": (
                    f"{base}?page={page.previous_page_number()}" if page.has_previous() else None
                ),
                "results": [upload_json(upload) for upload in page],
                # What the user holds against their limits (UPLOADS_USER_QUOTA...).
                "usage": engine.quotas.usage(self.user).as_json(),
            }
        )


class UploadDetailView(UploadEndpoint):
    http_method_names = ["get", "delete"]

    def get(self, request, upload_id):
        upload = self.get_upload(upload_id)
        # A client waiting on a finish whose process died is what notices it first.
        engine.take_over_if_stalled(upload)
        # And a file it sent into the bucket with a signed POST, which tells nobody.
        notice_posted(upload)
        return JsonResponse(upload_json(upload))

    def delete(self, request, upload_id):
        """Cancel an unfinished upload; delete a complete one's file."""
        upload = self.get_upload(upload_id)
        if upload.status in (Upload.Status.COMPLETE, Upload.Status.DELETED):
            engine.delete_file(upload)
        else:
            engine.cancel(upload)
        return HttpResponse(status=204)
