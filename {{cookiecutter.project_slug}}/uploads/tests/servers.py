"""
The generated site, run for a test the way a user runs it: `manage.py migrate`,
`collectstatic`, `createsuperuser`, then gunicorn with the site's own
gunicorn.conf.py, every file it writes under one temporary folder.

Plain helpers, not fixtures: a test module builds its fixtures from them. Every
wait has a bound, so a broken site fails the test instead of hanging it.
"""

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests

# uploads/tests/servers.py -> the site's root, where manage.py and gunicorn.conf.py are.
SITE_ROOT = Path(__file__).resolve().parents[2]

POSTGRES_HOST, POSTGRES_PORT = "127.0.0.1", 5432
# Trust authentication: the superuser is `postgres` on most machines, `root` in some containers.
POSTGRES_USERS = ("postgres", "root")

COMMAND_TIMEOUT = 60  # one manage.py command
START_TIMEOUT = 30  # until gunicorn answers
STOP_TIMEOUT = 10  # after SIGTERM, before SIGKILL
REQUEST_TIMEOUT = 30  # one HTTP request, connecting or reading

# Debian's Chromium, for the browser tests (never a downloaded browser). Without
# the background-networking flags it keeps dialling out of a machine that has
# no network; as root it needs --no-sandbox.
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]

# Settings the site reads from the environment: the test sets its own, never the caller's.
SITE_ENV_PREFIXES = ("DJANGO_", "UPLOADS_", "GUNICORN_", "DATABASE_", "AWS_", "CELERY_")


@contextmanager
def postgres_database(*, host=POSTGRES_HOST, port=POSTGRES_PORT, users=POSTGRES_USERS):
    """
    A new PostgreSQL database with a unique name, so that parallel runs never
    share one; dropped afterwards. Yields its DATABASE_URL. Skips the test when
    the server does not answer (outside pytest, catch `pytest.skip.Exception`).
    """
    import psycopg
    from psycopg import sql

    errors = []
    for user in users:
        try:
            admin = psycopg.connect(
                host=host,
                port=port,
                user=user,
                dbname="postgres",
                autocommit=True,  # CREATE DATABASE cannot run in a transaction
                connect_timeout=5,
            )
            break
        except psycopg.OperationalError as exc:
            errors.append(f"{user}: {str(exc).strip()}")
    else:
        pytest.skip(
            f"PostgreSQL at {host}:{port} is not reachable with trust "
            f"authentication ({'; '.join(errors)})"
        )
    name = f"test_uploads_{uuid.uuid4().hex}"
    with admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        try:
            yield f"postgres://{user}@{host}:{port}/{name}"
        finally:
            # FORCE: a worker that outlived its master may still hold a connection.
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Site:
    """
    The site served by gunicorn from SITE_ROOT, its files in `folder`, on the
    given database. `behind_proxy`: configured as in production behind nginx
    (HTTPS, X-Forwarded-Proto trusted), so it answers plain requests with a
    redirect to HTTPS and only a proxy's (or a test's) forwarded ones directly.
    """

    def __init__(self, folder, database_url, *, workers, behind_proxy=False):
        self.folder = Path(folder)
        self.staging = self.folder / "staging"
        self.log = self.folder / "gunicorn.log"  # stderr: gunicorn's and Django's logging
        self.access_log = self.folder / "access.log"  # stdout: gunicorn's access log
        self.url = f"http://127.0.0.1:{free_port()}"
        self.username, self.password = "admin", secrets.token_urlsafe(16)
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(SITE_ENV_PREFIXES)},
            "DATABASE_URL": database_url,
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
            "DJANGO_DEBUG": "False",
            "DJANGO_HTTPS": str(behind_proxy),
            "DJANGO_BEHIND_PROXY": str(behind_proxy),
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
            "DJANGO_MEDIA_ROOT": str(self.folder / "media"),
            "DJANGO_STATIC_ROOT": str(self.folder / "static"),
            "UPLOADS_STAGING_DIR": str(self.staging),
            "GUNICORN_WORKERS": str(workers),
            "GUNICORN_BIND": self.url.removeprefix("http://"),
            "DJANGO_SUPERUSER_USERNAME": self.username,
            "DJANGO_SUPERUSER_PASSWORD": self.password,
            "DJANGO_SUPERUSER_EMAIL": "admin@example.com",
        }
        # What a proxy in front adds: the site then serves the request itself.
        self._probe_headers = {"X-Forwarded-Proto": "https"} if behind_proxy else {}
        self._process = None

    def prepare(self):
        """What the site needs once before it serves: its tables, static files and user."""
        for command in ("migrate", "collectstatic", "createsuperuser"):
            self._manage(command, "--noinput")

    def start(self, *, prepared=False, app=None, env=None):
        """
        Prepare the site and serve it, with fresh logs. `prepared` skips
        prepare() for a site served before (the benchmark starts one gunicorn
        per measurement); `app`, named on gunicorn's command line, overrides
        gunicorn.conf.py's wsgi_app with every other setting kept; `env` adds to
        the environment of this run.
        """
        if not prepared:
            self.prepare()
        self.serve(app=app, env=env, log_mode="wb")

    def serve(self, *, app=None, env=None, log_mode="ab"):
        """Start gunicorn on the site's port: again after stop(), as after an outage."""
        command = [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py"]
        with open(self.log, log_mode) as stderr, open(self.access_log, log_mode) as stdout:
            self._process = subprocess.Popen(
                command + ([app] if app else []),
                cwd=SITE_ROOT,
                env={**self.env, **(env or {})},
                stdout=stdout,
                stderr=stderr,
                # Its own process group, so that stop() can reach the workers too.
                start_new_session=True,
            )
        self._wait_until_up()

    def stop(self):
        """
        SIGTERM: gunicorn finishes the requests in flight and its workers exit, so
        their logs are complete. SIGKILL to the whole group if that takes too long.
        Safe to call twice.
        """
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=STOP_TIMEOUT)

    @property
    def pid(self):
        """The gunicorn master's process id while it runs: its workers are its children."""
        return self._process.pid if self._process else None

    def login(self, *, headers=None):
        """
        A client logged in as the superuser through the login form, as a browser
        is; `headers` go with the login's requests.
        """
        with requests.Session() as session:
            session.headers.update(headers or {})
            login_url = f"{self.url}/accounts/login/"
            session.get(login_url, timeout=REQUEST_TIMEOUT).raise_for_status()
            response = session.post(
                login_url,
                data={
                    "username": self.username,
                    "password": self.password,
                    "csrfmiddlewaretoken": session.cookies["csrftoken"],
                },
                timeout=REQUEST_TIMEOUT,
            )
            response.raise_for_status()
            assert "sessionid" in session.cookies, f"login failed: {response.url}"
            # Logging in rotates the CSRF token: take the new one.
            return Client(self.url, session.cookies.get_dict())

    def manage(self, *args):
        """Run a manage.py command on this site's settings; its standard output."""
        return self._manage(*args)

    def _manage(self, *args):
        done = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=SITE_ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT,
        )
        assert done.returncode == 0, f"manage.py {' '.join(args)} failed:\n{done.stderr}"
        return done.stdout

    def _wait_until_up(self):
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise AssertionError(f"gunicorn exited:\n{self.log.read_text()}")
            try:
                requests.get(
                    f"{self.url}/accounts/login/", headers=self._probe_headers, timeout=1
                ).raise_for_status()
                return
            # Refused before gunicorn binds; unanswered while its workers still import Django.
            except (requests.ConnectionError, requests.Timeout):
                time.sleep(0.1)
        raise AssertionError(
            f"gunicorn did not answer in {START_TIMEOUT} s:\n{self.log.read_text()}"
        )


class Client:
    """
    A logged-in browser's cookies and CSRF header. Each call makes its own
    connection, so one client can be shared by many threads.
    """

    def __init__(self, url, cookies):
        self.url, self.cookies = url, cookies

    def request(self, method, path, *, headers=None, **kwargs):
        return requests.request(
            method,
            self.url + path,
            cookies=self.cookies,
            headers={"X-CSRFToken": self.cookies["csrftoken"], **(headers or {})},
            timeout=REQUEST_TIMEOUT,
            **kwargs,
        )

    def get(self, path, **kwargs):
        return self.request("GET", path, **kwargs)

    def post(self, path, **kwargs):
        return self.request("POST", path, **kwargs)

    def finished(self, upload_id):
        """The upload's status once it is no longer `processing` (see finished())."""
        return finished(lambda: self.get(f"/uploads/api/uploads/{upload_id}/").json())


FINISH_TIMEOUT = 30  # a whole upload, from its last chunk to `complete`


def finished(read_status):
    """
    Poll `read_status()` until the upload is no longer `processing`: the site
    finishes an upload in a thread after answering its last chunk.
    """
    deadline = time.monotonic() + FINISH_TIMEOUT
    while (status := read_status())["status"] == "processing":
        if time.monotonic() > deadline:
            raise AssertionError(f"still processing after {FINISH_TIMEOUT} s: {status}")
        time.sleep(0.05)
    return status
