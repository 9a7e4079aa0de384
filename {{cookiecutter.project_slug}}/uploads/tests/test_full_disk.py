"""
Full disks, on real small file systems: a tmpfs mounted for the test (the
tests run as root; where mounting is refused they skip and say so).

A full staging disk refuses a chunk with 507 and JSON, keeps nothing of it,
and the client's retry succeeds once there is room, by every protocol, through
Django's test client and through gunicorn on one kept-alive requests.Session.
A full MEDIA_ROOT leaves a whole upload `processing` with its staged bytes,
and it finishes once there is room.
"""

import base64
import errno
import hashlib
import random
import subprocess
from contextlib import contextmanager, suppress
from pathlib import Path
from urllib.parse import urlencode

import pytest
import requests
from django.core.management import call_command
from django.utils import timezone

from uploads import engine, staging
from uploads.models import Upload

from .chunking import Body, params
from .servers import REQUEST_TIMEOUT, Site, finished

HALF = 1024 * 1024
SIZE = 2 * HALF
MOUNT_SIZE = "8m"


@contextmanager
def tmpfs(folder, size=MOUNT_SIZE):
    """A tmpfs of `size` at `folder`, unmounted afterwards; skips where mount is refused."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs for a full disk: {done.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def fill(folder):
    """Write a file into `folder` until its file system is full; returns the file."""
    filler = Path(folder) / "filler"
    block = b"\xff" * 65536
    with open(filler, "wb", buffering=0) as out:
        try:
            while True:
                out.write(block)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
    with suppress(OSError), open(filler, "ab", buffering=0) as out:
        while True:  # the last blocks that fit, a page at a time
            out.write(b"\xff" * 4096)
    return filler


# --- The protocols, as exchanges a client makes --------------------------------------------------
#
# Each protocol sends the first half of a file (`begin`, answering the upload's
# id), then the second half (`rest`), then whatever makes it whole (`end`).
# `send` is the HTTP client: Django's test client or a requests.Session.


def b64(text):
    return base64.b64encode(text.encode()).decode()


TUS = {"Tus-Resumable": "1.0.0"}
OCTETS = "application/offset+octet-stream"


class ChunkProtocol:
    def __init__(self, name, prefix, method):
        self.name, self.prefix, self.method = name, prefix, method
        self.url = f"/uploads/{prefix}/"

    def chunk(self, send, data, number):
        query = params(self.prefix, data, number, chunk_size=HALF, identifier=f"id-{self.method}")
        piece = data[(number - 1) * HALF : number * HALF]
        if self.method == "octet":
            return send("POST", f"{self.url}?{urlencode(query)}", body=piece)
        return send("POST", self.url, form=query, file=piece)

    def begin(self, send, data):
        response = self.chunk(send, data, 1)
        assert response.status_code == 200, response.content
        return response.json()["id"]

    def rest(self, send, data, upload_id):
        return self.chunk(send, data, 2)

    def end(self, send, data, upload_id):
        pass


class TusPatch:
    name = "tus PATCH"

    def create(self, send, body=b""):
        headers = {**TUS, "Upload-Length": str(SIZE), "Upload-Metadata": f"filename {b64('t.bin')}"}
        if body:
            headers["Content-Type"] = OCTETS
        return send("POST", "/uploads/tus/", body=body, headers=headers)

    def begin(self, send, data):
        created = self.create(send)
        assert created.status_code == 201, created.content
        upload_id = created.headers["Location"].rstrip("/").rsplit("/", 1)[1]
        response = self.patch(send, upload_id, 0, data[:HALF])
        assert response.status_code == 204, response.content
        return upload_id

    def patch(self, send, upload_id, offset, body):
        headers = {**TUS, "Upload-Offset": str(offset), "Content-Type": OCTETS}
        return send("PATCH", f"/uploads/tus/{upload_id}", body=body, headers=headers)

    def rest(self, send, data, upload_id):
        return self.patch(send, upload_id, HALF, data[HALF:])

    def end(self, send, data, upload_id):
        pass


class ContentRange:
    name = "Content-Range"

    def chunk(self, send, data, start, upload_id=None):
        form = {"upload_id": upload_id} if upload_id else {}
        headers = {"Content-Range": f"bytes {start}-{start + HALF - 1}/{SIZE}"}
        return send(
            "POST", "/uploads/chunked/", form=form, file=data[start : start + HALF], headers=headers
        )

    def begin(self, send, data):
        response = self.chunk(send, data, 0)
        assert response.status_code == 200, response.content
        return response.json()["upload_id"]

    def rest(self, send, data, upload_id):
        return self.chunk(send, data, HALF, upload_id)

    def end(self, send, data, upload_id):
        md5 = hashlib.md5(data).hexdigest()  # noqa: S324 - the protocol's own checksum
        response = send(
            "POST", "/uploads/chunked/complete/", form={"upload_id": upload_id, "md5": md5}
        )
        assert response.status_code == 200, response.content


PROTOCOLS = [
    ChunkProtocol("flow.js multipart", "flow", "multipart"),
    ChunkProtocol("flow.js octet", "flow", "octet"),
    ChunkProtocol("resumable.js", "resumable", "multipart"),
    TusPatch(),
    ContentRange(),
]
IDS = [protocol.name for protocol in PROTOCOLS]


def django_sender(client):
    def send(method, path, *, body=b"", form=None, file=None, headers=None):
        headers = dict(headers or {})
        if form is not None:
            data = dict(form)
            if file is not None:
                data["file"] = _Named(file)
            return client.post(path, data=data, headers=headers)
        content_type = headers.pop("Content-Type", "application/octet-stream")
        return client.generic(method, path, data=body, content_type=content_type, headers=headers)

    return send


def session_sender(session, url):
    def send(method, path, *, body=b"", form=None, file=None, headers=None):
        files = {"file": ("blob", file)} if file is not None else None
        return session.request(
            method,
            url + path,
            data=form if form is not None else body,
            files=files,
            headers=headers,
            timeout=REQUEST_TIMEOUT,
        )

    return send


class _Named:
    name = "blob"

    def __init__(self, data):
        self._data = data

    def read(self):
        return self._data


def assert_refused_for_room(response):
    assert response.status_code == 507, response.content
    assert response.headers["Content-Type"] == "application/json"
    assert "full" in response.json()["error"] or "room" in response.json()["error"]


# --- Staging full, through Django's test client --------------------------------------------------


@pytest.fixture
def small_staging(settings, tmp_path):
    with tmpfs(tmp_path / "staging-disk") as folder:
        settings.UPLOADS_STAGING_DIR = folder / "staging"
        # The test disk is small: keep nothing in reserve but what a test asks for.
        settings.UPLOADS_MIN_FREE_BYTES = 0
        yield folder


@pytest.mark.parametrize("protocol", PROTOCOLS, ids=IDS)
def test_a_chunk_that_finds_the_staging_disk_full_is_507_and_its_retry_succeeds(
    alice, small_staging, protocol
):
    send = django_sender(alice)
    data = random.Random(protocol.name).randbytes(SIZE)
    upload_id = protocol.begin(send, data)
    staged = staging.backend.path_for(Upload.objects.get(pk=upload_id))
    before = staged.read_bytes()

    filler = fill(small_staging)
    assert_refused_for_room(protocol.rest(send, data, upload_id))
    upload = Upload.objects.get(pk=upload_id)
    assert (upload.status, upload.received_bytes) == ("uploading", HALF), "nothing was recorded"
    assert staged.read_bytes()[:HALF] == before[:HALF], "the bytes received are intact"

    filler.unlink()
    response = protocol.rest(send, data, upload_id)
    assert response.status_code in (200, 204), response.content
    protocol.end(send, data, upload_id)
    status = alice.get(f"/uploads/api/uploads/{upload_id}/").json()
    assert status["status"] == "complete"
    assert status["sha256"] == hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize(
    "first_bytes", [b"", b"x" * HALF], ids=["creation", "creation-with-upload"]
)
def test_a_new_upload_that_does_not_fit_is_507_before_any_byte(
    alice, small_staging, settings, first_bytes
):
    send = django_sender(alice)
    free = staging.backend.free_bytes()
    settings.UPLOADS_MIN_FREE_BYTES = free - SIZE + 1  # one byte short
    response = TusPatch().create(send, first_bytes)
    assert_refused_for_room(response)
    assert not Upload.objects.exists()
    assert not any(staging.backend.directory().glob("*.part"))

    settings.UPLOADS_MIN_FREE_BYTES = free - SIZE
    assert TusPatch().create(send, first_bytes).status_code == 201


def test_what_unfinished_uploads_still_need_is_counted_as_taken(alice, small_staging, settings):
    """Staging files are sparse: a started upload has not taken its room yet, but will."""
    send = django_sender(alice)
    settings.UPLOADS_MIN_FREE_BYTES = staging.backend.free_bytes() - SIZE - SIZE // 2
    assert TusPatch().create(send).status_code == 201  # fits, and is promised SIZE bytes
    assert_refused_for_room(TusPatch().create(send))  # the rest would no longer fit
    assert Upload.objects.count() == 1


def test_a_tus_creation_with_upload_that_finds_the_disk_full_creates_nothing(alice, small_staging):
    """A deferred size is not counted at creation: the write finds the disk full."""
    send = django_sender(alice)
    headers = {
        **TUS,
        "Upload-Defer-Length": "1",
        "Upload-Metadata": f"filename {b64('d.bin')}",
        "Content-Type": OCTETS,
    }
    data = random.Random(5).randbytes(HALF)
    filler = fill(small_staging)
    response = send("POST", "/uploads/tus/", body=data, headers=headers)
    assert_refused_for_room(response)
    assert not Upload.objects.filter(status="uploading").exists(), "no upload left half-made"
    assert not any(staging.backend.directory().glob("*.part"))
    filler.unlink()
    created = send("POST", "/uploads/tus/", body=data, headers=headers)
    assert created.status_code == 201
    assert created.headers["Upload-Offset"] == str(HALF)


# --- Staging full, through gunicorn, on one kept-alive connection -------------------------------


@pytest.fixture(scope="module")
def full_disk_site(tmp_path_factory):
    folder = tmp_path_factory.mktemp("full-disk-site")
    with tmpfs(folder / "staging-disk") as disk:
        site = Site(folder, f"sqlite:///{folder / 'db.sqlite3'}", workers=1)
        site.staging = disk / "staging"
        site.env["UPLOADS_STAGING_DIR"] = str(site.staging)
        site.env["UPLOADS_MIN_FREE_BYTES"] = "0"
        site.start()
        try:
            yield site, disk
        finally:
            site.stop()


@pytest.mark.server
@pytest.mark.parametrize("protocol", PROTOCOLS, ids=IDS)
def test_over_gunicorn_a_full_disk_is_507_and_the_same_session_carries_on(full_disk_site, protocol):
    site, disk = full_disk_site
    client = site.login()
    with requests.Session() as session:
        session.cookies.update(client.cookies)
        session.headers["X-CSRFToken"] = client.cookies["csrftoken"]
        send = session_sender(session, site.url)
        data = random.Random(protocol.name).randbytes(SIZE)
        upload_id = protocol.begin(send, data)

        filler = fill(disk)
        try:
            assert_refused_for_room(protocol.rest(send, data, upload_id))
            # The next request on the same connection is answered, not reset.
            status = session.get(
                f"{site.url}/uploads/api/uploads/{upload_id}/", timeout=REQUEST_TIMEOUT
            ).json()
            assert (status["status"], status["received_bytes"]) == ("uploading", HALF)
        finally:
            filler.unlink()

        response = protocol.rest(send, data, upload_id)
        assert response.status_code in (200, 204), response.content
        protocol.end(send, data, upload_id)
        status = finished(
            lambda: session.get(
                f"{site.url}/uploads/api/uploads/{upload_id}/", timeout=REQUEST_TIMEOUT
            ).json()
        )
        assert status["status"] == "complete"
        assert status["sha256"] == hashlib.sha256(data).hexdigest()


# --- MEDIA_ROOT full while finishing -------------------------------------------------------------


@pytest.fixture
def small_media(settings, tmp_path):
    with tmpfs(tmp_path / "media-disk") as folder:
        settings.MEDIA_ROOT = folder / "media"
        yield folder


def test_a_full_media_root_keeps_the_staged_bytes_and_finishes_once_there_is_room(
    alice, user, small_media, settings
):
    # MEDIA_ROOT is its own small disk, so the file is copied into it, not linked.
    data = random.Random(9).randbytes(SIZE)
    upload = engine.start(user, Upload.Protocol.FLOW, filename="big.bin", size=SIZE)
    filler = fill(small_media)
    engine.write(upload, engine.Piece(0, SIZE, Body(data)))

    upload.refresh_from_db()
    assert upload.status == Upload.Status.PROCESSING, "a full disk is no reason to fail"
    assert "No space left" in upload.error
    assert staging.backend.path_for(upload).read_bytes() == data, "the staged bytes stay"
    stored = [p for p in (small_media / "media").rglob("*") if p.is_file()]
    assert stored == [], "no partial copy is left in MEDIA_ROOT"

    filler.unlink()
    # The lease of the run that could not store it runs out: cleanup takes it over.
    Upload.objects.filter(pk=upload.pk).update(finishing_until=timezone.now())
    call_command("cleanup_uploads", "-v", "0")
    upload.refresh_from_db()
    assert upload.status == Upload.Status.COMPLETE
    assert upload.sha256 == hashlib.sha256(data).hexdigest()
    assert upload.file.read() == data
    assert not staging.backend.path_for(upload).exists()


def test_a_content_range_complete_that_finds_media_full_says_to_retry_not_500(alice, small_media):
    send = django_sender(alice)
    protocol = ContentRange()
    data = random.Random(11).randbytes(SIZE)
    upload_id = protocol.begin(send, data)
    assert protocol.rest(send, data, upload_id).status_code == 200
    filler = fill(small_media)
    md5 = hashlib.md5(data).hexdigest()  # noqa: S324 - the protocol's own checksum
    response = send("POST", "/uploads/chunked/complete/", form={"upload_id": upload_id, "md5": md5})
    assert response.status_code == 503, response.content
    assert "No space left" in response.json()["error"]
    assert Upload.objects.get(pk=upload_id).status == Upload.Status.PROCESSING

    filler.unlink()
    Upload.objects.filter(pk=upload_id).update(finishing_until=timezone.now())
    status = alice.get(f"/uploads/api/uploads/{upload_id}/").json()
    assert status["status"] == "complete"
    assert status["sha256"] == hashlib.sha256(data).hexdigest()
