"""
Finishing an upload once every byte is in: verify its size, compute its
SHA-256 in one read pass (and any checksum the client claims, in the same
pass), store the file, record it and send upload_completed.

The order makes it safe to stop at any point and run again: the file is
stored under a name fixed for that upload (models.upload_to), then recorded
`complete`, and only that record removes the staged bytes (transitions.EDGES).
A run that stops before the record (a killed worker, a database connection
lost, a full MEDIA_ROOT or bucket) leaves the upload `processing` with its
staged bytes intact; the next run deletes whatever the stopped one stored
under that name, whole or not, and stores it again. The run holds a lease
(leases.py) renewed as it works; once it runs out, the status API's next read
of the upload or cleanup_uploads takes the upload over.

writing.py calls finish_soon() from the one request whose chunk completed the
file, and the Content-Range adapter finishes a held upload through complete(),
which checks the client's md5 here. finish_upload(upload_id) is the whole
finish as a function of an id: the web process's thread runs it, and so does
the Celery task (uploads/tasks.py) when a broker is configured.
"""

import hashlib
import logging
import threading
from contextlib import suppress

from django import db
from django.db import DatabaseError, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext

from .. import broker, sha256, staging, tasks
from ..conf import upload_settings
from ..errors import BadRequest, Busy, FinishingFailed
from ..models import Upload
from . import ending, hashing, leases, transitions

logger = logging.getLogger(__name__)

Status = Upload.Status

# A broker that refuses connections delays the answer to the last chunk by
# about a second (one that does not answer, by its connection timeouts); then
# the lease takes over (_send_finish).
SEND_RETRY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.5, "interval_max": 0.5}


class StoringFailed(Exception):
    """The storage could not take the file (full, unreachable): worth another try later."""


def finish_soon(upload):
    """
    Finish an upload that just became whole (or was just taken over), after
    the answer (which says `processing`): hashing a file of tens of GB takes
    minutes, and the client polls the status API. With a broker, a Celery
    worker does it (tasks.finish_upload); without one, a thread of this worker.
    A finisher that stops meanwhile lets its lease run out, and the upload is
    taken over.
    """
    if tasks.enabled():
        # Sent once the `processing` status is committed, so the worker sees it.
        transaction.on_commit(lambda: _send_finish(upload.pk))
        return
    if not upload_settings.FINISH_IN_BACKGROUND:
        finish(upload)
        return
    thread = threading.Thread(
        target=_finish_in_thread, args=(upload.pk,), name=f"finish-{upload.pk}"
    )
    # Started once the `processing` status is committed, so the thread sees it.
    transaction.on_commit(thread.start)


def check_finisher():
    """
    Raise BrokerUnavailable unless the finish of a file about to be recorded
    whole can be handed over now: with a broker, that it takes a connection
    (broker.py says why only the chunk that completes a file asks). Without
    one, this process's own thread finishes it, and is always there.
    """
    if tasks.enabled():
        broker.check()


def _send_finish(pk):
    """
    Queue the finish. The chunk that completed the file checked the broker
    before its range was recorded (check_finisher); a broker lost since loses
    nothing: the upload is recorded whole and `processing` with its lease, and
    once the lease runs out the status API's next read sends the task again
    (take_over_if_stalled) and cleanup_uploads finishes it itself (recover).
    """
    try:
        tasks.finish_upload.apply_async((pk,), retry_policy=SEND_RETRY)
    except Exception as exc:  # kombu's OperationalError, a DNS failure, a refused connection
        broker.seen_down(exc)
        logger.warning(
            "upload %s: the broker did not take the finish (%s); it is taken over "
            "once its lease runs out",
            pk,
            exc,
        )


def _finish_in_thread(pk):
    try:
        finish_upload(pk)
    except Exception:  # finish() records its own failures; this is anything else
        logger.exception("upload %s: the finishing thread failed", pk)
    finally:
        db.connection.close()


def finish_upload(upload_id):
    """
    Finish the `processing` upload `upload_id`, whose lease the caller holds
    (or held: a Celery job given back when its worker died runs again with
    the lease it was sent with). Idempotent: an upload no longer `processing`
    (finished by another run, say) is left as it is; a run still at work
    holds the staged bytes' lock, and this one leaves it to that run.
    """
    upload = Upload.objects.get(pk=upload_id)
    if upload.status != Status.PROCESSING:
        return upload
    return finish(upload)


def finish(upload, *, expected=None):
    """
    Verify the staged file, hash it, store it and record it `complete`. The
    upload is `processing`, and the caller holds its lease (upload.finishing_until).

    `expected` maps hashlib names to the hex digests the client claims for the
    whole file (Content-Range's md5): they are computed in the same read pass
    as the sha256, and on a mismatch the upload goes back to `uploading` with
    the error recorded and BadRequest is raised, the file left unfinished.

    A file the storage could not take, a database that could not record it,
    or a lease another run took over leaves the upload `processing`, to be
    finished again; only a staged file that is not what was received fails it.
    """
    if upload.protocol == Upload.Protocol.S3:
        # Its bytes are the object in the bucket already: read it back instead.
        from ..direct.verifying import verify

        return verify(upload)
    expected = {name: value.lower() for name, value in (expected or {}).items()}
    heartbeat = leases.Heartbeat(upload)
    wrong, name = [], None
    try:
        # The lock is held until the file is stored: a run that takes over
        # waits for, or leaves alone, a finisher still at work on this disk.
        with staging.backend.open_locked(upload) as handle:
            staging.backend.seal(handle, upload.size)
            staged_size = staging.backend.size(handle)
            if staged_size != upload.size:
                raise ValueError(f"the staged file has {staged_size} bytes, not {upload.size}")
            if expected:
                # The client's checksums of the whole file need the whole file read.
                digests, read = staging.backend.digests(
                    handle, upload.size, {"sha256", *expected}, progress=heartbeat
                )
            else:
                # What was not hashed as it arrived (hashing.py), from the saved state.
                digests = {}
                digests["sha256"], read = hashing.digest(
                    upload, handle, upload.size, progress=heartbeat
                )
            if read != upload.size:
                raise ValueError(f"read {read} bytes of {upload.size} while hashing")
            wrong = [name for name, value in expected.items() if digests[name] != value]
            if not wrong:
                name = _store(upload, heartbeat)
    except (Busy, leases.LeaseLost) as exc:
        logger.info("upload %s: left to the run finishing it: %s", upload.pk, exc)
        return upload
    except StoringFailed as exc:
        _finish_later(upload, f"storing the file failed, it will be tried again: {exc}")
        return upload
    except DatabaseError:
        logger.exception(
            "upload %s: the database failed while finishing; tried again later", upload.pk
        )
        leases.forget_broken_connection()
        return upload
    except staging.Gone:
        try:
            recorded = _finish_from_storage(upload, heartbeat)
        except leases.LeaseLost as exc:
            logger.info("upload %s: left to the run finishing it: %s", upload.pk, exc)
            return upload
        if not recorded:
            _fail(upload, "finishing stopped after the staged bytes were gone; upload it again")
        return upload
    except Exception as exc:
        logger.exception("upload %s could not be finished", upload.pk)
        _fail(upload, f"finishing failed: {exc}")
        return upload
    if wrong:
        _reopen(
            upload,
            "; ".join(
                f"{name} checksum does not match: the file's is "
                f"{digests[name]}, not {expected[name]}"
                for name in wrong
            ),
        )
    _record_complete(upload, digests["sha256"], name)
    return upload


def _store(upload, progress):
    """Store the staged bytes under the upload's fixed name; nothing is left there if it fails."""
    storage = upload.file.storage
    name = upload.file.field.generate_filename(upload, upload.name)
    if staging.backend.stored_in_place(upload, storage, name):
        # Sealing it stored it (S3 staging at the finished key): there is no
        # copy to make, and what is at the name is the staged file itself.
        return name
    try:
        # What an earlier run that stopped left here, whole or not, goes first:
        # the staged bytes are the truth, and the name must be free to keep it.
        if storage.exists(name):
            storage.delete(name)
        return staging.backend.store(upload, storage, name, progress=progress)
    except Exception as exc:
        with suppress(Exception):  # the storage may be the thing that is broken
            storage.delete(name)
        if isinstance(exc, leases.LeaseLost | DatabaseError):
            raise
        raise StoringFailed(str(exc) or type(exc).__name__) from exc


def _finish_from_storage(upload, progress):
    """
    A `processing` upload whose staged bytes are gone has had them removed by
    its record as `complete`, and only once the file was stored whole under
    its fixed name: if that record is not there now, it was lost after the
    fact (a database that lost its last commits in a power cut, as SQLite's
    synchronous=NORMAL and PostgreSQL's synchronous_commit=off may). Then the
    stored file, if it has the upload's size, is hashed and recorded. True if so.
    """
    storage = upload.file.storage
    name = upload.file.field.generate_filename(upload, upload.name)
    # The hash saved as the bytes arrived, if any, says what the stored file's
    # first bytes must be: a file the crash left with other bytes is refused.
    hashed, state = Upload.objects.values_list("hashed_bytes", "hash_state").get(pk=upload.pk)
    try:
        if not storage.exists(name) or storage.size(name) != upload.size:
            return False
        digest = sha256.ResumableSHA256() if sha256.available() else hashlib.sha256()
        checked = not (state and hashed and sha256.available())
        with storage.open(name, "rb") as stored:
            for block in stored.chunks(staging.BLOCK_SIZE):
                view = memoryview(block)
                if not checked and digest.length + len(view) >= hashed:
                    cut = hashed - digest.length
                    digest.update(view[:cut])
                    if digest.state() != bytes(state):
                        logger.warning(
                            "upload %s: its stored file is not what was hashed", upload.pk
                        )
                        return False
                    checked, view = True, view[cut:]
                digest.update(view)
                progress()
    except leases.LeaseLost:
        raise
    except Exception as exc:  # the storage's own errors: OSError, botocore's
        logger.warning("upload %s: its stored file could not be read: %s", upload.pk, exc)
        return False
    logger.warning(
        "upload %s: its staged bytes were gone, its stored file was whole: recorded from it",
        upload.pk,
    )
    _record_complete(upload, digest.hexdigest(), name)
    return True


def _record_complete(upload, digest, name):
    """
    Record the stored file; the move removes the staged bytes and signals.
    A connection that broke (a restarted server, a killed backend) is opened
    again for one more try; if that fails too, the upload stays `processing`
    and a later run, once the lease runs out, stores and records it again.
    """
    for attempt in (1, 2):
        try:
            moved = transitions.move(
                upload,
                Status.PROCESSING,
                Status.COMPLETE,
                where={"finishing_until": upload.finishing_until},
                sha256=digest,
                file=name,
                completed=timezone.now(),
                finishing_until=None,
                error="",
            )
        except DatabaseError:
            in_transaction = db.connection.in_atomic_block
            leases.forget_broken_connection()
            if attempt == 1 and not in_transaction:
                continue
            logger.exception(
                "upload %s: stored as %s but not recorded; it will be finished again",
                upload.pk,
                name,
            )
            return
        if moved:
            logger.info("upload %s complete: %d bytes, sha256 %s", upload.pk, upload.size, digest)
        return


def _finish_later(upload, error):
    """
    A transient failure: the upload stays `processing` with the reason, its
    staged bytes kept, and is taken over once the lease runs out (a status
    read or cleanup_uploads), so it finishes once there is room. Not a status
    change: only the reason is written, and only while this run holds the lease.
    """
    logger.warning("upload %s not finished yet: %s", upload.pk, error)
    with suppress(DatabaseError):
        Upload.objects.filter(
            pk=upload.pk, status=Status.PROCESSING, finishing_until=upload.finishing_until
        ).update(error=error)
        upload.error = error


def _fail(upload, error):
    logger.warning("upload %s failed: %s", upload.pk, error)
    transitions.move(upload, Status.PROCESSING, Status.FAILED, error=error, finishing_until=None)


def recover(upload):
    """
    Finish, here and now, an upload left `processing` by a finisher that
    stopped: its lease ran out (a killed worker, a restart, a database that
    could not record it). The take-over is one conditional UPDATE, so of two
    runs only one recovers it; a finisher still at work on this disk holds
    the staging file's lock and is left to it. Returns True if this call took it.
    """
    if not leases.ran_out(upload):
        return False
    try:
        with staging.for_upload(upload).open_locked(upload, timeout=0):
            pass  # nobody is finishing it
    except Busy:
        return False
    except staging.Gone:
        pass  # finish() says so, once it holds the upload
    if not leases.take_over(upload):
        return False
    upload.refresh_from_db()
    logger.info("upload %s: finishing again, its finisher stopped", upload.pk)
    finish(upload)
    return True


def take_over_if_stalled(upload):
    """
    The status API read `upload`: if it is `processing` and its finisher
    stopped, claim it (one UPDATE) and finish it after the answer, as a last
    chunk's request would. Costs no query while the lease runs.
    """
    if leases.ran_out(upload) and leases.take_over(upload):
        logger.info("upload %s: finishing again, its finisher stopped", upload.pk)
        finish_soon(upload)


def _reopen(upload, error):
    """A whole file whose checksum failed goes back to `uploading`, with the reason."""
    transitions.move(upload, Status.PROCESSING, Status.UPLOADING, error=error, finishing_until=None)
    logger.warning("upload %s not finished: %s", upload.pk, error)
    raise BadRequest(error)


def complete(upload, *, expected=None):
    """
    Finish an upload held for an explicit complete (Piece(hold=True)),
    checking the whole file against `expected` ({hashlib name: hex}) in
    finish()'s pass. `upload` is as the caller just read it. Raises
    FinishingFailed when the file could not be finished (upload.error says why).
    """
    ending.check_open(upload)
    if not transitions.move(
        upload,
        Status.UPLOADING,
        Status.PROCESSING,
        where={"received_bytes": F("size")},
        error="",
        finishing_until=leases.granted(timezone.now()),
    ):
        upload.refresh_from_db(fields=["status", "received_bytes", "size", "expires"])
        ending.check_not_ended(upload)
        if upload.status != Status.UPLOADING:
            raise BadRequest(
                gettext("the upload is already %(status)s") % {"status": upload.status}
            )
        raise BadRequest(
            gettext("the upload has %(received)s of its %(size)s bytes")
            % {"received": upload.received_bytes, "size": upload.size}
        )
    upload = finish(upload, expected=expected)
    if upload.status == Status.PROCESSING:
        # Every byte is in and checked; storing or recording it will be tried again.
        raise Busy(
            upload.error or gettext("the upload is being finished; ask its status in a while")
        )
    if upload.status != Status.COMPLETE:
        raise FinishingFailed(
            upload.error or gettext("the upload is %(status)s") % {"status": upload.status}
        )
    return upload
