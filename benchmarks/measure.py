"""
The table's rows: each one upload to a gunicorn of its own, the site's or the
ceiling's, with what it cost the workers and the client; tries that alternate
ceiling and site, and the best of them; and the queries each chunk costs.
"""

import contextlib
import http.client
import json
import mmap
import os
import shutil
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import generated_site
import packages
import workers
from flow_client import (
    FLOW_PATH,
    HOST,
    UNFINISHED_PATH,
    Chunk,
    Plan,
    UploadRun,
    query_string,
    unique_filename,
    upload,
)
from sizes import GIB, MB
from source_file import sha256_of, sync_disks

# Marks requests that are not the upload's (warm-up, login): --profile skips them.
WARM_UP_HEADER = "X-Bench-Warm-Up"
# From gunicorn's first answer until every worker has finished importing the app.
WORKERS_START_TIMEOUT = 60


@dataclass
class Row:
    name: str
    run: UploadRun
    memory: dict  # {pid: (peak MB, current MB)}
    restarted: bool  # a worker was replaced during the run: its peak is lost
    size: int
    tries: int = 1
    database: str = "-"  # the ceilings have none
    # {pid: (user, system) CPU seconds during the upload}
    worker_cpu: dict = field(default_factory=dict)
    client_cpu: float = 0.0  # seconds, this process
    # Over every try, when this row is the fastest of several.
    highest_peak_mb: float = 0.0

    @property
    def server_cpu(self):
        return self.server_user + self.server_system

    @property
    def server_user(self):
        return sum(user for user, _ in self.worker_cpu.values())

    @property
    def server_system(self):
        return sum(system for _, system in self.worker_cpu.values())

    @property
    def mb_per_s(self):
        return self.size / MB / self.run.wall

    @property
    def end_to_end(self):
        """Seconds from the first byte sent to `complete` (the ceiling: its last answer)."""
        return self.run.end_to_end

    @property
    def peak_mb(self):
        return max([peak for peak, _ in self.memory.values()] + [self.highest_peak_mb])


@contextlib.contextmanager
def serving(site, name, *, app=None, env=None):
    """
    The site's gunicorn (or `app` under its gunicorn.conf.py) for one upload,
    with logs named for it, stopped whatever happens: each row's peak RSS is
    its own.
    """
    logs = site.folder / "logs"
    # Site.start() truncates its logs: a name per row keeps every row's.
    site.log, site.access_log = logs / f"{name}.log", logs / f"{name}.access.log"
    site.start(prepared=True, app=app, env=env)
    try:
        workers.wait_until_started(
            site.pid, int(site.env["GUNICORN_WORKERS"]), WORKERS_START_TIMEOUT
        )
        yield
    finally:
        site.stop()


def log_in(site):
    """Log in through the site's login form, as a browser does; the headers it then sends."""
    client = site.login(headers={WARM_UP_HEADER: "1"})  # not the upload's cost
    return {
        "Cookie": "; ".join(f"{name}={value}" for name, value in client.cookies.items()),
        "X-CSRFToken": client.cookies["csrftoken"],
        "Origin": site.url,
    }


def warm_up(site, headers, plan):
    """
    Have every worker serve a few requests before the clock starts: a worker
    imports the URLconf and the views, compiles its URL patterns and its first
    queries on its first request, a one-off cost that is not the upload's.
    Many connections at once, so that every worker accepts some.
    """
    first = Chunk(1, 0, min(plan.chunk_size, plan.size))
    paths = [
        "/accounts/login/",
        UNFINISHED_PATH,
        FLOW_PATH + "?" + query_string(plan.params(first)),
    ]
    marked = dict(headers, **{WARM_UP_HEADER: "1"})  # profiled_wsgi.py leaves these out

    def visit():
        conn = http.client.HTTPConnection(HOST, port(site), timeout=30)
        try:
            for path in paths * 2:
                conn.request("GET", path, headers=marked)
                conn.getresponse().read()
        finally:
            conn.close()

    for _ in range(3):
        threads = [
            threading.Thread(target=visit, daemon=True)
            for _ in range(4 * len(workers.worker_pids(site.pid)))
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)


def port(site):
    return urlsplit(site.url).port


def measure(name, site, plan, headers, send):
    """
    Upload once to a running server with `send(port, headers)`; the row, with
    its workers' memory read at the end and the CPU time it cost the workers
    and this client. CPU seconds hold when others load the machine; wall-clock
    MB/s does not.
    """
    warm_up(site, headers, plan)
    server_cpu, client_cpu = workers.workers_cpu(site.pid), own_cpu()
    result = send(port(site), headers)
    memory = workers.workers_memory(site.pid)
    row = Row(name, result, memory, set(memory) != set(server_cpu), plan.size)
    # Per worker, to show how flow.js's connections spread over the processes.
    row.worker_cpu = {
        pid: tuple(
            now - then for now, then in zip(cpu, server_cpu.get(pid, (0.0, 0.0)), strict=True)
        )
        for pid, cpu in workers.workers_cpu(site.pid).items()
    }
    row.client_cpu = own_cpu() - client_cpu
    return row


def own_cpu():
    times = os.times()
    return times.user + times.system


def flow_sender(plan, source, args, method, slots, *, poll):
    def send(port, headers):
        return upload(
            [(port, headers)],
            plan,
            source,
            method=method,
            slots=slots,
            test_chunks=args.test_chunks,
            poll=poll,
        )

    return send


def site_row(spec, site, args, source, digest, helpers):
    name, method, slots = spec
    plan = Plan(args.size, args.chunk, unique_filename(f"site-{name}"))
    app, env = None, {}
    if args.profile:
        # The site's app wrapped from outside (profiled_wsgi.py), so the site stays as generated.
        profiles = helpers / "profiles" / f"{name}-{site.database}"
        profiles.mkdir(parents=True, exist_ok=True)
        app = "profiled_wsgi:application"
        env = {
            "PYTHONPATH": str(helpers / "profiler"),
            "BENCH_PROFILE_DIR": str(profiles),
            "BENCH_PROFILE_CLOCK": args.profile_clock,
        }
    with serving(site, f"site-{name}-{site.database}", app=app, env=env):
        headers = log_in(site)
        send = flow_sender(plan, source, args, method, slots, poll=True)
        row = measure(name, site, plan, headers, send)
    row.database = site.database
    # The last chunk may answer `processing`: the site finishes in a thread,
    # and the poller waited for `complete`.
    poller = row.run.poller
    body = poller.final if poller and poller.final else row.run.finishing().body
    if body.get("status") != "complete" or body.get("sha256") != digest:
        raise RuntimeError(f"the site's {name} upload did not complete intact: {body}")
    shutil.rmtree(site.folder / "media" / "uploads", ignore_errors=True)
    sync_disks()
    return row


def ceiling_row(spec, site, args, source, digest, helpers):
    """The ceiling app (ceiling_app.py) served by the site's gunicorn settings, workers included."""
    name, method, slots = spec
    out = helpers / "ceiling" / "out"
    out.mkdir(parents=True, exist_ok=True)
    plan = Plan(args.size, args.chunk, unique_filename(f"ceiling-{name}"))
    env = {"PYTHONPATH": str(helpers / "ceiling"), "CEILING_OUT_DIR": str(out)}
    with serving(site, f"ceiling-{name}", app="ceiling_app:application", env=env):
        send = flow_sender(plan, source, args, method, slots, poll=False)
        row = measure(f"ceiling-{name}", site, plan, {}, send)
    written = out / plan.identifier
    if sha256_of(written) != digest:
        raise RuntimeError(f"the ceiling's {method} file differs from the source")
    written.unlink()
    sync_disks()
    return row


def package_row(site, args, source, digest, md5):
    """One of the packages the template replaces, sent a file as its own client does."""
    plan = Plan(args.size, args.chunk, unique_filename(site.name))
    with serving(site, f"{site.name}-{site.database}"):
        headers = log_in(site)
        if site.name == "django-chunked-upload":
            row = measure(
                site.name,
                site,
                plan,
                headers,
                lambda port, headers: packages.upload_chunked(port, headers, plan, source, md5),
            )
        else:
            row = measure(
                site.name,
                site,
                plan,
                headers,
                lambda port, headers: packages.upload_resumable(port, headers, plan, source),
            )
    row.database = site.database
    stored = packages.stored_file(site, plan)
    if sha256_of(stored) != digest:
        raise RuntimeError(f"{site.name} stored a file that differs from the source")
    for folder in ("media", "chunks"):
        shutil.rmtree(site.folder / folder, ignore_errors=True)
        (site.folder / folder).mkdir()
    sync_disks()
    return row


# The rows of one try, in the order they run: (name, flow.js method, chunks in flight).
def row_specs(args):
    return [
        ("octet", "octet", 1),
        ("multipart", "multipart", 1),
        (f"octet-{args.simultaneous}", "octet", args.simultaneous),
    ]


def measure_rows(args, sites, package_sites, source, digest, helpers):
    """
    Every try runs every row, ceilings, the site on each database and the
    packages interleaved, so that a drift in the machine's speed touches every
    row alike. {(name, database): [the row of each try]}.
    """
    tries = {}
    md5 = packages.md5_of(source) if package_sites else None
    ceiling_site = next(iter(sites.values()))
    for attempt in range(1, args.repeat + 1):
        if args.warm_memory:
            warm_memory(args.warm_memory)
        jobs = []
        for spec in row_specs(args):
            jobs.append(
                (
                    f"ceiling {spec[0]}",
                    lambda spec=spec: ceiling_row(
                        spec, ceiling_site, args, source, digest, helpers
                    ),
                )
            )
            for site in sites.values():
                jobs.append(
                    (
                        f"site {spec[0]} on {site.database}",
                        lambda spec=spec, site=site: site_row(
                            spec, site, args, source, digest, helpers
                        ),
                    )
                )
        for site in package_sites:
            jobs.append(
                (
                    f"{site.name} on {site.database}",
                    lambda site=site: package_row(site, args, source, digest, md5),
                )
            )
        for label, job in jobs:
            print(f"  {label} ({attempt}/{args.repeat}) ...", end="", flush=True)
            row = job()
            print(
                f" {row.size / MB / row.end_to_end:.0f} MB/s end to end, "
                f"workers' CPU {row.server_cpu:.2f} s",
                flush=True,
            )
            tries.setdefault((row.name, row.database), []).append(row)
    return tries


def warm_memory(size):
    """
    Touch `size` bytes of fresh memory, one write per page, then give it back.
    The kernel then finds pages the host has already backed for a while, so a
    row is less likely to pay for the host's faults (see "Noise" in the README).
    """
    print(f"  touching {size / GIB:.0f} GiB of memory ...", end="", flush=True)
    started = time.perf_counter()
    with mmap.mmap(-1, size) as memory:
        for offset in range(0, size, mmap.PAGESIZE):
            memory[offset] = 1
    print(f" {time.perf_counter() - started:.1f} s", flush=True)


def load_average():
    return Path("/proc/loadavg").read_text().split()[0]


def count_queries(site, root, database_url):
    """Run count_queries.py inside the generated site (at `root`); its JSON report."""
    script = site.folder.parent / "count_queries.py"  # install_helpers() put it there
    env = dict(site.env, DATABASE_URL=database_url)
    output = generated_site.run([sys.executable, str(script)], cwd=root, env=env)
    return json.loads(output.splitlines()[-1])
