"""
How a chunk's cost grows with the ranges an upload already has (issue 13).

One file of 2 x --chunks bytes is sent as flow.js would send it with a
chunkSize of 1 byte, but in the worst order for the received ranges: every
other byte first (--chunks non-adjacent 1-byte chunks, so as many separate
ranges), then the gaps between them. Each POST is timed in the generated
site's own process (django.test.Client: the app and its database, no
network), and the median and p90 of the first and the last 100 chunks of each
half are printed. Target: the last 100 within 20% of the first 100.

    .venv/bin/python benchmarks/fragmented_upload.py                       # this tree, SQLite
    .venv/bin/python benchmarks/fragmented_upload.py --ref main            # a commit, to compare
    .venv/bin/python benchmarks/fragmented_upload.py --database postgresql

A script that prints numbers, not a test. fragmented_client.py is copied
into the temp dir and run with the generated site as its working directory,
as count_queries.py is.
"""

import argparse
import contextlib
import io
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import generated_site

HERE = Path(__file__).resolve().parent
TARGET = 1.2  # the last 100 chunks' median at most 20% above the first 100's


def main():
    args = parse_args()
    with tempfile.TemporaryDirectory(prefix="fragmented-") as temp, contextlib.ExitStack() as stack:
        workdir = Path(temp)
        root, described = generate(args.ref, workdir, args.database)
        servers = generated_site.load_servers(root)
        args.query_databases = []
        urls, _ = generated_site.open_databases(args, stack, workdir, servers)
        site = servers.Site(workdir / "site", urls[args.database], workers=1)
        generated_site.run(
            [sys.executable, "manage.py", "migrate", "--noinput"], cwd=root, env=site.env
        )
        shutil.copy(HERE / "fragmented_client.py", workdir)
        output = generated_site.run(
            [sys.executable, str(workdir / "fragmented_client.py"), "--chunks", str(args.chunks)],
            cwd=root,
            env=site.env,
            timeout=3600,
        )
    report(json.loads(output.splitlines()[-1]), described, args)


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--chunks", type=int, default=3000, help="non-adjacent chunks, then as many gaps"
    )
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--ref", help="measure this commit of the template instead of the tree")
    parser.add_argument("--pg-host", default="127.0.0.1")
    parser.add_argument("--pg-port", type=int, default=5432)
    return parser.parse_args()


def generate(ref, workdir, database):
    """The site, generated from a copy of the tree or from commit `ref`; and which it was."""
    root = generated_site.TEMPLATE_ROOT
    if ref is None:
        return generated_site.generate_site(root, workdir, database)
    commit = generated_site.run(["git", "rev-parse", "--short", ref], cwd=root).strip()
    archive = subprocess.run(
        ["git", "archive", commit, "--", *generated_site.TEMPLATE_PATHS],
        cwd=root,
        capture_output=True,
        check=True,
    ).stdout
    template = workdir / "template"
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(template, filter="data")
    generated_site.run(
        [sys.executable, "-m", "cookiecutter", "--no-input", "--output-dir", str(workdir)]
        + [str(template), f"project_slug={generated_site.SLUG}", f"database={database}"],
        cwd=workdir,
    )
    return workdir / generated_site.SLUG, f"{ref} ({commit})"


def report(phases, described, args):
    print(f"template: {described}; database: {args.database}; {args.chunks} + {args.chunks} chunks")
    print(f"{'phase':<28} {'chunks':>12} {'median ms':>10} {'p90 ms':>8}")
    for phase in ("fragments", "gaps"):
        times = phases[phase]
        first, last = times[:100], times[-100:]
        for name, part in (("first 100", first), ("last 100", last)):
            label = f"{phase}: {name}"
            print(f"{label:<28} {len(part):>12} {median(part):>10.2f} {p90(part):>8.2f}")
        ratio = median(last) / median(first)
        verdict = "ok" if ratio <= TARGET else "over"
        print(f"{phase}: last/first median {ratio:.2f} ({verdict}; target <= {TARGET})")
    print(f"the last answer's status: {phases['status']}")


def median(times):
    ordered = sorted(times)
    return ordered[len(ordered) // 2] * 1000


def p90(times):
    ordered = sorted(times)
    return ordered[int(len(ordered) * 0.9)] * 1000


if __name__ == "__main__":
    main()
