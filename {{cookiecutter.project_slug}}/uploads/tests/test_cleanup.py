"""
cleanup_uploads against uploads in every state: exactly the debris goes, and
nothing an operator or a user still needs.
"""

import io
import logging
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from uploads import engine, staging
from uploads.engine import recording
from uploads.models import Upload

from .chunking import sha256

pytestmark = pytest.mark.django_db
Status = Upload.Status
SITE_ROOT = Path(__file__).resolve().parents[2]
HOURS_AGO = 5 * 3600


def start(user, data, *, client_id=None):
    upload = engine.find_or_start(
        user,
        Upload.Protocol.FLOW,
        client_id or uuid.uuid4().hex,
        filename=f"{client_id or 'file'}.bin",
        size=len(data),
        chunk_size=100,
    )
    return upload


def send(upload, data, start=0, end=100):
    piece = engine.Piece(start, end - start, io.BytesIO(data[start:end]))
    return engine.write(upload, piece)


def age(path, seconds):
    then = time.time() - seconds
    os.utime(path, (then, then))


def cleanup(*args):
    out = io.StringIO()
    call_command("cleanup_uploads", *args, stdout=out)
    return out.getvalue()


def staged_names():
    return sorted(path.name for path in staging.backend.directory().iterdir())


@pytest.fixture
def every_state(user):
    """One of each; returns them by name, with the staging entries each should leave."""
    data = bytes(range(256)) * 2
    complete = start(user, data[:100], client_id="complete")
    send(complete, data[:100])
    complete.refresh_from_db()

    within = start(user, data, client_id="within")
    send(within, data)

    expired = start(user, data, client_id="expired")
    send(expired, data)
    Upload.objects.filter(pk=expired.pk).update(expires=timezone.now() - timezone.timedelta(1))

    cancelled = start(user, data, client_id="cancelled")
    engine.cancel(cancelled)
    # A crash between the database and the disk left its file behind.
    staging.backend.path_for(cancelled).write_bytes(b"c" * 100)

    orphan = staging.backend.directory() / f"{uuid.uuid4().hex}.part"  # its record is gone
    orphan.write_bytes(b"o" * 5000)
    age(orphan, HOURS_AGO)
    junk = staging.backend.directory() / "leftover-folder"
    junk.mkdir()
    (junk / "piece").write_bytes(b"j" * 10)
    age(junk / "piece", HOURS_AGO)
    age(junk, HOURS_AGO)
    fresh = staging.backend.directory() / f"{uuid.uuid4().hex}.part"  # an upload starting right now
    fresh.write_bytes(b"f" * 10)

    return {
        "complete": complete,
        "within": within,
        "expired": expired,
        "cancelled": cancelled,
        "orphan": orphan,
        "junk": junk,
        "fresh": fresh,
        "kept": sorted([staging.backend.path_for(within).name, fresh.name]),
    }


def test_removes_exactly_the_debris_and_a_second_run_nothing_more(every_state):
    s = every_state
    stored = Path(s["complete"].file.path)
    before = staged_names()
    usage = sum(
        os.lstat(path).st_blocks * 512
        for path in [
            staging.backend.path_for(s["expired"]),
            staging.backend.path_for(s["cancelled"]),
            s["orphan"],
        ]
    ) + sum(os.lstat(path).st_blocks * 512 for path in [s["junk"], s["junk"] / "piece"])

    dry = cleanup("--dry-run")
    assert staged_names() == before, "a dry run removes nothing"
    assert Upload.objects.get(pk=s["expired"].pk).status == Status.UPLOADING
    assert f"would expire upload {s['expired'].pk}" in dry
    assert f"would remove {s['orphan']}" in dry and f"would remove {s['junk']}" in dry
    assert "removed" not in dry and "expired upload" not in dry
    assert str(s["fresh"]) not in dry
    assert dry.splitlines()[-1].startswith("Dry run: would expire 1 upload(s), would remove 4")

    out = cleanup()
    assert staged_names() == s["kept"]
    assert out.splitlines()[-1].startswith("Expired 1 upload(s), removed 4 staging file(s), freed")
    assert f"({usage} bytes)" in out or f"freed {usage} bytes" in out
    statuses = dict(Upload.objects.values_list("client_id", "status"))
    assert statuses == {
        "complete": Status.COMPLETE,
        "within": Status.UPLOADING,
        "expired": Status.EXPIRED,
        "cancelled": Status.CANCELLED,
    }
    assert stored.read_bytes() == s["complete"].file.open("rb").read()
    assert sha256(stored.read_bytes()) == s["complete"].sha256

    again = cleanup()
    assert again.strip() == "Expired 0 upload(s), removed 0 staging file(s), freed 0 bytes."
    assert staged_names() == s["kept"]


def test_the_upload_within_its_time_still_completes_after_cleanup(user):
    data = b"w" * 300
    upload = start(user, data)
    send(upload, data, 0, 100)
    age(staging.backend.path_for(upload), 30 * 86400)  # however old the file looks
    cleanup("--older-than", "0s")
    send(upload, data, 100, 200)
    send(upload, data, 200, 300)
    upload.refresh_from_db()
    assert upload.status == Status.COMPLETE
    assert upload.sha256 == sha256(data)


def test_older_than_spares_uploads_that_expired_recently(user):
    data = b"e" * 200
    upload = start(user, data)
    send(upload, data)
    Upload.objects.filter(pk=upload.pk).update(expires=timezone.now() - timezone.timedelta(hours=1))
    assert "Expired 0 upload(s)" in cleanup("--older-than", "2h")
    assert staging.backend.path_for(upload).exists()
    assert "Expired 1 upload(s)" in cleanup("--older-than", "30m")
    assert not staging.backend.path_for(upload).exists()


def test_an_expired_upload_whose_chunk_is_being_written_is_left_alone(user, settings):
    settings.UPLOADS_LOCK_TIMEOUT = 0.2
    data = b"x" * 300
    upload = start(user, data)
    send(upload, data)
    Upload.objects.filter(pk=upload.pk).update(expires=timezone.now() - timezone.timedelta(1))
    # A chunk's request holds its bytes, as a gunicorn worker would.
    with staging.backend.open_locked(upload, 100, 100):
        out = cleanup()
    assert "Expired 0 upload(s)" in out and "Skipped 1 in use" in out
    upload.refresh_from_db()
    assert upload.status == Status.UPLOADING
    assert staging.backend.path_for(upload).exists()
    assert "Expired 1 upload(s)" in cleanup()


def test_a_staging_folder_that_cannot_be_read_is_a_clear_error(settings, tmp_path):
    not_a_folder = tmp_path / "staging-is-a-file"
    not_a_folder.write_text("")
    settings.UPLOADS_STAGING_DIR = not_a_folder
    with pytest.raises(CommandError, match="cannot read the staging folder"):
        cleanup()


def test_bad_options_and_an_unreachable_database_exit_non_zero(tmp_path):
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_"))},
        "DJANGO_SECRET_KEY": "test-only-" + uuid.uuid4().hex,
        "DATABASE_URL": "postgres://nobody@127.0.0.1:9/nowhere",
        "UPLOADS_STAGING_DIR": str(tmp_path / "staging"),
        "DJANGO_MEDIA_ROOT": str(tmp_path / "media"),
    }

    def run(*args):
        return subprocess.run(
            [sys.executable, "manage.py", "cleanup_uploads", *args],
            cwd=SITE_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    done = run()
    assert done.returncode != 0
    assert "cannot reach the database" in done.stderr
    done = run("--older-than", "soon")
    assert done.returncode != 0
    assert "'soon' is not a duration" in done.stderr


def _stalled(user, data=b"s" * 300):
    """An upload whose worker died right after receiving the last byte."""
    upload = engine.start(user, Upload.Protocol.FLOW, filename="stalled.bin", size=len(data))
    engine.write(upload, engine.Piece(0, 200, io.BytesIO(data[:200])))
    with staging.backend.open_locked(upload, 200, 100) as fd:
        assert staging.backend.write(fd, 200, io.BytesIO(data[200:]), 100) == (100, False)
        assert recording.record(upload, 200, 300)  # now `processing`; finish() never ran
    Upload.objects.filter(pk=upload.pk).update(updated=timezone.now() - timezone.timedelta(hours=2))
    return upload


def test_an_upload_whose_finisher_stopped_is_finished_once(user):
    upload = _stalled(user)
    dry = cleanup("--dry-run")
    assert "Would finish 1 upload(s)" in dry
    assert Upload.objects.get(pk=upload.pk).status == Status.PROCESSING
    assert "Finished 1 upload(s)" in cleanup()
    upload.refresh_from_db()
    assert upload.status == Status.COMPLETE
    assert upload.sha256 == sha256(b"s" * 300)
    assert not staging.backend.path_for(upload).exists()
    assert "Finished" not in cleanup()


def test_a_finish_still_at_work_is_left_alone(user):
    upload = _stalled(user)
    with staging.backend.open_locked(upload):  # the finisher holds the file
        engine.recover(upload, stalled_before=timezone.now())
    assert Upload.objects.get(pk=upload.pk).status == Status.PROCESSING


def test_a_stalled_finish_without_its_bytes_is_marked_failed(user):
    upload = _stalled(user)
    staging.backend.remove(upload)
    cleanup()
    upload.refresh_from_db()
    assert upload.status == Status.FAILED
    assert "upload it again" in upload.error


def test_at_verbosity_0_cleanup_prints_nothing_unless_it_fails(every_state, caplog, capsys):
    """Cron mails whatever a job prints: the crontab's -v 0 run of a normal hour is silent."""
    caplog.set_level(logging.INFO)
    out = io.StringIO()
    call_command("cleanup_uploads", "-v", "0", stdout=out, stderr=out)
    assert Upload.objects.get(pk=every_state["expired"].pk).status == Status.EXPIRED
    assert out.getvalue() == ""
    assert [r.getMessage() for r in caplog.records if r.name.startswith("uploads")] == []
    assert capsys.readouterr() == ("", "")
    # Verbosity 1 and up still hear of what the app did.
    every_state["within"].refresh_from_db()
    Upload.objects.filter(pk=every_state["within"].pk).update(
        expires=timezone.now() - timezone.timedelta(1)
    )
    call_command("cleanup_uploads", stdout=out)
    assert any(r.name.startswith("uploads") for r in caplog.records)
