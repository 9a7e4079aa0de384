"""
What happens to uploads after their chunks: the work behind `cleanup_uploads`
and `verify_uploads` (the commands only parse options and print).

Cleanup finishes uploads whose finisher stopped (engine.recover(): a worker
restarted, or a database or storage failed, while an upload was `processing`,
and its finishing lease ran out), then removes three kinds of debris, and nothing else:

- uploads past their time: marked `expired` through engine.expire(), which takes
  the staging file's whole-file lock (so it waits for a chunk being written)
  and expires it only if its time is still past (a chunk that just landed
  keeps the upload alive);
- staging entries of uploads that ended (cancelled, expired, failed, complete):
  leftovers of a crash between the database and the disk;
- staging entries no upload owns, once older than UPLOADS_CLEANUP_GRACE, since
  an upload's file is created a moment before its record is committed.

A staging entry belongs to the upload whose id (32 hex digits) its name starts
with (the local staging backend's `<id>.part`; anything else named so counts as its too). Files are
removed under their lock, taken without waiting: a file somebody holds is in
use and left for the next run. Finished files in storage are never touched.
Two copies may run at once: each counts only what its own unlink removed.

Verification re-reads each complete upload's file from its storage in bounded
blocks and compares size and sha256 with the record.
"""

import hashlib
import os
import shutil
import stat
import uuid
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import timedelta

from django.utils import timezone

from . import engine, locks, staging
from .conf import upload_settings
from .direct.bucket import direct_bucket
from .direct.verifying import notice_posted
from .engine import leases, transitions
from .errors import Busy, StagingUnavailable
from .models import Upload

Status = Upload.Status
ENDED = (Status.CANCELLED, Status.EXPIRED, Status.FAILED, Status.COMPLETE)


class StagingUnreachable(Exception):
    """The staging folder cannot be listed (unmounted, not a folder, no permission)."""


@dataclass
class Removal:
    path: str
    bytes: int
    reason: str


@dataclass
class CleanupReport:
    dry_run: bool = False
    expired: list = field(default_factory=list)  # uploads this run expired (or would)
    recovered: list = field(default_factory=list)  # stalled finishes this run took over
    removed: list = field(default_factory=list)  # Removal of every file or folder
    skipped: list = field(default_factory=list)  # (what, why): in use, left for next time
    errors: list = field(default_factory=list)  # (path, error): could not be removed

    @property
    def bytes_freed(self):
        return sum(removal.bytes for removal in self.removed)


def cleanup(*, older_than=timedelta(0), dry_run=False, now=None, log=None):
    """
    Expire uploads past their time by more than `older_than`, then remove
    staging debris. `log(message)` hears of each step. Returns a CleanupReport.
    Database errors propagate; a staging folder that cannot be read raises
    StagingUnreachable.
    """
    now = now or timezone.now()
    log = log or (lambda message: None)
    report = CleanupReport(dry_run=dry_run)
    _recover_stalled(report, now, dry_run, log)
    _expire_uploads(report, now - older_than, dry_run, log)
    _remove_debris(report, now, older_than, dry_run, log)
    _remove_abandoned(report, now - max(upload_settings.CLEANUP_GRACE, older_than), dry_run, log)
    return report


def _recover_stalled(report, now, dry_run, log):
    for upload in leases.stalled(now).iterator():
        if dry_run or engine.recover(upload):
            report.recovered.append(upload)
            log(
                f"{_would(dry_run, 'finished')} upload {upload.pk} ({upload.filename!r}) "
                "again: its finisher stopped"
            )


def _expire_uploads(report, before, dry_run, log):
    due = Upload.objects.filter(status=Status.UPLOADING, expires__lte=before).order_by("expires")
    for upload in due.iterator():
        if not dry_run and notice_posted(upload):
            continue  # its file is in the bucket (a signed POST): being verified now
        freed = _disk_usage(staging.backend.path_for(upload))
        if dry_run:
            expired = True
        else:
            try:
                expired = engine.expire_if_due(upload, before=before)
            except Busy:
                report.skipped.append((f"upload {upload.pk}", "a chunk is being written"))
                log(f"skipped upload {upload.pk}: a chunk is being written")
                continue
        if expired:
            report.expired.append(upload)
            if freed:
                report.removed.append(
                    Removal(str(staging.backend.path_for(upload)), freed, "expired")
                )
            log(
                f"{_would(dry_run, 'expired')} upload {upload.pk} ({upload.filename!r}), "
                f"{freed} bytes staged"
            )


def _remove_debris(report, now, older_than, dry_run, log):
    folder = staging.backend.directory()
    try:
        # Listed before the database is asked, so a record committed in between is seen.
        entries = list(os.scandir(folder))
    except FileNotFoundError:
        return  # nothing was ever staged
    except OSError as exc:
        raise StagingUnreachable(f"cannot read the staging folder {folder}: {exc}") from exc
    owners = {entry.name: _owner_id(entry.name) for entry in entries}
    ended = dict(
        Upload.objects.filter(pk__in={pk for pk in owners.values() if pk}).values_list(
            "pk", "status"
        )
    )
    unowned_before = now - max(upload_settings.CLEANUP_GRACE, older_than)
    ended_before = now - older_than
    for entry in entries:
        owner = owners[entry.name]
        status = ended.get(owner)
        if status in Upload.ACTIVE:
            continue  # uploading (within its time, or busy above) or being finished
        if status is None:
            reason, before = "owned by no upload", unowned_before
        elif status in (Status.CANCELLED, Status.EXPIRED):
            reason, before = f"left by a {status} upload", ended_before
        else:  # failed or complete: kept a while for whoever looks into it
            reason, before = f"left by a {status} upload", unowned_before
        try:
            modified = _newest_mtime(entry)
        except FileNotFoundError:
            continue  # removed meanwhile (another copy of this command)
        if modified > before.timestamp():
            continue  # too fresh: may be an upload starting right now
        _remove(report, entry, reason, dry_run, log)


def _remove_abandoned(report, before, dry_run, log):
    """What a backend stages away from this host (S3 staging: a bucket) and no active
    upload owns: the backend lists and removes it; here it is only counted."""

    def active(ids):
        return set(
            Upload.objects.filter(pk__in=ids, status__in=Upload.ACTIVE).values_list("pk", flat=True)
        )

    backends = [staging.backend]
    if upload_settings.DIRECT:
        backends.append(direct_bucket)  # multipart uploads begun by browsers
    removed = []
    for backend in backends:
        try:
            removed += backend.remove_abandoned(active=active, before=before, dry_run=dry_run)
        except StagingUnavailable as exc:
            raise StagingUnreachable(exc.message) from exc
    for name, size in removed:
        report.removed.append(Removal(name, size, "owned by no active upload"))
        log(f"{_would(dry_run, 'removed')} {name} (owned by no active upload), {size} bytes")


# How a dry run, which changes nothing, tells each step.
_DRY_RUN_WORDS = {"finished": "would finish", "expired": "would expire", "removed": "would remove"}


def _would(dry_run, done):
    return _DRY_RUN_WORDS[done] if dry_run else done


def _owner_id(name):
    """The upload id a staging entry's name starts with, or None."""
    head = name.partition(".")[0]
    if len(head) != 32:
        return None
    try:
        return uuid.UUID(hex=head)
    except ValueError:
        return None


def _remove(report, entry, reason, dry_run, log):
    path = entry.path
    try:
        size = _disk_usage(path)
        if dry_run:
            removed = True
        elif entry.is_dir(follow_symlinks=False):
            removed = _remove_tree(path)
        else:
            removed = _remove_file(path)
    except Busy:
        report.skipped.append((path, "in use"))
        log(f"skipped {path}: in use")
        return
    except OSError as exc:
        report.errors.append((path, str(exc)))
        log(f"could not remove {path}: {exc}")
        return
    if removed:
        report.removed.append(Removal(path, size, reason))
        log(f"{_would(dry_run, 'removed')} {path} ({reason}), {size} bytes")


def _remove_file(path):
    """Unlink under the file's lock, taken without waiting; False if already gone."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        return False
    except OSError:  # a symlink or a special file: nothing to lock, only the name to remove
        return _unlink(path)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return _unlink(path)
        with locks.locked(fd, path, timeout=0):
            return _unlink(path)
    finally:
        os.close(fd)


def _unlink(path):
    try:
        os.unlink(path)
    except FileNotFoundError:
        return False
    return True


def _remove_tree(path):
    try:
        shutil.rmtree(path)
    except FileNotFoundError:
        return False
    return True


def _disk_usage(path):
    """Bytes a file or folder takes on disk (staging files are sparse); 0 if gone."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return 0
    total = info.st_blocks * 512
    if stat.S_ISDIR(info.st_mode):
        for root, dirs, files in os.walk(path):
            for name in dirs + files:
                with suppress(FileNotFoundError):
                    total += os.lstat(os.path.join(root, name)).st_blocks * 512
    return total


def _newest_mtime(entry):
    """A folder is as fresh as the newest thing in it."""
    newest = entry.stat(follow_symlinks=False).st_mtime
    if entry.is_dir(follow_symlinks=False):
        for root, dirs, files in os.walk(entry.path):
            for name in dirs + files:
                with suppress(FileNotFoundError):
                    newest = max(newest, os.lstat(os.path.join(root, name)).st_mtime)
    return newest


# --- Verification -------------------------------------------------------------------------------


@dataclass
class Problem:
    upload: Upload
    kind: str  # "missing", "changed" (both marked failed) or "unreadable" (left alone)
    message: str


def uploads_to_verify(*, since=None, limit=None):
    """Complete uploads, oldest first; completed at or after `since`; at most `limit`."""
    uploads = Upload.objects.filter(status=Status.COMPLETE).order_by("completed", "pk")
    if since is not None:
        uploads = uploads.filter(completed__gte=since)
    return uploads[:limit] if limit is not None else uploads


def verify(upload):
    """
    Re-read the upload's stored file; a Problem, or None when size and sha256
    match. A missing or changed file is marked `failed` with the reason in
    `error`; one the storage could not serve (it may be down) is only reported.
    """
    problem = _check_stored(upload)
    if problem is not None and problem.kind != "unreadable":
        error = f"verify_uploads, {timezone.now():%Y-%m-%d %H:%M}: {problem.message}"
        # Only a still-complete upload: two verifiers mark it once.
        transitions.move(upload, Status.COMPLETE, Status.FAILED, error=error)
    return problem


def _check_stored(upload):
    name = upload.file.name
    if not name:
        return Problem(upload, "missing", "no stored file is recorded")
    storage = upload.file.storage
    digest, size = hashlib.sha256(), 0
    try:
        with storage.open(name, "rb") as stored:
            while block := stored.read(staging.BLOCK_SIZE):
                digest.update(block)
                size += len(block)
    except FileNotFoundError:
        return Problem(upload, "missing", f"the stored file {name} is missing")
    except Exception as exc:  # noqa: BLE001 - any storage backend's error
        try:
            gone = not storage.exists(name)
        except Exception:  # noqa: BLE001
            gone = False
        if gone:
            return Problem(upload, "missing", f"the stored file {name} is missing")
        return Problem(upload, "unreadable", f"the stored file {name} cannot be read: {exc}")
    if size != upload.size:
        return Problem(
            upload, "changed", f"the stored file {name} has {size} bytes, not {upload.size}"
        )
    if digest.hexdigest() != upload.sha256:
        return Problem(
            upload,
            "changed",
            f"the stored file {name} has sha256 {digest.hexdigest()}, not {upload.sha256}",
        )
    return None
