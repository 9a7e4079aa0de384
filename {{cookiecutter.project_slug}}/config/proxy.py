"""
The client's address, for login throttling (django-axes).

Behind the reverse proxy the README sets up, every request comes from the
proxy's address, and the client's is the last one the proxy appended to
X-Forwarded-For (nginx's `$proxy_add_x_forwarded_for`); earlier entries are
whatever the client claimed and are never trusted. The site trusts a proxy
exactly when it trusts the proxy's X-Forwarded-Proto (DJANGO_BEHIND_PROXY).
"""

from django.conf import settings


def client_ip(request):
    if settings.SECURE_PROXY_SSL_HEADER:
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
        last = forwarded.rsplit(",", 1)[-1].strip()
        if last:
            return last[:64]
    return request.META.get("REMOTE_ADDR")
