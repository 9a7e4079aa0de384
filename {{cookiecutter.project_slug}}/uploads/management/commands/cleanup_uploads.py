"""
Remove what abandoned uploads leave behind. Meant for cron or a systemd timer
(see the README's "Lifecycle" and deploy/); uploads/lifecycle.py does the work
and says why it is safe while uploads are in progress.
"""

from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError

from uploads import lifecycle

from ._options import duration, human_bytes, quiet_below_warnings


class Command(BaseCommand):
    help = (
        "Mark uploads past their time expired and remove their staged bytes, the "
        "leftovers of cancelled uploads and staging files no upload owns. Never "
        "touches a finished file or an upload still within its time."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="List what would be removed; change nothing.",
        )
        parser.add_argument(
            "--older-than",
            type=duration,
            default=timedelta(0),
            metavar="DURATION",
            help=(
                "Only uploads that expired, and files last written, at least this long "
                "ago (90s, 15m, 6h, 2d). Unowned files are always kept for "
                "UPLOADS_CLEANUP_GRACE."
            ),
        )

    def handle(self, *, dry_run, older_than, verbosity, **options):
        # A dry run lists every step: that is what it is for.
        log = self.stdout.write if verbosity >= 2 or (dry_run and verbosity >= 1) else None
        try:
            # -v 0 (cron, which mails whatever a job prints): the app's INFO
            # lines are not printed either; warnings and failures still are.
            with quiet_below_warnings("uploads", when=verbosity == 0):
                report = lifecycle.cleanup(older_than=older_than, dry_run=dry_run, log=log)
        except DatabaseError as exc:
            raise CommandError(f"cannot reach the database: {exc}".strip()) from exc
        except lifecycle.StagingUnreachable as exc:
            raise CommandError(str(exc)) from exc
        if verbosity >= 1:
            self.stdout.write(summary(report))
        for path, error in report.errors:
            self.stderr.write(f"could not remove {path}: {error}")
        if report.errors:
            raise CommandError(f"{len(report.errors)} staging file(s) could not be removed")


def summary(report):
    would = "would " if report.dry_run else ""
    verb = {True: ("expire", "remove", "free"), False: ("expired", "removed", "freed")}
    expire, remove, free = verb[report.dry_run]
    line = (
        f"{'Dry run: ' if report.dry_run else ''}{would}{expire} {len(report.expired)} "
        f"upload(s), {would}{remove} {len(report.removed)} staging file(s), "
        f"{would}{free} {human_bytes(report.bytes_freed)}"
    )
    if report.bytes_freed >= 1024:
        line += f" ({report.bytes_freed} bytes)"
    line += "."
    if report.recovered:
        line += f" {'Would finish' if report.dry_run else 'Finished'} {len(report.recovered)} "
        line += "upload(s) whose finisher stopped."
    if report.skipped:
        line += f" Skipped {len(report.skipped)} in use, left for the next run."
    return line[0].upper() + line[1:]
