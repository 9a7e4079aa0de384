"""The engine's promises, whatever the order and repetition of chunks."""

import io
import threading
import uuid

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from uploads import engine, staging
from uploads.engine import recording
from uploads.errors import BadRequest, ChunkConflict, TooLarge, TypeNotAllowed, UploadGone
from uploads.models import Upload
from uploads.signals import upload_completed, upload_failed, upload_started

from .chunking import chunk_bounds, chunk_count, sha256

pytestmark = pytest.mark.django_db
Status = Upload.Status


@pytest.fixture
def signals():
    sent = {"started": [], "completed": [], "failed": []}

    def on(name):
        def receiver(sender, upload, **kwargs):
            sent[name].append(upload.pk)

        return receiver

    receivers = [
        (upload_started, on("started")),
        (upload_completed, on("completed")),
        (upload_failed, on("failed")),
    ]
    for signal, receiver in receivers:
        signal.connect(receiver)
    yield sent
    for signal, receiver in receivers:
        signal.disconnect(receiver)


def begin(user, data, chunk_size, **kw):
    return engine.find_or_start(
        user,
        Upload.Protocol.FLOW,
        kw.pop("client_id", uuid.uuid4().hex),
        filename=kw.pop("filename", "data.bin"),
        size=len(data),
        chunk_size=chunk_size,
        **kw,
    )


def send(upload, data, chunk_size, number):
    start, end = chunk_bounds(len(data), chunk_size, number)
    piece = engine.Piece(start, end - start, io.BytesIO(data[start:end]))
    return engine.write(upload, piece)


def stored_bytes(upload):
    upload.refresh_from_db()
    with upload.file.open("rb") as f:
        return f.read()


@given(
    data=st.binary(min_size=1, max_size=2000),
    chunk_size=st.integers(1, 300),
    order=st.randoms(use_true_random=False),
    repeats=st.lists(st.integers(0, 50), max_size=6),
)
@hsettings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_any_order_with_repeats_gives_the_file_once(
    user, signals, data, chunk_size, order, repeats
):
    upload = begin(user, data, chunk_size)
    count = chunk_count(len(data), chunk_size)
    numbers = list(range(1, count + 1))
    order.shuffle(numbers)
    # Repeats land anywhere, including after the file is complete.
    for r in repeats:
        numbers.insert(r % (len(numbers) + 1), numbers[r % len(numbers)])
    for number in numbers:
        send(upload, data, chunk_size, number)
    upload.refresh_from_db()
    assert upload.status == Status.COMPLETE
    assert upload.sha256 == sha256(data)
    assert upload.received_bytes == len(data)
    assert stored_bytes(upload) == data
    assert signals["completed"].count(upload.pk) == 1
    assert not staging.backend.path_for(upload).exists()


def test_a_chunk_that_would_change_received_bytes_is_refused(user):
    data = bytes(range(256)) * 4
    upload = begin(user, data, 256)
    send(upload, data, 256, 2)
    with pytest.raises(ChunkConflict):
        # Bytes 100-400 straddle the received chunk 256-512.
        engine.write(upload, engine.Piece(100, 300, io.BytesIO(b"x" * 300)))
    send(upload, data, 256, 1)
    send(upload, data, 256, 3)
    send(upload, data, 256, 4)
    assert stored_bytes(upload) == data


def test_a_repeated_chunk_is_not_written_again(user, tmp_path):
    data = b"a" * 100 + b"b" * 100
    upload = begin(user, data, 100)
    send(upload, data, 100, 1)
    # Same place, other bytes: drained, not written.
    engine.write(upload, engine.Piece(0, 100, io.BytesIO(b"z" * 100)))
    send(upload, data, 100, 2)
    assert stored_bytes(upload) == data


def test_started_is_sent_once_when_the_record_is_committed(
    user, signals, django_capture_on_commit_callbacks
):
    data = b"x" * 300
    with django_capture_on_commit_callbacks(execute=True):
        upload = begin(user, data, 100, client_id="one")
        again = begin(user, data, 100, client_id="one")
    assert again.pk == upload.pk
    assert signals["started"] == [upload.pk]


def test_an_empty_file_completes(user, signals):
    upload = begin(user, b"", 1024)
    engine.write(upload, engine.Piece(0, 0, io.BytesIO(b"")))
    upload.refresh_from_db()
    assert upload.status == Status.COMPLETE
    assert upload.sha256 == sha256(b"")
    assert signals["completed"] == [upload.pk]


def test_a_short_chunk_is_refused_and_not_counted(user):
    data = b"x" * 300
    upload = begin(user, data, 100)
    with pytest.raises(BadRequest, match="ended after 50 bytes"):
        engine.write(upload, engine.Piece(0, 100, io.BytesIO(b"x" * 50)))
    with pytest.raises(BadRequest, match="longer than"):
        engine.write(upload, engine.Piece(0, 100, io.BytesIO(b"x" * 150)))
    upload.refresh_from_db()
    assert upload.received_bytes == 0
    assert not upload.received_ranges.exists()


def test_limits_are_checked_before_anything_is_kept(user, settings):
    settings.UPLOADS_MAX_BYTES = 1000
    settings.UPLOADS_ALLOWED_EXTENSIONS = ["pdf", ".TXT"]
    with pytest.raises(TooLarge):
        begin(user, b"x" * 1001, 100, filename="a.pdf")
    with pytest.raises(TypeNotAllowed):
        begin(user, b"x" * 10, 100, filename="a.exe")
    assert begin(user, b"x" * 10, 100, filename="notes.txt").name == "notes.txt"
    assert Upload.objects.count() == 1
    assert [p.name for p in staging.backend.directory().iterdir()] == [
        f"{Upload.objects.get().id.hex}.part"
    ]


def test_declared_size_must_not_change(user):
    upload = begin(user, b"x" * 300, 100, client_id="same")
    with pytest.raises(BadRequest, match="total size changed"):
        begin(user, b"x" * 301, 100, client_id="same")
    with pytest.raises(BadRequest, match="chunk size changed"):
        begin(user, b"x" * 300, 50, client_id="same")
    assert begin(user, b"x" * 300, 100, client_id="same").pk == upload.pk


def test_cancel_removes_staged_bytes_and_refuses_later_chunks(user, signals):
    data = b"x" * 300
    upload = begin(user, data, 100)
    send(upload, data, 100, 1)
    assert staging.backend.path_for(upload).exists()
    engine.cancel(upload)
    assert not staging.backend.path_for(upload).exists()
    with pytest.raises(UploadGone):
        send(upload, data, 100, 2)
    assert not staging.backend.path_for(upload).exists()
    engine.cancel(upload)  # again: nothing more happens
    upload.refresh_from_db()
    assert upload.status == Status.CANCELLED
    assert signals["completed"] == []


def test_a_complete_upload_cannot_be_cancelled(user):
    upload = begin(user, b"abc", 10)
    engine.write(upload, engine.Piece(0, 3, io.BytesIO(b"abc")))
    with pytest.raises(ChunkConflict):
        engine.cancel(upload)
    assert stored_bytes(upload) == b"abc"


def test_an_expired_upload_refuses_its_chunk_then_the_retry_starts_afresh(user, settings):
    data = b"x" * 300
    first = begin(user, data, 100, client_id="again")
    send(first, data, 100, 1)
    Upload.objects.filter(pk=first.pk).update(expires=first.created)
    with pytest.raises(UploadGone, match="expired"):
        begin(user, data, 100, client_id="again")
    first.refresh_from_db()
    assert first.status == Status.EXPIRED
    assert not staging.backend.path_for(first).exists()
    # The client's retry (same identifier) gets a new upload.
    second = begin(user, data, 100, client_id="again")
    assert second.pk != first.pk


def test_finishing_failure_is_recorded_and_signalled(user, signals):
    data = b"x" * 200
    upload = begin(user, data, 100)
    send(upload, data, 100, 1)
    # A stray byte past the end, behind the engine's back: the size check catches it.
    with open(staging.backend.path_for(upload), "r+b") as f:
        f.seek(250)
        f.write(b"!")
    send(upload, data, 100, 2)
    upload.refresh_from_db()
    assert upload.status == Status.FAILED
    assert "bytes" in upload.error
    assert signals["failed"] == [upload.pk]
    assert signals["completed"] == []


def test_clean_names_are_stored(user):
    upload = begin(user, b"abc", 10, filename="../../etc/pa\x07ss wd.txt")
    engine.write(upload, engine.Piece(0, 3, io.BytesIO(b"abc")))
    upload.refresh_from_db()
    assert upload.filename == "../../etc/pa\x07ss wd.txt"
    assert upload.name == "pass wd.txt"
    assert ".." not in upload.file.name
    assert upload.file.path.startswith(str(upload.file.storage.location))


def test_a_name_with_nul_is_refused_before_anything_is_kept(user):
    # PostgreSQL cannot keep NUL in text, and the original name is kept as data.
    with pytest.raises(BadRequest, match="NUL"):
        begin(user, b"abc", 10, filename="a\x00b.txt")
    assert Upload.objects.count() == 0


def test_a_late_copy_of_a_chunk_goes_to_the_finished_upload(user, signals):
    data = bytes(range(256)) * 12
    upload = begin(user, data, 1024, client_id="late")
    for number in (1, 2, 3):
        send(upload, data, 1024, number)
    # The twin of chunk 2 arrives after the upload completed: no new upload.
    again = begin(user, data, 1024, client_id="late")
    assert again.pk == upload.pk
    assert send(again, data, 1024, 2).status == Status.COMPLETE
    assert Upload.objects.count() == 1
    assert list(staging.backend.directory().iterdir()) == []
    assert signals["completed"] == [upload.pk]
    # After the window, the same identifier starts a new upload.
    Upload.objects.filter(pk=upload.pk).update(
        completed=upload.completed - engine.LATE_CHUNK_WINDOW
    )
    assert begin(user, data, 1024, client_id="late").pk != upload.pk


def test_a_deferred_size_is_recorded_once_even_by_racing_requests(user):
    """write() checks a late size before writing; record() again in its conditional UPDATE."""
    upload = engine.start(user, Upload.Protocol.TUS, filename="stream.bin", size=None)
    stale = Upload.objects.get(pk=upload.pk)  # read before another request gives the size
    engine.write(upload, engine.Piece(0, 3, io.BytesIO(b"abc"), in_order=True, size=10))
    with pytest.raises(BadRequest, match="size is 10 bytes; it cannot change to 12"):
        recording.record(stale, 3, 3, size=12)
    upload.refresh_from_db()
    assert (upload.size, upload.received_bytes, upload.status) == (10, 3, Status.UPLOADING)


@pytest.mark.django_db(transaction=True)
def test_by_default_the_last_chunk_answers_processing_and_a_thread_finishes(
    user, signals, settings
):
    settings.UPLOADS_FINISH_IN_BACKGROUND = True
    data = b"x" * 300
    upload = begin(user, data, 100)
    send(upload, data, 100, 1)
    send(upload, data, 100, 3)
    assert send(upload, data, 100, 2).status == Status.PROCESSING
    for thread in threading.enumerate():
        if thread.name == f"finish-{upload.pk}":
            thread.join(timeout=30)
    upload.refresh_from_db()
    assert upload.status == Status.COMPLETE
    assert upload.sha256 == sha256(data)
    assert signals["completed"] == [upload.pk]


def test_a_chunk_for_an_upload_deleted_meanwhile_is_refused_not_a_crash(user):
    """The admin deletes an upload while one of its chunks is on its way."""
    upload = engine.find_or_start(user, "flow", "deleted", filename="d.bin", size=20, chunk_size=10)
    engine.write(upload, engine.Piece(0, 10, io.BytesIO(b"a" * 10)))
    Upload.objects.filter(pk=upload.pk).delete()
    with pytest.raises(UploadGone, match="deleted"):
        engine.write(upload, engine.Piece(10, 10, io.BytesIO(b"b" * 10)))
    assert not Upload.objects.exists()
