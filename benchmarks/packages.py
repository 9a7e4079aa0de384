"""
The packages the template replaces, measured beside it: django-chunked-upload
2.0.0 and django-resumable 0.2.0, each installed from PyPI into a virtualenv of
its own with the newest Django it runs on, in a minimal project this module
writes (settings, URLs, a login page), served by the same gunicorn command line
and gunicorn.conf.py as the site, and sent a file the way its own client does.

- django-chunked-upload (jQuery-File-Upload's protocol, read from its
  views.py): every chunk a multipart POST of the `file` field with a
  `Content-Range: bytes start-end/total` header, in order (the view refuses a
  chunk whose start is not the upload's offset), `upload_id` from the first
  answer in every later form; then one POST of `upload_id` and `md5` to the
  completion view, which reads the whole file back for its MD5 before it
  answers. The package ships views, not URLs: the project routes them as its
  README and demo do, for logged-in users.
- django-resumable (resumable.js's protocol, read from its views.py and
  files.py): every chunk a multipart POST of the nine `resumable*` fields and
  `file`, sent as resumable.js sends them (without its test GETs, as the site's
  page sends none for a new file); the request whose chunk completes the file
  joins the chunks into it before it answers. Chunks are sent in order, one at
  a time, like the site's `octet` row: with several in flight, two last chunks
  can both find the file complete and join it twice, which a benchmark must
  not count on.

Both projects use what the site uses around the package: sessions, CSRF,
login, DEBUG off, the same database server, CONN_MAX_AGE=60 (the site's
default, so that they are not charged for a new connection per chunk).
"""

import hashlib
import json
import os
import subprocess
import sys
import textwrap
import time
from urllib.parse import urlencode

import generated_site
from flow_client import Exchange, Slot, UploadRun, multipart_envelope

# Django 3.2 is the newest both run on: django-resumable imports ugettext_lazy,
# which Django 4.0 removed; django-chunked-upload 2.0.0 predates Django 4.
DJANGO = "Django==3.2.25"
PSYCOPG2 = "psycopg2-binary==2.9.13"  # Django 3.2 does not speak psycopg 3
PACKAGES = {
    "django-chunked-upload": ("django-chunked-upload==2.0.0", "chunked_upload"),
    "django-resumable": ("django-resumable==0.2.0", "resumable"),
}
PROJECT = "pkgsite"
PIP_TIMEOUT = 600


def gunicorn_pin(site_root):
    """The site's own gunicorn, so that every row runs the same server."""
    for line in (site_root / "requirements.txt").read_text().splitlines():
        if line.startswith("gunicorn=="):
            return line.strip()
    raise RuntimeError("the generated site's requirements.txt pins no gunicorn")


def install(name, venvs, site_root):
    """
    A virtualenv with the package, its Django, the site's gunicorn and
    psycopg2; reused when one made with the same pins is there already.
    """
    requirement, _ = PACKAGES[name]
    pins = [requirement, DJANGO, gunicorn_pin(site_root), PSYCOPG2]
    venv = venvs / name
    marker = venv / "bench-pins.txt"
    if marker.exists() and marker.read_text() == "\n".join(pins):
        return venv
    print(f"  installing {', '.join(pins)} into {venv} ...", flush=True)
    generated_site.run([sys.executable, "-m", "venv", "--clear", str(venv)], cwd=venvs)
    generated_site.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", *pins],
        cwd=venvs,
        timeout=PIP_TIMEOUT,
    )
    marker.write_text("\n".join(pins))
    return venv


def settings_py(app, database, folder):
    return textwrap.dedent(
        f'''\
        """A minimal project around {app}, written by the benchmark."""
        import os

        SECRET_KEY = os.environ["DJANGO_SECRET_KEY"]
        DEBUG = False
        ALLOWED_HOSTS = ["127.0.0.1"]
        INSTALLED_APPS = [
            "django.contrib.auth",
            "django.contrib.contenttypes",
            "django.contrib.sessions",
            "{app}",
        ]
        MIDDLEWARE = [
            "django.contrib.sessions.middleware.SessionMiddleware",
            "django.middleware.common.CommonMiddleware",
            "django.middleware.csrf.CsrfViewMiddleware",
            "django.contrib.auth.middleware.AuthenticationMiddleware",
        ]
        ROOT_URLCONF = "{PROJECT}.urls"
        TEMPLATES = [
            {{
                "BACKEND": "django.template.backends.django.DjangoTemplates",
                "DIRS": [{str(folder / "templates")!r}],
            }}
        ]
        DATABASES = {{"default": {database!r}}}
        DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
        USE_TZ = True
        MEDIA_ROOT = {str(folder / "media")!r}
        # django-resumable keeps its chunks here, and Django its temporary uploads.
        FILE_UPLOAD_TEMP_DIR = {str(folder / "chunks")!r}
        LOGIN_URL = LOGIN_REDIRECT_URL = "/accounts/login/"
        '''
    )


URLS = {
    "chunked_upload": """\
        from django.contrib.auth.views import LoginView
        from django.urls import path

        from chunked_upload.models import ChunkedUpload
        from chunked_upload.views import ChunkedUploadCompleteView, ChunkedUploadView


        class Upload(ChunkedUploadView):
            model = ChunkedUpload
            field_name = "file"


        class Complete(ChunkedUploadCompleteView):
            model = ChunkedUpload


        urlpatterns = [
            path("accounts/login/", LoginView.as_view()),
            path("upload/", Upload.as_view()),
            path("upload/complete/", Complete.as_view()),
        ]
        """,
    "resumable": """\
        from django.contrib.auth.decorators import login_required
        from django.contrib.auth.views import LoginView
        from django.urls import path

        from resumable.views import ResumableUploadView

        urlpatterns = [
            path("accounts/login/", LoginView.as_view()),
            path("upload/", login_required(ResumableUploadView.as_view())),
        ]
        """,
}

LOGIN_TEMPLATE = (
    '<form method="post">{% csrf_token %}{{ form.as_p }}<button>Log in</button></form>\n'
)


def database_config(database_url):
    """DATABASE_URL as Django 3.2 reads it: the same server, CONN_MAX_AGE as the site's."""
    import environ  # the site's django-environ, in this process only

    config = environ.Env.db_url_config(database_url)
    config.pop("OPTIONS", None)
    return {**config, "CONN_MAX_AGE": 60}


def write_project(name, folder, database_url, gunicorn_conf):
    """The project's files in `folder`; the settings module's name."""
    _, app = PACKAGES[name]
    package = folder / PROJECT
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "settings.py").write_text(settings_py(app, database_config(database_url), folder))
    (package / "urls.py").write_text(textwrap.dedent(URLS[app]))
    (package / "wsgi.py").write_text(
        "from django.core.wsgi import get_wsgi_application\n\n"
        "application = get_wsgi_application()\n"
    )
    (folder / "templates" / "registration").mkdir(parents=True)
    (folder / "templates" / "registration" / "login.html").write_text(LOGIN_TEMPLATE)
    for sub in ("media", "chunks", "logs"):
        (folder / sub).mkdir()
    # The site's gunicorn.conf.py (gthread, its workers and threads), with the
    # project's WSGI app named on the command line as the ceiling's is.
    (folder / "gunicorn.conf.py").write_text(gunicorn_conf.read_text())
    return f"{PROJECT}.settings"


def package_site_class(servers):
    """
    servers.Site (the generated suite's), for a package's project: another
    interpreter and folder, the same gunicorn command line, login and stop().
    """

    class PackageSite(servers.Site):
        def __init__(self, name, folder, database_url, venv, *, workers):
            super().__init__(folder, database_url, workers=workers)
            self.name, self.venv = name, venv
            self.python = str(venv / "bin" / "python")
            self.app = f"{PROJECT}.wsgi"
            settings = write_project(
                name, self.folder, database_url, servers.SITE_ROOT / "gunicorn.conf.py"
            )
            self.env["DJANGO_SETTINGS_MODULE"] = settings
            self.env.pop("PYTHONPATH", None)

        def prepare(self):
            self._manage("migrate", "--noinput")
            self._manage("createsuperuser", "--noinput")

        def serve(self, *, app=None, env=None, log_mode="ab"):
            command = [self.python, "-m", "gunicorn", "-c", "gunicorn.conf.py", app or self.app]
            with open(self.log, log_mode) as stderr, open(self.access_log, log_mode) as stdout:
                self._process = subprocess.Popen(
                    command,
                    cwd=self.folder,
                    env={**self.env, **(env or {})},
                    stdout=stdout,
                    stderr=stderr,
                    start_new_session=True,
                )
            self._wait_until_up()

        def _manage(self, *args):
            generated_site.run([self.python, "-m", "django", *args], cwd=self.folder, env=self.env)

    return PackageSite


def md5_of(path):
    digest = hashlib.md5()  # noqa: S324 - django-chunked-upload's own check
    with open(path, "rb") as source:
        while block := source.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _post_form(conn, path, headers, fields):
    body = urlencode(fields).encode()
    conn.request(
        "POST",
        path,
        body=body,
        headers={**headers, "Content-Type": "application/x-www-form-urlencoded"},
    )
    response = conn.getresponse()
    return response.status, response.read()


def upload_chunked(port, headers, plan, source, md5):
    """django-chunked-upload: Content-Range chunks in order, then the md5 POST."""
    exchanges = []
    with open(source, "rb") as handle:
        slot = Slot([(port, headers)], "/upload/", handle, "multipart")
        try:
            began = time.perf_counter()
            upload_id = None
            for chunk in plan.chunks():
                end = chunk.offset + chunk.length - 1
                slot.headers = {
                    **headers,
                    "Content-Range": f"bytes {chunk.offset}-{end}/{plan.size}",
                }
                fields = {"upload_id": upload_id} if upload_id else {}
                boundary, before, after = multipart_envelope(fields, plan.filename)
                start = time.perf_counter()
                status, body = slot._request(
                    "POST", {}, before, chunk, after, f"multipart/form-data; boundary={boundary}"
                )
                if status != 200:
                    raise RuntimeError(f"chunk {chunk.number} answered {status}: {body[:300]!r}")
                answer = json.loads(body)
                upload_id = answer["upload_id"]
                exchanges.append(Exchange(chunk.number, start, time.perf_counter(), answer))
            start = time.perf_counter()
            status, body = _post_form(
                slot.conn, "/upload/complete/", headers, {"upload_id": upload_id, "md5": md5}
            )
            if status != 200:
                raise RuntimeError(f"the completion POST answered {status}: {body[:300]!r}")
            done = Exchange(plan.count + 1, start, time.perf_counter(), {"status": "complete"})
        finally:
            slot.close()
    run = UploadRun(exchanges[-1].end - began, exchanges, slot.retries, exchanges[-1].start)
    run.began, run.complete_at, run.last_answer = began, done.end, exchanges[-1].end
    return run


def resumable_params(plan, chunk):
    # resumable.js's ResumableChunk.send(), in its order.
    return {
        "resumableChunkNumber": chunk.number,
        "resumableChunkSize": plan.chunk_size,
        "resumableCurrentChunkSize": chunk.length,
        "resumableTotalSize": plan.size,
        "resumableType": "application/octet-stream",
        "resumableIdentifier": plan.identifier,
        "resumableFilename": plan.filename,
        "resumableRelativePath": plan.filename,
        "resumableTotalChunks": plan.count,
    }


def upload_resumable(port, headers, plan, source):
    """django-resumable: resumable.js's multipart chunks in order; the last joins the file."""
    exchanges = []
    with open(source, "rb") as handle:
        slot = Slot([(port, headers)], "/upload/", handle, "multipart")
        try:
            began = time.perf_counter()
            for chunk in plan.chunks():
                boundary, before, after = multipart_envelope(
                    resumable_params(plan, chunk), plan.filename
                )
                start = time.perf_counter()
                status, body = slot._request(
                    "POST", {}, before, chunk, after, f"multipart/form-data; boundary={boundary}"
                )
                if status != 200:
                    raise RuntimeError(f"chunk {chunk.number} answered {status}: {body[:300]!r}")
                exchanges.append(Exchange(chunk.number, start, time.perf_counter(), {}))
        finally:
            slot.close()
    last = exchanges[-1]
    run = UploadRun(last.end - began, exchanges, slot.retries, last.start)
    # The last chunk's request joins the file before it answers: its answer is `complete`.
    run.began, run.complete_at, run.last_answer = began, last.end, last.end
    return run


def stored_file(site, plan):
    """Where the package left the whole file."""
    if site.name == "django-resumable":
        return site.folder / "chunks" / f"{plan.size}_{plan.filename}"
    parts = sorted((site.folder / "media").rglob("*.part"), key=os.path.getmtime)
    if not parts:
        raise RuntimeError("django-chunked-upload left no file")
    return parts[-1]
