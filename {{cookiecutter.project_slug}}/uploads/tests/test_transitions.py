"""
Every status change goes through one table (uploads/engine/transitions.py):
an edge it lacks is refused, each edge is made once however many requests
race to make it, and its signal is sent once.
"""

import ast
import io
import threading
from pathlib import Path

import pytest
from django.db import connection

from uploads import engine, staging
from uploads.engine import transitions
from uploads.engine.transitions import EDGES, TransitionNotAllowed
from uploads.errors import ChunkConflict
from uploads.models import Upload
from uploads.signals import upload_completed, upload_expired, upload_failed, upload_started

pytestmark = pytest.mark.django_db
Status = Upload.Status
APP = Path(__file__).resolve().parent.parent


@pytest.fixture
def sent():
    """Every signal sent, as (signal, upload id)."""
    log = []
    receivers = []
    for signal in (upload_started, upload_completed, upload_failed, upload_expired):

        def receiver(sender, upload, signal=signal, **kwargs):
            log.append((signal, upload.pk))

        signal.connect(receiver)
        receivers.append((signal, receiver))
    yield log
    for signal, receiver in receivers:
        signal.disconnect(receiver)


def upload_in(user, status):
    upload = engine.start(user, Upload.Protocol.FLOW, filename="t.bin", size=4)
    Upload.objects.filter(pk=upload.pk).update(status=status)
    upload.status = status
    return upload


def test_an_edge_the_table_lacks_is_refused_and_changes_nothing(user):
    upload = upload_in(user, Status.COMPLETE)
    for target in (Status.UPLOADING, Status.CANCELLED, Status.EXPIRED):
        with pytest.raises(TransitionNotAllowed, match=f"from complete to {target}"):
            transitions.move(upload, Status.COMPLETE, target)
    assert Upload.objects.get(pk=upload.pk).status == Status.COMPLETE


def test_the_last_bytes_recorded_are_an_edge_of_the_table():
    # Made by recording.py's UPDATE rather than move(), but the table says so.
    assert "recording.py" in EDGES[(Status.UPLOADING, Status.PROCESSING)].why


@pytest.mark.parametrize(
    "source, target, signal",
    [
        (Status.PROCESSING, Status.COMPLETE, upload_completed),
        (Status.PROCESSING, Status.FAILED, upload_failed),
        (Status.UPLOADING, Status.EXPIRED, upload_expired),
        (Status.UPLOADING, Status.CANCELLED, None),
        (Status.PROCESSING, Status.UPLOADING, None),
        (Status.COMPLETE, Status.FAILED, None),
    ],
)
def test_each_edge_is_made_once_and_sends_its_signal_once(user, sent, source, target, signal):
    upload = upload_in(user, source)
    stale = Upload.objects.get(pk=upload.pk)  # a second request read it too
    assert transitions.move(upload, source, target)
    assert not transitions.move(stale, source, target)
    assert stale.status == source, "the loser's copy is left as it was"
    assert Upload.objects.get(pk=upload.pk).status == target
    assert sent == ([(signal, upload.pk)] if signal else [])


def test_ending_an_upload_early_drops_its_staged_bytes(user):
    upload = upload_in(user, Status.UPLOADING)
    assert staging.backend.path_for(upload).exists()
    transitions.move(upload, Status.UPLOADING, Status.CANCELLED)
    assert not staging.backend.path_for(upload).exists()


def test_cancelling_an_upload_being_finished_does_nothing_and_says_so(user):
    upload = upload_in(user, Status.PROCESSING)
    with pytest.raises(ChunkConflict, match="being finished"):
        engine.cancel(Upload.objects.get(pk=upload.pk))
    assert Upload.objects.get(pk=upload.pk).status == Status.PROCESSING
    assert staging.backend.path_for(upload).exists(), "its bytes are still there to be finished"


def test_a_wrong_whole_file_checksum_goes_back_to_uploading_through_the_table(user, sent):
    upload = engine.start(user, Upload.Protocol.CHUNKED, filename="t.bin", size=4)
    engine.write(upload, engine.Piece(0, 4, io.BytesIO(b"abcd"), in_order=True, hold=True))
    with pytest.raises(Exception, match="md5 checksum does not match"):
        engine.complete(upload, expected={"md5": "0" * 32})
    upload.refresh_from_db()
    assert upload.status == Status.UPLOADING
    assert "md5" in upload.error
    assert [signal for signal, _ in sent] == []


@pytest.mark.django_db(transaction=True)
def test_two_racing_expiries_one_wins_and_the_signal_fires_once(user, sent):
    upload = engine.start(user, Upload.Protocol.FLOW, filename="t.bin", size=4)
    Upload.objects.filter(pk=upload.pk).update(expires=upload.created)
    copies = [Upload.objects.get(pk=upload.pk) for _ in range(2)]
    barrier = threading.Barrier(2)
    won = []

    def expire(copy):
        try:
            barrier.wait()
            won.append(transitions.move(copy, Status.UPLOADING, Status.EXPIRED))
        finally:
            connection.close()

    threads = [threading.Thread(target=expire, args=(copy,)) for copy in copies]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(won) == [False, True]
    assert [s for s in sent if s[0] is upload_expired] == [(upload_expired, upload.pk)]
    assert Upload.objects.get(pk=upload.pk).status == Status.EXPIRED


def _status_writes(path):
    """Lines of `path` that write an upload's status other than through the table."""
    tree = ast.parse(path.read_text())
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign | ast.AugAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            targets = [e for t in targets for e in (t.elts if isinstance(t, ast.Tuple) else [t])]
            # upload.status = ..., not an error's own status code (self.status).
            if any(
                isinstance(t, ast.Attribute)
                and t.attr == "status"
                and ast.unparse(t.value) != "self"
                for t in targets
            ):
                found.append(node.lineno)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            name = node.func.attr
            keywords = {k.arg: k.value for k in node.keywords}
            if name == "select_for_update":
                found.append(node.lineno)
            if name in ("update", "create", "get_or_create", "update_or_create") and (
                "status" in keywords
            ):
                found.append(node.lineno)
            fields = keywords.get("update_fields")
            if name == "save" and fields is not None and "status" in ast.unparse(fields):
                found.append(node.lineno)
    return found


def test_no_status_is_written_outside_the_table():
    # transitions.py makes the edges; recording.py makes the last-byte edge in
    # its UPDATE and re-reads the status (an assignment from the database).
    allowed = {APP / "engine" / "transitions.py", APP / "engine" / "recording.py"}
    offenders = {}
    for path in sorted(APP.rglob("*.py")):
        if "tests" in path.parts or "migrations" in path.parts or path in allowed:
            continue
        lines = _status_writes(path)
        if lines:
            offenders[str(path.relative_to(APP))] = lines
    assert offenders == {}
