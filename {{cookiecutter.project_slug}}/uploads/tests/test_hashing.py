"""
The SHA-256 kept as bytes arrive (engine/hashing.py, uploads/sha256.py): the
digest is the file's whatever the order, the duplicates, the cut-off bodies
or the saved state found, and no byte is read back twice to get it.
"""

import hashlib
import io
import os
import random
import re
import signal
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from uploads import engine, sha256, staging
from uploads.engine.runs import Around
from uploads.errors import BadRequest
from uploads.models import Upload

from .chunking import chunk_count, params
from .servers import Site

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(not sha256.available(), reason="OpenSSL's libcrypto cannot be loaded"),
]

CHUNK = 4096


@pytest.fixture
def read_back(monkeypatch):
    """Counts the bytes read back from staging (catching up, and finishing)."""
    counted = {"bytes": 0}
    staging.backend._setup()  # built now, so that its class can be wrapped
    backend = type(staging.backend._wrapped)
    original = backend.read_in_order

    def counting(self, handle, size, start=0):
        for block in original(self, handle, size, start):
            counted["bytes"] += len(block)
            yield block

    monkeypatch.setattr(backend, "read_in_order", counting)
    return counted


def file_of(size, seed=0):
    return random.Random(seed).randbytes(size)


def send(upload, data, start, length=CHUNK, stream=None):
    piece = data[start : start + length]
    engine.write(upload, engine.Piece(start, len(piece), stream or io.BytesIO(piece)))


@given(
    st.binary(max_size=3000),
    st.lists(st.integers(0, 3000), max_size=12),
    st.integers(0, 3000),
)
def test_a_saved_state_taken_up_anywhere_gives_hashlibs_digest(data, cuts, resume_at):
    hash_ = sha256.ResumableSHA256()
    for cut in sorted(c for c in cuts if c <= len(data)):
        hash_.update(data[hash_.length : cut])
        hash_ = sha256.ResumableSHA256.resume(hash_.state(), hash_.length)
    hash_.update(data[hash_.length :])
    assert hash_.hexdigest() == hashlib.sha256(data).hexdigest()
    assert hash_.length == len(data)


def test_a_state_of_another_byte_count_or_kind_of_machine_is_refused():
    hash_ = sha256.ResumableSHA256()
    hash_.update(b"x" * 100)
    with pytest.raises(sha256.StateRefused):
        sha256.ResumableSHA256.resume(hash_.state(), 99)
    with pytest.raises(sha256.StateRefused):
        sha256.ResumableSHA256.resume(b"another-format:" + hash_.state()[20:], 100)
    with pytest.raises(sha256.StateRefused):
        sha256.ResumableSHA256.resume(None, 100)


def test_a_file_sent_in_order_is_hashed_as_it_arrives_and_not_read_back(user, read_back):
    data = file_of(CHUNK * 10 + 123)
    upload = engine.start(user, Upload.Protocol.FLOW, filename="a.bin", size=len(data))
    for start in range(0, len(data), CHUNK):
        send(upload, data, start)
        if start + CHUNK < len(data):
            upload.refresh_from_db()
            assert upload.hashed_bytes == start + CHUNK
    upload.refresh_from_db()
    assert upload.status == Upload.Status.COMPLETE
    assert upload.sha256 == hashlib.sha256(data).hexdigest()
    assert read_back["bytes"] == 0


orders = st.sampled_from(["in order", "reversed", "shuffled", "pairs swapped"])


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    chunks=st.integers(1, 24),
    tail=st.integers(0, CHUNK - 1),
    order=orders,
    seed=st.integers(0, 2**32),
    duplicates=st.lists(st.integers(0, 23), max_size=6),
)
def test_the_digest_is_the_files_in_any_order_and_no_byte_is_read_back_twice(
    user, read_back, chunks, tail, order, seed, duplicates
):
    data = file_of(chunks * CHUNK + tail, seed)
    starts = list(range(0, len(data), CHUNK))
    if order == "reversed":
        starts.reverse()
    elif order == "shuffled":
        random.Random(seed).shuffle(starts)
    elif order == "pairs swapped":
        starts = [s for pair in zip(starts[1::2], starts[::2], strict=False) for s in pair] + (
            starts[-1:] if len(starts) % 2 else []
        )
    # Copies of chunks already sent, as flow.js sends after a lost answer.
    sent = []
    for start in starts:
        sent.append(start)
        sent += [sent[d % len(sent)] for d in duplicates if d == len(sent)]
    upload = engine.start(user, Upload.Protocol.FLOW, filename="a.bin", size=len(data))
    read_back["bytes"] = 0
    for start in sent:
        send(upload, data, start)
    upload.refresh_from_db()
    assert upload.status == Upload.Status.COMPLETE
    assert upload.sha256 == hashlib.sha256(data).hexdigest()
    assert read_back["bytes"] <= len(data)
    if order == "in order":
        assert read_back["bytes"] == 0


def test_chunks_sent_out_of_order_are_caught_up_before_the_last_one(user, read_back):
    """Every other chunk first, then the gaps: each gap filled lets the hash catch
    up over the chunk after it, so the finisher has nothing left to read."""
    data = file_of(CHUNK * 8)
    upload = engine.start(user, Upload.Protocol.FLOW, filename="a.bin", size=len(data))
    for start in [*range(CHUNK, len(data), 2 * CHUNK), *range(0, len(data) - 2 * CHUNK, 2 * CHUNK)]:
        send(upload, data, start)
    upload.refresh_from_db()
    assert upload.hashed_bytes == len(data) - 2 * CHUNK, "caught up to the one gap left"
    assert read_back["bytes"] == 3 * CHUNK, "the chunks after each filled gap"
    send(upload, data, len(data) - 2 * CHUNK)
    upload.refresh_from_db()
    assert upload.sha256 == hashlib.sha256(data).hexdigest()
    assert read_back["bytes"] == 4 * CHUNK, "the last chunk after the last gap, once"


class Breaking(io.BytesIO):
    """A body whose client goes away after `after` bytes."""

    def __init__(self, data, after):
        super().__init__(data)
        self.after = after

    def read(self, size=-1):
        if self.tell() >= self.after:
            raise ConnectionResetError("the client went away")
        return super().read(min(size, self.after - self.tell()) if size >= 0 else self.after)


def test_a_body_cut_off_mid_chunk_moves_the_hash_by_nothing(user):
    data = file_of(CHUNK * 3)
    upload = engine.start(user, Upload.Protocol.FLOW, filename="a.bin", size=len(data))
    send(upload, data, 0)
    with pytest.raises(BadRequest):
        send(upload, data, CHUNK, stream=Breaking(data[CHUNK : 2 * CHUNK], 1000))
    upload.refresh_from_db()
    assert upload.hashed_bytes == CHUNK
    for start in (CHUNK, 2 * CHUNK):
        send(upload, data, start)
    upload.refresh_from_db()
    assert upload.sha256 == hashlib.sha256(data).hexdigest()


def test_a_tus_body_cut_off_keeps_and_hashes_the_bytes_that_arrived(user, read_back):
    data = file_of(CHUNK * 2)
    upload = engine.start(user, Upload.Protocol.TUS, filename="a.bin", size=len(data))
    piece = engine.Piece(0, len(data), Breaking(data, 1000), in_order=True, keep_cut_off=True)
    with pytest.raises(BadRequest):
        engine.write(upload, piece)
    upload.refresh_from_db()
    assert upload.hashed_bytes == 1000
    engine.write(
        upload, engine.Piece(1000, len(data) - 1000, io.BytesIO(data[1000:]), in_order=True)
    )
    upload.refresh_from_db()
    assert upload.sha256 == hashlib.sha256(data).hexdigest()
    assert read_back["bytes"] == 0


@pytest.mark.parametrize("saved", ["another kind of machine", "another byte count"])
def test_a_saved_state_that_cannot_be_continued_costs_a_rehash_not_a_wrong_digest(user, saved):
    data = file_of(CHUNK * 4)
    upload = engine.start(user, Upload.Protocol.FLOW, filename="a.bin", size=len(data))
    send(upload, data, 0)
    send(upload, data, CHUNK)
    row = Upload.objects.filter(pk=upload.pk)
    if saved == "another kind of machine":
        row.update(hash_state=b"x" + bytes(row.get().hash_state)[1:])
    else:
        row.update(hashed_bytes=CHUNK)  # a state of 2 chunks said to be of one
    for start in (2 * CHUNK, 3 * CHUNK):
        send(upload, data, start)
    upload.refresh_from_db()
    assert upload.status == Upload.Status.COMPLETE
    assert upload.sha256 == hashlib.sha256(data).hexdigest()


def test_without_hashing_as_bytes_arrive_the_finisher_hashes_the_whole_file(
    user, settings, read_back
):
    settings.UPLOADS_HASH_WHILE_RECEIVING = False
    data = file_of(CHUNK * 3)
    upload = engine.start(user, Upload.Protocol.FLOW, filename="a.bin", size=len(data))
    for start in range(0, len(data), CHUNK):
        send(upload, data, start)
    upload.refresh_from_db()
    assert upload.sha256 == hashlib.sha256(data).hexdigest()
    assert upload.hashed_bytes == 0
    assert read_back["bytes"] == len(data)


def test_the_bytes_from_zero_end_where_the_recording_could_tell():
    """What catch_up() is told: the run from 0 as the piece's read saw it, joined."""

    def after(start, end, right_end=None, from_zero=0):
        return Around(start, end, None, None, None, right_end, from_zero).from_zero_after()

    assert after(0, 10) == 10
    assert after(10, 20, from_zero=10) == 20
    assert after(10, 20, right_end=30, from_zero=10) == 30
    assert after(20, 30, from_zero=10) == 10, "a piece past a gap moves nothing"


@pytest.mark.server
def test_the_hash_carries_on_across_workers_killed_mid_upload(tmp_path):
    """Chunks 3 at a time on two gunicorn workers, hashed as they arrive (in
    line, or by a thread of the worker after its answer); halfway, every
    worker is SIGKILLed and gunicorn starts new ones. The hash saved so far is
    taken up by the new workers (it is in the database, not in a process), and
    the file's SHA-256 comes out right."""
    database = tmp_path / "db.sqlite3"
    site = Site(tmp_path / "site", f"sqlite:///{database}", workers=2)
    chunk = 256 * 1024
    data = random.Random(11).randbytes(40 * chunk + 99)
    count = chunk_count(len(data), chunk)

    def send(number):
        query = urlencode(params("flow", data, number, chunk_size=chunk, identifier="kept"))
        start = (number - 1) * chunk
        end = len(data) if number == count else start + chunk
        for _ in range(50):  # a chunk refused while the workers are down is sent again
            try:
                answer = client.post(f"/uploads/flow/?{query}", data=data[start:end])
            except OSError:
                answer = None
            if answer is not None and answer.status_code == 200:
                return answer.json()
            time.sleep(0.1)
        raise AssertionError(f"chunk {number} was never taken")

    def hashed_bytes():
        with sqlite3.connect(database) as db:
            return db.execute("SELECT hashed_bytes FROM uploads_upload").fetchone()[0]

    try:
        site.start()
        client = site.login()
        with ThreadPoolExecutor(3) as pool:
            list(pool.map(send, range(1, count // 2)))
        # A chunk sent ahead of the hashed bytes is hashed by a thread of the
        # worker, from the page cache, moments after its answer.
        deadline = time.monotonic() + 10
        while (before := hashed_bytes()) == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert before > 0, "the first half was hashed as it arrived"
        workers = Path(f"/proc/{site.pid}/task/{site.pid}/children").read_text().split()
        for worker in workers:
            os.kill(int(worker), signal.SIGKILL)
        with ThreadPoolExecutor(3) as pool:
            answers = list(pool.map(send, range(count // 2, count + 1)))
        status = client.finished(answers[-1]["id"])
        assert status["status"] == "complete", status
        assert status["sha256"] == hashlib.sha256(data).hexdigest()
        # The finisher took up the saved hash: it read only the bytes it lacked.
        said = re.search(r"(\d+) of (\d+) bytes were hashed as they arrived", site.log.read_text())
        assert said, "the finisher says how much was hashed before it"
        assert int(said[1]) >= before
    finally:
        site.stop()
