"""
Background work on Celery, as far as one process can see it: a broker that
cannot be reached refuses the chunk that would complete a file (503, nothing
recorded) and loses no finish, and the tasks are the engine's functions.

The broker is the Redis at 127.0.0.1:6379, on a database of the test's own,
behind a relay (buckets.Relay) that the tests cut to make it unreachable; the
worker that finishes the uploads is a real Celery worker in a thread of this
process (celery.contrib.testing). The real worker processes, one killed
mid-finish, are in test_s3_hosts.py.
"""

import base64
import hashlib
import logging
import os
import random
import socket
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from celery.contrib.testing.worker import start_worker
from django.core.management import call_command
from django.utils import timezone

from uploads import broker, tasks
from uploads.models import Upload
from uploads.signals import upload_completed

from .buckets import Relay
from .chunking import chunk_count, post_chunk
from .servers import SITE_ENV_PREFIXES

pytestmark = pytest.mark.django_db(transaction=True)

CHUNK = 64 * 1024
SITE_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def completed():
    seen = []

    def receiver(sender, upload, **kwargs):
        seen.append(upload.pk)

    upload_completed.connect(receiver)
    yield seen
    upload_completed.disconnect(receiver)


REDIS = ("127.0.0.1", 6379)
TUS = {"HTTP_TUS_RESUMABLE": "1.0.0"}


@pytest.fixture(scope="module")
def relay():
    try:
        socket.create_connection(REDIS, timeout=1).close()
    except OSError:
        pytest.skip("Redis does not answer at 127.0.0.1:6379")
    relay = Relay(REDIS)
    relay.broker_url = f"redis://127.0.0.1:{relay.port}/{random.randrange(1, 16)}"
    relay.up()
    yield relay
    relay.down()


@pytest.fixture
def redis_broker(settings, relay):
    """
    CELERY_BROKER_URL: the real Redis, through the relay, on a database of the
    module's own (emptied after each test). Yields the relay; relay.down()
    makes the broker unreachable, relay.up() brings it back.
    """
    settings.CELERY_BROKER_URL = relay.broker_url
    # The Celery app read its settings once, as it does in a worker; its pool
    # of connections is made for the first URL it is given, so the module
    # keeps one.
    app = tasks.finish_upload.app
    before, app.conf.broker_url = app.conf.broker_url, relay.broker_url
    # This process's memory of a broker seen down is the test's own too.
    broker._down.update(until=0.0)
    relay.up()
    yield relay
    relay.up()
    with app.connection_for_write() as conn:
        conn.default_channel.client.flushdb()
    app.conf.broker_url = before
    broker._down.update(until=0.0)


@pytest.fixture
def celery_worker(redis_broker, monkeypatch):
    """Starts a real Celery worker (solo pool, in a thread) on the test's broker."""
    # The tests' logging (caplog) stays as it is.
    monkeypatch.setitem(tasks.finish_upload.app.conf, "worker_hijack_root_logger", False)
    workers = []

    def start():
        worker = start_worker(
            tasks.finish_upload.app, pool="solo", perform_ping_check=False, shutdown_timeout=30
        )
        worker.__enter__()
        workers.append(worker)

    yield start
    for worker in workers:
        worker.__exit__(None, None, None)


def wait_until_finished(upload, timeout=30):
    """The upload once it is no longer `processing`."""
    deadline = time.monotonic() + timeout
    while (upload := Upload.objects.get(pk=upload.pk)).status == Upload.Status.PROCESSING:
        assert time.monotonic() < deadline, "the worker did not finish the upload"
        time.sleep(0.05)
    return upload


def send(client, data):
    for number in range(1, chunk_count(len(data), CHUNK) + 1):
        response = post_chunk(client, "/uploads/flow/", "flow", data, number, chunk_size=CHUNK)
        assert response.status_code == 200, response.content
    return response.json()


def tus_create(client, size, body=b""):
    name = base64.b64encode(b"report.bin").decode()
    extra = {"content_type": "application/offset+octet-stream"} if body else {}
    return client.post(
        "/uploads/tus/",
        body or {},
        HTTP_UPLOAD_LENGTH=str(size),
        HTTP_UPLOAD_METADATA=f"filename {name}",
        **extra,
        **TUS,
    )


def tus_patch(client, path, offset, body):
    return client.patch(
        path,
        body,
        content_type="application/offset+octet-stream",
        HTTP_UPLOAD_OFFSET=str(offset),
        **TUS,
    )


class FlowLike:
    """flow.js or resumable.js: numbered chunks, in any order."""

    def __init__(self, client, protocol, data):
        self.client, self.data = client, data
        self.url, self.prefix = f"/uploads/{protocol}/", protocol
        self.count = chunk_count(len(data), CHUNK)

    def send(self, number):
        return post_chunk(self.client, self.url, self.prefix, self.data, number, chunk_size=CHUNK)

    def all_but_last(self):
        for number in range(1, self.count):
            assert self.send(number).status_code == 200
        return Upload.objects.get(protocol=Upload.Protocol(self.prefix))

    def last(self):
        return self.send(self.count)


class Tus:
    """tus: PATCHes in order; the last one completes the file."""

    def __init__(self, client, data):
        self.client, self.data = client, data

    def all_but_last(self):
        self.path = tus_create(self.client, len(self.data))["Location"].removeprefix(
            "http://testserver"
        )
        for offset in range(0, len(self.data) - CHUNK, CHUNK):
            response = tus_patch(self.client, self.path, offset, self.data[offset : offset + CHUNK])
            assert response.status_code == 204
        return Upload.objects.get(protocol=Upload.Protocol.TUS)

    def last(self):
        offset = (len(self.data) - 1) // CHUNK * CHUNK
        return tus_patch(self.client, self.path, offset, self.data[offset:])


@pytest.mark.parametrize("protocol", ["flow", "resumable", "tus"])
def test_a_broker_that_is_down_refuses_the_last_chunk_and_the_retry_completes_it(
    alice, redis_broker, celery_worker, completed, protocol
):
    """
    The chunks before the last never ask the broker (the relay takes no
    connection for them). The last one, with the broker down, is 503 with
    Retry-After and a JSON error, and records nothing; sent again once the
    broker is back, it completes the file, a worker finishes it, once.
    """
    relay = redis_broker
    data = random.Random(protocol).randbytes(4 * CHUNK + 17)
    sender = Tus(alice, data) if protocol == "tus" else FlowLike(alice, protocol, data)
    connections = relay.accepted
    upload = sender.all_but_last()
    assert relay.accepted == connections, "a chunk before the last connected to the broker"
    received = upload.received_bytes

    relay.down()
    response = sender.last()
    assert response.status_code == 503, response.content
    assert response["Content-Type"] == "application/json"
    assert "send it again in 5 seconds" in response.json()["error"]
    assert int(response["Retry-After"]) == 5
    upload.refresh_from_db()
    assert (upload.status, upload.received_bytes) == (Upload.Status.UPLOADING, received)

    # Within the Retry-After, this process still takes the broker to be down.
    relay.up()
    assert sender.last().status_code == 503
    time.sleep(broker.DOWN_FOR)
    response = sender.last()
    assert response.status_code in (200, 204), response.content
    upload.refresh_from_db()
    assert upload.status == Upload.Status.PROCESSING

    celery_worker()
    upload = wait_until_finished(upload)
    assert upload.status == Upload.Status.COMPLETE
    assert upload.sha256 == hashlib.sha256(data).hexdigest()
    assert completed == [upload.pk]


def test_a_tus_creation_that_would_complete_the_file_is_refused_whole(
    alice, redis_broker, celery_worker, completed
):
    """creation-with-upload of the whole file, and an empty file's creation:
    503 and no Location, the upload cancelled; created again, it completes."""
    relay = redis_broker
    data = random.Random(7).randbytes(CHUNK)
    relay.down()
    for size, body in ((len(data), data), (0, b"")):
        response = tus_create(alice, size, body)
        assert response.status_code == 503, response.content
        assert "Location" not in response
        assert int(response["Retry-After"]) == 5
    assert not Upload.objects.filter(status__in=Upload.ACTIVE).exists()

    relay.up()
    broker._down.update(until=0.0)  # as if the client waited its Retry-After
    assert tus_create(alice, len(data), data).status_code == 201
    celery_worker()
    (upload,) = Upload.objects.filter(status__in=Upload.ACTIVE)
    upload = wait_until_finished(upload)
    assert upload.status == Upload.Status.COMPLETE
    assert upload.sha256 == hashlib.sha256(data).hexdigest()
    assert completed == [upload.pk]


def test_content_range_needs_no_broker(alice, redis_broker, completed):
    """Its `complete` finishes the file in its own request: a broker that is
    down changes nothing for it."""
    redis_broker.down()
    data = random.Random(8).randbytes(2 * CHUNK + 3)
    upload_id = None
    for start in range(0, len(data), CHUNK):
        chunk = data[start : start + CHUNK]
        response = alice.post(
            "/uploads/chunked/",
            # upload_id before the file: the fields are read in order.
            data={
                **({"upload_id": upload_id} if upload_id else {}),
                "file": NamedBytes(chunk, "video.mp4"),
            },
            HTTP_CONTENT_RANGE=f"bytes {start}-{start + len(chunk) - 1}/{len(data)}",
        )
        assert response.status_code == 200, response.content
        upload_id = response.json()["upload_id"]
    md5 = hashlib.md5(data, usedforsecurity=False).hexdigest()
    response = alice.post("/uploads/chunked/complete/", {"upload_id": upload_id, "md5": md5})
    assert response.status_code == 200, response.content
    upload = Upload.objects.get(pk=upload_id)
    assert upload.status == Upload.Status.COMPLETE
    assert completed == [upload.pk]


class NamedBytes:
    def __init__(self, data, name):
        self._data, self.name = data, name

    def read(self):
        return self._data


def test_a_broker_lost_after_the_last_chunk_loses_no_finish(
    alice, redis_broker, completed, caplog, monkeypatch
):
    """
    The broker takes the last chunk's probe, then is gone before the finish
    is sent: the chunk is answered `processing` and kept, and the lease is the
    safety net. The relay lets the probe's one connection through, then goes
    down, as a broker lost between the two would.
    """
    relay = redis_broker
    caplog.set_level(logging.WARNING, logger="uploads")  # whatever a worker left the root at
    data = random.Random(3).randbytes(3 * CHUNK + 17)
    sender = FlowLike(alice, "flow", data)
    sender.all_but_last()
    probe = broker.check

    def probe_then_cut():
        probe()
        relay.down()

    monkeypatch.setattr(broker, "check", probe_then_cut)
    body = sender.last().json()
    # The last chunk is answered and kept: the upload is whole, waiting to be finished.
    assert body["status"] == "processing"
    upload = Upload.objects.get(pk=body["id"])
    assert upload.received_bytes == len(data)
    assert "the broker did not take the finish" in caplog.text

    # Its lease runs out; the status API's read sends the job again, and the
    # broker is still down: nothing is lost, nothing half-done.
    Upload.objects.filter(pk=upload.pk).update(finishing_until=timezone.now() - timedelta(1))
    status = alice.get(f"/uploads/api/uploads/{upload.pk}/").json()
    assert status["status"] == "processing"
    Upload.objects.filter(pk=upload.pk).update(finishing_until=timezone.now() - timedelta(1))

    # cleanup_uploads (cron) finishes it itself.
    call_command("cleanup_uploads", verbosity=0)
    upload.refresh_from_db()
    assert upload.status == Upload.Status.COMPLETE
    assert upload.sha256 == hashlib.sha256(data).hexdigest()
    assert completed == [upload.pk]


def test_the_finish_task_run_again_changes_nothing(alice, completed, settings):
    """A job delivered twice (a worker lost after the finish, before its ack)."""
    data = random.Random(4).randbytes(2 * CHUNK + 5)
    settings.UPLOADS_FINISH_IN_BACKGROUND = False
    body = send(alice, data)
    assert body["status"] == "complete"
    upload = Upload.objects.get(pk=body["id"])
    tasks.finish_upload.apply(args=(str(upload.pk),)).get()
    again = Upload.objects.get(pk=upload.pk)
    assert (again.status, again.sha256, again.file.name, again.completed) == (
        upload.status,
        upload.sha256,
        upload.file.name,
        upload.completed,
    )
    assert completed == [upload.pk]


def test_the_periodic_cleanup_task_expires_an_upload_past_its_time(alice):
    data = random.Random(5).randbytes(3 * CHUNK)
    response = post_chunk(alice, "/uploads/flow/", "flow", data, 1, chunk_size=CHUNK)
    upload = Upload.objects.get(pk=response.json()["id"])
    Upload.objects.filter(pk=upload.pk).update(expires=timezone.now() - timedelta(minutes=1))
    tasks.cleanup_uploads.apply().get()
    upload.refresh_from_db()
    assert upload.status == Upload.Status.EXPIRED


@pytest.mark.parametrize("enabled", [True, False])
def test_the_beat_schedule_is_there_only_when_asked_for(enabled):
    """What `celery -A config beat` would run, read from the site's settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(SITE_ENV_PREFIXES)}
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "from config.celery import app; app.loader.import_default_modules();"
            "print(sorted(e['task'] for e in app.conf.beat_schedule.values()))",
        ],
        cwd=SITE_ROOT,
        env={**env, "DJANGO_SECRET_KEY": "x", "UPLOADS_CELERY_BEAT": str(enabled)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    expected = ["uploads.tasks.cleanup_uploads", "uploads.tasks.verify_uploads"]
    assert done.stdout.strip() == str(expected if enabled else [])
