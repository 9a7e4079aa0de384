"""
Finishing survives its finisher: a run that stopped (a killed worker, a
database connection killed, a copy cut short) leaves the upload `processing`
with its staged bytes, and a later run (the status API's read once the lease
ran out, cleanup_uploads, or the same run reconnecting) finishes it, once.
"""

import hashlib
import os
import random
import signal
import sqlite3
import threading
import uuid
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlencode

import pytest
from django.core.files.base import ContentFile
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from uploads import engine, locks, staging
from uploads.engine import finishing, leases, recording
from uploads.models import Upload
from uploads.signals import upload_completed, upload_failed

from .chunking import Body, params
from .servers import Site

Status = Upload.Status


@pytest.fixture
def sent():
    """The upload_completed and upload_failed signals sent, by upload id."""
    seen = {"completed": [], "failed": []}

    def completed(sender, upload, **kwargs):
        seen["completed"].append(upload.pk)

    def failed(sender, upload, **kwargs):
        seen["failed"].append(upload.pk)

    upload_completed.connect(completed)
    upload_failed.connect(failed)
    yield seen
    upload_completed.disconnect(completed)
    upload_failed.disconnect(failed)


def whole_but_not_finished(user, data):
    """An upload whose last byte was recorded by a worker that died before finishing it."""
    upload = engine.start(user, Upload.Protocol.FLOW, filename="s.bin", size=len(data))
    with staging.backend.open_locked(upload) as fd:
        staging.backend.write(fd, 0, Body(data), len(data))
    assert recording.record(upload, 0, len(data))  # `processing`, with a lease
    return upload


def test_a_finish_whose_lease_ran_out_is_taken_over_by_the_status_read(alice, user, sent):
    data = random.Random(3).randbytes(4096)
    upload = whole_but_not_finished(user, data)
    url = f"/uploads/api/uploads/{upload.pk}/"
    assert alice.get(url).json()["status"] == "processing", "within its lease, left alone"

    Upload.objects.filter(pk=upload.pk).update(
        finishing_until=timezone.now() - timedelta(seconds=1)
    )
    body = alice.get(url).json()
    assert body["status"] == "complete"
    assert body["sha256"] == hashlib.sha256(data).hexdigest()
    assert alice.get(url).json()["status"] == "complete"
    assert sent == {"completed": [upload.pk], "failed": []}


def test_a_run_that_finds_a_copy_left_by_a_stopped_run_stores_the_file_again(user, sent):
    """A finisher killed halfway through its copy left a truncated file under the fixed name."""
    data = random.Random(4).randbytes(8192)
    upload = engine.start(user, Upload.Protocol.FLOW, filename="c.bin", size=len(data))
    name = upload.file.field.generate_filename(upload, upload.name)
    upload.file.storage.save(name, ContentFile(data[:100]))
    engine.write(upload, engine.Piece(0, len(data), Body(data)))
    upload.refresh_from_db()
    assert upload.status == Status.COMPLETE
    assert upload.file.name == name
    assert upload.file.read() == data
    assert os.listdir(Path(upload.file.path).parent) == [upload.name], "no second copy"
    assert sent["completed"] == [upload.pk]


def test_a_finish_that_could_not_be_recorded_is_finished_again_by_cleanup(user, sent):
    """The file was stored, then the record failed (as if the database went away)."""
    data = random.Random(6).randbytes(8192)
    upload = whole_but_not_finished(user, data)
    stored = upload.file.field.generate_filename(upload, upload.name)
    staging.backend.store(upload, upload.file.storage, stored)  # what the stopped run did
    Upload.objects.filter(pk=upload.pk).update(
        finishing_until=timezone.now() - timedelta(seconds=1)
    )

    call_command("cleanup_uploads", "-v", "0")
    upload.refresh_from_db()
    assert upload.status == Status.COMPLETE
    assert upload.sha256 == hashlib.sha256(data).hexdigest()
    assert upload.file.name == stored
    assert upload.file.read() == data
    assert not staging.backend.path_for(upload).exists()
    assert sent == {"completed": [upload.pk], "failed": []}


@pytest.mark.django_db(transaction=True)
def test_a_finisher_whose_database_connection_is_killed_still_completes_the_upload(user, sent):
    """pg_terminate_backend of the finisher's own connection, while it finishes."""
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (DATABASE_URL=postgres://...): SQLite has no backend to kill")
    data = random.Random(7).randbytes(8 * 1024 * 1024)
    upload = whole_but_not_finished(user, data)
    backend, killed, outcome = [], threading.Event(), {}

    def finisher():
        # A runner reads the upload, then its connection dies under it while it
        # hashes and stores: the next query (the record) finds it dead.
        try:
            taken = Upload.objects.get(pk=upload.pk)
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                backend.append(cursor.fetchone()[0])
            killed.wait(timeout=30)
            outcome["upload"] = finishing.finish(taken)
        finally:
            connection.close()

    thread = threading.Thread(target=finisher)
    thread.start()
    while not backend and thread.is_alive():
        threading.Event().wait(0.01)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", [backend[0]])
        assert cursor.fetchone()[0], "the finisher's backend was terminated"
    killed.set()
    thread.join(timeout=60)
    assert outcome["upload"].status == Status.COMPLETE

    upload.refresh_from_db()
    assert upload.status == Status.COMPLETE
    assert upload.sha256 == hashlib.sha256(data).hexdigest()
    assert upload.file.read() == data
    assert not staging.backend.path_for(upload).exists()
    assert sent == {"completed": [upload.pk], "failed": []}


def test_a_working_finisher_renews_its_lease_and_stops_once_another_run_took_over(
    user, monkeypatch
):
    monkeypatch.setattr(leases, "RENEW_EVERY", timedelta(0))  # a beat on every block
    upload = whole_but_not_finished(user, b"h" * 10)
    first = upload.finishing_until
    beat = leases.Heartbeat(upload)
    beat()
    assert Upload.objects.get(pk=upload.pk).finishing_until > first, "renewed as it works"

    # Its worker stalls past the lease; the page's poll takes the upload over.
    Upload.objects.filter(pk=upload.pk).update(
        finishing_until=timezone.now() - timedelta(seconds=1)
    )
    other = Upload.objects.get(pk=upload.pk)
    assert leases.take_over(other)
    with pytest.raises(leases.LeaseLost):
        beat()
    assert not leases.take_over(Upload.objects.get(pk=upload.pk)), "taken once"


def test_finishing_a_finished_upload_again_changes_nothing(user, sent):
    """A runner that delivers its job twice (a task queue's late acknowledgement)."""
    data = random.Random(8).randbytes(1000)
    upload = whole_but_not_finished(user, data)
    assert engine.finish_upload(upload.pk).status == Status.COMPLETE
    assert engine.finish_upload(upload.pk).status == Status.COMPLETE
    upload.refresh_from_db()
    assert upload.file.read() == data
    assert sent == {"completed": [upload.pk], "failed": []}


@pytest.mark.parametrize("stored", ["whole", "missing", "other bytes"])
def test_a_complete_record_lost_after_the_staged_bytes_went_is_made_again_from_the_stored_file(
    user, sent, stored
):
    """A database that lost its last commits (a power cut, with SQLite's
    synchronous=NORMAL or PostgreSQL's synchronous_commit=off) can bring back
    an upload as `processing` whose record as `complete` had removed its staged
    bytes: the stored file is hashed and recorded, once; without it, or with
    bytes other than those hashed as they arrived, `failed`."""
    data = random.Random(12).randbytes(3 * 65536 + 5)
    upload = engine.start(user, Upload.Protocol.FLOW, filename="s.bin", size=len(data))
    engine.write(upload, engine.Piece(0, len(data), Body(data)))  # hashed as it arrives
    upload.refresh_from_db()
    assert upload.status == Status.COMPLETE
    if stored == "missing":
        upload.file.storage.delete(upload.file.name)
    elif stored == "other bytes":  # the size right, a byte of what was hashed wrong
        with open(upload.file.path, "r+b") as file:
            file.write(b"\0" if data[0] else b"\1")
    # The record as it was before the lost commit: processing, its lease run out.
    Upload.objects.filter(pk=upload.pk).update(
        status=Status.PROCESSING, sha256="", file="", finishing_until=timezone.now()
    )
    sent["completed"].clear()
    engine.finish_upload(upload.pk)
    upload.refresh_from_db()
    if stored == "whole":
        assert upload.status == Status.COMPLETE
        assert upload.sha256 == hashlib.sha256(data).hexdigest()
        assert upload.file.read() == data
        assert sent["completed"] == [upload.pk]
    else:
        assert upload.status == Status.FAILED
        assert sent["completed"] == []


@pytest.mark.server
def test_a_gunicorn_worker_killed_while_finishing_is_taken_over_once_its_lease_ran_out(tmp_path):
    database = tmp_path / "db.sqlite3"
    site = Site(tmp_path / "site", f"sqlite:///{database}", workers=1)
    try:
        site.start()
        client = site.login()
        data = random.Random(10).randbytes(2 * 65536)
        query = params("flow", data, 1, chunk_size=65536, identifier="killed")
        first = client.post(f"/uploads/flow/?{urlencode(query)}", data=data[:65536])
        upload_id = uuid.UUID(first.json()["id"])
        staged = site.staging / f"{upload_id.hex}.part"

        # Another holder of the staging file's first byte keeps the finisher
        # waiting mid-finish, with its lease taken, while its worker is killed.
        fd = os.open(staged, os.O_RDWR)
        try:
            with locks.locked(fd, str(staged), 0, 1, timeout=5):
                query = params("flow", data, 2, chunk_size=65536, identifier="killed")
                last = client.post(f"/uploads/flow/?{urlencode(query)}", data=data[65536:])
                assert last.json()["status"] == "processing"
                worker = int(Path(f"/proc/{site.pid}/task/{site.pid}/children").read_text())
                os.kill(worker, signal.SIGKILL)
        finally:
            os.close(fd)
        status_url = f"/uploads/api/uploads/{upload_id}/"
        assert client.get(status_url).json()["status"] == "processing", "its lease still runs"

        # Two minutes later, as far as the lease is concerned (Django keeps UTC, naive, in SQLite).
        past = (timezone.now() - timedelta(seconds=1)).replace(tzinfo=None).isoformat(" ")
        with sqlite3.connect(database) as db:
            changed = db.execute(
                "UPDATE uploads_upload SET finishing_until = ? WHERE id = ?", [past, upload_id.hex]
            ).rowcount
        assert changed == 1
        status = client.finished(upload_id)
        assert status["status"] == "complete", status
        assert status["sha256"] == hashlib.sha256(data).hexdigest()
        assert not staged.exists()
    finally:
        site.stop()
