"""
Who may call the upload endpoints, and how refusals look.

Every endpoint needs a logged-in user, or an API token sent as
`Authorization: Bearer <token>` (tokens.py): a script has no session, so a
token request has no CSRF check either. The endpoints are exempt from Django's
CSRF middleware because it reads `request.POST` on a POST, which would parse
and spool a multipart chunk before the view could stream it; UploadEndpoint
runs the same middleware itself, with the token taken from the `X-CSRFToken`
header only.

Every chunk of an upload carries the same session cookie or token, several
times a second. Checking it costs two queries (session, user) or one (token),
as much as the engine's own work on a chunk, so each worker remembers the
users it found for UPLOADS_AUTH_RECHECK (5 s) before checking again.
"""

import threading
import time
import uuid

from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.http import JsonResponse
from django.middleware.csrf import CsrfViewMiddleware
from django.utils.cache import patch_vary_headers
from django.utils.translation import gettext, gettext_lazy
from django.views import View
from django.views.csrf import csrf_failure as django_csrf_failure

from . import tokens
from .conf import upload_settings
from .errors import DatabaseUnavailable, NotAuthenticated, UploadError, UploadNotFound
from .limits import largest_request_body
from .models import Upload

SAFE_METHODS = ("GET", "HEAD", "OPTIONS", "TRACE")
# What a request without a user is told: a browser is told to log in again.
SESSION_ENDED = gettext_lazy("your session has ended: log in again")
NO_CREDENTIALS = gettext_lazy("log in, or send an API token as Authorization: Bearer <token>")
# Read and thrown away at a time while draining a refused request's body.
DRAIN_BLOCK = 64 * 1024


class RecentlyChecked:
    """
    The users of the sessions and tokens this worker has checked lately, each
    kept for UPLOADS_AUTH_RECHECK after its check. Only successes are kept: a
    refused credential is checked again on every request.
    """

    MAX_ENTRIES = 10_000

    def __init__(self):
        self._entries = {}
        self._lock = threading.Lock()

    def get(self, key):
        entry = self._entries.get(key)
        if entry is None or entry[1] <= time.monotonic():
            return None
        return entry[0]

    def remember(self, key, user):
        seconds = upload_settings.AUTH_RECHECK.total_seconds()
        if seconds <= 0:
            return
        now = time.monotonic()
        with self._lock:
            if len(self._entries) >= self.MAX_ENTRIES:
                self._entries = {k: e for k, e in self._entries.items() if e[1] > now}
                if len(self._entries) >= self.MAX_ENTRIES:
                    self._entries = {}
            self._entries[key] = (user, now + seconds)

    def forget_all(self):
        with self._lock:
            self._entries = {}


recently_checked = RecentlyChecked()


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


def drain(request):
    """
    Read what is left of a refused request's body, up to the largest body the
    site asks a client to send, and throw it away, so that the connection can
    carry the client's next request. gunicorn's threaded worker reads only
    64 KiB of a body the app left unread, then closes a connection it has
    announced as keep-alive: the client's next request on it fails. A bigger
    body (or one of unknown length) is left to gunicorn, which closes.
    """
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return
    if not 0 < length <= largest_request_body():
        return
    try:
        # A body already read (or parsed) gives nothing more.
        while request.read(DRAIN_BLOCK):
            pass
    except OSError:  # the client went away, or sent less than it said
        pass


class UploadEndpoint(View):
    """Base view of every upload endpoint: a user, a valid CSRF header, JSON errors."""

    # The protocol whose uploads the endpoint serves (None: any).
    protocol = None
    # This protocol's HTTP status for an error class, where it is not the
    # error's own; the nearest class of the error wins. Server-side errors
    # (5xx) keep their own status on every protocol.
    error_statuses = {}
    # Headers this protocol sends with an error class.
    error_headers = {}

    def dispatch(self, request, *args, **kwargs):
        self.token_authenticated = False
        try:
            self.check_protocol(request)
            response = self.answer(request, *args, **kwargs)
        except UploadError as exc:
            response = self.error_response(exc)
        except (OperationalError, InterfaceError) as exc:
            # The database is down or restarting, or dropped our connection
            # (Django closes it after the request): the client retries. Not
            # IntegrityError and the like, which are mistakes to see as such.
            response = self.error_response(DatabaseUnavailable.because(exc))
        if response.status_code >= 400:
            drain(request)
        if not self.token_authenticated:
            # The answer depends on the session even when the session was not
            # loaded (recently_checked), so SessionMiddleware would not say so.
            patch_vary_headers(response, ("Cookie",))
        return response

    def check_protocol(self, request):
        """Raise a protocol's refusal that comes before authentication (tus: its version)."""

    def answer(self, request, *args, **kwargs):
        self.user = self.authenticate(request)
        if not self.token_authenticated:
            rejection = self.csrf_rejection(request)
            if rejection is not None:
                return rejection
        return super().dispatch(request, *args, **kwargs)

    def csrf_rejection(self, request):
        """None when a session's request passes the CSRF check, else the 403."""
        return csrf_rejection(request)

    def authenticate(self, request):
        """A sent API token's owner (a bad token is refused), else the session's user."""
        token = tokens.bearer_token(request)
        self.token_authenticated = token is not None
        if token is not None:
            key = ("token", token)
            user = recently_checked.get(key)
            if user is None:
                user = tokens.authenticate(token)
                recently_checked.remember(key, user)
            return user
        session_key = request.COOKIES.get(settings.SESSION_COOKIE_NAME)
        key = ("session", session_key)
        user = recently_checked.get(key) if session_key else None
        if user is not None:
            return user
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            # A browser's session ended (it still sends the cookie); a script sent nothing.
            raise NotAuthenticated(SESSION_ENDED if session_key else NO_CREDENTIALS)
        if session_key and request.session.session_key == session_key:
            recently_checked.remember(key, user)
        return user

    def error_response(self, exc):
        """The refusal of `exc`, with this protocol's status and headers for it."""
        response = JsonResponse(self.error_data(exc), status=self.error_status(exc))
        if exc.retry_after is not None:
            response["Retry-After"] = str(exc.retry_after)
        for cls in reversed(type(exc).__mro__):
            for name, value in self.error_headers.get(cls, {}).items():
                response[name] = value
        if getattr(exc, "retry_after", None):
            response["Retry-After"] = str(exc.retry_after)
        return response

    def error_data(self, exc):
        return {"error": exc.message}

    def error_status(self, exc):
        if exc.status >= 500:
            return exc.status
        for cls in type(exc).__mro__:
            if cls in self.error_statuses:
                return self.error_statuses[cls]
        return exc.status

    def get_upload(self, upload_id):
        """The user's upload, of this endpoint's protocol; anybody else's is a 404, as if
        it did not exist, and so is an id that is not one."""
        try:
            upload_id = uuid.UUID(str(upload_id))
        except ValueError:
            raise UploadNotFound(
                gettext("%(id)r is not an upload id") % {"id": str(upload_id)[:40]}
            ) from None
        uploads = Upload.objects.filter(pk=upload_id, owner=self.user)
        if self.protocol:
            uploads = uploads.filter(protocol=self.protocol)
        upload = uploads.first()
        if upload is None:
            raise UploadNotFound(gettext("no such upload"))
        return upload
