"""
gunicorn's settings: `gunicorn config.wsgi` reads this file from the current folder.

Threaded workers (gthread) suit uploads: a chunk from a slow client occupies a
thread, not a whole process, and a long request is never mistaken for a hung
worker, because the heartbeat runs in the worker's main thread.
"""

import multiprocessing
import os

wsgi_app = "config.wsgi"
bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("GUNICORN_WORKERS", min(multiprocessing.cpu_count() * 2 + 1, 8)))
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", 4))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", 120))
graceful_timeout = 30
keepalive = 5
# "-" is standard output; empty turns the access log off.
accesslog = os.environ.get("GUNICORN_ACCESSLOG", "-") or None
# gunicorn's default format, except the second field (identd's, always "-"):
# the client's address as nginx saw it, since the first is then always nginx's.
access_log_format = '%(h)s %({x-forwarded-for}i)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s"'
# gunicorn's control socket (gunicornc) defaults to one path per user, which
# two sites on one machine would share: only on request, at a path of its own.
control_socket = os.environ.get("GUNICORN_CONTROL_SOCKET", "")
control_socket_disable = not control_socket
# Behind a reverse proxy on the same machine (deploy/nginx.conf), trust its
# X-Forwarded-Proto: with DJANGO_BEHIND_PROXY, the site then knows HTTPS.
forwarded_allow_ips = os.environ.get("GUNICORN_FORWARDED_ALLOW_IPS", "127.0.0.1")
