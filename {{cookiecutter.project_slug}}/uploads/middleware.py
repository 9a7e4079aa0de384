"""
The database unavailable, on the HTML pages: a plain 503 that says to retry,
not a 500 that reads as permanent. The upload endpoints and the status API
answer JSON of their own (access.UploadEndpoint).
"""

from django.db import InterfaceError, OperationalError
from django.http import HttpResponse
from django.utils.translation import gettext

from .errors import DatabaseUnavailable


class DatabaseUnavailableMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        """Views and the templates they render; every other error is left to Django."""
        if not isinstance(exception, OperationalError | InterfaceError):
            return None
        response = HttpResponse(
            gettext(
                "The site's database is unavailable for a moment. "
                "Nothing was lost: try again in %(seconds)s seconds."
            )
            % {"seconds": DatabaseUnavailable.retry_after}
            + "\n",
            status=503,
            content_type="text/plain; charset=utf-8",
        )
        response["Retry-After"] = str(DatabaseUnavailable.retry_after)
        return response
