"""
API tokens: made, shown once, kept only as a hash, checked on each request.

A token is 32 random bytes (URL-safe base64) after a short prefix that says
what it is. With that much entropy a plain SHA-256 is enough to keep at rest:
there is nothing to guess, so no slow password hash is needed, and a lookup
by hash costs one indexed query per request.
"""

import hashlib
import secrets
from datetime import timedelta

from django.utils import timezone
from django.utils.translation import gettext

from .errors import NotAuthenticated
from .models import UploadToken

PREFIX = "bfu_"
# last_used is written at most this often, not on every chunk.
LAST_USED_RESOLUTION = timedelta(minutes=1)


def hash_of(token):
    return hashlib.sha256(token.encode()).hexdigest()


def issue(record):
    """Give an unsaved UploadToken its key; returns the token itself, to show once."""
    token = PREFIX + secrets.token_urlsafe(32)
    record.key_hash = hash_of(token)
    record.prefix = token[: len(PREFIX) + 4]
    return token


def create(owner, name, *, expires=None):
    """A new token for `owner`: (the record, the token itself, to show once)."""
    record = UploadToken(owner=owner, name=name, expires=expires)
    token = issue(record)
    record.save()
    return record, token


def revoke(queryset):
    """Revoke tokens now; already revoked ones keep their first revocation time."""
    return queryset.filter(revoked__isnull=True).update(revoked=timezone.now())


def bearer_token(request):
    """The token in `Authorization: Bearer <token>`, or None without that header."""
    header = request.META.get("HTTP_AUTHORIZATION", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip()


def authenticate(token):
    """The user a token belongs to; NotAuthenticated if it is unknown, revoked or expired."""
    if not token:
        raise NotAuthenticated(gettext("the Authorization header has no token after Bearer"))
    record = UploadToken.objects.select_related("owner").filter(key_hash=hash_of(token)).first()
    if record is None or not record.owner.is_active:
        raise NotAuthenticated(gettext("the API token is not valid"))
    if record.revoked is not None:
        raise NotAuthenticated(gettext("the API token was revoked"))
    now = timezone.now()
    if record.expires is not None and record.expires <= now:
        raise NotAuthenticated(
            gettext("the API token expired at %(expires)s")
            % {"expires": record.expires.isoformat()}
        )
    if record.last_used is None or record.last_used < now - LAST_USED_RESOLUTION:
        UploadToken.objects.filter(pk=record.pk).update(last_used=now)
    return record.owner
