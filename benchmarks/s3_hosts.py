"""
S3 staging on two hosts (`--staging s3`): moto's standalone S3 server started
by the generated test suite's `uploads/tests/buckets.py`, one PostgreSQL
database from its `servers.postgres_database()`, and two gunicorns of one site
(the same secret key and user, each host its own media and staging folders),
which flow.js's chunks reach alternately. The ceiling is the same bytes put
into the same moto with boto3, as one multipart upload in the same parts, as
many at a time: what that bucket takes at best.

With `--celery`, one Celery worker finishes the uploads, when the site has
Celery (`config/celery.py`); its pool's peak RSS is reported beside the hosts'.
"""

import contextlib
import hashlib
import importlib
import os
import re
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import boto3
import botocore.config
import generated_site
import measure
import workers
from flow_client import Plan, unique_filename, upload
from sizes import MB

BUCKET = "bench-bucket"
REGION = "us-east-1"
CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
CELERY_COMMAND = ["-m", "celery", "-A", "config", "worker", "--pool=prefork", "--concurrency=2"]
# INFO: logs/celery.log (kept with --keep) then shows each task received and done.
CELERY_LOG_LEVEL = "--loglevel=INFO"
HOST_NAMES = ("A", "B")
CELERY_START_TIMEOUT = 60
STOP_TIMEOUT = 10


@dataclass
class S3Row:
    name: str
    size: int
    wall: float
    peaks: dict  # {"host A" | "host B" | "celery": peak MB of its workers}
    server_cpu: float  # seconds, every worker of both hosts
    client_cpu: float  # seconds, this process (boto3's own work, for the ceiling)
    complete_after: float = None  # seconds from the last chunk's start to `complete`
    celery_cpu: float = None  # seconds, the Celery pool, the upload and its finishing
    tries: int = 1
    highest_peaks: dict = field(default_factory=dict)  # over every try
    # Where `complete_after` went: {step: seconds}, in order (see steps_line()).
    steps: dict = field(default_factory=dict)

    @property
    def mb_per_s(self):
        return self.size / MB / self.wall


def best_of(tries):
    """The fastest try, with each process group's highest memory peak of them all."""
    best = max(tries, key=lambda row: row.mb_per_s)
    best.tries = len(tries)
    for row in tries:
        for name, peak in row.peaks.items():
            best.highest_peaks[name] = max(best.highest_peaks.get(name, 0.0), peak)
    return best


def bucket_client(endpoint, slots):
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=REGION,
        config=botocore.config.Config(max_pool_connections=max(slots, 10)),
        **CREDENTIALS,
    )


def two_hosts(servers, args, workdir, database_url, endpoint, broker):
    """Two Sites of one site on one database and one bucket, the first prepared."""
    shared = {
        "UPLOADS_STAGING": "s3",
        "AWS_STORAGE_BUCKET_NAME": BUCKET,
        "AWS_S3_ENDPOINT_URL": endpoint,
        "AWS_S3_REGION_NAME": REGION,
        "AWS_ACCESS_KEY_ID": CREDENTIALS["aws_access_key_id"],
        "AWS_SECRET_ACCESS_KEY": CREDENTIALS["aws_secret_access_key"],
    }
    if broker:
        shared["CELERY_BROKER_URL"] = broker
    hosts = [
        servers.Site(workdir / f"host-{name}", database_url, workers=args.workers)
        for name in HOST_NAMES
    ]
    first, second = hosts
    second.env["DJANGO_SECRET_KEY"] = first.env["DJANGO_SECRET_KEY"]
    second.username, second.password = first.username, first.password
    for site in hosts:
        site.env.update(shared)
        (site.folder / "logs").mkdir(parents=True, exist_ok=True)
    first.prepare()
    second.manage("collectstatic", "--noinput")
    return hosts


@contextlib.contextmanager
def celery_worker(root, env, log):
    """One Celery worker of the site (prefork, 2 processes); its pid, stopped afterwards."""
    with open(log, "wb") as output:
        process = subprocess.Popen(
            [sys.executable, *CELERY_COMMAND, CELERY_LOG_LEVEL],
            cwd=root,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        workers.wait_until_started(process.pid, 2, CELERY_START_TIMEOUT)
        yield process.pid
    finally:
        process.terminate()
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(STOP_TIMEOUT)


def group_peak(pid):
    """The highest VmHWM of a master's workers, in MB."""
    return max((peak for peak, _ in workers.workers_memory(pid).values()), default=0.0)


def ceiling_row(args, bucket, source, digest):
    """
    The source put into moto by boto3: one multipart upload of the site's
    parts, as many at once. Its wall time ends with the last part, as the
    site's ends with the last chunk's answer; then what finishing costs at
    least on this bucket, timed from the last part's start as the site's is:
    CompleteMultipartUpload (at the finished file's key, as the site's) and
    one streaming read for the SHA-256. Each step is timed, and so are, after
    it, the CopyObject to another key and the DeleteObject that the site made
    before it completed at the finished key, for what they cost.
    """
    plan = Plan(args.size, args.chunk, unique_filename("ceiling-s3"))
    key, last = plan.identifier, {}
    client_cpu = measure.own_cpu()
    started = time.perf_counter()
    multipart = bucket.create_multipart_upload(Bucket=BUCKET, Key=key)
    fd = os.open(source, os.O_RDONLY)
    try:

        def put(chunk):
            if chunk.number == plan.count:
                last["started"] = time.perf_counter()
            # Only `slots` parts are in memory at once, as in the site's workers.
            body = os.pread(fd, chunk.length, chunk.offset)
            answer = bucket.upload_part(
                Bucket=BUCKET,
                Key=key,
                UploadId=multipart["UploadId"],
                PartNumber=chunk.number,
                Body=body,
            )
            return {"PartNumber": chunk.number, "ETag": answer["ETag"]}

        with ThreadPoolExecutor(args.simultaneous) as pool:
            parts = list(pool.map(put, plan.chunks()))
    finally:
        os.close(fd)
    wall, client_cpu = time.perf_counter() - started, measure.own_cpu() - client_cpu
    steps = {"last part": time.perf_counter() - last["started"]}
    clock = time.perf_counter()
    bucket.complete_multipart_upload(
        Bucket=BUCKET, Key=key, UploadId=multipart["UploadId"], MultipartUpload={"Parts": parts}
    )
    steps["CompleteMultipartUpload"], clock = lap(clock)
    sha256 = hashlib.sha256()
    for block in bucket.get_object(Bucket=BUCKET, Key=key)["Body"].iter_chunks(1024 * 1024):
        sha256.update(block)
    steps["GET for the SHA-256"], clock = lap(clock)
    finished = clock
    bucket.copy_object(Bucket=BUCKET, Key=key + ".done", CopySource={"Bucket": BUCKET, "Key": key})
    steps["(CopyObject, no longer made)"], clock = lap(clock)
    bucket.delete_object(Bucket=BUCKET, Key=key)
    steps["(DeleteObject of the source)"], clock = lap(clock)
    if sha256.hexdigest() != digest:
        raise RuntimeError("the ceiling's object differs from the source")
    row = S3Row("ceiling-s3", args.size, wall, {}, 0.0, client_cpu)
    row.complete_after = finished - last["started"]
    row.steps = steps
    empty_bucket(bucket)
    return row


def lap(clock):
    """(seconds since `clock`, now)."""
    now = time.perf_counter()
    return now - clock, now


# What the S3 staging backend logs as it finishes an upload (uploads/staging/s3.py).
COMPLETED_LINE = re.compile(
    r"upload (?P<id>\S+): (?P<parts>\d+) parts completed into \S+ in (?P<s>[\d.]+) s, "
    r"after (?P<before>[\d.]+) s listing and gathering"
)
COPIED_LINE = re.compile(r"upload (?P<id>\S+): copied server-side to \S+ in (?P<s>[\d.]+) s")


def finishing_steps(upload_id, logs, complete_after):
    """
    Where the site's last chunk -> complete went, from the finisher's log
    lines (a host's or the Celery worker's): the multipart upload completed
    (after listing its parts and gathering the last slot, if it is pieces),
    the server-side copy if one was
    made, and the rest (the last chunk's answer, the task's pickup, the
    SHA-256 read, recording it, the poll).
    """
    steps, text = {}, "\n".join(log.read_text() for log in logs if log.exists())
    for match in COMPLETED_LINE.finditer(text):
        if match["id"] == upload_id:
            steps["ListParts and the last slot gathered"] = float(match["before"])
            steps[f"CompleteMultipartUpload ({match['parts']} parts)"] = float(match["s"])
    for match in COPIED_LINE.finditer(text):
        if match["id"] == upload_id:
            steps["CopyObject"] = float(match["s"])
    if not any(name.startswith("CopyObject") for name in steps):
        steps["no copy"] = 0.0
    steps["the rest (answer, task pickup, SHA-256 GET, record, poll)"] = complete_after - sum(
        steps.values()
    )
    return steps


def site_row(args, hosts, bucket, source, digest, celery_pid, celery_log=None):
    """One flow.js octet upload, chunk n to host n % 2, polled on the first host until complete."""
    plan = Plan(args.size, args.chunk, unique_filename("site-s3"))
    with contextlib.ExitStack() as stack:
        for name, site in named(hosts):
            stack.enter_context(measure.serving(site, f"s3-host-{name}"))
        # One browser behind one load balancer: one session, each host's Origin.
        headers = measure.log_in(hosts[0])
        per_host = [(measure.port(site), dict(headers, Origin=site.url)) for site in hosts]
        for site, (_, site_headers) in zip(hosts, per_host, strict=True):
            measure.warm_up(site, site_headers, plan)
        server_cpu, client_cpu = hosts_cpu(hosts), measure.own_cpu()
        celery_cpu = group_cpu(celery_pid)
        run = upload(
            per_host,
            plan,
            source,
            method="octet",
            slots=args.simultaneous,
            test_chunks=args.test_chunks,
            poll=True,
        )
        server_cpu, client_cpu = hosts_cpu(hosts) - server_cpu, measure.own_cpu() - client_cpu
        peaks = {f"host {name}": group_peak(site.pid) for name, site in named(hosts)}
    if celery_pid:
        peaks["celery"] = group_peak(celery_pid)
        celery_cpu = group_cpu(celery_pid) - celery_cpu
    final = run.poller.final or {}
    if final.get("status") != "complete" or final.get("sha256") != digest:
        raise RuntimeError(f"the S3 upload did not complete intact: {final}")
    empty_bucket(bucket)
    row = S3Row("s3-octet", args.size, run.wall, peaks, server_cpu, client_cpu)
    row.complete_after = run.poller.complete_at - run.last_started
    logs = [site.log for site in hosts] + ([celery_log] if celery_log else [])
    row.steps = finishing_steps(final.get("id", ""), logs, row.complete_after)
    # Which process finished the upload: the Celery pool's CPU says whether it did.
    row.celery_cpu = celery_cpu if celery_pid else None
    return row


def group_cpu(pid):
    """CPU seconds, user and system, that a master's workers have used so far."""
    return sum(map(sum, workers.workers_cpu(pid).values())) if pid else 0.0


def named(hosts):
    return zip(HOST_NAMES, hosts, strict=True)


def hosts_cpu(hosts):
    return sum(group_cpu(site.pid) for site in hosts)


def empty_bucket(bucket):
    """
    Nothing may be left under staging/ once an upload is complete; the finished
    file is deleted so that moto, which keeps objects in memory, does not grow.
    """
    if bucket.list_multipart_uploads(Bucket=BUCKET).get("Uploads"):
        raise RuntimeError("a multipart upload was left in the bucket")
    for item in bucket.list_objects_v2(Bucket=BUCKET).get("Contents", []):
        if item["Key"].startswith("staging/"):
            raise RuntimeError(f"a staging object was left in the bucket: {item['Key']}")
        bucket.delete_object(Bucket=BUCKET, Key=item["Key"])


def measure_rows(args, stack, workdir, servers, source, digest):
    """
    The ceiling and the site alternating, `--repeat` times; (rows, notes, the
    hosts' environment). The notes say what the run could not do (a site
    without Celery).
    """
    root = servers.SITE_ROOT
    buckets = importlib.import_module("uploads.tests.buckets")
    endpoint = stack.enter_context(buckets.moto_server())
    database_url = stack.enter_context(
        servers.postgres_database(
            host=args.pg_host, port=args.pg_port, users=generated_site.postgres_users(servers)
        )
    )
    bucket = bucket_client(endpoint, args.simultaneous)
    bucket.create_bucket(Bucket=BUCKET)
    notes = []
    with_celery = args.celery and (root / "config" / "celery.py").exists()
    if args.celery and not with_celery:
        notes.append("celery: skipped, the site has no Celery yet (no config/celery.py)")
    broker = args.broker if with_celery else None
    hosts = two_hosts(servers, args, workdir, database_url, endpoint, broker)
    celery_pid, celery_log = None, None
    if with_celery:
        notes.append(f"celery: one worker, {' '.join(CELERY_COMMAND[1:])}, broker {args.broker}")
        celery_log = workdir / "logs" / "celery.log"
        celery_pid = stack.enter_context(celery_worker(root, hosts[0].env, celery_log))
    tries = {}
    for attempt in range(1, args.repeat + 1):
        for kind, make_row in (
            ("ceiling", lambda: ceiling_row(args, bucket, source, digest)),
            (
                "site",
                lambda: site_row(args, hosts, bucket, source, digest, celery_pid, celery_log),
            ),
        ):
            print(f"  {kind} s3 ({attempt}/{args.repeat}) ...", end="", flush=True)
            row = make_row()
            print(f" {row.mb_per_s:.0f} MB/s", flush=True)
            tries.setdefault(row.name, []).append(row)
    return [best_of(group) for group in tries.values()], notes, hosts[0].env
