"""
The received ranges as the database keeps them (engine/runs.py, recording.py):
runs of bytes in their own table and a byte counter on the upload. Compared
with plain sets of bytes, recorded in every order, in parallel, across a crash.
"""

import io
import os
import threading
import time
import uuid

import pytest
from django.db import OperationalError, connection, connections
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from uploads import engine
from uploads.conf import upload_settings
from uploads.engine import recording, runs, statements
from uploads.models import ReceivedRange, Upload
from uploads.signals import upload_completed

from .chunking import post_chunk, probe_chunk, sha256

Status = Upload.Status
BIG = 10**6
spans = st.lists(st.tuples(st.integers(0, 200), st.integers(0, 40)), max_size=30)
property_settings = hsettings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def new_upload(user, size=BIG, **fields):
    """A bare record: recording needs no staged bytes."""
    fields.setdefault("protocol", Upload.Protocol.FLOW)
    return Upload.objects.create(
        owner=user,
        client_id=uuid.uuid4().hex,
        filename="r.bin",
        name="r.bin",
        size=size,
        expires=timezone.now() + upload_settings.EXPIRATION,
        **fields,
    )


def offer(upload, start, end):
    """
    As writing.write does with a piece, under its (here uncontended) lock:
    "had" if every byte is in, "refused" if some are, else recorded.
    """
    recording.reload(upload, start, end)
    around = upload.received_around
    if start < end and around.contains():
        return "had"
    if around.overlaps():
        return "refused"
    return recording.record(upload, start, end)


def stored(upload):
    return list(upload.received_ranges.order_by("start").values_list("start", "end"))


def as_runs(byte_set):
    """Sorted, disjoint, not touching: what the table must hold for these bytes."""
    found = []
    for i in sorted(byte_set):
        if found and found[-1][1] == i:
            found[-1] = (found[-1][0], i + 1)
        else:
            found.append((i, i + 1))
    return found


def check_against(upload, expected):
    assert stored(upload) == as_runs(expected)
    upload.refresh_from_db()
    assert upload.received_bytes == len(expected)


@given(items=spans)
@property_settings
def test_pieces_in_any_order_give_the_union_merged(user, items):
    upload, expected = new_upload(user), set()
    for start, length in items:
        piece = set(range(start, start + length))
        outcome = offer(upload, start, start + length)
        if piece and piece <= expected:
            assert outcome == "had"
        elif piece & expected:
            assert outcome == "refused"  # overlaps are refused, and change nothing
        else:
            assert not outcome.finished
            expected |= piece
        check_against(upload, expected)


@given(items=spans, start=st.integers(0, 250), length=st.integers(0, 40))
@property_settings
def test_contains_and_overlaps_agree_with_sets(user, items, start, length):
    upload, expected = new_upload(user), set()
    for s, n in items:
        if offer(upload, s, s + n) not in ("had", "refused"):
            expected |= set(range(s, s + n))
    wanted = set(range(start, start + length))
    *_, around = runs.around(upload.pk, start, start + length)
    assert around.contains() == wanted.issubset(expected)
    assert around.overlaps() == bool(wanted & expected)
    assert engine.has_range(upload, start, length) == (bool(wanted) and wanted <= expected)


@given(
    chunk=st.integers(1, 7),
    count=st.integers(1, 40),
    order=st.sampled_from(["in order", "reversed", "shuffled"]),
    shuffle=st.randoms(use_true_random=False),
    repeats=st.lists(st.integers(0, 100), max_size=8),
)
@property_settings
def test_the_file_is_whole_exactly_once(user, chunk, count, order, shuffle, repeats):
    size = chunk * count
    upload = new_upload(user, size=size)
    starts = list(range(0, size, chunk))
    if order == "reversed":
        starts.reverse()
    elif order == "shuffled":
        shuffle.shuffle(starts)
    # Copies of chunks already sent (a retry whose answer was lost), anywhere.
    for r in repeats:
        starts.insert(r % (len(starts) + 1), starts[r % len(starts)])
    seen, finished = set(), []
    for start in starts:
        outcome = offer(upload, start, start + chunk)
        if start in seen:
            assert outcome == "had"
            continue
        seen.add(start)
        finished.append(outcome.finished)
    assert finished == [False] * (count - 1) + [True]
    upload.refresh_from_db()
    assert (upload.status, upload.received_bytes) == (Status.PROCESSING, size)
    assert upload.finishing_until is not None
    assert stored(upload) == [(0, size)]


@pytest.mark.parametrize("order", ["in order", "reversed", "every other first"])
def test_a_file_stays_one_run_per_gap_however_it_arrives(user, order):
    starts = list(range(0, 1000, 10))
    if order == "reversed":
        starts.reverse()
    elif order == "every other first":
        starts = starts[::2] + starts[1::2]
    upload, expected = new_upload(user, size=1000), set()
    for start in starts:
        offer(upload, start, start + 10)
        expected |= set(range(start, start + 10))
        # As few rows as the gaps allow: 50 at most here, 1 sent in order or reversed.
        assert stored(upload) == as_runs(expected)
    assert stored(upload) == [(0, 1000)]


def test_a_deferred_size_is_set_once_and_completes_with_the_last_bytes(user):
    upload = new_upload(user, size=None, protocol=Upload.Protocol.TUS)
    offer(upload, 0, 100)
    recording.reload(upload, 100, 150)
    assert recording.record(upload, 100, 150, size=150).finished
    upload.refresh_from_db()
    assert (upload.size, upload.status) == (150, Status.PROCESSING)


def test_a_held_upload_is_whole_but_waits_uploading(user):
    upload = new_upload(user, size=10)
    recording.reload(upload, 0, 10)
    assert not recording.record(upload, 0, 10, hold=True).finished
    upload.refresh_from_db()
    assert (upload.status, upload.received_bytes) == (Status.UPLOADING, 10)


def test_the_hash_moves_on_only_from_where_it_stands(user):
    """The incremental SHA-256's hook: both CASEs look at hashed_bytes before the UPDATE."""
    upload = new_upload(user, size=300)
    recording.reload(upload, 0, 100)
    assert recording.record(upload, 0, 100, hash_advance=(0, 100, b"state-100")).hashed_bytes == 100
    recording.reload(upload, 200, 300)
    # Not where the hash stands: the bytes count, the hash stays.
    assert recording.record(upload, 200, 300, hash_advance=(0, 300, b"wrong")).hashed_bytes == 100
    upload.refresh_from_db()
    assert (upload.hashed_bytes, bytes(upload.hash_state)) == (100, b"state-100")
    recording.reload(upload, 100, 200)
    done = recording.record(upload, 100, 200, hash_advance=(100, 300, b"state-300"))
    assert (done.finished, done.hashed_bytes) == (True, 300)
    upload.refresh_from_db()
    assert (upload.hashed_bytes, bytes(upload.hash_state), upload.received_bytes) == (
        300,
        b"state-300",
        300,
    )


def test_a_chunk_costs_the_same_with_thirty_thousand_runs(user):
    """Every statement is an index seek: a fragmented upload is no slower to add to."""
    small, large = new_upload(user, size=10**9), new_upload(user, size=10**9)
    ReceivedRange.objects.bulk_create(
        ReceivedRange(upload=large, start=i * 10, end=i * 10 + 1) for i in range(30_000)
    )
    Upload.objects.filter(pk=large.pk).update(received_bytes=30_000)
    ReceivedRange.objects.create(upload=small, start=0, end=1)
    Upload.objects.filter(pk=small.pk).update(received_bytes=1)

    def cost(upload, start, end):
        started = time.perf_counter()
        with CaptureQueriesContext(connection) as queries:
            for i in range(20):
                offer(upload, start + 10 * i, end + 10 * i)
        return len(queries), time.perf_counter() - started

    # Extending runs, starting new ones, filling gaps: the same statements either way.
    for start, end in ((1, 2), (5, 6), (2, 5)):
        (few, few_time), (many, many_time) = cost(small, start, end), cost(large, start, end)
        assert few == many
        # Generous, for a loaded machine: a list read and rewritten would be 100 times slower.
        assert many_time < few_time * 5 + 0.2
    large.refresh_from_db()
    assert large.received_bytes == 30_000 + 20 * (1 + 1 + 3)
    # 20 runs extended, 20 started, 20 gaps filled.
    assert ReceivedRange.objects.filter(upload=large).count() == 30_000


@pytest.mark.django_db(transaction=True)
def test_twenty_thousand_chunks_make_a_file(user):
    """
    Fragmented first (every other chunk), then the gaps: one run, a whole file.
    Each chunk commits, as it does in a request: inside one transaction
    PostgreSQL could not prune the versions of the run every chunk extends.
    Commits need not reach the disk here (PostgreSQL's synchronous_commit).
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET synchronous_commit TO OFF")
    size = 20_000
    data = os.urandom(size)
    upload = engine.find_or_start(
        user, Upload.Protocol.FLOW, "twenty-thousand", filename="t.bin", size=size, chunk_size=1
    )
    for start in [*range(0, size, 2), *range(1, size, 2)]:
        engine.write(upload, engine.Piece(start, 1, io.BytesIO(data[start : start + 1])))
    upload.refresh_from_db()
    assert upload.status == Status.COMPLETE
    assert upload.sha256 == sha256(data)
    assert stored(upload) == [(0, size)]
    connection.close()  # the setting goes with the session


def test_many_chunks_over_http_in_a_scattered_order(alice):
    chunk, count = 100, 400
    data = os.urandom(chunk * count)
    numbers = [*range(1, count + 1, 3), *range(2, count + 1, 3), *range(3, count + 1, 3)]
    for sent, number in enumerate(numbers, 1):
        response = post_chunk(alice, "/uploads/flow/", "flow", data, number, chunk_size=chunk)
        assert response.status_code == 200, response.content
        if sent == 2 * count // 3:
            # flow.js's test request: 200 for a chunk that is in, 204 for one that is not.
            probe = probe_chunk(alice, "/uploads/flow/", "flow", data, 200, chunk_size=chunk)
            assert probe.status_code == 200
            assert (
                probe_chunk(alice, "/uploads/flow/", "flow", data, 3, chunk_size=chunk).status_code
                == 204
            )
    assert response.json()["status"] == "complete"
    assert response.json()["received_bytes"] == len(data)
    upload = Upload.objects.get(pk=response.json()["id"])
    assert upload.sha256 == sha256(data)
    assert stored(upload) == [(0, len(data))]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("order", ["in order", "scattered"])
def test_chunks_recorded_in_parallel_complete_the_file_once(user, order):
    """Threads, each its own connection, write and record neighbouring chunks at once."""
    if connection.vendor == "sqlite":
        # Its in-memory test database is shared-cache: a table locked by one
        # connection fails the others at once rather than making them wait. The
        # gunicorn test covers SQLite (a file, WAL) with processes.
        pytest.skip("SQLite's test database is in memory, shared-cache")
    chunk, count, workers = 50, 120, 6
    data = os.urandom(chunk * count)
    upload = engine.find_or_start(
        user, Upload.Protocol.FLOW, "parallel", filename="p.bin", size=len(data), chunk_size=chunk
    )
    numbers = list(range(count))
    if order == "scattered":
        numbers.sort(key=lambda number: number * 37 % count)  # 37 and 120 share no factor
    completed, errors = [], []

    def on_completed(sender, upload, **kwargs):
        completed.append(upload.pk)

    upload_completed.connect(on_completed)
    barrier = threading.Barrier(workers)

    def send(mine):
        try:
            barrier.wait()
            for number in mine:
                copy = Upload.objects.get(pk=upload.pk)
                start = number * chunk
                piece = io.BytesIO(data[start : start + chunk])
                engine.write(copy, engine.Piece(start, chunk, piece))
        except Exception as exc:  # reported below, with the thread's own traceback
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=send, args=(numbers[i::workers],)) for i in range(workers)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
    finally:
        upload_completed.disconnect(on_completed)
    assert errors == []
    assert completed == [upload.pk]
    upload.refresh_from_db()
    assert (upload.status, upload.received_bytes) == (Status.COMPLETE, len(data))
    assert upload.sha256 == sha256(data)
    assert stored(upload) == [(0, len(data))]


class Crash(Exception):
    """The process stopping between counting the bytes and writing their run."""


# Which statement fails: (chunks sent before, the chunk that crashes, chunks after).
CRASHES = {
    "extend_end": ([0, 100], 200, []),  # it follows a run
    "extend_start": ([100, 200], 0, []),  # it comes before one
    "insert_run": ([200], 0, [100]),  # it starts a run
    "join": ([0, 200], 100, []),  # it fills a gap
}


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("where", CRASHES)
def test_a_crash_between_the_count_and_the_run_loses_nothing(user, monkeypatch, where):
    """The two writes are one transaction: the client's retry records the chunk, once."""
    data = os.urandom(300)
    upload = engine.find_or_start(
        user, Upload.Protocol.FLOW, "crash", filename="c.bin", size=300, chunk_size=100
    )
    before, crashing, after = CRASHES[where]

    def send(start):
        piece = engine.Piece(start, 100, io.BytesIO(data[start : start + 100]))
        engine.write(Upload.objects.get(pk=upload.pk), piece)

    for start in before:
        send(start)

    def crash(*args):
        raise Crash

    with monkeypatch.context() as patched:
        patched.setattr(statements, where, crash)
        with pytest.raises(Crash):
            send(crashing)
    upload.refresh_from_db()
    assert upload.received_bytes == 100 * len(before)
    assert sum(end - start for start, end in stored(upload)) == 100 * len(before)
    for start in [crashing, *after]:
        send(start)
    upload.refresh_from_db()
    assert (upload.status, upload.received_bytes) == (Status.COMPLETE, 300)
    assert upload.sha256 == sha256(data)
    assert stored(upload) == [(0, 300)]


@pytest.mark.django_db(transaction=True)
def test_a_connection_killed_between_the_count_and_the_run_loses_nothing(user, monkeypatch):
    """PostgreSQL: the server ends the backend mid-transaction (an admin, a failover)."""
    if connection.vendor != "postgresql":
        pytest.skip("SQLite has no server to lose")
    data = os.urandom(200)
    upload = engine.find_or_start(
        user, Upload.Protocol.FLOW, "killed", filename="k.bin", size=200, chunk_size=100
    )
    engine.write(upload, engine.Piece(0, 100, io.BytesIO(data[:100])))
    extend_end = statements.extend_end

    def killed(*args):
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            (pid,) = cursor.fetchone()
        import psycopg

        db = connection.settings_dict
        with psycopg.connect(
            dbname=db["NAME"],
            user=db["USER"],
            password=db["PASSWORD"],
            host=db["HOST"],
            port=db["PORT"] or None,
            autocommit=True,
        ) as killer:
            killer.execute("SELECT pg_terminate_backend(%s)", [pid])
        return extend_end(*args)

    with monkeypatch.context() as patched:
        patched.setattr(statements, "extend_end", killed)
        with pytest.raises(OperationalError):
            engine.write(upload, engine.Piece(100, 100, io.BytesIO(data[100:])))
    # What Django does when the next request starts.
    connection.close_if_unusable_or_obsolete()
    upload.refresh_from_db()
    assert upload.received_bytes == 100
    engine.write(Upload.objects.get(pk=upload.pk), engine.Piece(100, 100, io.BytesIO(data[100:])))
    upload.refresh_from_db()
    assert (upload.status, upload.received_bytes, upload.sha256) == (
        Status.COMPLETE,
        200,
        sha256(data),
    )
    assert stored(upload) == [(0, 200)]
