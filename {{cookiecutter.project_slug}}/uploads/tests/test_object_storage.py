"""
Finished uploads in S3-compatible object storage (AWS_STORAGE_BUCKET_NAME).

No S3 server can run on the project's machines, so these tests talk to moto's
standalone server (`python -m moto.server`, a separate process on a free port)
through the same django-storages backend and boto3 client a real bucket would
get. What moto does not check (real S3's consistency, permissions, part-size
limits) these tests do not check either.
"""

import hashlib
import random
import socket
import subprocess
import sys
import time

import boto3
import pytest
from storages.backends.s3 import S3Storage

from uploads import staging
from uploads.models import Upload

from .chunking import chunk_count, post_chunk
from .servers import free_port

pytestmark = pytest.mark.django_db

BUCKET = "finished-uploads"
CHUNK = 64 * 1024


@pytest.fixture(scope="module")
def s3_endpoint():
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError("moto's S3 server did not start") from None
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(10)


@pytest.fixture
def bucket(s3_endpoint, monkeypatch):
    """A fresh bucket, and the Upload model's file field storing into it."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    client = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    client.create_bucket(Bucket=BUCKET)
    # The options settings.py gives the backend when AWS_STORAGE_BUCKET_NAME is set.
    storage = S3Storage(
        bucket_name=BUCKET,
        endpoint_url=s3_endpoint,
        region_name="us-east-1",
        default_acl="private",
        file_overwrite=False,
    )
    # The field evaluated its storage when the model was defined.
    monkeypatch.setattr(Upload._meta.get_field("file"), "storage", storage)
    yield client
    for item in client.list_objects_v2(Bucket=BUCKET).get("Contents", []):
        client.delete_object(Bucket=BUCKET, Key=item["Key"])
    client.delete_bucket(Bucket=BUCKET)


def test_a_finished_upload_is_streamed_into_the_bucket(alice, bucket):
    data = random.Random(7).randbytes(5 * CHUNK + 321)
    for number in range(1, chunk_count(len(data), CHUNK) + 1):
        response = post_chunk(alice, "/uploads/flow/", "flow", data, number, chunk_size=CHUNK)
        assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "complete"
    assert body["sha256"] == hashlib.sha256(data).hexdigest()

    upload = Upload.objects.get(pk=body["id"])
    stored = bucket.get_object(Bucket=BUCKET, Key=upload.file.name)
    assert stored["Body"].read() == data
    assert not any(staging.backend.directory().iterdir()), "the staging file was left behind"

    downloaded = alice.get(body["download_url"])
    assert downloaded.status_code == 200
    assert b"".join(downloaded.streaming_content) == data


def test_a_bucket_that_refuses_the_file_fails_the_upload_and_says_why(alice, bucket):
    bucket.delete_bucket(Bucket=BUCKET)  # gone between the start and the finish
    data = random.Random(8).randbytes(2 * CHUNK)
    for number in (1, 2):
        response = post_chunk(alice, "/uploads/flow/", "flow", data, number, chunk_size=CHUNK)
    assert response.status_code == 200
    upload = Upload.objects.get(pk=response.json()["id"])
    assert upload.status == Upload.Status.FAILED
    assert "NoSuchBucket" in upload.error
    bucket.create_bucket(Bucket=BUCKET)  # for the fixture's cleanup
