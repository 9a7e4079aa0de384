"""
Straight into the bucket (`--staging direct`): a file uploaded as a browser
with Uppy's AwsS3 plugin does it, through the site's Companion-compatible
routes (UPLOADS_DIRECT): one create, a signed UploadPart URL per part from
the site, each part PUT to moto itself, `--simultaneous` at a time, one
complete, then the status API polled until the site has read the object
back and says `complete`. Beside it, on the same moto and the same
PostgreSQL: the same parts PUT with boto3 (the ceiling: what that bucket
takes at best), and the same file through the site's own flow.js endpoint
with S3 staging on two hosts (s3_hosts.py), every byte through gunicorn.

Reported per row: MB/s, the app hosts' CPU seconds per GiB (their gunicorn
workers, and the Celery pool's with --celery), and the time from the
complete request (the last chunk's start for the staged row) to `complete`.
"""

import importlib
import json
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import generated_site
import measure
import requests
import s3_hosts
from flow_client import Plan, unique_filename
from sizes import GIB, MB

ROUTES = "/uploads/companion/s3"
POLL_EVERY = 0.05
COMPLETE_TIMEOUT = 600
REQUEST_TIMEOUT = 300


def measure_rows(args, stack, workdir, servers, source, digest):
    """The ceiling, the direct upload and the S3-staged one, `--repeat` times;
    (rows, notes, the hosts' environment)."""
    buckets = importlib.import_module("uploads.tests.buckets")
    endpoint = stack.enter_context(buckets.moto_server())
    database_url = stack.enter_context(
        servers.postgres_database(
            host=args.pg_host, port=args.pg_port, users=generated_site.postgres_users(servers)
        )
    )
    bucket = s3_hosts.bucket_client(endpoint, args.simultaneous)
    bucket.create_bucket(Bucket=s3_hosts.BUCKET)
    root = servers.SITE_ROOT
    with_celery = args.celery and (root / "config" / "celery.py").exists()
    broker = args.broker if with_celery else None
    hosts = s3_hosts.two_hosts(servers, args, workdir, database_url, endpoint, broker)
    for site in hosts:
        site.env["UPLOADS_DIRECT"] = "True"
    # The README's CORS rule: what lets a page of the site PUT parts and read their ETag.
    bucket.put_bucket_cors(
        Bucket=s3_hosts.BUCKET,
        CORSConfiguration={
            "CORSRules": [
                {
                    "AllowedOrigins": [hosts[0].url],
                    "AllowedMethods": ["PUT", "POST"],
                    "AllowedHeaders": ["*"],
                    "ExposeHeaders": ["ETag"],
                }
            ]
        },
    )
    notes = ["moto is the bucket: it keeps objects in memory and checks no signature"]
    celery_pid = None
    if with_celery:
        notes.append(f"celery: one worker verifies and finishes, broker {args.broker}")
        celery_pid = stack.enter_context(
            s3_hosts.celery_worker(root, hosts[0].env, workdir / "logs" / "celery.log")
        )
    tries = {}
    for attempt in range(1, args.repeat + 1):
        for kind, make_row in (
            ("ceiling", lambda: s3_hosts.ceiling_row(args, bucket, source, digest)),
            ("direct", lambda: direct_row(args, hosts[0], bucket, source, digest, celery_pid)),
            ("staged", lambda: s3_hosts.site_row(args, hosts, bucket, source, digest, celery_pid)),
        ):
            print(f"  {kind} ({attempt}/{args.repeat}) ...", end="", flush=True)
            row = make_row()
            print(f" {row.mb_per_s:.0f} MB/s", flush=True)
            tries.setdefault(row.name, []).append(row)
    return [s3_hosts.best_of(group) for group in tries.values()], notes, hosts[0].env


def direct_row(args, site, bucket, source, digest, celery_pid):
    """One upload into the bucket as Uppy makes it, the parts never touching the site."""
    plan = Plan(args.size, args.chunk, unique_filename("direct"))
    with measure.serving(site, "direct-host"):
        headers = measure.log_in(site)
        del headers["X-CSRFToken"]  # Uppy 6 sends none: the browser's Origin says it is ours
        headers["Sec-Fetch-Site"] = "same-origin"
        session = requests.Session()
        session.headers.update(headers)
        adapter = requests.adapters.HTTPAdapter(pool_maxsize=max(args.simultaneous, 10))
        session.mount("http://", adapter)
        # The bucket's connections are kept open between parts, as a browser keeps them.
        to_bucket = requests.Session()
        to_bucket.mount(
            "http://", requests.adapters.HTTPAdapter(pool_maxsize=max(args.simultaneous, 10))
        )
        session.get(f"{site.url}/uploads/api/uploads/", timeout=REQUEST_TIMEOUT)  # warm
        server_cpu, client_cpu = s3_hosts.group_cpu(site.pid), measure.own_cpu()
        celery_cpu = s3_hosts.group_cpu(celery_pid)
        started = time.perf_counter()
        created = _json(
            session.post(
                f"{site.url}{ROUTES}/multipart",
                data=json.dumps(
                    {
                        "filename": plan.filename,
                        "type": "application/octet-stream",
                        "metadata": {"size": plan.size},
                    }
                ),
                headers={"Content-Type": "application/json"},
                timeout=REQUEST_TIMEOUT,
            )
        )
        upload_id, key = created["uploadId"], created["key"]
        fd = os.open(source, os.O_RDONLY)
        lock = threading.Lock()
        parts = []

        def put(chunk):
            signed = _json(
                session.get(
                    f"{site.url}{ROUTES}/multipart/{upload_id}/{chunk.number}",
                    params={"key": key},
                    timeout=REQUEST_TIMEOUT,
                )
            )
            # A browser's Blob.slice(): the part, read from the file as it is sent.
            body = os.pread(fd, chunk.length, chunk.offset)
            answer = to_bucket.put(signed["url"], data=body, timeout=REQUEST_TIMEOUT)
            answer.raise_for_status()
            with lock:
                parts.append({"PartNumber": chunk.number, "ETag": answer.headers["ETag"]})

        try:
            with ThreadPoolExecutor(args.simultaneous) as pool:
                list(pool.map(put, plan.chunks()))
        finally:
            os.close(fd)
        wall = time.perf_counter() - started
        completing = time.perf_counter()
        _json(
            session.post(
                f"{site.url}{ROUTES}/multipart/{upload_id}/complete",
                params={"key": key},
                data=json.dumps({"parts": sorted(parts, key=lambda part: part["PartNumber"])}),
                headers={"Content-Type": "application/json"},
                timeout=REQUEST_TIMEOUT,
            )
        )
        final = _wait_complete(session, site, upload_id)
        complete_after = time.perf_counter() - completing
        server_cpu = s3_hosts.group_cpu(site.pid) - server_cpu
        client_cpu = measure.own_cpu() - client_cpu
        peaks = {"host A": s3_hosts.group_peak(site.pid)}
    if celery_pid:
        peaks["celery"] = s3_hosts.group_peak(celery_pid)
        server_cpu += s3_hosts.group_cpu(celery_pid) - celery_cpu
    if final.get("status") != "complete" or final.get("sha256") != digest:
        raise RuntimeError(f"the direct upload did not complete intact: {final}")
    s3_hosts.empty_bucket(bucket)
    row = s3_hosts.S3Row("direct", args.size, wall, peaks, server_cpu, client_cpu)
    row.complete_after = complete_after
    return row


def _json(response):
    response.raise_for_status()
    return response.json()


def _wait_complete(session, site, upload_id):
    deadline = time.monotonic() + COMPLETE_TIMEOUT
    url = f"{site.url}/uploads/api/uploads/{upload_id}/"
    while True:
        status = _json(session.get(url, timeout=REQUEST_TIMEOUT))
        if status["status"] not in ("uploading", "processing") or time.monotonic() > deadline:
            return status
        time.sleep(POLL_EVERY)


def print_rows(rows, notes):
    """MB/s, share of the ceiling, app-host CPU per GiB, complete -> `complete`."""
    order = {"ceiling-s3": 0, "direct": 1, "s3-octet": 2}
    rows = sorted(rows, key=lambda row: order.get(row.name, 9))
    ceiling = next(row for row in rows if row.name == "ceiling-s3")
    names = {
        "ceiling-s3": "boto3 into moto",
        "direct": "direct (signed PUTs)",
        "s3-octet": "site, S3 staging",
    }
    print(
        f"{'':22}{'MB/s':>6}{'of ceiling':>11}{'app CPU s/GiB':>15}{'peak RSS MB':>13}"
        f"{'complete -> complete s':>24}"
    )
    for row in rows:
        ratio = f"{row.mb_per_s / ceiling.mb_per_s:.0%}" if row is not ceiling else "-"
        cpu = f"{row.server_cpu / (row.size / GIB):.2f}" if row is not ceiling else "-"
        peak = max(row.highest_peaks.values(), default=None)
        peak = f"{peak:.0f}" if peak else "-"
        complete = f"{row.complete_after:.2f}" if row.complete_after is not None else "-"
        print(
            f"{names.get(row.name, row.name):22}{row.mb_per_s:6.0f}{ratio:>11}{cpu:>15}"
            f"{peak:>13}{complete:>24}"
        )
    print(f"({rows[0].size / MB:.0f} MB each; the staged row's time runs from its last chunk)")
    for note in notes:
        print(note)
