"""
Background work on Celery, as far as one process can see it: a broker that
cannot be reached loses no finish, and the tasks are the engine's functions.
The real worker, killed mid-finish, is in test_s3_hosts.py.
"""

import hashlib
import os
import random
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.management import call_command
from django.utils import timezone

from uploads import tasks
from uploads.models import Upload
from uploads.signals import upload_completed

from .chunking import chunk_count, post_chunk
from .servers import SITE_ENV_PREFIXES, free_port

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


@pytest.fixture
def broker_down(settings):
    """A broker URL where nothing listens: every send is refused."""
    url = f"redis://127.0.0.1:{free_port()}/0"
    settings.CELERY_BROKER_URL = url
    # The Celery app read its settings once, as it does in a worker.
    conf = tasks.finish_upload.app.conf
    before, conf.broker_url = conf.broker_url, url
    yield
    conf.broker_url = before


def send(client, data):
    for number in range(1, chunk_count(len(data), CHUNK) + 1):
        response = post_chunk(client, "/uploads/flow/", "flow", data, number, chunk_size=CHUNK)
        assert response.status_code == 200, response.content
    return response.json()


def test_a_broker_that_cannot_be_reached_loses_no_finish(alice, broker_down, completed, caplog):
    data = random.Random(3).randbytes(3 * CHUNK + 17)
    body = send(alice, data)
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
