"""
Re-read finished files from storage and check their size and sha256 against
the record; missing or changed ones are reported, marked `failed`, and make
the command exit non-zero. uploads/lifecycle.py does the reading.
"""

from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError

from uploads import lifecycle

from ._options import moment, positive_int

BAR_WIDTH = 30


class Command(BaseCommand):
    help = (
        "Check that every finished upload's stored file is still there with its "
        "size and sha256; mark missing or changed ones failed and exit non-zero."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--since",
            type=moment,
            metavar="WHEN",
            help="Only files completed since a date (2026-01-31) or within a duration (7d).",
        )
        parser.add_argument(
            "--limit", type=positive_int, metavar="N", help="Check at most N files, oldest first."
        )

    def handle(self, *, since, limit, verbosity, **options):
        try:
            problems, checked = self.check_all(since, limit, verbosity)
        except DatabaseError as exc:
            raise CommandError(f"cannot reach the database: {exc}".strip()) from exc
        if verbosity >= 1:
            self.stdout.write(f"Checked {checked} stored file(s): {len(problems)} problem(s).")
        if problems:
            raise CommandError(f"{len(problems)} of {checked} stored file(s) failed verification")

    def check_all(self, since, limit, verbosity):
        uploads = lifecycle.uploads_to_verify(since=since, limit=limit)
        show_bar = verbosity >= 1 and self.stdout.isatty()
        total = uploads.count() if show_bar else 0
        problems, checked = [], 0
        for upload in uploads.iterator():
            problem = lifecycle.verify(upload)
            checked += 1
            if problem is not None:
                problems.append(problem)
                if show_bar:
                    self.stdout.write("\r\033[K", ending="")
                marked = "left as it is" if problem.kind == "unreadable" else "marked failed"
                self.stdout.write(
                    f"{problem.kind.upper()} upload {upload.pk} ({upload.filename!r}): "
                    f"{problem.message}; {marked}"
                )
            elif verbosity >= 2:
                self.stdout.write(f"ok upload {upload.pk} ({upload.filename!r})")
            if show_bar:
                self.progress(checked, total)
        if show_bar:
            self.stdout.write("")
        return problems, checked

    def progress(self, done, total):
        filled = BAR_WIDTH * done // max(total, 1)
        bar = "#" * filled + "-" * (BAR_WIDTH - filled)
        self.stdout.write(f"\r[{bar}] {done}/{total}", ending="")
        self.stdout.flush()
