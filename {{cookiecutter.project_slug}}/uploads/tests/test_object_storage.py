"""
Finished uploads in S3-compatible object storage (AWS_STORAGE_BUCKET_NAME).

No S3 server can run on the project's machines, so these tests talk to moto's
standalone server (buckets.py) through the same django-storages backend and
boto3 client a real bucket would get.
"""

import hashlib
import random
import time
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest
import requests
from django.utils import timezone
from storages.backends.s3 import S3Storage

from uploads import staging
from uploads.models import Upload

from .buckets import moto_server
from .chunking import chunk_count, post_chunk

pytestmark = pytest.mark.django_db

BUCKET = "finished-uploads"
CHUNK = 64 * 1024


@pytest.fixture(scope="module")
def s3_endpoint():
    with moto_server() as endpoint:
        yield endpoint


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


def test_a_finished_upload_is_streamed_into_the_bucket(
    alice, bucket, s3_endpoint, client, other_user
):
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

    # The download is the bucket's: a signed link that soon stops working,
    # answering with the file under its own name.
    downloaded = alice.get(body["download_url"])
    assert downloaded.status_code == 302
    link = downloaded["Location"]
    assert link.startswith(f"{s3_endpoint}/{BUCKET}/")
    query = parse_qs(urlsplit(link).query)
    if "X-Amz-Expires" in query:  # signature version 4
        assert query["X-Amz-Expires"] == ["300"]
    else:  # version 2: the moment it stops working
        assert 0 < int(query["Expires"][0]) - time.time() <= 300
    fetched = requests.get(link, timeout=10)
    assert fetched.status_code == 200
    assert fetched.content == data
    assert fetched.headers["Content-Disposition"] == f'attachment; filename="{upload.name}"'
    part = requests.get(link, headers={"Range": "bytes=10-19"}, timeout=10)
    assert (part.status_code, part.content) == (206, data[10:20])
    # Nobody else gets a link.
    client.force_login(other_user)
    assert client.get(body["download_url"]).status_code == 404


def test_a_bucket_that_refuses_the_file_keeps_the_upload_until_it_can_be_stored(alice, bucket):
    bucket.delete_bucket(Bucket=BUCKET)  # gone between the start and the finish
    data = random.Random(8).randbytes(2 * CHUNK)
    for number in (1, 2):
        response = post_chunk(alice, "/uploads/flow/", "flow", data, number, chunk_size=CHUNK)
    assert response.status_code == 200
    upload = Upload.objects.get(pk=response.json()["id"])
    assert upload.status == Upload.Status.PROCESSING, "a bucket that is away is no reason to fail"
    assert "NoSuchBucket" in upload.error
    assert staging.backend.path_for(upload).stat().st_size == len(data), "the bytes are kept"

    bucket.create_bucket(Bucket=BUCKET)
    # The lease of the run that could not store it runs out; the page's next poll takes it over.
    Upload.objects.filter(pk=upload.pk).update(finishing_until=timezone.now())
    body = alice.get(f"/uploads/api/uploads/{upload.pk}/").json()
    assert body["status"] == "complete", body
    assert body["sha256"] == hashlib.sha256(data).hexdigest()
    upload.refresh_from_db()
    assert bucket.get_object(Bucket=BUCKET, Key=upload.file.name)["Body"].read() == data
    assert not staging.backend.path_for(upload).exists()
