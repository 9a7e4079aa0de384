"""
Real tus clients against the site as it is deployed: gunicorn with several
workers (servers.Site), an API token made by `manage.py create_upload_token`.

- tuspy, as a script uploads, with per-request checksums;
- a PATCH cut off mid-body over a raw socket, then tuspy resuming from the
  server's offset;
- tus-js-client (vendored as a test asset, never served by the site) in
  headless Chromium, on a page from another origin, so the upload also goes
  through CORS;
- a stream of unknown length, its length sent with the last PATCH
  (creation-defer-length, over requests: tuspy cannot defer it);
- a curl-like Content-Range loop, then `complete` with the md5.
"""

import hashlib
import os
import random
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
from tusclient import client as tus_client

from . import servers

pytestmark = [pytest.mark.server, pytest.mark.timeout(180)]

WORKERS = 4
MB = 1024 * 1024
OCTETS = "application/offset+octet-stream"
# Copied by frontend/scripts/vendor.mjs; the test puts it in the page itself.
TUS_JS = Path(__file__).resolve().parent / "assets/tus-js-client/tus.min.js"


class AppPage(BaseHTTPRequestHandler):
    """Another site's page that uploads to ours: an empty page; the test adds tus-js-client."""

    def do_GET(self):
        body = b"<!doctype html><title>another site</title>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def app_origin():
    """Another origin on loopback like the site: Chromium blocks public pages calling loopback."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), AppPage)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def site(tmp_path_factory, app_origin):
    folder = tmp_path_factory.mktemp("tus-site")
    site = servers.Site(folder, f"sqlite:///{folder / 'db.sqlite3'}", workers=WORKERS)
    site.env["DJANGO_CORS_ALLOWED_ORIGINS"] = app_origin
    try:
        site.start()
        yield site
    finally:
        site.stop()


@pytest.fixture(scope="module")
def token(site):
    return site.manage("create_upload_token", site.username, "--name", "tests").strip()


def api(site, token, method, path, **kwargs):
    headers = {"Authorization": f"Bearer {token}", **kwargs.pop("headers", {})}
    return requests.request(
        method, site.url + path, headers=headers, timeout=servers.REQUEST_TIMEOUT, **kwargs
    )


def status_of(site, token, upload_id):
    """The upload's status once finished (the site finishes it after the last PATCH)."""
    return servers.finished(
        lambda: api(site, token, "GET", f"/uploads/api/uploads/{upload_id}/").json()
    )


def tuspy(site, token):
    return tus_client.TusClient(
        f"{site.url}/uploads/tus/", headers={"Authorization": f"Bearer {token}"}
    )


def test_tuspy_uploads_with_a_token_and_checksums(site, token, tmp_path):
    data = random.randbytes(3 * MB + 12345)
    path = tmp_path / "scan.tif"
    path.write_bytes(data)
    uploader = tuspy(site, token).uploader(
        file_path=str(path),
        chunk_size=MB,
        metadata={"filename": "scan.tif", "filetype": "image/tiff"},
        upload_checksum=True,
    )
    uploader.upload()
    upload_id = uploader.url.rsplit("/", 1)[1]
    status = status_of(site, token, upload_id)
    assert status["status"] == "complete", status
    assert (status["filename"], status["protocol"], status["size"]) == (
        "scan.tif",
        "tus",
        len(data),
    )
    assert status["sha256"] == hashlib.sha256(data).hexdigest()
    assert list(site.staging.glob(f"{upload_id.replace('-', '')}*")) == []


def test_a_patch_cut_off_mid_body_resumes_from_the_servers_offset(site, token, tmp_path):
    data = random.randbytes(2 * MB)
    path = tmp_path / "video.mp4"
    path.write_bytes(data)
    created = api(
        site,
        token,
        "POST",
        "/uploads/tus/",
        headers={
            "Tus-Resumable": "1.0.0",
            "Upload-Length": str(len(data)),
            "Upload-Metadata": "filename dmlkZW8ubXA0",
        },
    )
    assert created.status_code == 201, created.text
    location = created.headers["Location"]

    # Headers for the whole file, then 700,000 bytes, then the client stops
    # sending (half-close): the server sees the body end early and answers.
    url = urlsplit(location)
    head = (
        f"PATCH {url.path} HTTP/1.1\r\nHost: {url.netloc}\r\n"
        f"Authorization: Bearer {token}\r\nTus-Resumable: 1.0.0\r\nUpload-Offset: 0\r\n"
        f"Content-Type: application/offset+octet-stream\r\nContent-Length: {len(data)}\r\n"
        "Connection: close\r\n\r\n"
    )
    with socket.create_connection((url.hostname, url.port), timeout=30) as sock:
        sock.sendall(head.encode() + data[:700_000])
        sock.shutdown(socket.SHUT_WR)
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    assert reply.startswith(b"HTTP/1.1 400"), reply[:200]
    assert b"resume at offset 700000" in reply

    offset = api(site, token, "HEAD", url.path, headers={"Tus-Resumable": "1.0.0"})
    assert offset.headers["Upload-Offset"] == "700000"
    # tuspy given the upload's URL asks for the offset (HEAD) and sends the rest.
    uploader = tuspy(site, token).uploader(file_path=str(path), url=location, chunk_size=MB)
    assert uploader.offset == 700_000
    uploader.upload()
    status = status_of(site, token, url.path.rsplit("/", 1)[1])
    assert status["status"] == "complete"
    assert status["sha256"] == hashlib.sha256(data).hexdigest()


def test_checksum_mismatch_and_termination(site, token):
    tus = {"Tus-Resumable": "1.0.0"}
    location = api(
        site,
        token,
        "POST",
        "/uploads/tus/",
        headers={**tus, "Upload-Length": "1000", "Upload-Metadata": "filename YS5iaW4="},
    ).headers["Location"]
    patch = {**tus, "Content-Type": "application/offset+octet-stream", "Upload-Offset": "0"}
    wrong = api(
        site,
        token,
        "PATCH",
        location.removeprefix(site.url),
        headers={**patch, "Upload-Checksum": "sha256 " + "A" * 43 + "="},
        data=b"z" * 400,
    )
    assert wrong.status_code == 460
    path = location.removeprefix(site.url)
    assert api(site, token, "HEAD", path, headers=tus).headers["Upload-Offset"] == "0"
    assert api(site, token, "PATCH", path, headers=patch, data=b"z" * 400).status_code == 204
    assert api(site, token, "DELETE", path, headers=tus).status_code == 204
    # Terminated is gone for good: 404 (an expired upload is 410).
    assert api(site, token, "HEAD", path, headers=tus).status_code == 404
    upload_id = path.rsplit("/", 1)[1]
    assert status_of(site, token, upload_id)["status"] == "cancelled"
    assert list(site.staging.glob(f"{upload_id.replace('-', '')}*")) == []


@pytest.mark.parametrize("tail", [54321, 0], ids=["short last piece", "empty last PATCH"])
def test_a_stream_of_unknown_length_sends_it_with_the_last_patch(site, token, tail):
    """
    creation-defer-length, as the README's `tar | curl` loop does it: pieces
    of a stream PATCHed as they come, the last (shorter, or empty when the
    stream ends on a piece's boundary) with Upload-Length. Over requests:
    tuspy 1.1.0 cannot defer the length.
    """
    tus = {"Tus-Resumable": "1.0.0"}
    created = api(
        site,
        token,
        "POST",
        "/uploads/tus/",
        headers={**tus, "Upload-Defer-Length": "1", "Upload-Metadata": "filename cGhvdG9zLnRhcg=="},
    )
    assert created.status_code == 201, created.text
    path = created.headers["Location"].removeprefix(site.url)
    upload_id = path.rsplit("/", 1)[1]
    pieces = [random.randbytes(MB), random.randbytes(MB), random.randbytes(tail)]
    offset = 0
    for piece in pieces:
        headers = {**tus, "Content-Type": OCTETS, "Upload-Offset": str(offset)}
        if len(piece) < MB:
            headers["Upload-Length"] = str(offset + len(piece))
        else:
            head = api(site, token, "HEAD", path, headers=tus).headers
            assert (head["Upload-Offset"], head["Upload-Defer-Length"]) == (str(offset), "1")
            assert "Upload-Length" not in head
            assert status_of(site, token, upload_id)["size"] is None
        response = api(site, token, "PATCH", path, headers=headers, data=piece)
        assert response.status_code == 204, response.text
        offset = int(response.headers["Upload-Offset"])
    data = b"".join(pieces)
    status = status_of(site, token, upload_id)
    assert (status["status"], status["size"]) == ("complete", len(data)), status
    assert status["sha256"] == hashlib.sha256(data).hexdigest()
    assert list(site.staging.glob(f"{upload_id.replace('-', '')}*")) == []


def test_a_content_range_loop_then_complete_with_md5(site, token):
    """What the README's curl loop does, and what django-chunked-upload clients do."""
    data = random.randbytes(MB + 4321)
    upload_id, chunk = None, 256 * 1024
    for start in range(0, len(data), chunk):
        body = data[start : start + chunk]
        response = api(
            site,
            token,
            "POST",
            "/uploads/chunked/",
            headers={"Content-Range": f"bytes {start}-{start + len(body) - 1}/{len(data)}"},
            data={"upload_id": upload_id} if upload_id else {},
            files={"file": ("notes.txt", body)},
        )
        assert response.status_code == 200, response.text
        upload_id = response.json()["upload_id"]
    md5 = hashlib.md5(data, usedforsecurity=False).hexdigest()
    wrong = api(
        site,
        token,
        "POST",
        "/uploads/chunked/complete/",
        data={"upload_id": upload_id, "md5": "f" * 32},
    )
    assert wrong.status_code == 400
    assert status_of(site, token, upload_id)["status"] == "uploading"
    done = api(
        site, token, "POST", "/uploads/chunked/complete/", data={"upload_id": upload_id, "md5": md5}
    )
    assert done.status_code == 200, done.text
    status = status_of(site, token, upload_id)
    assert status["status"] == "complete"
    assert status["sha256"] == hashlib.sha256(data).hexdigest()


@pytest.mark.skipif(
    not os.access(servers.CHROMIUM, os.X_OK),
    reason="Chromium is not installed: apt-get install chromium (never a downloaded browser)",
)
def test_tus_js_client_in_chromium_from_another_origin(site, token, app_origin):
    sync_api = pytest.importorskip("playwright.sync_api")
    size = 700_000  # three chunks of 256 KiB
    expected = bytes((i * 31 + 7) & 255 for i in range(size))
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=servers.CHROMIUM, headless=True, args=servers.CHROMIUM_ARGS
        )
        try:
            page = browser.new_page()
            page.set_default_timeout(30_000)
            page.goto(f"{app_origin}/")
            page.add_script_tag(path=str(TUS_JS))
            url = page.evaluate(
                """([endpoint, token, size]) => new Promise((resolve, reject) => {
                    const bytes = new Uint8Array(size);
                    for (let i = 0; i < size; i++) bytes[i] = (i * 31 + 7) & 255;
                    const upload = new tus.Upload(new Blob([bytes]), {
                        endpoint,
                        chunkSize: 256 * 1024,
                        retryDelays: [],
                        headers: {Authorization: "Bearer " + token},
                        metadata: {filename: "from-browser.bin", filetype: "text/plain"},
                        onError: (error) => reject(String(error)),
                        onSuccess: () => resolve(upload.url),
                    });
                    upload.start();
                })""",
                [f"{site.url}/uploads/tus/", token, size],
            )
        finally:
            browser.close()
    status = status_of(site, token, url.rsplit("/", 1)[1])
    assert status["status"] == "complete"
    assert status["filename"] == "from-browser.bin"
    assert status["sha256"] == hashlib.sha256(expected).hexdigest()
