"""
Each upload signal is sent once per upload: in one process, and on a real
gunicorn whose workers race on the chunks while cleanup_uploads runs beside
them. The README's example receiver is run as written.
"""

import io
import logging
import os
import random
import re
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlencode

import pytest
from django.utils import timezone

from uploads import engine, staging
from uploads.errors import UploadGone
from uploads.models import Upload
from uploads.signals import upload_completed, upload_expired, upload_failed, upload_started

from . import servers
from .chunking import chunk_bounds, chunk_count, params, sha256

Status = Upload.Status
README = Path(__file__).resolve().parents[2] / "README.md"
SIGNALS = {
    "upload_started": upload_started,
    "upload_completed": upload_completed,
    "upload_failed": upload_failed,
    "upload_expired": upload_expired,
}


@pytest.fixture
def sent():
    """Every signal sent, as (signal name, upload id)."""
    log = []
    receivers = {}
    for name, signal in SIGNALS.items():
        receivers[name] = lambda sender, upload, name=name, **kw: log.append((name, upload.pk))
        signal.connect(receivers[name])
    yield log
    for name, signal in SIGNALS.items():
        signal.disconnect(receivers[name])


def begin(user, data, client_id="one"):
    return engine.find_or_start(
        user, Upload.Protocol.FLOW, client_id, filename="a.bin", size=len(data), chunk_size=100
    )


@pytest.mark.django_db
def test_expired_is_sent_once_whoever_expires_it(user, sent, django_capture_on_commit_callbacks):
    data = b"e" * 300
    with django_capture_on_commit_callbacks(execute=True):
        upload = begin(user, data)
    engine.write(upload, engine.Piece(0, 100, io.BytesIO(data[:100])))
    Upload.objects.filter(pk=upload.pk).update(expires=timezone.now() - timezone.timedelta(1))
    with pytest.raises(UploadGone, match="expired"):  # the next chunk finds it expired
        begin(user, data)
    engine.expire(upload)  # then cleanup_uploads, or another worker, tries again
    engine.expire(Upload.objects.get(pk=upload.pk))
    assert sent == [("upload_started", upload.pk), ("upload_expired", upload.pk)]
    assert Upload.objects.get(pk=upload.pk).status == Status.EXPIRED


@pytest.mark.django_db
def test_an_upload_within_its_time_is_not_expired(user, sent):
    upload = begin(user, b"w" * 300)
    engine.expire(upload)
    assert upload.status == Status.UPLOADING
    assert sent == []


@pytest.mark.django_db
def test_flow_chunk_for_an_expired_upload_gets_a_final_404(alice, user):
    data = b"f" * 300
    query = params("flow", data, 1, chunk_size=100, identifier="late")
    first = alice.post(
        f"/uploads/flow/?{urlencode(query)}",
        data=data[:100],
        content_type="application/octet-stream",
    )
    assert first.status_code == 200
    upload = Upload.objects.get()
    Upload.objects.filter(pk=upload.pk).update(expires=timezone.now() - timezone.timedelta(1))
    query = params("flow", data, 2, chunk_size=100, identifier="late")
    response = alice.post(
        f"/uploads/flow/?{urlencode(query)}",
        data=data[100:200],
        content_type="application/octet-stream",
    )
    assert response.status_code == 404  # in flow.js's and resumable.js's permanentErrors
    assert "expired" in response.json()["error"]
    status = alice.get(f"/uploads/api/uploads/{upload.pk}/").json()
    assert status["status"] == "expired"
    assert not staging.backend.path_for(upload).exists()


@pytest.mark.django_db
def test_the_readme_example_receiver_works(user, caplog):
    text = README.read_text()
    example = re.search(r"## Signals.*?```python\n(.*?)```", text, re.S).group(1)
    namespace = {}
    exec(compile(example, "README.md", "exec"), namespace)  # noqa: S102 - our own README
    try:
        data = b"r" * 300
        with caplog.at_level(logging.INFO):
            done = begin(user, data, client_id="done")
            engine.write(done, engine.Piece(0, 300, io.BytesIO(data)))
            late = begin(user, data, client_id="late")
            Upload.objects.filter(pk=late.pk).update(expires=timezone.now())
            engine.expire(late)
        messages = [r.getMessage() for r in caplog.records if r.name == "myapp.uploads"]
        done.refresh_from_db()
        assert messages == [
            f"alice uploaded {done.file.name}: 300 bytes, sha256 {sha256(data)}",
            f"alice's upload of a.bin expired after {late.received_bytes} of 300 bytes",
        ]
    finally:
        for name, value in namespace.items():
            for signal in SIGNALS.values():
                if callable(value) and not name.startswith("_"):
                    signal.disconnect(value)


# --- On gunicorn -------------------------------------------------------------------------------

WORKERS = 4
CHUNK = 128 * 1024
TIMEOUT = 60  # one manage.py command


def send_chunk(client, identifier, data, number):
    query = params("flow", data, number, chunk_size=CHUNK, identifier=identifier)
    start, end = chunk_bounds(len(data), CHUNK, number)
    return client.post(
        f"/uploads/flow/?{urlencode(query)}",
        data=data[start:end],
        headers={"Content-Type": "application/octet-stream"},
    )


def manage(site, *args):
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=servers.SITE_ROOT,
        env=site.env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )


@pytest.fixture
def site(tmp_path):
    site = servers.Site(tmp_path / "site", f"sqlite:///{tmp_path / 'db.sqlite3'}", workers=WORKERS)
    site.env["DJANGO_SETTINGS_MODULE"] = "uploads.tests.signal_settings"
    site.env["SIGNAL_LOG"] = str(tmp_path / "signals.log")
    site.signal_log = tmp_path / "signals.log"
    try:
        site.start()
        yield site
    finally:
        site.stop()


@pytest.mark.server
@pytest.mark.timeout(180)
def test_on_gunicorn_cleanup_harms_no_upload_and_signals_fire_once(site):
    rng = random.Random()
    client = site.login()
    orphan = site.staging / f"{uuid.uuid4().hex}.part"
    site.staging.mkdir(parents=True, exist_ok=True)
    orphan.write_bytes(b"o" * 1000)
    os.utime(orphan, (time.time() - 7200, time.time() - 7200))

    # An upload whose chunks race on four workers, some sent twice at once,
    # while cleanup_uploads runs over and over beside it.
    data = rng.randbytes(2 * 1024 * 1024 + 12345)
    # Chunk 1 races too: a copy arriving after the upload is complete goes to
    # that upload (engine.LATE_CHUNK_WINDOW), it does not start another.
    numbers = list(range(1, chunk_count(len(data), CHUNK) + 1)) * 2
    rng.shuffle(numbers)
    done, runs = threading.Event(), []

    def clean_until_done():
        while not done.is_set() or len(runs) < 2:
            runs.append(manage(site, "cleanup_uploads", "-v", "2"))

    cleaner = threading.Thread(target=clean_until_done)
    cleaner.start()
    try:
        with ThreadPoolExecutor(4) as pool:
            responses = list(pool.map(lambda n: send_chunk(client, "racing", data, n), numbers))
    finally:
        done.set()
        cleaner.join(timeout=2 * TIMEOUT)
    assert [r.status_code for r in responses] == [200] * len(numbers), responses[0].text
    (racing,) = {r.json()["id"] for r in responses}
    assert all(run.returncode == 0 for run in runs), [run.stderr for run in runs]
    status = client.finished(racing)
    assert status["status"] == "complete"
    assert status["sha256"] == sha256(data)
    assert not orphan.exists(), "the unowned, old staging file was removed"

    # An upload that expires, then gets chunks from four workers at once while cleanup runs.
    late_data = rng.randbytes(4 * CHUNK + 7)
    first = send_chunk(client, "late", late_data, 1)
    assert first.status_code == 200, first.text
    late = first.json()["id"]
    expire = manage(
        site,
        "shell",
        "-c",
        "from uploads.models import Upload; from django.utils import timezone; "
        f"Upload.objects.filter(pk='{late}').update(expires=timezone.now())",
    )
    assert expire.returncode == 0, expire.stderr
    with ThreadPoolExecutor(5) as pool:
        cleanup = pool.submit(manage, site, "cleanup_uploads")
        refused = list(pool.map(lambda n: send_chunk(client, "late", late_data, n), [2, 3, 2, 3]))
    assert cleanup.result().returncode == 0, cleanup.result().stderr
    # A chunk that finds the upload past its time is refused with a final 404.
    # Once it is marked expired its identifier is free: a chunk arriving after
    # that starts a new upload (the client's retry path), never the old one.
    codes = Counter(r.status_code for r in refused)
    assert set(codes) <= {200, 404}, codes
    assert codes[404] >= 1 or cleanup_expired(cleanup.result())
    assert all("expired" in r.json()["error"] for r in refused if r.status_code == 404)
    fresh = {r.json()["id"] for r in refused if r.status_code == 200}
    assert late not in fresh and len(fresh) <= 1
    assert client.get(f"/uploads/api/uploads/{late}/").json()["status"] == "expired"

    site.stop()
    lines = Counter(site.signal_log.read_text().splitlines())
    assert lines == Counter(
        {
            f"upload_started {racing}": 1,
            f"upload_completed {racing}": 1,
            f"upload_started {late}": 1,
            f"upload_expired {late}": 1,
            **{f"upload_started {pk}": 1 for pk in fresh},
        }
    )
    staged = sorted(p.name for p in site.staging.iterdir())
    assert staged == [f"{uuid.UUID(pk).hex}.part" for pk in fresh]


def cleanup_expired(run):
    """cleanup_uploads marked the upload expired before any chunk found it."""
    return "Expired 1 upload(s)" in run.stdout
