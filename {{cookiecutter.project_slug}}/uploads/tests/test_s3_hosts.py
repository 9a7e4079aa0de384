"""
Two app hosts that share nothing but PostgreSQL, a bucket and Redis: two
gunicorns of the site, each with its own empty media and staging folders,
UPLOADS_STAGING=s3, CELERY_BROKER_URL set and a real Celery worker process
(with its own empty folders too) finishing the uploads; chunks of one file
sent 4 at a time and alternating between the hosts.

No real S3 can run on the project's machines: the bucket is moto's standalone
server (buckets.py). Redis is the one at 127.0.0.1:6379, on a database number
of the test's own; the hosts reach it through a relay (buckets.Relay) that a
test cuts to make the broker unreachable from them, the worker directly.
"""

import base64
import hashlib
import os
import random
import re
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import boto3
import pytest

from . import servers
from .buckets import Relay, moto_server
from .chunking import chunk_bounds, chunk_count, params

pytestmark = [pytest.mark.server, pytest.mark.scale, pytest.mark.timeout(240)]

BUCKET = "site-bucket"
MiB = 1024**2
PARALLEL_CHUNKS = 4
REDIS = ("127.0.0.1", 6379)
TUS = {"Tus-Resumable": "1.0.0"}
TUS_BODY = "application/offset+octet-stream"
SITE_ROOT = Path(__file__).resolve().parents[2]
WORKER_START_TIMEOUT = 60


def redis_or_skip():
    try:
        socket.create_connection(REDIS, timeout=1).close()
    except OSError:
        pytest.skip("Redis does not answer at 127.0.0.1:6379")


def broker_url():
    """A Redis database of the test's own, so that no other site's worker takes its jobs."""
    redis_or_skip()
    return f"redis://127.0.0.1:6379/{random.randrange(1, 16)}"


@pytest.fixture(scope="module")
def broker_relay():
    """
    The hosts' way to Redis: relay.down() cuts it. Its `database` is a Redis
    database of the module's own, so that no other site's worker takes its jobs.
    """
    redis_or_skip()
    relay = Relay(REDIS)
    relay.database = random.randrange(1, 16)
    relay.up()
    yield relay
    relay.down()


class Worker:
    """
    `celery -A config worker` of the site, one pool process (prefork), on the
    hosts' settings with its own folders, logging to `log`.
    """

    def __init__(self, folder, env):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.log = self.folder / "celery.log"
        self.env = {
            **env,
            "DJANGO_MEDIA_ROOT": str(self.folder / "media"),
            "UPLOADS_STAGING_DIR": str(self.folder / "staging"),
        }
        self._process = None

    def start(self):
        with open(self.log, "wb") as out:
            self._process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    "config",
                    "worker",
                    "--pool=prefork",
                    "--concurrency=1",
                    "--loglevel=INFO",
                    "--without-gossip",
                    "--without-mingle",
                    f"--hostname=test-{os.getpid()}-{id(self)}@%h",
                ],
                cwd=SITE_ROOT,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + WORKER_START_TIMEOUT
        while " ready." not in self.log.read_text():
            if self._process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"the Celery worker did not start:\n{self.log.read_text()}")
            time.sleep(0.1)

    def wait_for(self, pattern, timeout=30):
        """Until the worker's log has a line that `pattern` finds."""
        deadline = time.monotonic() + timeout
        while not pattern.search(text := self.log.read_text()):
            assert time.monotonic() < deadline, f"no {pattern.pattern!r} in:\n{text}"
            time.sleep(0.01)

    def pool_process(self):
        """The pid of the one process of the pool, which runs the jobs."""
        pid = self._process.pid
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        assert len(children) == 1, children
        return int(children[0])

    def stop(self):
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()  # warm shutdown
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)


FINISHED_BY_CELERY = re.compile(r"Task uploads\.tasks\.finish_upload\[\S+\] succeeded")


def signals(site):
    """The upload signals every process of the site wrote down (signal_settings.py)."""
    log = Path(site.env["SIGNAL_LOG"])
    return log.read_text().splitlines() if log.exists() else []


def completed_signals(site, upload_id, timeout=10):
    """How many upload_completed the upload had, once it had one: the status API
    may say `complete` a moment before the finisher's process has written the
    signal it sends right after that UPDATE."""
    line = f"upload_completed {upload_id}"
    deadline = time.monotonic() + timeout
    while line not in signals(site) and time.monotonic() < deadline:
        time.sleep(0.05)
    return signals(site).count(line)


@pytest.fixture(scope="module")
def hosts(tmp_path_factory, broker_relay):
    """Started once for the module: each test's uploads are told apart by id."""
    tmp_path = tmp_path_factory.mktemp("hosts")
    database = broker_relay.database
    with moto_server() as endpoint, servers.postgres_database() as database_url:
        bucket = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        bucket.create_bucket(Bucket=BUCKET)
        shared = {
            "UPLOADS_STAGING": "s3",
            "AWS_STORAGE_BUCKET_NAME": BUCKET,
            "AWS_S3_ENDPOINT_URL": endpoint,
            "AWS_S3_REGION_NAME": "us-east-1",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "CELERY_BROKER_URL": f"redis://127.0.0.1:{broker_relay.port}/{database}",
            # Every process counts the signals it sends, in one file.
            "DJANGO_SETTINGS_MODULE": "uploads.tests.signal_settings",
            "SIGNAL_LOG": str(tmp_path / "signals.log"),
        }
        first, second = (
            servers.Site(tmp_path / name, database_url, workers=2) for name in ("a", "b")
        )
        # One site: the same secret key and superuser; each host its own folders.
        second.env["DJANGO_SECRET_KEY"] = first.env["DJANGO_SECRET_KEY"]
        second.username, second.password = first.username, first.password
        for site in (first, second):
            site.env.update(shared)
        # The worker reaches Redis directly: cutting the relay cuts the hosts off.
        worker_env = {**first.env, "CELERY_BROKER_URL": f"redis://{REDIS[0]}:{REDIS[1]}/{database}"}
        worker = Worker(tmp_path / "worker", worker_env)
        try:
            first.start()
            second.manage("collectstatic", "--noinput")
            second.start(prepared=True)
            worker.start()
            yield first, second, bucket, worker
        finally:
            first.stop()
            second.stop()
            worker.stop()


def send_file(clients, data, chunk_size, method, protocol="flow"):
    """Every chunk of `data`, in a random order, 4 at a time, chunk n to host n % 2;
    the upload's id."""
    numbers = list(range(1, chunk_count(len(data), chunk_size) + 1))
    random.Random(len(numbers)).shuffle(numbers)
    responses = send_chunks(clients, data, chunk_size, method, numbers, protocol)
    ids = {response.json()["id"] for response in responses}
    assert len(ids) == 1, f"the chunks went to several uploads: {ids}"
    return ids.pop()


def send_chunks(clients, data, chunk_size, method, numbers, protocol="flow"):
    """Chunks `numbers` of `data` as flow.js (or resumable.js) sends them, 4 at a
    time, chunk n to host n % 2; each answered 200. Their responses."""

    def send(number):
        client = clients[number % len(clients)]
        return send_chunk(client, data, chunk_size, method, number, protocol)

    with ThreadPoolExecutor(PARALLEL_CHUNKS) as pool:
        responses = list(pool.map(send, numbers))
    for number, response in zip(numbers, responses, strict=True):
        assert response.status_code == 200, f"chunk {number}: {response.text}"
    return responses


def send_chunk(client, data, chunk_size, method, number, protocol="flow"):
    """Chunk `number` of `data` as flow.js (or resumable.js) sends it; the response."""
    query = params(protocol, data, number, chunk_size=chunk_size, identifier=f"f-{method}")
    start, end = chunk_bounds(len(data), chunk_size, number)
    if method == "octet":
        return client.post(
            f"/uploads/{protocol}/?{urlencode(query)}",
            data=data[start:end],
            headers={"Content-Type": "application/octet-stream"},
        )
    return client.post(f"/uploads/{protocol}/", data=query, files={"file": data[start:end]})


def send_tus(clients, data, piece, *, length=None):
    """A tus upload of `length` bytes (default: all of `data`), created on the
    first host, then `data` in PATCHes of `piece` bytes alternating hosts; its id."""
    name = base64.b64encode(b"data.bin").decode()
    length = len(data) if length is None else length
    created = clients[0].post(
        "/uploads/tus/",
        headers={**TUS, "Upload-Length": str(length), "Upload-Metadata": f"filename {name}"},
    )
    assert created.status_code == 201, created.text
    path = urlsplit(created.headers["Location"]).path
    for turn, offset in enumerate(range(0, len(data), piece), start=1):
        response = clients[turn % 2].request(
            "PATCH",
            path,
            data=data[offset : offset + piece],
            headers={**TUS, "Upload-Offset": str(offset), "Content-Type": TUS_BODY},
        )
        assert response.status_code == 204, f"offset {offset}: {response.text}"
    return path.rsplit("/", 1)[1]


def send_content_range(clients, data, piece):
    """Content-Range pieces in order, alternating hosts, then complete with the md5."""
    upload_id = None
    for turn, start in enumerate(range(0, len(data), piece)):
        chunk = data[start : start + piece]
        response = clients[turn % 2].post(
            "/uploads/chunked/",
            data={"upload_id": upload_id} if upload_id else {},
            files={"file": ("data.bin", chunk)},
            headers={"Content-Range": f"bytes {start}-{start + len(chunk) - 1}/{len(data)}"},
        )
        assert response.status_code == 200, f"offset {start}: {response.text}"
        upload_id = response.json()["upload_id"]
    done = clients[len(range(0, len(data), piece)) % 2].post(
        "/uploads/chunked/complete/",
        data={"upload_id": upload_id, "md5": hashlib.md5(data, usedforsecurity=False).hexdigest()},
    )
    assert done.status_code == 200, done.text
    return upload_id


@pytest.mark.parametrize(
    "protocol, chunk_size, size, method",
    [
        ("flow", 8 * MiB, 4 * 8 * MiB + 3 * MiB, "octet"),
        ("flow", 1 * MiB, 13 * MiB + 5, "multipart"),
        ("resumable", 8 * MiB, 2 * 8 * MiB + 5, "multipart"),
        ("resumable", 1 * MiB, 7 * MiB + 3, "octet"),
        ("tus", 1 * MiB, 6 * MiB + 7, None),
        ("tus", 8 * MiB, 2 * 8 * MiB + 9, None),
        ("content-range", 1 * MiB, 6 * MiB + 11, None),
    ],
    ids=[
        "flow-8MiB-octet",
        "flow-1MiB-multipart",
        "resumable-8MiB-multipart",
        "resumable-1MiB-octet",
        "tus-1MiB",
        "tus-8MiB",
        "content-range-1MiB",
    ],
)
def test_chunks_alternating_between_two_hosts(hosts, protocol, chunk_size, size, method):
    first, second, bucket, worker = hosts
    data = random.Random(size).randbytes(size)
    clients = [first.login(), second.login()]
    if protocol == "tus":
        upload_id = send_tus(clients, data, chunk_size)
    elif protocol == "content-range":
        upload_id = send_content_range(clients, data, chunk_size)
    else:
        upload_id = send_file(clients, data, chunk_size, method, protocol)

    for client in clients:  # the same answer from either host
        status = client.finished(upload_id)
        assert status["status"] == "complete", status
        assert status["sha256"] == hashlib.sha256(data).hexdigest()
    if protocol != "content-range":  # whose complete request finishes it, to check the md5
        # The Celery worker finished it, not a web process.
        worker.wait_for(FINISHED_BY_CELERY)
    assert completed_signals(first, upload_id) == 1
    stored = assert_nothing_left(bucket, (first, second), worker, upload_id)
    assert stored_sha256(bucket, stored) == status["sha256"]


def test_a_worker_killed_while_finishing_has_the_job_run_again_once(hosts):
    """
    SIGKILL to the pool process that is finishing a 64 MiB upload: the job was
    not acknowledged, the worker gives it back to the queue, the next pool
    process finishes it, and the upload is complete once, its signal sent once.
    """
    first, second, bucket, worker = hosts
    data = random.Random(64).randbytes(64 * MiB)
    clients = [first.login(), second.login()]
    count = chunk_count(len(data), 8 * MiB)
    send_chunks(clients, data, 8 * MiB, "octet", range(1, count))
    busy = worker.pool_process()
    (last,) = send_chunks(clients, data, 8 * MiB, "octet", [count])
    upload_id = last.json()["id"]
    worker.wait_for(re.compile(r"Task uploads\.tasks\.finish_upload\[\S+\] received"))
    os.kill(busy, signal.SIGKILL)
    assert clients[0].get(f"/uploads/api/uploads/{upload_id}/").json()["status"] == "processing"

    status = clients[1].finished(upload_id)
    assert status["status"] == "complete", status
    assert status["sha256"] == hashlib.sha256(data).hexdigest()
    worker.wait_for(FINISHED_BY_CELERY)
    assert "signal 9 (SIGKILL)" in worker.log.read_text()
    assert completed_signals(first, upload_id) == 1
    stored = assert_nothing_left(bucket, (first, second), worker, upload_id)
    assert stored_sha256(bucket, stored) == status["sha256"]


def assert_nothing_left(bucket, sites, worker, upload_id):
    """The upload's one finished object in the bucket (its key has the upload's
    own folder), no staging key or multipart upload, no byte on any host's
    disk, no error in the web logs."""
    (stored,) = [
        item
        for item in bucket.list_objects_v2(Bucket=BUCKET).get("Contents", [])
        if f"/{upload_id}/" in item["Key"]
    ]
    assert bucket.list_objects_v2(Bucket=BUCKET, Prefix="staging/").get("Contents", []) == []
    assert bucket.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []) == []
    folders = [worker.folder / "media", worker.folder / "staging"]
    for site in sites:
        folders += [site.staging, site.folder / "media"]
        errors = [line for line in site.log.read_text().splitlines() if " ERROR " in line]
        # Django logs every 5xx answer; a 503 that asks for a retry is not a failure.
        assert [line for line in errors if "Service Unavailable" not in line] == []
    for folder in folders:
        assert not folder.exists() or not any(folder.iterdir()), f"bytes in {folder}"
    return stored


def stored_sha256(bucket, stored):
    body = bucket.get_object(Bucket=BUCKET, Key=stored["Key"])["Body"]
    digest = hashlib.sha256()
    for block in iter(lambda: body.read(MiB), b""):
        digest.update(block)
    return digest.hexdigest()


def assert_no_staging_left(bucket):
    assert bucket.list_objects_v2(Bucket=BUCKET, Prefix="staging/").get("Contents", []) == []
    assert bucket.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []) == []


def test_cancel_and_expiry_leave_nothing_in_the_bucket(hosts):
    first, second, bucket, worker = hosts
    clients = [first.login(), second.login()]
    data = random.Random(5).randbytes(3 * MiB)

    # Begun on one host, cancelled on the other: tus termination.
    cancelled = send_tus(clients, data[: 2 * MiB], MiB, length=len(data))
    assert bucket.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []) != []
    response = clients[1].request("DELETE", f"/uploads/tus/{cancelled}", headers=TUS)
    assert response.status_code == 204, response.text
    assert clients[0].get(f"/uploads/api/uploads/{cancelled}/").json()["status"] == "cancelled"
    assert_no_staging_left(bucket)

    # Past its time: cleanup_uploads, on either host, expires it and empties its staging.
    expired = send_tus(clients, data[: 2 * MiB], MiB, length=len(data))
    first.manage(
        "shell",
        "-c",
        "from datetime import timedelta; from django.utils import timezone; "
        "from uploads.models import Upload; "
        f"Upload.objects.filter(pk='{expired}').update(expires=timezone.now() - timedelta(1))",
    )
    second.manage("cleanup_uploads")
    assert clients[0].get(f"/uploads/api/uploads/{expired}/").json()["status"] == "expired"
    assert_no_staging_left(bucket)


def test_the_upload_page_started_on_one_host_resumes_on_the_other(hosts, tmp_path):
    """Start on host A; the page reloaded from host B (the same site: its
    session is good there), the file chosen again: only the missing chunks go."""
    if not os.access(servers.CHROMIUM, os.X_OK):
        pytest.skip("Chromium is not installed: apt-get install chromium")
    page_kit = pytest.importorskip("uploads.tests.test_browser")  # Playwright, the page's helpers
    first, second, bucket, worker = hosts
    chunks = 4
    big = page_kit.make_file(tmp_path, "film.bin", chunks * 8 * MiB + 3, "hosts")
    with page_kit.sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=servers.CHROMIUM, headless=True, args=servers.CHROMIUM_ARGS
        )
        try:
            tab = page_kit.Page(browser, first)
            gate = page_kit.ChunkGate(tab.page, let_through=2)
            tab.choose(big)
            tab.wait_until(lambda: gate.answered == 2 and gate.held, "two chunks stored on A")

            tab.site = second
            tab.goto("/uploads/")
            gate.open()
            listed = tab.page.locator("#uploads-table tr", has_text="film.bin")
            page_kit.expect(listed).to_contain_text("Interrupted")
            posts = page_kit.chunk_requests(tab.page)
            tab.choose(big)
            tab.wait_state("film.bin", "complete")
            assert posts and all(url.startswith(second.url) for url in posts)
            assert len(posts) < chunks, f"sent {len(posts)} of {chunks} chunks again"
            upload = tab.upload_named("film.bin")
            assert upload["sha256"] == page_kit.sha256(big)
            assert tab.downloaded_sha256(upload) == page_kit.sha256(big)
            tab.assert_no_console_errors()
            tab.close()
        finally:
            browser.close()
    stored = assert_nothing_left(bucket, (first, second), worker, upload["id"])
    assert stored_sha256(bucket, stored) == upload["sha256"]


def test_a_broker_the_hosts_cannot_reach_refuses_last_chunks_and_their_retries_complete(
    hosts, broker_relay
):
    """
    Redis cut off from both hosts: the chunks before the last are taken; each
    protocol's last chunk is 503 with Retry-After and a JSON error, and records
    nothing; Content-Range, which finishes in its own request, completes. With
    Redis back and Retry-After waited, each last chunk sent again completes its
    file, finished by the Celery worker, upload_completed sent once.
    """
    first, second, bucket, worker = hosts
    clients = [first.login(), second.login()]
    files = {
        "flow": (random.Random(81).randbytes(3 * 8 * MiB + 5), 8 * MiB, "octet"),
        "resumable": (random.Random(82).randbytes(4 * MiB + 7), 1 * MiB, "multipart"),
        "tus": (random.Random(83).randbytes(3 * MiB + 11), 1 * MiB, None),
    }
    last = {}  # protocol: (upload id, sends the last chunk again)
    for protocol, (data, chunk_size, method) in files.items():
        count = chunk_count(len(data), chunk_size)
        if protocol == "tus":
            offset = (count - 1) * chunk_size
            upload_id = send_tus(clients, data[:offset], chunk_size, length=len(data))
            path = f"/uploads/tus/{upload_id}"

            def resend(data=data, offset=offset, path=path):
                return clients[1].request(
                    "PATCH",
                    path,
                    data=data[offset:],
                    headers={**TUS, "Upload-Offset": str(offset), "Content-Type": TUS_BODY},
                )
        else:
            sent = send_chunks(clients, data, chunk_size, method, range(1, count), protocol)
            upload_id = sent[0].json()["id"]

            def resend(data=data, size=chunk_size, method=method, protocol=protocol, n=count):
                return send_chunk(clients[0], data, size, method, n, protocol)

        last[protocol] = upload_id, resend

    broker_relay.down()
    try:
        for protocol, (upload_id, resend) in last.items():
            response = resend()
            assert response.status_code == 503, f"{protocol}: {response.text}"
            assert response.headers["Content-Type"] == "application/json"
            assert "send it again" in response.json()["error"]
            retry_after = int(response.headers["Retry-After"])
            status = clients[1].get(f"/uploads/api/uploads/{upload_id}/").json()
            size = len(files[protocol][0])
            assert status["status"] == "uploading", (protocol, status)
            assert status["received_bytes"] < size, f"{protocol}: the refused chunk was recorded"
        data = random.Random(84).randbytes(2 * MiB + 3)
        finished_here = send_content_range(clients, data, MiB)
    finally:
        broker_relay.up()
    assert clients[0].finished(finished_here)["sha256"] == hashlib.sha256(data).hexdigest()

    time.sleep(retry_after)  # as a client does
    for protocol, (_, resend) in last.items():
        response = resend()
        assert response.status_code in (200, 204), f"{protocol}: {response.text}"
    finished = {upload_id: clients[1].finished(upload_id) for upload_id, _ in last.values()}
    for protocol, (upload_id, _) in last.items():
        status = finished[upload_id]
        assert status["status"] == "complete", (protocol, status)
        assert status["sha256"] == hashlib.sha256(files[protocol][0]).hexdigest()
        assert completed_signals(first, upload_id) == 1
        stored = assert_nothing_left(bucket, (first, second), worker, upload_id)
        assert stored_sha256(bucket, stored) == status["sha256"]
    worker.wait_for(FINISHED_BY_CELERY)


def test_a_host_killed_mid_upload_the_client_carries_on_against_the_other(hosts):
    """SIGKILL to one host's gunicorn, master and workers, halfway through: what
    it answered 200 for is kept, and the rest goes to the other host. Last in
    the module: it serves the killed host again afterwards."""
    first, second, bucket, worker = hosts
    data = random.Random(6).randbytes(6 * 8 * MiB + 5)
    clients = [first.login(), second.login()]
    count = chunk_count(len(data), 8 * MiB)
    sent = send_chunks(clients, data, 8 * MiB, "octet", range(1, count // 2 + 1))
    upload_id = sent[0].json()["id"]
    os.killpg(first.pid, signal.SIGKILL)
    try:
        rest = range(count // 2 + 1, count + 1)
        send_chunks([clients[1]], data, 8 * MiB, "octet", rest)
        status = clients[1].finished(upload_id)
        assert status["status"] == "complete", status
        assert status["sha256"] == hashlib.sha256(data).hexdigest()
        assert completed_signals(first, upload_id) == 1
        stored = assert_nothing_left(bucket, (first, second), worker, upload_id)
        assert stored_sha256(bucket, stored) == status["sha256"]
    finally:
        first.serve()
