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
    def peak_mb(self):
        return max([peak for peak, _ in self.memory.values()] + [self.highest_peak_mb])


def best_of(tries):
    """
    The fastest try, with the highest memory peak of them all: speed is
    disturbed by the machine, memory is not.
    """
    best = max(tries, key=lambda row: row.mb_per_s)
    best.tries = len(tries)
    best.highest_peak_mb = max(row.peak_mb for row in tries)
    best.restarted = any(row.restarted for row in tries)
    return best


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


def measure(name, site, plan, source, headers, args, *, poll):
    """
    Upload once to a running server; the row, with its workers' memory read at
    the end and the CPU time it cost the workers and this client. CPU seconds
    hold when others load the machine; wall-clock MB/s does not.
    """
    warm_up(site, headers, plan)
    server_cpu, client_cpu = workers.workers_cpu(site.pid), own_cpu()
    result = upload(
        [(port(site), headers)],
        plan,
        source,
        method=name.rpartition("-")[2],
        slots=args.simultaneous,
        test_chunks=args.test_chunks,
        poll=poll,
    )
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


def site_row(method, site, args, source, digest):
    plan = Plan(args.size, args.chunk, unique_filename(f"site-{method}"))
    app, env = None, {}
    if args.profile:
        # The site's app wrapped from outside (profiled_wsgi.py), so the site stays as generated.
        profiles = site.folder / "profiles" / method
        profiles.mkdir(parents=True, exist_ok=True)
        app = "profiled_wsgi:application"
        env = {"PYTHONPATH": str(site.folder / "profiler"), "BENCH_PROFILE_DIR": str(profiles)}
    with serving(site, f"site-{method}", app=app, env=env):
        headers = log_in(site)
        row = measure(method, site, plan, source, headers, args, poll=True)
    # The last chunk may answer `processing`: the site finishes in a thread,
    # and the poller waited for `complete`.
    poller = row.run.poller
    body = poller.final if poller and poller.final else row.run.finishing().body
    if body.get("status") != "complete" or body.get("sha256") != digest:
        raise RuntimeError(f"the site's {method} upload did not complete intact: {body}")
    shutil.rmtree(site.folder / "media" / "uploads", ignore_errors=True)
    sync_disks()
    return row


def ceiling_row(method, site, args, source, digest):
    """The ceiling app (ceiling_app.py) served by the site's gunicorn settings, workers included."""
    out = site.folder / "ceiling" / "out"
    out.mkdir(parents=True, exist_ok=True)
    plan = Plan(args.size, args.chunk, unique_filename(f"ceiling-{method}"))
    env = {"PYTHONPATH": str(site.folder / "ceiling"), "CEILING_OUT_DIR": str(out)}
    with serving(site, f"ceiling-{method}", app="ceiling_app:application", env=env):
        row = measure(f"ceiling-{method}", site, plan, source, {}, args, poll=False)
    written = out / plan.identifier
    if sha256_of(written) != digest:
        raise RuntimeError(f"the ceiling's {method} file differs from the source")
    written.unlink()
    sync_disks()
    return row


def measure_rows(args, site, source, digest):
    """
    Every try runs all four uploads, ceiling and site alternating, so that a
    drift in the machine's speed touches every row alike; each row keeps its
    fastest try.
    """
    tries = {}
    for attempt in range(1, args.repeat + 1):
        if args.warm_memory:
            warm_memory(args.warm_memory)
        for method in ("octet", "multipart"):
            for make_row in (ceiling_row, site_row):
                kind = make_row.__name__.removesuffix("_row")
                print(f"  {kind} {method} ({attempt}/{args.repeat}) ...", end="", flush=True)
                row = make_row(method, site, args, source, digest)
                print(f" {row.mb_per_s:.0f} MB/s, workers' CPU {row.server_cpu:.2f} s", flush=True)
                tries.setdefault(row.name, []).append(row)
    return [best_of(group) for group in tries.values()]


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
    script = site.folder / "count_queries.py"
    env = dict(site.env, DATABASE_URL=database_url)
    output = generated_site.run([sys.executable, str(script)], cwd=root, env=env)
    return json.loads(output.splitlines()[-1])
