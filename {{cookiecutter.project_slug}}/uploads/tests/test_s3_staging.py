"""
Staging in a bucket (UPLOADS_STAGING=s3): every protocol's bytes go into one
multipart upload per file, and nothing into this host's staging folder.

No real S3 can run on the project's machines: these tests talk to moto's
standalone server (buckets.py), through a relay that lets a test make the
bucket unreachable and reachable again.
"""

import base64
import gc
import hashlib
import json
import random
import tracemalloc
import uuid
from datetime import timedelta
from urllib.parse import urlencode

import boto3
import pytest
from django.core.management import call_command
from storages.backends.s3 import S3Storage

from uploads import engine, staging
from uploads.models import Upload

from .buckets import Relay, moto_server
from .chunking import chunk_count, params, post_chunk

pytestmark = pytest.mark.django_db

BUCKET = "site-bucket"
PREFIX = "staging/"
MiB = 1024**2
TUS = {"HTTP_TUS_RESUMABLE": "1.0.0"}


@pytest.fixture(scope="module")
def relay():
    with moto_server() as endpoint:
        host, port = endpoint.removeprefix("http://").split(":")
        relay = Relay((host, int(port)))
        relay.up()
        yield relay
        relay.down()


@pytest.fixture
def bucket(relay, settings, monkeypatch):
    """A fresh bucket that keeps both unfinished (s3 staging) and finished uploads."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    client = boto3.client("s3", endpoint_url=relay.url, region_name="us-east-1")
    client.create_bucket(Bucket=BUCKET)
    settings.AWS_STORAGE_BUCKET_NAME = BUCKET
    settings.AWS_S3_ENDPOINT_URL = relay.url
    settings.AWS_S3_REGION_NAME = "us-east-1"
    settings.UPLOADS_STAGING = "s3"
    storage = S3Storage(
        bucket_name=BUCKET,
        endpoint_url=relay.url,
        region_name="us-east-1",
        default_acl="private",
        file_overwrite=False,
    )
    monkeypatch.setattr(Upload._meta.get_field("file"), "storage", storage)
    yield client
    for upload in client.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []):
        client.abort_multipart_upload(Bucket=BUCKET, Key=upload["Key"], UploadId=upload["UploadId"])
    for item in client.list_objects_v2(Bucket=BUCKET).get("Contents", []):
        client.delete_object(Bucket=BUCKET, Key=item["Key"])
    client.delete_bucket(Bucket=BUCKET)


def staged(client):
    """Everything unfinished: objects under the staging prefix, and multipart
    uploads anywhere (they are made at the finished file's key)."""
    objects = client.list_objects_v2(Bucket=BUCKET, Prefix=PREFIX).get("Contents", [])
    uploads = client.list_multipart_uploads(Bucket=BUCKET).get("Uploads", [])
    return [item["Key"] for item in objects] + [f"multipart {u['Key']}" for u in uploads]


def objects(client):
    return [item["Key"] for item in client.list_objects_v2(Bucket=BUCKET).get("Contents", [])]


def assert_finished(client, alice, upload_id, data):
    """The status API's sha256 is the file's, the bucket has it, and nothing else is left."""
    status = alice.get(f"/uploads/api/uploads/{upload_id}/").json()
    assert status["status"] == "complete", status
    assert status["sha256"] == hashlib.sha256(data).hexdigest()
    upload = Upload.objects.get(pk=upload_id)
    stored = client.get_object(Bucket=BUCKET, Key=upload.file.name)["Body"].read()
    assert hashlib.sha256(stored).hexdigest() == status["sha256"]
    assert staged(client) == []
    assert_nothing_on_this_host()


def assert_nothing_on_this_host():
    folder = staging.backend.directory()
    assert not folder.exists() or not any(folder.iterdir()), "bytes were staged on this host"


def octet_chunk(client, url, prefix, data, number, chunk_size, **kw):
    query = urlencode(params(prefix, data, number, chunk_size=chunk_size, **kw))
    start = (number - 1) * chunk_size
    end = len(data) if number == chunk_count(len(data), chunk_size) else start + chunk_size
    return client.post(
        f"{url}?{query}", data=data[start:end], content_type="application/octet-stream"
    )


@pytest.mark.parametrize(
    "chunk_size, size",
    [
        (8 * MiB, 3 * 8 * MiB + 5 * MiB + 17),  # parts: the last chunk is 13 MiB, one part
        (1 * MiB, 11 * MiB + 3),  # gathered into parts of 8 MiB
    ],
    ids=["8MiB-parts", "1MiB-gathered"],
)
def test_flowjs_octet_chunks_in_any_order(alice, bucket, chunk_size, size):
    data = random.Random(size).randbytes(size)
    numbers = list(range(1, chunk_count(size, chunk_size) + 1))
    random.Random(1).shuffle(numbers)
    for number in numbers:
        response = octet_chunk(alice, "/uploads/flow/", "flow", data, number, chunk_size)
        assert response.status_code == 200, response.content
        assert_nothing_on_this_host()
    assert_finished(bucket, alice, response.json()["id"], data)


def test_flowjs_multipart_chunks_sent_twice(alice, bucket):
    chunk_size = 5 * MiB
    data = random.Random(3).randbytes(3 * chunk_size + 1000)
    for number in (2, 1, 2, 3, 1):  # copies of chunks already in are drained
        response = post_chunk(alice, "/uploads/flow/", "flow", data, number, chunk_size=chunk_size)
        assert response.status_code == 200, response.content
    assert_finished(bucket, alice, response.json()["id"], data)


def test_resumablejs_small_chunks(alice, bucket):
    chunk_size = 1 * MiB
    data = random.Random(4).randbytes(9 * MiB + 12345)
    for number in range(chunk_count(len(data), chunk_size), 0, -1):  # backwards
        response = post_chunk(
            alice, "/uploads/resumable/", "resumable", data, number, chunk_size=chunk_size
        )
        assert response.status_code == 200, response.content
    assert_finished(bucket, alice, response.json()["id"], data)


def tus_create(client, size):
    name = base64.b64encode(b"report.bin").decode()
    response = client.post(
        "/uploads/tus/",
        HTTP_UPLOAD_LENGTH=str(size),
        HTTP_UPLOAD_METADATA=f"filename {name}",
        **TUS,
    )
    assert response.status_code == 201, response.content
    return response["Location"].removeprefix("http://testserver")


def tus_patch(client, path, offset, body):
    return client.patch(
        path,
        body,
        content_type="application/offset+octet-stream",
        HTTP_UPLOAD_OFFSET=str(offset),
        **TUS,
    )


def test_tus_small_patches_are_gathered(alice, bucket):
    data = random.Random(5).randbytes(17 * MiB + 99)
    path = tus_create(alice, len(data))
    offset, sizes = 0, [300 * 1024, 7 * MiB, 1, 9 * MiB]
    while offset < len(data):
        body = data[offset : offset + sizes[offset % len(sizes)]]
        response = tus_patch(alice, path, offset, body)
        assert response.status_code == 204, response.content
        offset += len(body)
        assert int(response["Upload-Offset"]) == offset
    upload_id = path.rstrip("/").rpartition("/")[2]
    assert_finished(bucket, alice, str(uuid.UUID(upload_id)), data)


def test_content_range_pieces(alice, bucket):
    data = random.Random(6).randbytes(6 * MiB + 7)
    piece, upload_id = 2 * MiB, None
    for start in range(0, len(data), piece):
        end = min(start + piece, len(data))
        fields = {"upload_id": upload_id} if upload_id else {}
        fields["file"] = NamedBytes(data[start:end], "video.mp4")
        response = alice.post(
            "/uploads/chunked/",
            data=fields,
            HTTP_CONTENT_RANGE=f"bytes {start}-{end - 1}/{len(data)}",
        )
        assert response.status_code == 200, response.content
        upload_id = response.json()["upload_id"]
    response = alice.post(
        "/uploads/chunked/complete/",
        {"upload_id": upload_id, "md5": hashlib.md5(data).hexdigest()},  # noqa: S324
    )
    assert response.status_code == 200, response.content
    assert_finished(bucket, alice, upload_id, data)


class NamedBytes:
    def __init__(self, data, name):
        self._data, self.name = data, name

    def read(self):
        return self._data


def test_cancel_and_expiry_leave_nothing_in_the_bucket(alice, user, bucket):
    data = random.Random(7).randbytes(12 * MiB)
    # One a part of its multipart upload, the other pieces still to be gathered.
    for identifier, chunk_size, numbers in (("cancelled", 5 * MiB, (1,)), ("expired", MiB, (1, 9))):
        for number in numbers:
            response = octet_chunk(
                alice, "/uploads/flow/", "flow", data, number, chunk_size, identifier=identifier
            )
            assert response.status_code == 200, response.content
    assert staged(bucket)
    cancelled = Upload.objects.get(client_id="cancelled")
    engine.cancel(cancelled)
    expired = Upload.objects.get(client_id="expired")
    engine.expire(expired, before=expired.expires + timedelta(seconds=1))
    assert {cancelled.status, Upload.objects.get(pk=expired.pk).status} == {"cancelled", "expired"}
    assert staged(bucket) == []


def test_cleanup_aborts_multipart_uploads_no_upload_owns(alice, bucket, settings):
    settings.UPLOADS_CLEANUP_GRACE = timedelta(0)
    orphan = bucket.create_multipart_upload(Bucket=BUCKET, Key=f"{PREFIX}{uuid.uuid4().hex}/file")
    bucket.put_object(Bucket=BUCKET, Key=f"{PREFIX}{uuid.uuid4().hex}/pieces/0", Body=b"x")
    data = random.Random(8).randbytes(6 * MiB)
    response = octet_chunk(alice, "/uploads/flow/", "flow", data, 1, 1 * MiB)
    assert response.status_code == 200
    owned = Upload.objects.get(pk=response.json()["id"])

    call_command("cleanup_uploads", verbosity=0)

    left = staged(bucket)
    assert f"multipart {PREFIX}{orphan['Key'].removeprefix(PREFIX)}" not in left
    assert all(owned.id.hex in key or str(owned.id) in key for key in left) and left, left


def test_cleanup_aborts_multipart_uploads_at_finished_keys_no_active_upload_owns(
    alice, bucket, settings
):
    """A multipart upload is made at the finished file's key: one whose upload
    ended (or never was) is aborted there too; an active upload's is kept."""
    settings.UPLOADS_CLEANUP_GRACE = timedelta(0)
    orphan = f"uploads/2026/01/02/{uuid.uuid4()}/lost.bin"
    bucket.create_multipart_upload(Bucket=BUCKET, Key=orphan)
    data = random.Random(12).randbytes(10 * MiB)
    assert octet_chunk(alice, "/uploads/flow/", "flow", data, 1, 5 * MiB).status_code == 200
    owned = Upload.objects.get()

    call_command("cleanup_uploads", verbosity=0)

    assert staged(bucket) == [f"multipart {owned.file.field.generate_filename(owned, owned.name)}"]
    assert octet_chunk(alice, "/uploads/flow/", "flow", data, 2, 5 * MiB).status_code == 200
    assert_finished(bucket, alice, str(owned.pk), data)


def test_the_multipart_upload_is_completed_at_the_finished_key_no_copy(alice, bucket):
    """While uploading, the multipart upload's key is the name the file is
    stored under; finished, that key is the one object left: no copy was made."""
    chunk_size = 5 * MiB
    data = random.Random(13).randbytes(2 * chunk_size + 99)
    assert octet_chunk(alice, "/uploads/flow/", "flow", data, 1, chunk_size).status_code == 200
    (multipart,) = bucket.list_multipart_uploads(Bucket=BUCKET)["Uploads"]
    assert octet_chunk(alice, "/uploads/flow/", "flow", data, 2, chunk_size).status_code == 200
    upload = Upload.objects.get()
    assert upload.status == "complete"
    assert multipart["Key"] == upload.file.name
    assert objects(bucket) == [upload.file.name]
    head = bucket.head_object(Bucket=BUCKET, Key=upload.file.name)
    assert head["ContentType"] == "application/octet-stream"  # data.bin
    assert_finished(bucket, alice, str(upload.pk), data)


def send_held(alice, data, piece=2 * MiB):
    """Content-Range pieces, every one: the upload waits for its complete."""
    upload_id = None
    for start in range(0, len(data), piece):
        end = min(start + piece, len(data))
        fields = {"upload_id": upload_id} if upload_id else {}
        fields["file"] = NamedBytes(data[start:end], "video.mp4")
        response = alice.post(
            "/uploads/chunked/",
            data=fields,
            HTTP_CONTENT_RANGE=f"bytes {start}-{end - 1}/{len(data)}",
        )
        assert response.status_code == 200, response.content
        upload_id = response.json()["upload_id"]
    return Upload.objects.get(pk=upload_id)


def complete(alice, upload, data):
    return alice.post(
        "/uploads/chunked/complete/",
        {"upload_id": str(upload.pk), "md5": hashlib.md5(data).hexdigest()},  # noqa: S324
    )


def test_a_finish_that_stopped_after_completing_the_file_is_run_again(alice, bucket):
    """The multipart upload completed at the finished key, then the finisher
    stopped before recording it: the next run finds the file there, hashes it
    and records it, and nothing else is left."""
    data = random.Random(14).randbytes(9 * MiB + 1)
    upload = send_held(alice, data)
    with staging.backend.open_locked(upload) as handle:
        staging.backend.seal(handle, upload.size)
    assert bucket.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []) == []
    response = complete(alice, upload, data)
    assert response.status_code == 200, response.content
    assert_finished(bucket, alice, str(upload.pk), data)
    assert objects(bucket) == [Upload.objects.get(pk=upload.pk).file.name]


def test_a_file_completed_but_refused_and_then_cancelled_leaves_nothing(alice, bucket):
    """A whole file whose md5 does not match goes back to `uploading`, its
    multipart upload already completed at the finished key; cancelled, that
    object goes too."""
    data = random.Random(15).randbytes(7 * MiB)
    upload = send_held(alice, data)
    response = complete(alice, upload, b"not the file")
    assert response.status_code == 400, response.content
    upload.refresh_from_db()
    assert upload.status == "uploading"
    engine.cancel(upload)
    assert objects(bucket) == []
    assert staged(bucket) == []


def test_an_upload_staged_before_the_finished_key_is_copied_there(alice, bucket):
    """An upload started by an older release: its multipart upload is
    `<prefix><id>/file`, its staging_ref `<part size>:<UploadId>`. It finishes
    with a server-side copy, and the staged file goes."""
    data = random.Random(16).randbytes(9 * MiB + 5)
    path = tus_create(alice, len(data))
    upload = Upload.objects.get()
    ref = json.loads(upload.staging_ref)
    bucket.abort_multipart_upload(Bucket=BUCKET, Key=ref["key"], UploadId=ref["upload_id"])
    old_key = f"{PREFIX}{upload.id.hex}/file"
    old = bucket.create_multipart_upload(Bucket=BUCKET, Key=old_key)
    Upload.objects.filter(pk=upload.pk).update(staging_ref=f"{ref['part_size']}:{old['UploadId']}")
    for offset in range(0, len(data), 4 * MiB):
        response = tus_patch(alice, path, offset, data[offset : offset + 4 * MiB])
        assert response.status_code == 204, response.content
    assert_finished(bucket, alice, str(upload.pk), data)
    assert objects(bucket) == [Upload.objects.get(pk=upload.pk).file.name]


def test_an_unreachable_bucket_is_503_and_the_retry_succeeds(alice, bucket, relay):
    chunk_size = 5 * MiB
    data = random.Random(9).randbytes(2 * chunk_size + 10)
    response = octet_chunk(alice, "/uploads/flow/", "flow", data, 1, chunk_size)
    assert response.status_code == 200
    relay.down()
    try:
        response = octet_chunk(alice, "/uploads/flow/", "flow", data, 2, chunk_size)
        assert response.status_code == 503, response.content
        assert "send this again" in response.json()["error"]
        assert int(response["Retry-After"]) > 0
        assert Upload.objects.get().received_bytes == chunk_size, "the refused chunk was recorded"
    finally:
        relay.up()
    response = octet_chunk(alice, "/uploads/flow/", "flow", data, 2, chunk_size)
    assert response.status_code == 200, response.content
    assert_finished(bucket, alice, response.json()["id"], data)


def test_a_bucket_that_refuses_a_chunk_is_503_not_500(alice, bucket, settings):
    data = random.Random(11).randbytes(10 * MiB)
    assert octet_chunk(alice, "/uploads/flow/", "flow", data, 1, 5 * MiB).status_code == 200
    settings.AWS_STORAGE_BUCKET_NAME = "a-bucket-nobody-made"
    response = octet_chunk(alice, "/uploads/flow/", "flow", data, 2, 5 * MiB)
    assert response.status_code == 503
    assert "(NoSuchBucket)" in response.json()["error"]
    assert Upload.objects.get().received_bytes == 5 * MiB


def test_memory_stays_bounded_for_64_mib_of_1_mib_pieces(alice, bucket):
    """Every request, the ones that gather 8 MiB parts and the last one that
    completes, hashes and copies 64 MiB, holds at most a few MiB above what it
    started with (the test client's copy of the 1 MiB body included)."""
    data = random.Random(10).randbytes(64 * MiB)
    path = tus_create(alice, len(data))
    # A process's first use of django-storages loads botocore's models (about 12 MiB, once).
    Upload._meta.get_field("file").storage.exists("warm-up")
    growth = []
    tracemalloc.start()
    try:
        for offset in range(0, len(data), MiB):
            body = data[offset : offset + MiB]
            gc.collect()  # the test client's earlier responses, kept by reference cycles
            before = tracemalloc.get_traced_memory()[0]
            tracemalloc.reset_peak()
            response = tus_patch(alice, path, offset, body)
            growth.append(tracemalloc.get_traced_memory()[1] - before)
            assert response.status_code == 204, response.content
    finally:
        tracemalloc.stop()
    assert max(growth) < 6 * MiB, f"a request held {max(growth) / MiB:.1f} MiB"
    upload_id = str(uuid.UUID(path.rstrip("/").rpartition("/")[2]))
    assert_finished(bucket, alice, upload_id, data)


@pytest.fixture
def read_from_bucket(monkeypatch):
    """The bytes this host GETs from the bucket (catching the hash up, finishing)."""
    counted = {"bytes": 0}
    staging.backend._setup()  # built now, so that its client can be wrapped
    client = staging.backend.client
    original = client.get_object

    def counting(**kwargs):
        answer = original(**kwargs)
        counted["bytes"] += answer["ContentLength"]
        return answer

    monkeypatch.setattr(client, "get_object", counting)
    return counted


@pytest.mark.parametrize("order", ["in order", "shuffled"])
def test_chunks_that_are_parts_are_hashed_as_they_arrive_and_read_back_once_at_most(
    alice, bucket, read_from_bucket, order
):
    """In order, every chunk is hashed as it streams into its part: the finisher
    reads nothing back. Out of order, a chunk ahead of the hashed bytes is kept
    as a piece, read back once the bytes before it are in, and copied into its
    part inside the bucket: no byte is read twice, and none is left as a piece."""
    chunk_size = 5 * MiB
    data = random.Random(7).randbytes(6 * chunk_size + 1234)
    numbers = list(range(1, chunk_count(len(data), chunk_size) + 1))
    if order == "shuffled":
        random.Random(2).shuffle(numbers)
    for number in numbers:
        response = octet_chunk(alice, "/uploads/flow/", "flow", data, number, chunk_size)
        assert response.status_code == 200, response.content
    upload = Upload.objects.get(pk=response.json()["id"])
    assert_finished(bucket, alice, upload.pk, data)
    if order == "in order":
        assert read_from_bucket["bytes"] == 0
    else:
        assert 0 < read_from_bucket["bytes"] <= len(data)
