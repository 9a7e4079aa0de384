"""
Who may call the upload endpoints, and how refusals look.

Every endpoint needs a logged-in user, or an API token sent as
`Authorization: Bearer <token>` (tokens.py): a script has no session, so a
token request has no CSRF check either. The endpoints are exempt from Django's
CSRF middleware because it reads `request.POST` on a POST, which would parse
and spool a multipart chunk before the view could stream it; UploadEndpoint
runs the same middleware itself, with the token taken from the `X-CSRFToken`
header only.
"""

import uuid

from django.http import JsonResponse
from django.middleware.csrf import CsrfViewMiddleware
from django.views import View
from django.views.csrf import csrf_failure as django_csrf_failure

from . import tokens
from .errors import NotAuthenticated, UploadError, UploadNotFound
from .models import Upload

SAFE_METHODS = ("GET", "HEAD", "OPTIONS", "TRACE")


def csrf_rejection(request):
    """None when the request passes Django's CSRF check from its header, else the 403."""
    if request.method in SAFE_METHODS:
        return None
    method = request.method
    # The middleware takes the token from the header for every unsafe method
    # but POST, where it first parses the form body; have it skip the form.
    request.method = "PUT" if method == "POST" else method
    try:
        return CsrfViewMiddleware(lambda request: None).process_view(request, None, (), {})
    finally:
        request.method = method


def csrf_failure(request, reason=""):
    """settings.CSRF_FAILURE_VIEW: JSON for the upload endpoints, Django's page elsewhere."""
    match = getattr(request, "resolver_match", None)
    if match is not None and match.namespace == "uploads" and match.url_name != "index":
        return error_response(
            UploadError(f"CSRF check failed: {reason} Send the token in X-CSRFToken.", status=403)
        )
    return django_csrf_failure(request, reason=reason)


def error_response(exc):
    return JsonResponse({"error": exc.message}, status=exc.status)


class UploadEndpoint(View):
    """Base view of every upload endpoint: a user, a valid CSRF header, JSON errors."""

    # tus answers 401 where the others answer 403.
    unauthenticated_status = NotAuthenticated.status
    # The protocol whose uploads the endpoint serves (None: any).
    protocol = None

    def dispatch(self, request, *args, **kwargs):
        try:
            try:
                user = self.authenticate(request)
            except NotAuthenticated as exc:
                exc.status = self.unauthenticated_status
                raise
            self.user = user
            if not self.token_authenticated:
                rejection = csrf_rejection(request)
                if rejection is not None:
                    return rejection
            return super().dispatch(request, *args, **kwargs)
        except UploadError as exc:
            return self.error_response(exc)

    def authenticate(self, request):
        """A sent API token's owner (a bad token is refused), else the session's user."""
        token = tokens.bearer_token(request)
        self.token_authenticated = token is not None
        if token is not None:
            return tokens.authenticate(token)
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            raise NotAuthenticated("log in, or send an API token as Authorization: Bearer <token>")
        return user

    def error_response(self, exc):
        return error_response(exc)

    def get_upload(self, upload_id):
        """The user's upload, of this endpoint's protocol; anybody else's is a 404, as if
        it did not exist, and so is an id that is not one."""
        try:
            upload_id = uuid.UUID(str(upload_id))
        except ValueError:
            raise UploadNotFound(f"{str(upload_id)[:40]!r} is not an upload id") from None
        uploads = Upload.objects.filter(pk=upload_id, owner=self.user)
        if self.protocol:
            uploads = uploads.filter(protocol=self.protocol)
        upload = uploads.first()
        if upload is None:
            raise UploadNotFound("no such upload")
        return upload
