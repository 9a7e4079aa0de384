"""
The report: the header (what was measured, on what), the table of rows, the
queries per chunk, the targets marked PASS or MISS, and with --profile where
the site's workers spent their CPU.
"""

import os
import pstats
import statistics
import sys

from sizes import GIB, MB, MIB

# The targets from the issues. End to end: the ceiling's upload time / the
# row's time from the first byte to `complete`, the median of the tries' pairs.
END_TO_END_TARGETS = {"octet": 0.90, "multipart": 0.80, "octet-N": 0.85}
COMPLETE_TARGET_S = 0.100  # the last chunk's answer -> complete, octet in order
DATABASE_SPREAD = 0.10  # PostgreSQL's time within 10% of SQLite's, every row
PACKAGES_TARGET = 3.0  # each package's end-to-end time / the site's octet row's
RSS_TARGET_MB = 100
S3_TARGET = 0.80  # of ceiling-s3
S3_RSS_TARGET_MB = 150  # web and Celery workers
S3_COMPLETE_TARGET_S = 2.0  # last chunk -> complete, 1 GiB of 8 MiB chunks
QUERIES_TARGET = 4


def middle_chunks(chunks):
    """Chunks that neither start the upload nor finish it: the cost of all the others."""
    return chunks[1:-1] or chunks


def print_profiles(directory, top=30):
    """Every worker's profile of each method added together, costliest functions first."""
    for method_dir in sorted(directory.iterdir()):
        files = sorted(map(str, method_dir.glob("*.prof")))
        if not files:
            continue
        print(
            f"\nProfile of the site's workers, {method_dir.name} "
            "(every try, every worker, by own CPU time):"
        )
        stats = pstats.Stats(*files, stream=sys.stdout)
        stats.sort_stats("tottime").print_stats(top)
        print("... and by cumulative time, the uploads app and the layers above it:")
        stats.sort_stats("cumulative").print_stats(r"uploads/|django/core/handlers|gunicorn", top)


def verdict(ok):
    return "met" if ok else "NOT MET"


def print_header(args, template, conf, plan_count, loadavg):
    """What was measured: the file and client, the template's state, gunicorn's settings."""
    print()
    print(
        f"upload_throughput: {args.size / MIB:.0f} MiB in {plan_count} chunks of "
        f"{args.chunk / MIB:g} MiB (flow.js, simultaneousUploads={args.simultaneous}, "
        f"testChunks={args.test_chunks}), database={args.database}"
    )
    if args.staging == "s3":
        print(
            "staging: s3, moto's standalone server; two hosts (gunicorns of one site, "
            "chunk n to host n % 2) on one PostgreSQL database"
        )
    if args.staging == "direct":
        print(
            "staging: direct, moto's standalone server; parts PUT to the site's signed URLs "
            "(UPLOADS_DIRECT) beside boto3 and S3 staging on two hosts, one PostgreSQL database"
        )
    print(f"template: {template}")
    print(
        f"gunicorn: {conf['worker_class']}, {conf['workers']} workers x {conf['threads']} "
        f"threads, keepalive {conf['keepalive']} s; {os.cpu_count()} CPUs; "
        f"load average before/after: {loadavg}"
    )
    if args.repeat > 1 and args.staging == "s3":
        print(f"each row: the fastest of {args.repeat} uploads; peak RSS: the highest of them")
    elif args.repeat > 1:
        print(
            f"each row: {args.repeat} uploads, the rows interleaved; peak RSS: the highest of them"
        )
    if args.warm_memory:
        print(f"before each try: {args.warm_memory / GIB:g} GiB of memory touched and freed")
    print()


def ceiling_of(name):
    return None if name.startswith(("ceiling-", "django-")) else f"ceiling-{name}"


def paired(tries, name, database, other, other_database, ratio):
    """ratio(row, other row) for each try, the rows of one try being measured side by side."""
    rows, others = tries.get((name, database), []), tries.get((other, other_database), [])
    return [ratio(row, peer) for row, peer in zip(rows, others, strict=False)]


def print_end_to_end(tries, args):
    """
    One line per row and database: the fastest and the median try from the
    first byte to `complete`, and the ratios each try's pair gives.
    """
    count = len(next(iter(tries.values())))
    print(
        f"End to end: from the first byte sent to `complete` (the status API with the sha256; "
        f"a ceiling: its last answer), {count} tr{'y' if count == 1 else 'ies'} per row; "
        "ratios are the median of each try's pair"
    )
    print(
        f"{'':24}{'database':>10}{'fastest s':>10}{'median s':>9}{'MB/s':>6}{'median':>7}"
        f"{'of ceiling':>11}{'site x faster':>14}{'answer->complete ms':>20}"
        f"{'server CPU s':>13}{'peak RSS MB':>12}"
    )
    for (name, database), rows in tries.items():
        times = sorted(row.end_to_end for row in rows)
        fastest, median = times[0], statistics.median(times)
        size = rows[0].size / MB
        ceiling = ceiling_of(name)
        of_ceiling = "-"
        if ceiling and (ceiling, "-") in tries:
            ratios = paired(tries, name, database, ceiling, "-", _speed)
            of_ceiling = f"{statistics.median(ratios):.0%}"
        faster = "-"
        if name.startswith("django-"):
            ratios = paired(tries, name, database, "octet", database, _speed)
            faster = f"{1 / statistics.median(ratios):.2f}x"
        complete = "-"
        if not name.startswith("ceiling-"):
            waits = [max(row.run.answer_to_complete, 0) * 1000 for row in rows]
            complete = f"{statistics.median(waits):.0f}"
        cpu = statistics.median(row.server_cpu for row in rows)
        peak = max(row.peak_mb for row in rows)
        restarted = " (restarted!)" if any(row.restarted for row in rows) else ""
        print(
            f"{name:24}{database:>10}{fastest:10.2f}{median:9.2f}{size / fastest:6.0f}"
            f"{size / median:7.0f}{of_ceiling:>11}{faster:>14}{complete:>20}"
            f"{cpu:13.2f}{peak:12.1f}{restarted}"
        )
    retries = sum(row.run.retries for rows in tries.values() for row in rows)
    if retries:
        print(
            f"(client resent {retries} request(s) on a fresh connection "
            "after the server closed one)"
        )
    print()


def _speed(row, other):
    """How fast `row` is against `other`: other's time / row's time."""
    return other.end_to_end / row.end_to_end


def most(chunks, kind):
    """The largest count of `kind` among the chunks that neither start nor finish the upload."""
    return max(chunk["post"][kind] for chunk in middle_chunks(chunks))


def print_queries(queries, show_sql):
    print(
        "Database queries per chunk POST, in-process (django.test.Client), split as "
        "auth (session + user) + tx (BEGIN/COMMIT/SAVEPOINT) + engine (the uploads app):"
    )
    print(
        f"  {'database':12}{'method':11}{'first chunk':>13}{'middle chunks':>15}{'last chunk':>12}"
        f"{'total':>8}{'minus auth':>12}{'engine only':>13}{'test GET':>10}{'CPU ms POST/GET':>17}"
    )
    for database, report in queries.items():
        if isinstance(report, str):
            print(f"  {database:12}{report}")
            continue
        for method, chunks in report.items():
            first, last, mid = (
                chunks[0]["post"],
                chunks[-1]["post"],
                middle_chunks(chunks)[0]["post"],
            )
            total = most(chunks, "total")
            print(
                f"  {database:12}{method:11}{split(first):>13}{split(mid):>15}{split(last):>12}"
                f"{total:8}{total - most(chunks, 'auth'):12}{most(chunks, 'engine'):13}"
                f"{max(c['test']['total'] for c in middle_chunks(chunks)):10}"
                f"{cpu_ms(chunks):>17}"
            )
            if show_sql:
                for sql in mid["sql"]:
                    print(f"      {sql[:160]}")
    print()


def cpu_ms(chunks):
    """The median CPU milliseconds of a middle chunk's POST and of its test GET."""
    middle = middle_chunks(chunks)
    post = statistics.median(c["post"]["cpu_ms"] for c in middle)
    test = statistics.median(c["test"]["cpu_ms"] for c in middle)
    return f"{post:.1f}/{test:.1f}"


def split(counts):
    return f"{counts['auth']}+{counts['tx']}+{counts['engine']}"


def print_targets(tries, queries, args):
    """A line per target: measured, and met or not (the medians of the tries' pairs)."""
    print("Targets (met / not met):")
    databases = sorted({database for _, database in tries if database != "-"})
    for database in databases:
        for name, target in END_TO_END_TARGETS.items():
            name = name.replace("N", str(args.simultaneous))
            ratios = paired(tries, name, database, f"ceiling-{name}", "-", _speed)
            if ratios:
                ratio = statistics.median(ratios)
                target_line(
                    f"{name}, {database}: end to end >= {target:.0%} of the ceiling",
                    f"{ratio:.0%}",
                    ratio >= target,
                )
        rows = tries.get(("octet", database), [])
        if rows:
            wait = statistics.median(max(row.run.answer_to_complete, 0) for row in rows)
            target_line(
                f"octet, {database}: last answer -> complete <= {COMPLETE_TARGET_S * 1000:.0f} ms",
                f"{wait * 1000:.0f} ms",
                wait <= COMPLETE_TARGET_S,
            )
        for package in ("django-chunked-upload", "django-resumable"):
            ratios = paired(tries, package, database, "octet", database, _speed)
            if ratios:
                times = 1 / statistics.median(ratios)
                target_line(
                    f"octet, {database}: >= {PACKAGES_TARGET:g}x {package}",
                    f"{times:.2f}x",
                    times >= PACKAGES_TARGET,
                )
    if {"sqlite", "postgresql"} <= set(databases):
        for name, database in tries:
            if database != "postgresql":
                continue
            ratios = paired(
                tries,
                name,
                "postgresql",
                name,
                "sqlite",
                lambda pg, lite: pg.end_to_end / lite.end_to_end,
            )
            ratio = statistics.median(ratios)
            target_line(
                f"{name}: PostgreSQL within {DATABASE_SPREAD:.0%} of SQLite",
                f"{ratio - 1:+.0%}",
                ratio <= 1 + DATABASE_SPREAD,
            )
    site_rows = [row for (name, _), rows in tries.items() if ceiling_of(name) for row in rows]
    peak = max(row.peak_mb for row in site_rows)
    target_line(f"worker peak RSS < {RSS_TARGET_MB} MB", f"{peak:.1f} MB", peak < RSS_TARGET_MB)
    for database, report in queries.items():
        if isinstance(report, str):
            continue
        # The issue does not say which statements count; each reading gets its own verdict.
        for reading, kinds in (
            ("all", ("total",)),
            ("minus auth", ("tx", "engine")),
            ("engine only", ("engine",)),
        ):
            count = max(
                sum(c["post"][k] for k in kinds)
                for chunks in report.values()
                for c in middle_chunks(chunks)
            )
            target_line(
                f"queries per chunk <= {QUERIES_TARGET}, {database}, {reading}",
                str(count),
                count <= QUERIES_TARGET,
            )


def target_line(what, measured, ok):
    print(f"  {what:60}{measured:>8}   {verdict(ok)}")


def print_s3_rows(rows, notes):
    """--staging s3: the site's row beside boto3's multipart upload into the same moto."""
    rows = sorted(rows, key=lambda row: row.name.startswith("ceiling-"))
    ceiling = next(row for row in rows if row.name == "ceiling-s3")
    print(
        f"{'':12}{'MB/s':>6}{'wall s':>8}{'of ceiling':>11}{'server CPU s':>13}"
        f"{'client CPU s':>13}  {'peak RSS MB':<34}{'last chunk -> complete s':>25}"
    )
    for row in rows:
        ratio = f"{row.mb_per_s / ceiling.mb_per_s:.0%}" if row is not ceiling else "-"
        peaks = " ".join(f"{name} {peak:.0f}" for name, peak in row.highest_peaks.items())
        server = f"{row.server_cpu:.2f}" if row is not ceiling else "-"
        complete = f"{row.complete_after:.2f}" if row.complete_after is not None else "-"
        print(
            f"{row.name:12}{row.mb_per_s:6.0f}{row.wall:8.2f}{ratio:>11}{server:>13}"
            f"{row.client_cpu:13.2f}  {peaks or '-':<34}{complete:>25}"
        )
    for note in notes:
        print(note)
    for row in rows:
        if row.steps:
            steps = ", ".join(f"{name} {seconds:.2f}" for name, seconds in row.steps.items())
            print(f"{row.name}: last chunk -> complete, s: {steps}")
    for row in rows:
        if row.celery_cpu is not None:
            print(f"celery: its pool used {row.celery_cpu:.2f} s of CPU during {row.name}")
    print()


def print_s3_targets(rows):
    site = next(row for row in rows if row.name == "s3-octet")
    ceiling = next(row for row in rows if row.name == "ceiling-s3")
    ratio = site.mb_per_s / ceiling.mb_per_s
    peak = max(site.highest_peaks.values())
    print("Targets:")
    target_line(f"s3-octet >= {S3_TARGET:.0%} of ceiling-s3", f"{ratio:.0%}", ratio >= S3_TARGET)
    measured = "web and Celery" if "celery" in site.highest_peaks else "web (no Celery)"
    target_line(
        f"{measured} worker peak RSS < {S3_RSS_TARGET_MB} MB",
        f"{peak:.0f} MB",
        peak < S3_RSS_TARGET_MB,
    )
    target_line(
        f"last chunk -> complete < {S3_COMPLETE_TARGET_S:g} s",
        f"{site.complete_after:.2f} s",
        site.complete_after < S3_COMPLETE_TARGET_S,
    )
