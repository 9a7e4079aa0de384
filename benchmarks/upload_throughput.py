"""
Upload throughput of a generated site, against the ceiling of its own server.

Generates a site from this template, serves it with its own gunicorn.conf.py,
uploads one large file as flow.js does (octet and multipart), then uploads the
same file the same way to a minimal WSGI app under the same gunicorn settings,
and prints one table: MB/s, ratio to that ceiling, the workers' peak RSS, how
long the last chunk takes (it finishes the file) and database queries per
chunk, with the targets marked PASS or MISS. It is a benchmark, not a test: it
always exits 0 once it has printed its table, whatever the verdicts.
`--staging s3` measures two hosts with S3 staging on moto instead (s3_hosts.py);
`--staging direct` uploads straight into moto through the site's signed URLs,
beside boto3 and S3 staging (direct.py).

    .venv/bin/python benchmarks/upload_throughput.py [--size 1GiB] [--chunk 8MiB]
                                                     [--database sqlite|postgresql]

This module only reads the command line and calls the others: generated_site.py
(the site, its databases, and the generated test suite's server helpers),
flow_client.py (flow.js as a client), measure.py (rows, tries, best of, queries
per chunk), report.py (what is printed). See benchmarks/README.md for what each
number means and how they are measured.
"""

import argparse
import contextlib
import shutil
import signal
import sys
import tempfile
from pathlib import Path

import direct
import generated_site
import measure
import report
import s3_hosts
from flow_client import Plan
from sizes import MIB, parse_size
from source_file import write_source


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--size", type=parse_size, default=parse_size("1GiB"), help="file size (1GiB)"
    )
    parser.add_argument(
        "--chunk", type=parse_size, default=parse_size("8MiB"), help="chunk size (8MiB)"
    )
    parser.add_argument(
        "--database",
        default=None,
        help="the served site's databases, comma-separated, each measured in every try "
        "(sqlite; sqlite,postgresql for both; postgresql with --staging s3, which needs it)",
    )
    parser.add_argument(
        "--staging",
        choices=["local", "s3", "direct"],
        default="local",
        help="UPLOADS_STAGING: local (the rows above), or s3: two hosts on one PostgreSQL "
        "database and moto's S3 server, beside boto3's multipart upload into moto; or "
        "direct: straight into moto through the site's signed URLs (UPLOADS_DIRECT), "
        "beside those two (local)",
    )
    parser.add_argument(
        "--celery",
        action="store_true",
        help="with --staging s3, one Celery worker finishes the uploads, when the site has "
        "config/celery.py (otherwise skipped with a note)",
    )
    parser.add_argument(
        "--broker",
        default="redis://127.0.0.1:6379/15",
        help="CELERY_BROKER_URL for --celery (redis://127.0.0.1:6379/15)",
    )
    parser.add_argument(
        "--simultaneous",
        type=int,
        default=3,
        help="chunks in flight in the octet-N rows, flow.js's simultaneousUploads "
        "(3, its default and the site page's); the other rows send one at a time, in order",
    )
    parser.add_argument(
        "--packages",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="measure django-chunked-upload and django-resumable beside the site, each "
        "installed from PyPI into a virtualenv of its own (on)",
    )
    parser.add_argument(
        "--package-venvs",
        type=Path,
        default=None,
        help="keep the packages' virtualenvs here and reuse them (default: in the temp dir)",
    )
    parser.add_argument(
        "--test-chunks",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="send flow.js's test GET before each chunk, as flow.js does by default (off: "
        "as the site's page does for a file the server has no part of, one status API "
        "request first, then the chunks without tests)",
    )
    parser.add_argument("--workers", type=int, default=4, help="GUNICORN_WORKERS (4)")
    parser.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="upload N times per row and keep the fastest: "
        "one try is at the mercy of the machine (3)",
    )
    parser.add_argument(
        "--warm-memory",
        type=parse_size,
        default=0,
        help="before each try, touch this much memory and free it (e.g. 16GiB): on a VM "
        "that hands free memory back to its host, fresh pages cost a host fault (off)",
    )
    parser.add_argument(
        "--query-databases",
        default="sqlite,postgresql",
        help="databases to count queries per chunk on (sqlite,postgresql)",
    )
    parser.add_argument("--pg-host", default="127.0.0.1")
    parser.add_argument("--pg-port", type=int, default=5432)
    parser.add_argument(
        "--template",
        type=Path,
        default=generated_site.TEMPLATE_ROOT,
        help="template to generate from",
    )
    parser.add_argument(
        "--tmp", type=Path, default=None, help="parent of the temp dir (system default)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temp dir, for a post-mortem")
    parser.add_argument("--show-sql", action="store_true", help="print the SQL of a middle chunk")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="run the site's workers under cProfile and print where their time goes (slows them)",
    )
    parser.add_argument(
        "--profile-clock",
        choices=["cpu", "wall"],
        default="cpu",
        help="--profile's clock: each thread's CPU time, or wall-clock time, which shows "
        "where a request waits (cpu)",
    )
    args = parser.parse_args(argv)
    args.query_databases = [name for name in args.query_databases.split(",") if name]
    default = "sqlite" if args.staging == "local" else "postgresql"
    args.databases = list(dict.fromkeys(filter(None, (args.database or default).split(","))))
    unknown = set(args.databases + args.query_databases) - {"sqlite", "postgresql"}
    if unknown or not args.databases:
        parser.error(f"databases are sqlite and postgresql, not {', '.join(sorted(unknown))}")
    if args.staging in ("s3", "direct") and args.databases != ["postgresql"]:
        parser.error(f"--staging {args.staging} needs --database postgresql: both hosts share it")
    args.database = ",".join(args.databases)
    if min(args.chunk, args.size, args.simultaneous, args.repeat, args.workers) < 1:
        parser.error("--size, --chunk, --simultaneous, --repeat and --workers must be positive")
    return args


def main(argv=None):
    args = parse_args(argv)
    # SIGTERM unwinds like Ctrl-C, through every cleanup below.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    with contextlib.ExitStack() as stack:
        workdir = Path(tempfile.mkdtemp(prefix="upload-bench-", dir=args.tmp))
        if args.keep:
            print(f"keeping {workdir}")
        else:
            stack.callback(shutil.rmtree, workdir, ignore_errors=True)
        (workdir / "logs").mkdir()
        print(
            f"generating the site and a {args.size / MIB:.0f} MiB file in {workdir} ...",
            flush=True,
        )
        root, template = generated_site.generate_site(args.template, workdir, args.databases[0])
        servers = generated_site.load_servers(root)
        if args.staging == "s3":
            measure_s3(args, stack, workdir, servers, template)
            return
        if args.staging == "direct":
            measure_direct(args, stack, workdir, servers, template)
            return
        database_urls, queries = generated_site.open_databases(args, stack, workdir, servers)
        generated_site.install_helpers(workdir)
        sites = generated_site.prepare_sites(servers, root, workdir, database_urls, args)
        gunicorn = generated_site.gunicorn_settings(root, sites[args.databases[0]].env)
        package_sites = []
        if args.packages:
            package_sites = generated_site.package_sites(servers, root, workdir, stack, args)
        source = workdir / "source.bin"
        digest = write_source(source, args.size)
        loadavg = measure.load_average()
        tries = measure.measure_rows(args, sites, package_sites, source, digest, workdir)
        loadavg += "/" + measure.load_average()
        for database in args.query_databases:
            if database in database_urls:
                print(f"  counting queries on {database} ...", flush=True)
                site = sites.get(database) or sites[args.databases[0]]
                queries[database] = measure.count_queries(site, root, database_urls[database])
        plan_count = Plan(args.size, args.chunk, "x").count
        report.print_header(args, template, gunicorn, plan_count, loadavg)
        report.print_end_to_end(tries, args)
        report.print_queries(queries, args.show_sql)
        report.print_targets(tries, queries, args)
        if args.profile:
            report.print_profiles(workdir / "profiles")


def measure_s3(args, stack, workdir, servers, template):
    """--staging s3: its own rows and targets; the local rows and queries are not run."""
    source = workdir / "source.bin"
    digest = write_source(source, args.size)
    loadavg = measure.load_average()
    rows, notes, env = s3_hosts.measure_rows(args, stack, workdir, servers, source, digest)
    loadavg += "/" + measure.load_average()
    gunicorn = generated_site.gunicorn_settings(servers.SITE_ROOT, env)
    report.print_header(args, template, gunicorn, Plan(args.size, args.chunk, "x").count, loadavg)
    report.print_s3_rows(rows, notes)
    report.print_s3_targets(rows)


def measure_direct(args, stack, workdir, servers, template):
    """--staging direct: straight into the bucket, beside boto3 and S3 staging (direct.py)."""
    source = workdir / "source.bin"
    digest = write_source(source, args.size)
    loadavg = measure.load_average()
    rows, notes, env = direct.measure_rows(args, stack, workdir, servers, source, digest)
    loadavg += "/" + measure.load_average()
    gunicorn = generated_site.gunicorn_settings(servers.SITE_ROOT, env)
    report.print_header(args, template, gunicorn, Plan(args.size, args.chunk, "x").count, loadavg)
    direct.print_rows(rows, notes)


if __name__ == "__main__":
    main()
