"""
The deploy kit for real: Debian's nginx runs the shipped deploy/nginx.conf,
changed only in its ports, paths and certificate (a self-signed one made here),
in front of gunicorn configured as the README's production .env says
(HTTPS behind a proxy, downloads by X-Accel-Redirect). Everything goes
through nginx over TLS: the upload page in Chromium with the default 8 MiB
chunks, tuspy and the README's curl loop with the README's 64 MiB pieces, a
download with Range, and a flood of slow clients.
"""

import contextlib
import hashlib
import json
import os
import pwd
import re
import socket
import ssl
import subprocess
import time
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import urlsplit

import pytest
import requests

from uploads import limits

from . import servers
from .test_browser import Page, browser, make_file  # noqa: F401 (browser: a fixture)

NGINX = "/usr/sbin/nginx"

pytestmark = [
    pytest.mark.server,
    pytest.mark.nginx,
    pytest.mark.timeout(180),
    pytest.mark.skipif(
        not os.access(NGINX, os.X_OK),
        reason="nginx is not installed: apt-get install nginx (scripts/test.sh does)",
    ),
]

# Fewer gunicorn threads (2 x 4) than slow clients: were they let through, the site would stop.
WORKERS = 2
MiB = 1024**2
SLOW_CLIENTS = 50
SLOW_ADDRESS = "127.0.0.2"  # all of them from one address, as a flood is
SLOW_ROUNDS, SLOW_INTERVAL = 5, 2.0  # a byte every 2 s, for 10 s


def openssl_certificate(folder):
    """A self-signed certificate for 127.0.0.1: (certificate, key)."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
         "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
        timeout=servers.COMMAND_TIMEOUT,
    )  # fmt: skip
    return cert, key


def has_ipv6_loopback():
    try:
        with socket.socket(socket.AF_INET6) as sock:
            sock.bind(("::1", 0))
        return True
    except OSError:
        return False


# What Debian's /etc/nginx/nginx.conf gives a site, with every file in the test's folder.
MAIN_CONFIG = """%(user)s
worker_processes 1;
events { worker_connections 512; }
http {
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    sendfile on;
    access_log %(folder)s/nginx-access.log;
    client_body_temp_path %(temp)s/body;
    proxy_temp_path %(temp)s/proxy;
    fastcgi_temp_path %(temp)s/fastcgi;
    uwsgi_temp_path %(temp)s/uwsgi;
    scgi_temp_path %(temp)s/scgi;
    include %(folder)s/site.conf;
}
"""


class Nginx:
    """
    nginx running the shipped deploy/nginx.conf in front of `site`. Only ports,
    paths and the certificate change; each change must find its text, so the
    test never runs a config other than the one an operator installs.
    """

    def __init__(self, folder, site, cert, key):
        self.folder, self.site = Path(folder), site
        self.http_port, self.https_port = servers.free_port(), servers.free_port()
        self.url = f"https://127.0.0.1:{self.https_port}"
        self.error_log = self.folder / "nginx-error.log"
        self.cert, self.key = cert, key
        self._process = None

    def render(self):
        slug = servers.SITE_ROOT.name
        ipv6 = has_ipv6_loopback()
        http, https = self.http_port, self.https_port
        changes = [
            ("listen 80;", f"listen 127.0.0.1:{http};"),
            ("listen [::]:80;", f"listen [::1]:{http};" if ipv6 else ""),
            ("listen 443 ssl http2;", f"listen 127.0.0.1:{https} ssl http2;"),
            ("listen [::]:443 ssl http2;", f"listen [::1]:{https} ssl http2;" if ipv6 else ""),
            ("server 127.0.0.1:8000;", f"server {urlsplit(self.site.url).netloc};"),
            ("/etc/letsencrypt/live/files.example.com/fullchain.pem", str(self.cert)),
            ("/etc/letsencrypt/live/files.example.com/privkey.pem", str(self.key)),
            ("root /var/www/html;", f"root {self.folder / 'acme'};"),
            (f"/srv/{slug}/", f"{self.site.folder}/"),
        ]
        config = (servers.SITE_ROOT / "deploy" / "nginx.conf").read_text()
        for old, new in changes:
            assert old in config, f"deploy/nginx.conf no longer has {old!r}"
            config = config.replace(old, new)
        return config

    def start(self):
        for folder in ("temp", "acme"):
            (self.folder / folder).mkdir(exist_ok=True)
        (self.folder / "site.conf").write_text(self.render())
        # As root, nginx's workers would run as nobody, who cannot read the test's folders.
        user = f"user {pwd.getpwuid(os.getuid()).pw_name};" if os.getuid() == 0 else ""
        (self.folder / "nginx.conf").write_text(
            MAIN_CONFIG % {"user": user, "folder": self.folder, "temp": self.folder / "temp"}
        )
        directives = f"daemon off; pid {self.folder / 'nginx.pid'}; error_log {self.error_log};"
        command = [NGINX, "-p", str(self.folder), "-c", str(self.folder / "nginx.conf")]
        tested = subprocess.run(
            [*command, "-t", "-g", directives], capture_output=True, text=True, timeout=30
        )
        assert tested.returncode == 0, f"nginx -t refused the config:\n{tested.stderr}"
        self._process = subprocess.Popen(
            [*command, "-g", directives],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + servers.START_TIMEOUT
        while time.monotonic() < deadline:
            assert self._process.poll() is None, f"nginx exited:\n{self.error_log.read_text()}"
            try:
                # Any answer: nginx is up (what it says of gunicorn is the tests' business).
                requests.get(f"{self.url}/accounts/login/", timeout=1)
                return
            except (requests.ConnectionError, requests.Timeout):
                time.sleep(0.1)
        raise AssertionError(f"nginx did not answer:\n{self.error_log.read_text()}")

    def stop(self):
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()  # nginx's fast shutdown
            process.wait(timeout=servers.STOP_TIMEOUT)


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    cert, key = openssl_certificate(tmp_path_factory.mktemp("tls"))
    # requests (so servers.Client and tuspy) and curl trust it, and nothing else changes.
    with pytest.MonkeyPatch.context() as env:
        env.setenv("REQUESTS_CA_BUNDLE", str(cert))
        env.setenv("CURL_CA_BUNDLE", str(cert))
        yield cert, key


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    folder = tmp_path_factory.mktemp("nginx-site")
    site = servers.Site(
        folder, f"sqlite:///{folder / 'db.sqlite3'}", workers=WORKERS, behind_proxy=True
    )
    # The README's production .env: the folders nginx.conf aliases, downloads by nginx.
    site.env.update(
        {
            "DJANGO_STATIC_ROOT": str(folder / "staticfiles"),
            "DJANGO_MEDIA_ROOT": str(folder / "media"),
            "UPLOADS_ACCEL_REDIRECT": "/protected-media/",
        }
    )
    site.start()
    yield site
    site.stop()


@pytest.fixture(scope="module")
def front(tmp_path_factory, site, certificate):
    """nginx in front of the site; its URL is the only one the tests use."""
    nginx = Nginx(tmp_path_factory.mktemp("nginx"), site, *certificate)
    nginx.start()
    yield nginx
    nginx.stop()


@pytest.fixture(scope="module")
def token(site):
    return site.manage("create_upload_token", site.username, "--name", "nginx").strip()


def status_of(front, token, upload_id):
    def read():
        response = requests.get(
            f"{front.url}/uploads/api/uploads/{upload_id}/",
            headers={"Authorization": f"Bearer {token}"},
            timeout=servers.REQUEST_TIMEOUT,
        )
        response.raise_for_status()
        return response.json()

    return servers.finished(read)


def random_file(path, size):
    path.write_bytes(os.urandom(size))
    return hashlib.sha256(path.read_bytes()).hexdigest()


def gunicorn_lines(site, pattern):
    """The lines of gunicorn's access log for the requests that reached it."""
    return [line for line in site.access_log.read_text().splitlines() if re.search(pattern, line)]


class TrustingBrowser:
    """test_browser's Chromium, whose tabs trust the test's self-signed certificate."""

    def __init__(self, chromium):
        self.chromium = chromium

    def new_context(self, **options):
        return self.chromium.new_context(ignore_https_errors=True, **options)


@pytest.mark.skipif(
    not os.access(servers.CHROMIUM, os.X_OK),
    reason="Chromium is not installed: apt-get install chromium (never a downloaded browser)",
)
def test_the_page_sends_a_12_mib_last_chunk_and_downloads_a_range(
    front,
    site,
    browser,  # noqa: F811 (test_browser's fixture)
    tmp_path,
):
    # The default 8 MiB chunks: two of them, the last one 12 MiB.
    path = make_file(tmp_path, "big report.bin", 20 * MiB + 12345, "through nginx")
    data = path.read_bytes()
    user = SimpleNamespace(url=front.url, username=site.username, password=site.password)
    tab = Page(TrustingBrowser(browser), user)
    try:
        tab.choose(str(path))
        tab.wait_state(path.name, "complete")
        upload = tab.upload_named(path.name)
        assert upload["status"] == "complete"
        assert upload["sha256"] == hashlib.sha256(data).hexdigest()

        start, end = 10 * MiB - 7, 12 * MiB + 6  # across the chunks' boundary
        response = tab.page.request.get(
            front.url + upload["download_url"], headers={"Range": f"bytes={start}-{end}"}
        )
        assert response.status == 206
        assert response.body() == data[start : end + 1]
        assert response.headers["content-range"] == f"bytes {start}-{end}/{len(data)}"
        assert response.headers["content-disposition"] == 'attachment; filename="big report.bin"'
        assert "x-accel-redirect" not in response.headers
        assert tab.downloaded_sha256(upload) == upload["sha256"]
        tab.assert_no_console_errors()
    finally:
        tab.close()
    # gunicorn only said which file: nginx sent the bytes.
    downloads = gunicorn_lines(site, rf'"GET {re.escape(upload["download_url"])} HTTP/1.1" ')
    assert len(downloads) == 2
    assert all(re.search(r'" 200 (0|-) "', line) for line in downloads), downloads


def test_tuspy_sends_the_readmes_64_mib_pieces(front, token, tmp_path):
    from tusclient import client

    path = tmp_path / "backup.tar"
    digest = random_file(path, limits.PIECE_SIZE + 3 * MiB + 5)
    tus = client.TusClient(
        f"{front.url}/uploads/tus/", headers={"Authorization": f"Bearer {token}"}
    )
    uploader = tus.uploader(
        str(path),
        chunk_size=limits.PIECE_SIZE,
        metadata={"filename": "backup.tar"},
        upload_checksum=True,
    )
    uploader.upload()
    status = status_of(front, token, uploader.url.rsplit("/", 1)[1])
    assert (status["status"], status["sha256"]) == ("complete", digest)


def readme_block(after):
    """The first ```sh block of the site's README after the text `after`."""
    readme = (servers.SITE_ROOT / "README.md").read_text()
    return re.search(r"```sh\n(.*?)```", readme[readme.index(after) :], re.S)[1]


def test_the_readmes_curl_loop_with_content_range(front, token, tmp_path):
    digest = random_file(tmp_path / "backup.tar", limits.PIECE_SIZE + 2 * MiB + 1)
    done = subprocess.run(
        ["bash", "-c", readme_block("With `curl` and Content-Range")],
        cwd=tmp_path,
        env={**os.environ, "SITE": front.url, "TOKEN": token},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    status = status_of(front, token, answer["upload_id"])
    assert (status["status"], status["sha256"], status["size"]) == (
        "complete",
        digest,
        limits.PIECE_SIZE + 2 * MiB + 1,
    )


def test_the_readmes_tus_curl_loop_from_a_stream(front, token, tmp_path):
    """Its pieces are 64 MiB PATCHes; the Location it follows is the proxy's."""
    (tmp_path / "photos").mkdir()
    random_file(tmp_path / "photos" / "one.jpg", limits.PIECE_SIZE + MiB)
    script = readme_block("With `curl` and tus, in 64 MiB pieces")
    site_line = "SITE=https://files.example.com TOKEN=bfu_...\n"
    assert site_line in script
    done = subprocess.run(
        ["bash", "-c", script.replace(site_line, "") + 'echo "$LOCATION"'],
        cwd=tmp_path,
        env={**os.environ, "SITE": front.url, "TOKEN": token},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    location = done.stdout.strip()
    assert location.startswith(f"{front.url}/uploads/tus/")
    status = status_of(front, token, location.rsplit("/", 1)[1])
    tar = subprocess.run(["tar", "c", "photos/"], cwd=tmp_path, capture_output=True, check=True)
    assert (status["status"], status["sha256"]) == (
        "complete",
        hashlib.sha256(tar.stdout).hexdigest(),
    )


def test_a_chunk_over_the_limit_is_refused_in_json_before_its_body(front, certificate):
    context = ssl.create_default_context(cafile=str(certificate[0]))
    with context.wrap_socket(
        socket.create_connection(("127.0.0.1", front.https_port), timeout=5),
        server_hostname="127.0.0.1",
    ) as sock:
        sock.sendall(
            (
                "POST /uploads/flow/?flowChunkNumber=1 HTTP/1.1\r\n"
                f"Host: 127.0.0.1:{front.https_port}\r\n"
                f"Content-Length: {limits.largest_request_body() + MiB}\r\n\r\n"
            ).encode()
        )
        head, _, body = sock.recv(4096).decode().partition("\r\n\r\n")
    assert head.startswith("HTTP/1.1 413 ")
    assert "Content-Type: application/json" in head
    assert json.loads(body)["error"].startswith("this request is larger than the site takes")


def test_gunicorn_down_is_a_503_that_upload_clients_retry(tmp_path, site, certificate):
    """nginx in front of an address where no gunicorn listens (stopped, restarting)."""
    nowhere = SimpleNamespace(url=f"http://127.0.0.1:{servers.free_port()}", folder=site.folder)
    nginx = Nginx(tmp_path, nowhere, *certificate)
    nginx.start()
    try:
        response = requests.post(f"{nginx.url}/uploads/tus/", timeout=5)
    finally:
        nginx.stop()
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "10"
    assert response.json() == {"error": "the site is restarting; retry in a few seconds"}


def test_plain_http_is_redirected_and_https_is_served_as_https(front):
    http = f"http://127.0.0.1:{front.http_port}"
    response = requests.get(f"{http}/uploads/?x=1", allow_redirects=False, timeout=5)
    assert response.status_code == 301
    assert response.headers["Location"] == "https://127.0.0.1/uploads/?x=1"
    # Django sees HTTPS through X-Forwarded-Proto: no redirect loop, HSTS, secure cookies.
    response = requests.get(f"{front.url}/accounts/login/", allow_redirects=False, timeout=5)
    assert response.status_code == 200
    assert response.headers["Strict-Transport-Security"].startswith("max-age=")
    assert "Secure" in response.headers["Set-Cookie"]


def test_static_files_are_served_by_nginx(front, site):
    response = requests.get(
        f"{front.url}/static/css/site.css", headers={"Accept-Encoding": "gzip"}, timeout=5
    )
    assert response.status_code == 200
    assert response.headers["Content-Encoding"] == "gzip"  # WhiteNoise's .gz copy
    assert response.text == (servers.SITE_ROOT / "static" / "css" / "site.css").read_text()
    assert gunicorn_lines(site, r'"GET /static/') == []


def slow_client(front, context):
    """A connection from SLOW_ADDRESS that starts a login form's POST and sends no body yet."""
    raw = socket.create_connection(
        ("127.0.0.1", front.https_port), timeout=5, source_address=(SLOW_ADDRESS, 0)
    )
    sock = context.wrap_socket(raw, server_hostname="127.0.0.1")
    sock.sendall(
        (
            f"POST /accounts/login/ HTTP/1.1\r\nHost: 127.0.0.1:{front.https_port}\r\n"
            "Content-Type: application/x-www-form-urlencoded\r\n"
            f"Content-Length: {SLOW_ROUNDS * 10}\r\n\r\n"
        ).encode()
    )
    return sock


def answer_of(sock):
    """What the server said on this connection so far ('' for nothing yet)."""
    sock.setblocking(False)
    try:
        return sock.recv(200).decode()
    except ssl.SSLWantReadError:  # nothing but TLS's own messages
        return ""


def connections_to(site):
    """How many connections gunicorn has open right now (from nginx)."""
    port = urlsplit(site.url).port
    done = subprocess.run(
        ["ss", "-Htn", "state", "established", f"( sport = :{port} )"],
        capture_output=True,
        text=True,
        check=True,
        timeout=10,
    )
    return len(done.stdout.splitlines())


def test_fifty_slow_clients_do_not_slow_the_site_down(front, site, certificate):
    context = ssl.create_default_context(cafile=str(certificate[0]))
    clients = [slow_client(front, context) for _ in range(SLOW_CLIENTS)]
    try:
        slowest, busiest = 0.0, 0
        for _ in range(SLOW_ROUNDS):
            for sock in clients:
                with contextlib.suppress(OSError):  # the ones nginx refused at once, below
                    sock.sendall(b"x")
            busiest = max(busiest, connections_to(site))
            started = time.monotonic()
            response = requests.get(f"{front.url}/accounts/login/", timeout=5)
            slowest = max(slowest, time.monotonic() - started)
            assert response.status_code == 200
            time.sleep(SLOW_INTERVAL)
        assert slowest < 1.0, f"the login page took {slowest:.2f} s"
        answers = [answer_of(sock) for sock in clients]
    finally:
        for sock in clients:
            sock.close()
    # One address may hold 32 connections; nginx refuses the rest at once with a
    # 429, which clients retry later. The others are still being read by nginx.
    refused = [answer for answer in answers if answer.startswith("HTTP/1.1 429")]
    assert len(refused) == SLOW_CLIENTS - 32, answers
    assert answers.count("") == 32, answers
    # nginx reads their bodies itself: none of them holds a gunicorn thread.
    assert busiest == 0
