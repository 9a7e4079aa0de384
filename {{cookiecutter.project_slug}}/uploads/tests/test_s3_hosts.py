"""
Two app hosts that share nothing but PostgreSQL and a bucket: two gunicorns of
the site, each with its own empty media and staging folders, UPLOADS_STAGING=s3,
chunks of one file sent 4 at a time and alternating between the hosts.

No real S3 can run on the project's machines: the bucket is moto's standalone
server (buckets.py).
"""

import hashlib
import random
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlencode

import boto3
import pytest

from . import servers
from .buckets import moto_server
from .chunking import chunk_bounds, chunk_count, params

pytestmark = [pytest.mark.server, pytest.mark.timeout(240)]

BUCKET = "site-bucket"
MiB = 1024**2
PARALLEL_CHUNKS = 4


@pytest.fixture
def hosts(tmp_path):
    with moto_server() as endpoint, servers.postgres_database() as database_url:
        bucket = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        bucket.create_bucket(Bucket=BUCKET)
        shared = {
            "UPLOADS_STAGING": "s3",
            "AWS_STORAGE_BUCKET_NAME": BUCKET,
            "AWS_S3_ENDPOINT_URL": endpoint,
            "AWS_S3_REGION_NAME": "us-east-1",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
        }
        first, second = (
            servers.Site(tmp_path / name, database_url, workers=2) for name in ("a", "b")
        )
        # One site: the same secret key and superuser; each host its own folders.
        second.env["DJANGO_SECRET_KEY"] = first.env["DJANGO_SECRET_KEY"]
        second.username, second.password = first.username, first.password
        for site in (first, second):
            site.env.update(shared)
        try:
            first.start()
            second.manage("collectstatic", "--noinput")
            second.start(prepared=True)
            yield first, second, bucket
        finally:
            first.stop()
            second.stop()


def send_file(clients, data, chunk_size, method):
    """Every chunk of `data`, 4 at a time, chunk n to host n % 2; the upload's id."""
    count = chunk_count(len(data), chunk_size)

    def send(number):
        client = clients[number % len(clients)]
        query = params("flow", data, number, chunk_size=chunk_size, identifier=f"f-{method}")
        start, end = chunk_bounds(len(data), chunk_size, number)
        if method == "octet":
            return client.post(
                f"/uploads/flow/?{urlencode(query)}",
                data=data[start:end],
                headers={"Content-Type": "application/octet-stream"},
            )
        return client.post("/uploads/flow/", data=query, files={"file": data[start:end]})

    numbers = list(range(1, count + 1))
    random.Random(count).shuffle(numbers)
    with ThreadPoolExecutor(PARALLEL_CHUNKS) as pool:
        responses = list(pool.map(send, numbers))
    for number, response in zip(numbers, responses, strict=True):
        assert response.status_code == 200, f"chunk {number}: {response.text}"
    ids = {response.json()["id"] for response in responses}
    assert len(ids) == 1, f"the chunks went to several uploads: {ids}"
    return ids.pop()


@pytest.mark.parametrize(
    "chunk_size, size, method",
    [(8 * MiB, 4 * 8 * MiB + 3 * MiB, "octet"), (1 * MiB, 13 * MiB + 5, "multipart")],
    ids=["8MiB-octet", "1MiB-multipart"],
)
def test_chunks_alternating_between_two_hosts(hosts, chunk_size, size, method):
    first, second, bucket = hosts
    data = random.Random(size).randbytes(size)
    clients = [first.login(), second.login()]
    upload_id = send_file(clients, data, chunk_size, method)

    for client in clients:  # the same answer from either host
        status = client.finished(upload_id)
        assert status["status"] == "complete", status
        assert status["sha256"] == hashlib.sha256(data).hexdigest()
    stored = [
        item
        for item in bucket.list_objects_v2(Bucket=BUCKET).get("Contents", [])
        if not item["Key"].startswith("staging/")
    ]
    assert len(stored) == 1
    body = bucket.get_object(Bucket=BUCKET, Key=stored[0]["Key"])["Body"].read()
    assert hashlib.sha256(body).hexdigest() == status["sha256"]
    assert bucket.list_objects_v2(Bucket=BUCKET, Prefix="staging/").get("Contents", []) == []
    assert bucket.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []) == []
    for site in (first, second):
        for folder in (site.staging, site.folder / "media"):
            assert not folder.exists() or not any(folder.iterdir()), f"bytes in {folder}"
        assert " ERROR " not in site.log.read_text()
