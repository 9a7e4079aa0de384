"""verify_uploads finds stored files that changed or went away, and says so."""

import io
import uuid
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from uploads import engine
from uploads.models import Upload

pytestmark = pytest.mark.django_db
Status = Upload.Status


def stored(user, data):
    upload = engine.find_or_start(
        user, Upload.Protocol.FLOW, uuid.uuid4().hex, filename="f.bin", size=len(data)
    )
    engine.write(upload, engine.Piece(0, len(data), io.BytesIO(data)))
    upload.refresh_from_db()
    assert upload.status == Status.COMPLETE
    return upload


def verify(*args):
    out = io.StringIO()
    try:
        call_command("verify_uploads", *args, stdout=out)
    except CommandError as exc:
        return out.getvalue(), str(exc)
    return out.getvalue(), None


def test_a_changed_and_a_deleted_file_are_reported_and_marked(user):
    intact = stored(user, b"intact " * 100)
    changed = stored(user, b"changed " * 100)
    deleted = stored(user, b"deleted " * 100)
    path = Path(changed.file.path)
    path.write_bytes(path.read_bytes().replace(b"changed", b"CHANGED", 1))  # same size
    Path(deleted.file.path).unlink()

    out, error = verify()
    assert error == "2 of 3 stored file(s) failed verification"
    assert f"CHANGED upload {changed.pk}" in out and "sha256" in out
    assert f"MISSING upload {deleted.pk}" in out
    assert str(intact.pk) not in out
    assert "\r[" not in out, "no progress bar when the output is not a terminal"
    statuses = {u.pk: (u.status, u.error) for u in Upload.objects.all()}
    assert statuses[intact.pk] == (Status.COMPLETE, "")
    assert statuses[changed.pk][0] == Status.FAILED and "sha256" in statuses[changed.pk][1]
    assert statuses[deleted.pk][0] == Status.FAILED and "missing" in statuses[deleted.pk][1]

    # Marked failed, they are not checked again: the next run is clean.
    assert verify() == ("Checked 1 stored file(s): 0 problem(s).\n", None)


def test_a_truncated_file_is_changed(user):
    upload = stored(user, b"x" * 1000)
    Path(upload.file.path).write_bytes(b"x" * 10)
    out, error = verify()
    assert "has 10 bytes, not 1000" in out
    assert error


def test_since_and_limit_bound_the_work(user):
    uploads = [stored(user, bytes([n]) * 50) for n in range(3)]
    for upload in uploads:
        Path(upload.file.path).unlink()
    out, error = verify("--since", "2999-01-01")
    assert out == "Checked 0 stored file(s): 0 problem(s).\n" and error is None
    out, error = verify("--limit", "1")
    assert error == "1 of 1 stored file(s) failed verification"
    assert f"MISSING upload {uploads[0].pk}" in out, "oldest first"
    out, error = verify("--since", "7d", "--limit", "5")
    assert error == "2 of 2 stored file(s) failed verification"


def test_bad_options_are_refused(user):
    with pytest.raises(CommandError, match="not a whole number of at least 1"):
        call_command("verify_uploads", "--limit", "0")
    with pytest.raises(CommandError, match="neither a date"):
        call_command("verify_uploads", "--since", "yesterday")
