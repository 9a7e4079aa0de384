"""
Upload throughput of a generated site, against the ceiling of its own server.

Generates a site from this template, serves it with its own gunicorn.conf.py,
uploads one large file as flow.js does (octet and multipart), then uploads the
same file the same way to a minimal WSGI app under the same gunicorn settings,
and prints one table: MB/s, ratio to that ceiling, the workers' peak RSS, how
long the last chunk takes (it finishes the file) and database queries per
chunk, with the targets marked PASS or MISS. It is a benchmark, not a test: it
always exits 0 once it has printed its table, whatever the verdicts.

    .venv/bin/python benchmarks/upload_throughput.py [--size 1GiB] [--chunk 8MiB]
                                                     [--database sqlite|postgresql]

See benchmarks/README.md for what each number means and how they are measured.
"""

import argparse
import contextlib
import hashlib
import http.client
import json
import mmap
import os
import random
import re
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, urlencode

HERE = Path(__file__).resolve().parent
TEMPLATE_ROOT = HERE.parent
SLUG = "bench_site"
# What cookiecutter reads from the template repository.
TEMPLATE_PATHS = ["cookiecutter.json", "hooks", "{{cookiecutter.project_slug}}"]
HOST = "127.0.0.1"
# The status API list the site's page asks before it sends a file.
UNFINISHED_PATH = "/uploads/api/uploads/"
BOUNDARY_CHARACTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
MB = 1_000_000
MIB = 1024 * 1024
GIB = 1024 * MIB
BLOCK_SIZE = MIB

# The targets from the issue.
OCTET_TARGET = 0.90  # of ceiling-octet
MULTIPART_TARGET = 0.70  # of ceiling-multipart
RSS_TARGET_MB = 100
QUERIES_TARGET = 4
AUTH_QUERIES = 2  # the session and the user, loaded by every authenticated request
ROW_ORDER = ["octet", "multipart", "ceiling-octet", "ceiling-multipart"]
# Marks requests that are not the upload's (warm-up, login): --profile skips them.
WARM_UP_HEADER = "X-Bench-Warm-Up"

# Bounds, so that a hung server or client never hangs the benchmark.
SETUP_TIMEOUT = 300  # each of cookiecutter, migrate, collectstatic...
SERVER_START_TIMEOUT = 60
REQUEST_TIMEOUT = 300  # one chunk, including the finishing pass of the last one
# Bytes/s: an upload slower than this is broken, not slow; it is stopped.
SLOWEST_RATE = 5 * MB
POLL_INTERVAL = 0.025
POLL_TIMEOUT = 300

UNITS = {"": 1, "b": 1, "k": 1024, "m": MIB, "g": 1024**3, "t": 1024**4}
UNITS.update({"kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12})
UNITS.update({"kib": 1024, "mib": MIB, "gib": 1024**3, "tib": 1024**4})


# --- Command line -------------------------------------------------------------


def parse_size(text):
    """'1GiB', '8MiB', '500MB', '1g' or plain bytes -> bytes (k/m/g alone are binary)."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", text)
    if not match or match.group(2).lower() not in UNITS:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a size such as 1GiB, 8MiB or 500MB"
        )
    return int(float(match.group(1)) * UNITS[match.group(2).lower()])


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--size", type=parse_size, default=parse_size("1GiB"), help="file size (1GiB)"
    )
    parser.add_argument(
        "--chunk", type=parse_size, default=parse_size("8MiB"), help="chunk size (8MiB)"
    )
    parser.add_argument(
        "--database", choices=["sqlite", "postgresql"], default="sqlite"
    )
    parser.add_argument(
        "--simultaneous",
        type=int,
        default=3,
        help="flow.js simultaneousUploads (3, its default)",
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
        help="upload N times per row and keep the fastest: one try is at the mercy of the machine (3)",
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
    parser.add_argument("--pg-host", default=HOST)
    parser.add_argument("--pg-port", type=int, default=5432)
    parser.add_argument(
        "--template", type=Path, default=TEMPLATE_ROOT, help="template to generate from"
    )
    parser.add_argument(
        "--tmp", type=Path, default=None, help="parent of the temp dir (system default)"
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the temp dir, for a post-mortem"
    )
    parser.add_argument(
        "--show-sql", action="store_true", help="print the SQL of a middle chunk"
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="run the site's workers under cProfile and print where their time goes (slows them)",
    )
    args = parser.parse_args(argv)
    args.query_databases = [name for name in args.query_databases.split(",") if name]
    if min(args.chunk, args.size, args.simultaneous, args.repeat, args.workers) < 1:
        parser.error(
            "--size, --chunk, --simultaneous, --repeat and --workers must be positive"
        )
    return args


# --- Processes and files we own ----------------------------------------------


def run(command, *, cwd, env, timeout=SETUP_TIMEOUT):
    """Run a setup command; its output is shown only when it fails."""
    result = subprocess.run(
        command,
        cwd=cwd,
        env=env,
        timeout=timeout,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"{' '.join(map(str, command))} failed ({result.returncode}):\n"
            f"{result.stdout[-3000:]}{result.stderr[-3000:]}"
        )
    return result.stdout


def free_port():
    import socket

    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def sync_disks():
    """Flush dirty pages between runs, so that one run's writeback never slows the next."""
    os.sync()


def write_source(path, size):
    """
    `size` random-ish bytes, written in 1 MiB blocks (never held whole), and
    their sha256. Each block is one random block rotated by its index, so no
    two blocks are equal, at memcpy speed rather than a PRNG's.
    """
    base = random.Random(size).randbytes(BLOCK_SIZE)
    digest = hashlib.sha256()
    with open(path, "wb") as out:
        for index, start in enumerate(range(0, size, BLOCK_SIZE)):
            shift = (index * 7919) % BLOCK_SIZE
            block = (index.to_bytes(8, "little") + base[shift:] + base[:shift])[
                : min(BLOCK_SIZE, size - start)
            ]
            digest.update(block)
            out.write(block)
    sync_disks()
    return digest.hexdigest()


def sha256_of(path):
    digest = hashlib.sha256()
    with open(path, "rb") as source:
        while block := source.read(BLOCK_SIZE):
            digest.update(block)
    return digest.hexdigest()


@contextlib.contextmanager
def postgres_database(host, port):
    """A uniquely named, empty database, dropped on the way out whatever happened."""
    import getpass

    import psycopg
    from psycopg import sql

    user = os.environ.get("PGUSER") or getpass.getuser()
    password = os.environ.get("PGPASSWORD", "")
    name = f"upload_bench_{os.getpid()}_{secrets.token_hex(3)}"
    admin = {
        "host": host,
        "port": port,
        "user": user,
        "password": password,
        "dbname": "postgres",
    }

    def execute(statement):
        with psycopg.connect(**admin, connect_timeout=10, autocommit=True) as conn:
            conn.execute(statement)

    execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        credentials = quote(user) + (f":{quote(password)}" if password else "")
        yield f"postgres://{credentials}@{host}:{port}/{name}"
    finally:
        # FORCE: a connection a killed worker left behind must not keep it alive.
        execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(name)
            )
        )


class Gunicorn:
    """One gunicorn master this benchmark started, stopped by it whatever happens."""

    def __init__(self, name, *, conf, cwd, env, log_path, app=None):
        self.name, self.cwd, self.env, self.log_path = name, cwd, env, log_path
        self.port = int(env["GUNICORN_BIND"].rpartition(":")[2])
        # An app on the command line overrides the config's wsgi_app: the ceiling
        # runs under the site's gunicorn.conf.py, with every other setting the same.
        self.command = [sys.executable, "-m", "gunicorn", "-c", str(conf)] + (
            [app] if app else []
        )
        self.process = None

    def __enter__(self):
        with open(self.log_path, "ab") as log:
            # A session of its own, so that stopping it can never signal us.
            self.process = subprocess.Popen(
                self.command,
                cwd=self.cwd,
                env=self.env,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        try:
            self._wait_until_serving()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc_info):
        self.stop()

    def stop(self):
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=40)  # its graceful_timeout is 30 s
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def _wait_until_serving(self):
        """The port answers and every worker has finished importing the app."""
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        while not self._answers():
            self._check_alive(deadline)
            time.sleep(0.1)
        expected = int(self.env["GUNICORN_WORKERS"])
        while len(self.worker_pids()) < expected:
            self._check_alive(deadline)
            time.sleep(0.1)
        # Workers import the app when they start; wait until none uses CPU any more.
        previous = None
        while (current := self._workers_cpu()) != previous:
            self._check_alive(deadline)
            previous = current
            time.sleep(0.5)

    def _answers(self):
        conn = http.client.HTTPConnection(HOST, self.port, timeout=5)
        try:
            conn.request("GET", "/accounts/login/")
            return conn.getresponse().status < 500
        except OSError:
            return False
        finally:
            conn.close()

    def _check_alive(self, deadline):
        if self.process.poll() is not None:
            raise RuntimeError(
                f"{self.name} exited ({self.process.returncode}):\n{self.log_tail()}"
            )
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"{self.name} did not start in {SERVER_START_TIMEOUT} s:\n{self.log_tail()}"
            )

    def log_tail(self, lines=40):
        return "\n".join(
            Path(self.log_path).read_text(errors="replace").splitlines()[-lines:]
        )

    def worker_pids(self):
        pid = self.process.pid
        try:
            return sorted(
                int(p)
                for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
            )
        except OSError:
            return []

    def _workers_cpu(self):
        return tuple(proc_cpu_ticks(pid) for pid in self.worker_pids())

    def workers_cpu(self):
        """{pid: (user, system) CPU seconds} each worker has used so far."""
        tick = os.sysconf("SC_CLK_TCK")
        return {
            pid: tuple(t / tick for t in proc_cpu_split(pid))
            for pid in self.worker_pids()
        }

    def worker_memory(self):
        """{pid: (VmHWM, VmRSS)} in MB for each worker: peak and current resident size."""
        return {
            pid: (
                proc_status_kib(pid, "VmHWM") * 1024 / MB,
                proc_status_kib(pid, "VmRSS") * 1024 / MB,
            )
            for pid in self.worker_pids()
        }


def proc_status_kib(pid, key):
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def proc_cpu_ticks(pid):
    return sum(proc_cpu_split(pid))


def proc_cpu_split(pid):
    """(user, system) clock ticks of a process: Python's own work, and the kernel's for it."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        return int(fields[11]), int(fields[12])  # utime, stime
    except (OSError, IndexError, ValueError):
        return 0, 0


# --- The generated site ---------------------------------------------------------


@dataclass
class Site:
    root: Path
    env: dict
    username: str
    password: str
    gunicorn: dict = field(default_factory=dict)
    template: str = ""

    @property
    def conf(self):
        return self.root / "gunicorn.conf.py"


def clean_environment():
    """The caller's environment without settings the site or gunicorn would read."""
    prefixes = ("DJANGO_", "UPLOADS_", "GUNICORN_", "DATABASE_")
    return {
        key: value for key, value in os.environ.items() if not key.startswith(prefixes)
    }


def snapshot_template(template, destination):
    """
    Copy the template's files as git sees them: tracked or new, never ignored.
    cookiecutter would otherwise render whatever lies in the folder (a
    .ruff_cache, __pycache__, a stray database), and others editing the tree
    meanwhile could hand it half a change; a copy is one moment of the tree.
    """
    listing = run(
        [
            "git",
            "ls-files",
            "-z",
            "--cached",
            "--others",
            "--exclude-standard",
            "--",
            *TEMPLATE_PATHS,
        ],
        cwd=template,
        env=clean_environment(),
    )
    for name in filter(None, listing.split("\0")):
        source = template / name
        if source.is_file():  # a tracked file deleted in the working tree is skipped
            target = destination / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return destination


def describe_template(template, snapshot):
    """Which state of a tree others keep editing was measured: HEAD, edits, a digest of the copy."""
    env = clean_environment()
    head = run(["git", "rev-parse", "--short", "HEAD"], cwd=template, env=env).strip()
    edited = run(
        [
            "git",
            "status",
            "--porcelain",
            "--untracked-files=all",
            "--",
            *TEMPLATE_PATHS,
        ],
        cwd=template,
        env=env,
    )
    digest = hashlib.sha256()
    for path in sorted(p for p in snapshot.rglob("*") if p.is_file()):
        digest.update(
            str(path.relative_to(snapshot)).encode() + b"\0" + path.read_bytes()
        )
    return f"{head} + {len(edited.splitlines())} uncommitted file(s), snapshot sha256 {digest.hexdigest()[:12]}"


def generate_site(template, workdir, database):
    """cookiecutter --no-input into `workdir`, with its replay and cache kept there too."""
    template = snapshot_template(template, workdir / "template")
    config = workdir / "cookiecutter.yaml"
    config.write_text(
        f"cookiecutters_dir: {workdir / 'cookiecutter' / 'templates'}\n"
        f"replay_dir: {workdir / 'cookiecutter' / 'replay'}\n"
    )
    run(
        [
            sys.executable,
            "-m",
            "cookiecutter",
            "--no-input",
            "--config-file",
            str(config),
            "--output-dir",
            str(workdir),
            str(template),
            f"project_slug={SLUG}",
            f"database={database}",
        ],
        cwd=workdir,
        env=clean_environment(),
    )
    return workdir / SLUG


def site_environment(workdir, database_url):
    env = clean_environment()
    env.update(
        DJANGO_DEBUG="False",
        DJANGO_HTTPS="False",
        DJANGO_ALLOWED_HOSTS=HOST,
        DJANGO_MEDIA_ROOT=str(workdir / "media"),
        DJANGO_STATIC_ROOT=str(workdir / "static"),
        UPLOADS_STAGING_DIR=str(workdir / "staging"),
        DATABASE_URL=database_url,
    )
    return env


def prepare_database(site_root, env):
    manage = [sys.executable, "manage.py"]
    run(manage + ["migrate", "--noinput"], cwd=site_root, env=env)


def set_up_site(args, workdir, database_urls):
    """Generate, migrate every database used, collectstatic, and create the uploading user."""
    root = generate_site(args.template, workdir, args.database)
    template = describe_template(args.template, workdir / "template")
    env = site_environment(workdir, database_urls[args.database])
    for url in database_urls.values():
        prepare_database(root, dict(env, DATABASE_URL=url))
    run([sys.executable, "manage.py", "collectstatic", "--noinput"], cwd=root, env=env)
    username, password = "bench", secrets.token_urlsafe(24)
    run(
        [sys.executable, "manage.py", "createsuperuser", "--noinput"],
        cwd=root,
        env=dict(
            env,
            DJANGO_SUPERUSER_USERNAME=username,
            DJANGO_SUPERUSER_PASSWORD=password,
            DJANGO_SUPERUSER_EMAIL="bench@example.com",
        ),
    )
    return Site(root, env, username, password, template=template)


def gunicorn_environment(site, workers, port):
    return dict(site.env, GUNICORN_WORKERS=str(workers), GUNICORN_BIND=f"{HOST}:{port}")


def gunicorn_settings(site, env):
    """What gunicorn.conf.py resolves to under this environment, for the report's header."""
    code = (
        "import json, runpy; c = runpy.run_path('gunicorn.conf.py'); "
        "print(json.dumps({k: c.get(k) for k in ('worker_class', 'workers', 'threads', 'keepalive')}))"
    )
    return json.loads(run([sys.executable, "-c", code], cwd=site.root, env=env))


def log_in(port, username, password):
    """Log in through the site's login form, as a browser does; the cookies and CSRF token."""
    import requests

    session = requests.Session()
    session.trust_env = False  # never through a proxy from the environment
    session.headers[WARM_UP_HEADER] = "1"  # not the upload's cost
    url = f"http://{HOST}:{port}/accounts/login/"
    session.get(url, timeout=30).raise_for_status()
    response = session.post(
        url,
        data={
            "username": username,
            "password": password,
            "csrfmiddlewaretoken": session.cookies["csrftoken"],
        },
        headers={"Referer": url},
        allow_redirects=False,
        timeout=30,
    )
    if response.status_code != 302 or "sessionid" not in session.cookies:
        raise RuntimeError(
            f"logging in failed: {response.status_code} {response.text[:300]}"
        )
    cookies = "; ".join(f"{name}={value}" for name, value in session.cookies.items())
    return {
        "Cookie": cookies,
        "X-CSRFToken": session.cookies["csrftoken"],
        "Origin": f"http://{HOST}:{port}",
    }


# --- flow.js, as a client -------------------------------------------------------


@dataclass(frozen=True)
class Chunk:
    number: int
    offset: int
    length: int


@dataclass(frozen=True)
class Plan:
    """One file cut as flow.js cuts it, with the parameters it sends for each chunk."""

    size: int
    chunk_size: int
    filename: str

    @property
    def count(self):
        # flow.js: Math.max(Math.floor(size / chunkSize), 1) without forceChunkSize.
        return max(self.size // self.chunk_size, 1)

    @property
    def identifier(self):
        # flow.js's generateUniqueIdentifier: size + '-' + name without [^0-9a-zA-Z_-].
        return f"{self.size}-{re.sub(r'[^0-9a-zA-Z_-]', '', self.filename)}"

    def chunks(self):
        for index in range(self.count):
            start = index * self.chunk_size
            # The last chunk takes the remainder: up to 2 x chunkSize - 1 bytes.
            end = self.size if index == self.count - 1 else start + self.chunk_size
            yield Chunk(index + 1, start, end - start)

    def params(self, chunk):
        # The order of flow.js's FlowChunk.getParams(), which is also the form's field order.
        return {
            "flowChunkNumber": chunk.number,
            "flowChunkSize": self.chunk_size,
            "flowCurrentChunkSize": chunk.length,
            "flowTotalSize": self.size,
            "flowIdentifier": self.identifier,
            "flowFilename": self.filename,
            "flowRelativePath": self.filename,
            "flowTotalChunks": self.count,
        }


def query_string(params):
    # encodeURIComponent's safe characters.
    return urlencode(params, quote_via=lambda value, *_: quote(value, safe="-_.!~*'()"))


def multipart_envelope(params, filename):
    """What a browser's FormData puts around the file's bytes: (boundary, before, after)."""
    boundary = "----WebKitFormBoundary" + "".join(
        secrets.choice(BOUNDARY_CHARACTERS) for _ in range(16)
    )
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
        for name, value in params.items()
    ]
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    )
    return boundary, "".join(parts).encode(), f"\r\n--{boundary}--\r\n".encode()


@dataclass
class Exchange:
    """One chunk's POST, as the client saw it."""

    number: int
    start: float
    end: float
    body: dict


class Slot:
    """
    One of flow.js's simultaneous uploads: a persistent HTTP/1.1 connection and
    a handle on the source file. Chunks go out with sendfile(), straight from
    the page cache, so the client costs next to no CPU of the two cores it
    shares with the server.
    """

    def __init__(self, port, path, source, headers, method):
        self.path, self.headers, self.method = path, headers, method
        self.source = source  # an open file of its own: sendfile() moves its position
        self.conn = http.client.HTTPConnection(HOST, port, timeout=REQUEST_TIMEOUT)
        self.retries = 0

    def close(self):
        self.conn.close()

    def list_unfinished(self):
        """The site's page asks the status API which files it has a part of before sending."""
        status, _ = self._retrying(
            lambda: self._request("GET", {}, b"", None, b"", path=UNFINISHED_PATH)
        )
        if status not in (200, 204):
            raise RuntimeError(f"{UNFINISHED_PATH} answered {status}")

    def test(self, plan, chunk):
        """flow.js's testChunks GET: True when the server already has the chunk."""
        status, _ = self._retrying(
            lambda: self._request("GET", plan.params(chunk), b"", None, b"")
        )
        if status not in (200, 204):
            raise RuntimeError(f"test GET of chunk {chunk.number} answered {status}")
        return status == 200

    def send(self, plan, chunk):
        params = plan.params(chunk)
        start = time.perf_counter()
        if self.method == "octet":
            status, body = self._retrying(
                lambda: self._request("POST", params, b"", chunk, b"")
            )
        else:
            status, body = self._retrying(
                lambda: self._send_multipart(params, plan.filename, chunk)
            )
        end = time.perf_counter()
        if status != 200:
            raise RuntimeError(
                f"chunk {chunk.number} answered {status}: {body[:300]!r}"
            )
        return Exchange(chunk.number, start, end, json.loads(body or b"{}"))

    def _send_multipart(self, params, filename, chunk):
        boundary, before, after = multipart_envelope(params, filename)
        content_type = f"multipart/form-data; boundary={boundary}"
        return self._request("POST", {}, before, chunk, after, content_type)

    def _request(
        self,
        method,
        params,
        before,
        chunk,
        after,
        content_type="application/octet-stream",
        path=None,
    ):
        url = (path or self.path) + ("?" + query_string(params) if params else "")
        conn = self.conn
        conn.putrequest(method, url, skip_accept_encoding=True)
        for name, value in self.headers.items():
            conn.putheader(name, value)
        if chunk is not None:
            conn.putheader("Content-Type", content_type)
            conn.putheader(
                "Content-Length", str(len(before) + chunk.length + len(after))
            )
        conn.endheaders(before or None)
        if chunk is not None:
            conn.sock.sendfile(self.source, chunk.offset, chunk.length)
            if after:
                conn.sock.sendall(after)
        response = conn.getresponse()
        return response.status, response.read()

    def _retrying(self, send):
        """A request, sent again once on a fresh connection if the kept-alive one was closed."""
        try:
            return send()
        except (ConnectionError, http.client.HTTPException):
            self.retries += 1
            self.conn.close()
            return send()


class StatusPoller(threading.Thread):
    """Polls the status API from the moment the last chunk goes out until it says complete."""

    def __init__(self, port, headers):
        super().__init__(daemon=True)
        self.port, self.headers = port, headers
        self.upload_id = None
        self.go = threading.Event()
        self.complete_at = None  # when it first said `complete`
        self.final = None  # the status it said then
        self.error = None  # reported by the main thread

    def start_clock(self, upload_id):
        self.upload_id = upload_id
        self.go.set()

    def run(self):
        if not self.go.wait(POLL_TIMEOUT):
            return
        conn = http.client.HTTPConnection(HOST, self.port, timeout=30)
        try:
            self._poll(conn, time.perf_counter() + POLL_TIMEOUT)
        except (OSError, ValueError, http.client.HTTPException) as exc:
            self.error = exc
        finally:
            conn.close()

    def _poll(self, conn, deadline):
        path = f"/uploads/api/uploads/{self.upload_id}/"
        while time.perf_counter() < deadline:
            conn.request("GET", path, headers=self.headers)
            response = conn.getresponse()
            body = response.read()
            if response.status != 200:
                raise ValueError(f"{path} answered {response.status}: {body[:200]!r}")
            status = json.loads(body).get("status")
            if status == "complete":
                self.complete_at = time.perf_counter()
                self.final = json.loads(body)
                return
            if status == "failed":
                raise ValueError(f"the upload failed: {body[:300]!r}")
            time.sleep(POLL_INTERVAL)


@dataclass
class UploadRun:
    wall: float
    exchanges: list
    retries: int
    last_started: float  # when the last chunk in flow.js's order started
    poller: StatusPoller = None

    def finishing(self):
        """The exchange whose response said `complete` (the site), else the last to end."""
        done = [e for e in self.exchanges if e.body.get("status") == "complete"]
        return done[0] if done else max(self.exchanges, key=lambda e: e.end)


def upload(port, plan, source, headers, *, method, slots, test_chunks, poll):
    """Send every chunk of `plan` as flow.js does: `slots` connections take chunks in order."""
    pending = iter(plan.chunks())
    lock = threading.Lock()
    exchanges, errors = [], []
    state = {"upload_id": None, "last_started": None}
    poller = StatusPoller(port, headers) if poll else None

    def next_chunk():
        with lock:
            return None if errors else next(pending, None)

    def work(slot):
        try:
            while (chunk := next_chunk()) is not None:
                if test_chunks and slot.test(plan, chunk):
                    continue
                if chunk.number == plan.count:
                    state["last_started"] = time.perf_counter()
                    if poller and state["upload_id"]:
                        poller.start_clock(state["upload_id"])
                exchange = slot.send(plan, chunk)
                with lock:
                    exchanges.append(exchange)
                    state["upload_id"] = state["upload_id"] or exchange.body.get("id")
        except (OSError, ValueError, RuntimeError, http.client.HTTPException) as exc:
            with lock:  # reported by the main thread
                errors.append(exc)

    with contextlib.ExitStack() as stack:
        pool = []
        for _ in range(slots):
            slot = Slot(
                port,
                "/uploads/flow/",
                stack.enter_context(open(source, "rb")),
                headers,
                method,
            )
            stack.callback(slot.close)
            pool.append(slot)
        threads = [
            threading.Thread(target=work, args=(slot,), daemon=True) for slot in pool
        ]
        if poller:
            poller.start()
        began = time.perf_counter()
        if not test_chunks:
            pool[0].list_unfinished()
        for thread in threads:
            thread.start()
        deadline = began + REQUEST_TIMEOUT + plan.size / SLOWEST_RATE
        for thread in threads:
            thread.join(max(deadline - time.perf_counter(), 0))
    if errors or any(thread.is_alive() for thread in threads):
        raise RuntimeError(
            f"the {method} upload failed: {errors[0] if errors else 'timed out'}"
        )
    if len(exchanges) != plan.count:
        raise RuntimeError(
            f"the {method} upload sent {len(exchanges)} of {plan.count} chunks"
        )
    if poller:
        if not poller.go.is_set() and state["upload_id"]:
            # A one-chunk file: its id came with the only response.
            poller.start_clock(state["upload_id"])
        poller.join(POLL_TIMEOUT + 5)
        if poller.error:
            raise RuntimeError(f"polling the status API failed: {poller.error}")
    wall = max(e.end for e in exchanges) - began
    return UploadRun(
        wall, exchanges, sum(s.retries for s in pool), state["last_started"], poller
    )


# --- One row of the table --------------------------------------------------------


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
    """The fastest try, with the highest memory peak of them all: speed is disturbed, memory is not."""
    best = max(tries, key=lambda row: row.mb_per_s)
    best.tries = len(tries)
    best.highest_peak_mb = max(row.peak_mb for row in tries)
    best.restarted = any(row.restarted for row in tries)
    return best


def warm_up(server, port, headers, plan):
    """
    Have every worker serve a few requests before the clock starts: a worker
    imports the URLconf and the views, compiles its URL patterns and its first
    queries on its first request, a one-off cost that is not the upload's.
    Many connections at once, so that every worker accepts some.
    """
    paths = [
        "/accounts/login/",
        "/uploads/api/uploads/",
        "/uploads/flow/?"
        + query_string(plan.params(Chunk(1, 0, min(plan.chunk_size, plan.size)))),
    ]

    marked = dict(headers, **{WARM_UP_HEADER: "1"})  # profiled_wsgi.py leaves these out

    def visit():
        conn = http.client.HTTPConnection(HOST, port, timeout=30)
        try:
            for path in paths * 2:
                conn.request("GET", path, headers=marked)
                conn.getresponse().read()
        finally:
            conn.close()

    for _ in range(3):
        threads = [
            threading.Thread(target=visit, daemon=True)
            for _ in range(4 * len(server.worker_pids()))
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)


def measure(name, server, port, plan, source, headers, args, *, poll):
    """
    Upload once to a running server; the row, with its workers' memory read at
    the end and the CPU time it cost the workers and this client. CPU seconds
    hold when others load the machine; wall-clock MB/s does not.
    """
    warm_up(server, port, headers, plan)
    server_cpu, client_cpu = server.workers_cpu(), own_cpu()
    result = upload(
        port,
        plan,
        source,
        headers,
        method=name.rpartition("-")[2],
        slots=args.simultaneous,
        test_chunks=args.test_chunks,
        poll=poll,
    )
    memory = server.worker_memory()
    row = Row(name, result, memory, set(memory) != set(server_cpu), plan.size)
    # Per worker, to show how flow.js's connections spread over the processes.
    row.worker_cpu = {
        pid: tuple(
            now - then
            for now, then in zip(cpu, server_cpu.get(pid, (0.0, 0.0)), strict=True)
        )
        for pid, cpu in server.workers_cpu().items()
    }
    row.client_cpu = own_cpu() - client_cpu
    return row


def own_cpu():
    times = os.times()
    return times.user + times.system


def unique_filename(stem):
    """
    A name no earlier try used: flow.js's identifier is size + name, and the
    site sends a late copy of a finished upload's chunk to that upload (it
    drains it and answers `complete`), so a reused name would measure a drain.
    """
    return f"{stem}-{secrets.token_hex(4)}.bin"


def site_row(method, site, args, workdir, source, digest):
    port = free_port()
    env = gunicorn_environment(site, args.workers, port)
    plan = Plan(args.size, args.chunk, unique_filename(f"site-{method}"))
    log = workdir / "logs" / f"site-{method}.log"
    app = None
    if args.profile:
        # The site's app wrapped from outside (profiled_wsgi.py), so the site stays as generated.
        profiles = workdir / "profiles" / method
        profiles.mkdir(parents=True, exist_ok=True)
        env.update(
            PYTHONPATH=str(workdir / "profiler"), BENCH_PROFILE_DIR=str(profiles)
        )
        app = "profiled_wsgi:application"
    with Gunicorn(
        f"site ({method})",
        conf=site.conf,
        cwd=site.root,
        env=env,
        log_path=log,
        app=app,
    ) as server:
        headers = log_in(port, site.username, site.password)
        row = measure(method, server, port, plan, source, headers, args, poll=True)
    # The last chunk may answer `processing`: the site finishes in a thread,
    # and the poller waited for `complete`.
    poller = row.run.poller
    body = poller.final if poller and poller.final else row.run.finishing().body
    if body.get("status") != "complete" or body.get("sha256") != digest:
        raise RuntimeError(
            f"the site's {method} upload did not complete intact: {body}"
        )
    shutil.rmtree(workdir / "media" / "uploads", ignore_errors=True)
    sync_disks()
    return row


def ceiling_row(method, site, args, workdir, source, digest):
    cwd = workdir / "ceiling"
    out = cwd / "out"
    out.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = dict(gunicorn_environment(site, args.workers, port), CEILING_OUT_DIR=str(out))
    plan = Plan(args.size, args.chunk, unique_filename(f"ceiling-{method}"))
    log = workdir / "logs" / f"ceiling-{method}.log"
    with Gunicorn(
        f"ceiling ({method})",
        conf=site.conf,
        cwd=cwd,
        env=env,
        log_path=log,
        app="ceiling_app:application",
    ) as server:
        row = measure(
            f"ceiling-{method}", server, port, plan, source, {}, args, poll=False
        )
    written = out / plan.identifier
    if sha256_of(written) != digest:
        raise RuntimeError(f"the ceiling's {method} file differs from the source")
    written.unlink()
    sync_disks()
    return row


# --- Queries per chunk -------------------------------------------------------------


def count_queries(site, workdir, database_url):
    """Run count_queries.py inside the generated site; its JSON report."""
    script = workdir / "count_queries.py"
    env = dict(site.env, DATABASE_URL=database_url)
    return json.loads(
        run([sys.executable, str(script)], cwd=site.root, env=env).splitlines()[-1]
    )


def middle_chunks(chunks):
    """Chunks that neither start the upload nor finish it: the cost of all the others."""
    return chunks[1:-1] or chunks


# --- The report ----------------------------------------------------------------------


def print_profiles(directory, top=30):
    """Every worker's profile of each method added together, costliest functions first."""
    import pstats

    for method_dir in sorted(directory.iterdir()):
        files = sorted(map(str, method_dir.glob("*.prof")))
        if not files:
            continue
        print(
            f"\nProfile of the site's workers, {method_dir.name} (every try, every worker, by own CPU time):"
        )
        stats = pstats.Stats(*files, stream=sys.stdout)
        stats.sort_stats("tottime").print_stats(top)
        print("... and by cumulative time, the uploads app and the layers above it:")
        stats.sort_stats("cumulative").print_stats(
            r"uploads/|django/core/handlers|gunicorn", top
        )


def verdict(ok):
    return "PASS" if ok else "MISS"


def print_header(args, site, plan_count, loadavg):
    conf = site.gunicorn
    print()
    print(
        f"upload_throughput: {args.size / MIB:.0f} MiB in {plan_count} chunks of {args.chunk / MIB:g} MiB "
        f"(flow.js, simultaneousUploads={args.simultaneous}, testChunks={args.test_chunks}), "
        f"database={args.database}"
    )
    print(f"template: {site.template}")
    print(
        f"gunicorn: {conf['worker_class']}, {conf['workers']} workers x {conf['threads']} threads, "
        f"keepalive {conf['keepalive']} s; {os.cpu_count()} CPUs; load average before/after: {loadavg}"
    )
    if args.repeat > 1:
        print(
            f"each row: the fastest of {args.repeat} uploads; peak RSS: the highest of them"
        )
    if args.warm_memory:
        print(
            f"before each try: {args.warm_memory / GIB:g} GiB of memory touched and freed"
        )
    print()


def median_chunk(run):
    """A chunk's usual duration: the median of all but the finishing one."""
    finishing = run.finishing()
    others = [e.end - e.start for e in run.exchanges if e is not finishing]
    return statistics.median(others) if others else 0.0


def print_rows(rows):
    rows = sorted(rows, key=lambda row: ROW_ORDER.index(row.name))
    ceilings = {
        row.name.rpartition("-")[2]: row
        for row in rows
        if row.name.startswith("ceiling-")
    }
    print(
        f"{'':18}{'MB/s':>6}{'wall s':>8}{'of ceiling':>11}{'server CPU s (usr+sys)':>23}{'x ceiling':>10}"
        f"{'client CPU s':>13}{'peak RSS MB':>12}  {'per worker: peak MB/CPU s':<33}"
        f"{'last chunk s':>13}{'median chunk s':>15}{'poll complete s':>16}"
    )
    for row in rows:
        ceiling = ceilings.get(row.name.rpartition("-")[2])
        ratio = (
            f"{row.mb_per_s / ceiling.mb_per_s:.0%}"
            if ceiling and ceiling is not row
            else "-"
        )
        per_worker = " ".join(
            f"{peak:.0f}/{sum(row.worker_cpu.get(pid, ())):.1f}"
            for pid, (peak, _) in row.memory.items()
        )
        per_worker += " (restarted!)" if row.restarted else ""
        finishing = row.run.finishing()
        median = f"{median_chunk(row.run):.2f}"
        poll = "-"
        if row.run.poller and row.run.poller.complete_at:
            poll = f"{row.run.poller.complete_at - row.run.last_started:.2f}"
        cpu_ratio = (
            f"{row.server_cpu / ceiling.server_cpu:.2f}"
            if ceiling and ceiling is not row
            else "-"
        )
        cpu = f"{row.server_cpu:.2f} ({row.server_user:.2f}+{row.server_system:.2f})"
        print(
            f"{row.name:18}{row.mb_per_s:6.0f}{row.run.wall:8.2f}{ratio:>11}{cpu:>23}{cpu_ratio:>10}"
            f"{row.client_cpu:13.2f}{row.peak_mb:12.1f}  {per_worker:<33}"
            f"{finishing.end - finishing.start:13.2f}{median:>15}{poll:>16}"
        )
    print_without_finishing(rows, ceilings)
    retries = sum(row.run.retries for row in rows)
    if retries:
        print(
            f"(client resent {retries} request(s) on a fresh connection after the server closed one)"
        )
    print()


def print_without_finishing(rows, ceilings):
    """
    The site's rate if finishing cost nothing, for a site that finishes inside
    the last chunk's request (UPLOADS_FINISH_IN_BACKGROUND=False): a chunk's
    usual time is the median, so the difference is the finishing pass. With
    the default (a thread after the answer) it is near zero, and the pass shows
    in the "poll complete" column instead.
    """
    for row in rows:
        if row.run.poller is None:  # a ceiling: nothing to finish
            continue
        finishing = row.run.finishing()
        extra = max(finishing.end - finishing.start - median_chunk(row.run), 0)
        rate = row.size / MB / (row.run.wall - extra)
        print(
            f"{row.name} without its finishing pass ({extra:.2f} s): {rate:.0f} MB/s, "
            f"{rate / ceilings[row.name].mb_per_s:.0%} of ceiling-{row.name}"
        )


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


def print_targets(rows, queries):
    by_name = {row.name: row for row in rows}
    print("Targets:")
    for method, target in (("octet", OCTET_TARGET), ("multipart", MULTIPART_TARGET)):
        ratio = by_name[method].mb_per_s / by_name[f"ceiling-{method}"].mb_per_s
        target_line(
            f"{method} >= {target:.0%} of ceiling-{method}",
            f"{ratio:.0%}",
            ratio >= target,
        )
    peak = max(by_name[m].peak_mb for m in ("octet", "multipart"))
    target_line(
        f"worker peak RSS < {RSS_TARGET_MB} MB", f"{peak:.0f} MB", peak < RSS_TARGET_MB
    )
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
    print(f"  {what:52}{measured:>8}   {verdict(ok)}")


# --- Main ------------------------------------------------------------------------------


def databases_needed(args):
    return list(dict.fromkeys([args.database, *args.query_databases]))


def open_databases(args, stack, workdir):
    """
    {name: DATABASE_URL} for every database used, and a note for PostgreSQL
    when it is only wanted for counting queries and cannot be reached.
    """
    urls, notes = {}, {}
    for database in databases_needed(args):
        if database == "sqlite":
            (workdir / "db").mkdir(exist_ok=True)
            urls["sqlite"] = f"sqlite:///{workdir / 'db' / 'site.sqlite3'}"
            continue
        try:
            urls["postgresql"] = stack.enter_context(
                postgres_database(args.pg_host, args.pg_port)
            )
        except Exception as exc:
            if args.database == "postgresql":
                raise
            notes["postgresql"] = f"skipped: PostgreSQL unavailable ({exc})"
    return urls, notes


def install_helpers(workdir):
    """Copies of our helper modules in the temp dir: nothing is imported from the tree."""
    (workdir / "ceiling").mkdir()
    shutil.copy(HERE / "ceiling_app.py", workdir / "ceiling")
    shutil.copy(HERE / "count_queries.py", workdir)
    (workdir / "profiler").mkdir()
    shutil.copy(HERE / "profiled_wsgi.py", workdir / "profiler")


def measure_rows(args, site, workdir, source, digest):
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
                print(
                    f"  {kind} {method} ({attempt}/{args.repeat}) ...",
                    end="",
                    flush=True,
                )
                row = make_row(method, site, args, workdir, source, digest)
                print(
                    f" {row.mb_per_s:.0f} MB/s, workers' CPU {row.server_cpu:.2f} s",
                    flush=True,
                )
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
        database_urls, queries = open_databases(args, stack, workdir)
        print(
            f"generating the site and a {args.size / MIB:.0f} MiB file in {workdir} ...",
            flush=True,
        )
        site = set_up_site(args, workdir, database_urls)
        site.gunicorn = gunicorn_settings(
            site, gunicorn_environment(site, args.workers, 0)
        )
        install_helpers(workdir)
        source = workdir / "source.bin"
        digest = write_source(source, args.size)
        loadavg = load_average()
        rows = measure_rows(args, site, workdir, source, digest)
        loadavg += "/" + load_average()
        for database in args.query_databases:
            if database in database_urls:
                print(f"  counting queries on {database} ...", flush=True)
                queries[database] = count_queries(
                    site, workdir, database_urls[database]
                )
        print_header(args, site, Plan(args.size, args.chunk, "x").count, loadavg)
        print_rows(rows)
        print_queries(queries, args.show_sql)
        print_targets(rows, queries)
        if args.profile:
            print_profiles(workdir / "profiles")


if __name__ == "__main__":
    main()
