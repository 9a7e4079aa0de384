"""Option types and output helpers shared by the uploads commands."""

import argparse
import logging
from contextlib import contextmanager
from datetime import datetime, time

from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from uploads.conf import parse_duration


def duration(value):
    """6h, 2d... (uploads.conf.parse_duration) for argparse."""
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def moment(value):
    """A date (2026-01-31), a date and time, or a duration back from now (7d)."""
    try:
        return timezone.now() - parse_duration(value)
    except ValueError:
        pass
    try:
        parsed = parse_datetime(value) or (
            datetime.combine(day, time()) if (day := parse_date(value)) else None
        )
    except ValueError:
        parsed = None
    if parsed is None:
        raise argparse.ArgumentTypeError(
            f"{value!r} is neither a date (2026-01-31), a date and time, nor a duration (7d)"
        )
    return timezone.make_aware(parsed) if timezone.is_naive(parsed) else parsed


def positive_int(value):
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number of at least 1")
    return number


def human_bytes(count):
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if count < 1024 or unit == "TiB":
            return f"{count} {unit}" if unit == "bytes" else f"{count:.1f} {unit}"
        count /= 1024


@contextmanager
def quiet_below_warnings(logger_name, *, when):
    """Raise a logger to WARNING for the block (when `when`), then put it back."""
    logger = logging.getLogger(logger_name)
    level = logger.level
    if when:
        logger.setLevel(max(level, logging.WARNING))
    try:
        yield
    finally:
        logger.setLevel(level)
