"""
Straight into the bucket (UPLOADS_DIRECT): the Companion-compatible routes
Uppy's AwsS3 plugin calls, with the parts PUT to the signed URLs as a browser
would, never through the site.

No real S3 can run on the project's machines: these tests talk to moto's
standalone server (buckets.py). moto does not check signatures, so what a
signed URL is bound to is checked on the URL itself (its signature covers
the key, the UploadId and the part number), not by moto refusing it.
"""

import base64
import hashlib
import hmac
import json
import random
from datetime import timedelta
from urllib.parse import parse_qs, quote, urlsplit

import boto3
import pytest
import requests
from django.core.management import call_command
from django.utils import timezone
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from storages.backends.s3 import S3Storage

from uploads import staging
from uploads.models import Upload
from uploads.signals import upload_completed

from .buckets import moto_server

pytestmark = pytest.mark.django_db

BUCKET = "direct-bucket"
MiB = 1024**2
ROUTES = "/uploads/companion/s3"
# What a browser's fetch() from the site's own page says (Uppy sends no CSRF header).
SAME_ORIGIN = {"HTTP_SEC_FETCH_SITE": "same-origin"}


@pytest.fixture(scope="module")
def endpoint():
    with moto_server() as url:
        yield url


@pytest.fixture
def bucket(endpoint, settings, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    client.create_bucket(Bucket=BUCKET)
    settings.AWS_STORAGE_BUCKET_NAME = BUCKET
    settings.AWS_S3_ENDPOINT_URL = endpoint
    settings.AWS_S3_REGION_NAME = "us-east-1"
    settings.UPLOADS_DIRECT = True
    storage = S3Storage(
        bucket_name=BUCKET, endpoint_url=endpoint, region_name="us-east-1", default_acl="private"
    )
    monkeypatch.setattr(Upload._meta.get_field("file"), "storage", storage)
    yield client
    for upload in client.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []):
        client.abort_multipart_upload(Bucket=BUCKET, Key=upload["Key"], UploadId=upload["UploadId"])
    for item in client.list_objects_v2(Bucket=BUCKET).get("Contents", []):
        client.delete_object(Bucket=BUCKET, Key=item["Key"])
    client.delete_bucket(Bucket=BUCKET)


def create(client, filename="scan.bin", size=None, **extra):
    metadata = {"name": filename, "type": "application/octet-stream"}
    if size is not None:
        metadata["size"] = size
    body = {"filename": filename, "type": "application/octet-stream", "metadata": metadata}
    return client.post(
        f"{ROUTES}/multipart",
        data=json.dumps(body),
        content_type="application/json",
        **{**SAME_ORIGIN, **extra},
    )


def put_parts(client, created, data, part_size):
    """Each part PUT to its signed URL, as Uppy does; the parts as complete wants them."""
    parts = []
    for number, start in enumerate(range(0, len(data), part_size), start=1):
        signed = client.get(
            f"{ROUTES}/multipart/{created['uploadId']}/{number}",
            {"key": created["key"]},
            **SAME_ORIGIN,
        )
        assert signed.status_code == 200, signed.content
        answer = requests.put(
            signed.json()["url"], data=data[start : start + part_size], timeout=30
        )
        assert answer.status_code == 200, answer.text
        parts.append({"PartNumber": number, "ETag": answer.headers["ETag"]})
    return parts


def complete(client, created, parts, **extra):
    return client.post(
        f"{ROUTES}/multipart/{created['uploadId']}/complete?key={created['key']}",
        data=json.dumps({"parts": parts}),
        content_type="application/json",
        **{**SAME_ORIGIN, **extra},
    )


def in_bucket(bucket):
    objects = [item["Key"] for item in bucket.list_objects_v2(Bucket=BUCKET).get("Contents", [])]
    uploads = bucket.list_multipart_uploads(Bucket=BUCKET).get("Uploads", [])
    return objects + [f"multipart {upload['Key']}" for upload in uploads]


def assert_nothing_on_this_host(settings):
    for folder in (settings.MEDIA_ROOT, staging.backend.directory()):
        assert not folder.exists() or not any(folder.rglob("*")), f"bytes written in {folder}"


def test_a_file_in_5_mib_parts_is_complete_with_its_sha256(alice, user, bucket, settings):
    data = random.Random(1).randbytes(12 * MiB + 321)
    completed = []
    upload_completed.connect(lambda upload, **kw: completed.append(upload.pk), weak=False)
    created = create(alice, size=len(data))
    assert created.status_code == 200, created.content
    created = created.json()
    assert created["key"] == f"direct/{user.pk}/{created['uploadId'].replace('-', '')}/scan.bin"

    parts = put_parts(alice, created, data, 5 * MiB)
    listed = alice.get(
        f"{ROUTES}/multipart/{created['uploadId']}", {"key": created["key"]}, **SAME_ORIGIN
    ).json()
    assert [(p["PartNumber"], p["Size"]) for p in listed] == [
        (1, 5 * MiB),
        (2, 5 * MiB),
        (3, 2 * MiB + 321),
    ]
    answer = complete(alice, created, parts)
    assert answer.status_code == 200, answer.content
    assert answer.json()["key"] == created["key"]

    status = alice.get(f"/uploads/api/uploads/{created['uploadId']}/").json()
    assert status["status"] == "complete", status
    assert status["protocol"] == "s3"
    assert status["size"] == len(data)
    assert status["sha256"] == hashlib.sha256(data).hexdigest()
    assert in_bucket(bucket) == [created["key"]]
    assert completed == [Upload.objects.get().pk]
    assert_nothing_on_this_host(settings)
    # The download is the bucket's signed URL of that object.
    download = alice.get(status["download_url"])
    assert download.status_code == 302
    assert requests.get(download["Location"], timeout=30).content == data


def routes_of(created, number=1):
    """Every route of one upload: (method, path, JSON body or None)."""
    upload_id, key = created["uploadId"], created["key"]
    return [
        ("get", f"{ROUTES}/multipart/{upload_id}/{number}?key={key}", None),
        ("get", f"{ROUTES}/multipart/{upload_id}?key={key}", None),
        ("post", f"{ROUTES}/multipart/{upload_id}/complete?key={key}", {"parts": []}),
        ("delete", f"{ROUTES}/multipart/{upload_id}?key={key}", None),
    ]


def call(client, method, path, body):
    extra = {"data": json.dumps(body), "content_type": "application/json"} if body else {}
    return getattr(client, method)(path, **extra, **SAME_ORIGIN)


def test_another_users_upload_or_key_is_404_on_every_route(alice, client, other_user, bucket):
    created = create(alice, size=6 * MiB).json()
    mine = create(alice, "mine.bin", size=6 * MiB).json()
    client.force_login(other_user)  # the same test client, now bob's
    for method, path, body in routes_of(created):
        answer = call(client, method, path, body)
        assert answer.status_code == 404, (method, path, answer.content)
        assert "error" in answer.json()
    # Alice herself, naming one of her uploads with the key of another.
    client.force_login(Upload.objects.first().owner)
    for method, path, body in routes_of({"uploadId": created["uploadId"], "key": mine["key"]}):
        answer = call(client, method, path, body)
        assert answer.status_code == 404, (method, path, answer.content)
    assert set(Upload.objects.values_list("status", flat=True)) == {"uploading"}
    assert len(bucket.list_multipart_uploads(Bucket=BUCKET)["Uploads"]) == 2


# moto's (and the tests') secret access key.
SECRET = "testing"  # noqa: S105


def _sigv4_signature(url):
    """The SigV4 query signature S3 computes for this URL as it stands (a PUT, host signed)."""
    parts = urlsplit(url)
    query = {name: values[0] for name, values in parse_qs(parts.query).items()}
    sent = query.pop("X-Amz-Signature")
    canonical_query = "&".join(
        f"{quote(name, safe='-_.~')}={quote(value, safe='-_.~')}"
        for name, value in sorted(query.items())
    )
    canonical = "\n".join(
        ["PUT", parts.path, canonical_query, f"host:{parts.netloc}\n", "host", "UNSIGNED-PAYLOAD"]
    )
    scope = query["X-Amz-Credential"].split("/", 1)[1]
    to_sign = "\n".join(
        [
            "AWS4-HMAC-SHA256",
            query["X-Amz-Date"],
            scope,
            hashlib.sha256(canonical.encode()).hexdigest(),
        ]
    )
    key = ("AWS4" + SECRET).encode()
    for step in scope.split("/"):
        key = hmac.new(key, step.encode(), hashlib.sha256).digest()
    return sent, hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


def test_a_part_url_is_signed_for_one_part_of_one_upload(alice, bucket, settings):
    """moto accepts any signature; S3 checks this one, computed here as S3 does."""
    first = create(alice, "a.bin", size=12 * MiB).json()
    second = create(alice, "b.bin", size=12 * MiB).json()
    url = alice.get(
        f"{ROUTES}/multipart/{first['uploadId']}/2", {"key": first["key"]}, **SAME_ORIGIN
    ).json()["url"]
    sent, computed = _sigv4_signature(url)
    assert sent == computed  # the URL as signed is valid
    lifetime = parse_qs(urlsplit(url).query)["X-Amz-Expires"]
    assert lifetime == [str(int(timedelta(minutes=15).total_seconds()))]

    theirs = Upload.objects.get(pk=second["uploadId"]).staging_ref
    ours = Upload.objects.get(pk=first["uploadId"]).staging_ref
    assert ours in url
    tampered = [
        url.replace(ours, theirs),  # the other upload's multipart upload
        url.replace(first["key"].rsplit("/", 1)[0], second["key"].rsplit("/", 1)[0]),  # its key
        url.replace("partNumber=2", "partNumber=3"),  # another part
        url.replace("X-Amz-Expires=900", "X-Amz-Expires=604800"),  # a longer life
    ]
    for other in tampered:
        assert other != url
        sent, computed = _sigv4_signature(other)
        assert sent != computed, other


def test_cancel_aborts_the_multipart_upload(alice, bucket):
    data = random.Random(2).randbytes(6 * MiB)
    created = create(alice, size=len(data)).json()
    put_parts(alice, created, data[: 5 * MiB], 5 * MiB)
    answer = alice.delete(
        f"{ROUTES}/multipart/{created['uploadId']}?key={created['key']}", **SAME_ORIGIN
    )
    assert answer.status_code == 200, answer.content
    assert alice.get(f"/uploads/api/uploads/{created['uploadId']}/").json()["status"] == "cancelled"
    assert in_bucket(bucket) == []
    # And the upload signs nothing any more.
    signed = alice.get(
        f"{ROUTES}/multipart/{created['uploadId']}/2", {"key": created["key"]}, **SAME_ORIGIN
    )
    assert signed.status_code == 410, signed.content


def test_the_status_apis_delete_aborts_it_too(alice, bucket):
    created = create(alice, size=6 * MiB).json()
    assert alice.delete(f"/uploads/api/uploads/{created['uploadId']}/").status_code == 204
    assert in_bucket(bucket) == []


def test_cleanup_aborts_abandoned_and_orphaned_multipart_uploads(alice, user, bucket, settings):
    settings.UPLOADS_CLEANUP_GRACE = timedelta(0)
    data = random.Random(3).randbytes(5 * MiB)
    abandoned = create(alice, "abandoned.bin", size=12 * MiB).json()
    put_parts(alice, abandoned, data, 5 * MiB)
    alive = create(alice, "alive.bin", size=12 * MiB).json()
    # A browser's multipart upload whose record never committed.
    orphan = f"direct/{user.pk}/{'0' * 32}/lost.bin"
    bucket.create_multipart_upload(Bucket=BUCKET, Key=orphan)
    Upload.objects.filter(pk=abandoned["uploadId"]).update(
        expires=timezone.now() - timedelta(minutes=1)
    )

    call_command("cleanup_uploads", verbosity=0)

    assert Upload.objects.get(pk=abandoned["uploadId"]).status == "expired"
    assert Upload.objects.get(pk=alive["uploadId"]).status == "uploading"
    assert in_bucket(bucket) == [f"multipart {alive['key']}"]


def test_an_object_of_another_size_than_declared_is_refused_and_deleted(alice, bucket):
    data = random.Random(4).randbytes(6 * MiB)
    created = create(alice, size=len(data) + 1).json()  # one byte more than it sends
    answer = complete(alice, created, put_parts(alice, created, data, 5 * MiB))
    assert answer.status_code == 200, answer.content
    status = alice.get(f"/uploads/api/uploads/{created['uploadId']}/").json()
    assert status["status"] == "failed"
    assert status["sha256"] is None
    assert "6291456 bytes, not the 6291457 declared" in status["error"]
    assert in_bucket(bucket) == []


def test_without_a_declared_size_the_parts_give_it_and_the_limit_holds(alice, bucket, settings):
    data = random.Random(5).randbytes(6 * MiB)
    created = create(alice).json()
    parts = put_parts(alice, created, data, 5 * MiB)
    settings.UPLOADS_MAX_BYTES = 6 * MiB - 1
    answer = complete(alice, created, parts)
    assert answer.status_code == 413, answer.content
    assert Upload.objects.get().status == "cancelled"
    assert in_bucket(bucket) == []

    settings.UPLOADS_MAX_BYTES = 6 * MiB
    created = create(alice).json()
    assert complete(alice, created, put_parts(alice, created, data, 5 * MiB)).status_code == 200
    status = alice.get(f"/uploads/api/uploads/{created['uploadId']}/").json()
    assert (status["status"], status["size"]) == ("complete", len(data))
    assert status["sha256"] == hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize(
    "headers",
    [
        {"HTTP_SEC_FETCH_SITE": "cross-site"},
        {"HTTP_SEC_FETCH_SITE": "same-site"},
        {"HTTP_ORIGIN": "https://evil.example"},
        {"HTTP_SEC_FETCH_SITE": None},  # says nothing of where it comes from, and no token
    ],
    ids=["cross-site", "same-site", "other-origin", "unsaid"],
)
def test_a_request_from_another_site_creates_and_completes_nothing(alice, bucket, headers):
    created = create(alice, size=6 * MiB).json()
    headers = {name: value for name, value in headers.items() if value is not None}
    for path, body in [
        (f"{ROUTES}/multipart", {"filename": "x.bin", "type": "application/octet-stream"}),
        (
            f"{ROUTES}/multipart/{created['uploadId']}/complete?key={created['key']}",
            {"parts": [{"PartNumber": 1, "ETag": "x"}]},
        ),
    ]:
        answer = alice.post(path, data=json.dumps(body), content_type="application/json", **headers)
        assert answer.status_code == 403, answer.content
        assert "error" in answer.json()
    forged = alice.delete(
        f"{ROUTES}/multipart/{created['uploadId']}?key={created['key']}", **headers
    )
    assert forged.status_code == 403
    if "HTTP_SEC_FETCH_SITE" in headers:
        signed_post = alice.get(f"{ROUTES}/params", {"filename": "x.bin"}, **headers)
        assert signed_post.status_code == 403
    assert list(Upload.objects.values_list("status", flat=True)) == ["uploading"]
    assert len(in_bucket(bucket)) == 1


def test_a_form_cannot_send_json_as_text(alice, bucket):
    """A cross-site form can send text/plain without a preflight: it is not JSON here."""
    body = '{"filename": "x.bin", "type": "application/octet-stream", "a": "="}'
    answer = alice.post(
        f"{ROUTES}/multipart",
        data=body,
        content_type="text/plain",
        HTTP_ORIGIN="http://testserver",
    )
    assert answer.status_code == 400
    assert Upload.objects.count() == 0


def test_a_valid_csrf_token_or_an_api_token_is_enough(client, user, bucket):
    from uploads import tokens

    token = tokens.create(user, "script")[1]
    answer = client.post(
        f"{ROUTES}/multipart",
        data=json.dumps({"filename": "script.bin", "metadata": {"size": 10}}),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )
    assert answer.status_code == 200, answer.content
    client.force_login(user)
    with_header = client.post(
        f"{ROUTES}/multipart",
        data=json.dumps({"filename": "page.bin"}),
        content_type="application/json",
        HTTP_X_CSRFTOKEN="anything: the test client does not enforce CSRF",
    )
    assert with_header.status_code == 200, with_header.content


def test_limits_at_creation_and_nothing_in_the_bucket(alice, bucket, settings):
    settings.UPLOADS_MAX_BYTES = 10 * MiB
    settings.UPLOADS_ALLOWED_EXTENSIONS = ["bin"]
    settings.UPLOADS_USER_QUOTA = 15 * MiB
    settings.UPLOADS_MAX_ACTIVE_UPLOADS = 2
    assert create(alice, size=10 * MiB + 1).status_code == 413
    assert create(alice, "movie.exe", size=1).status_code == 415
    assert create(alice, size=8 * MiB).status_code == 200
    assert create(alice, size=8 * MiB).status_code == 413  # past the quota
    assert create(alice, size=1).status_code == 200
    assert create(alice, size=1).status_code == 429
    assert Upload.objects.count() == 2
    assert len(in_bucket(bucket)) == 2


@pytest.mark.parametrize(
    "body, error",
    [
        ("not json", "not valid JSON"),
        ("[1, 2]", "must be an object"),
        ('{"type": "application/pdf"}', "filename is missing"),
        ('{"filename": "a.bin", "type": "not a type"}', "media type"),
        ('{"filename": "a.bin", "metadata": []}', "metadata must be an object"),
        ('{"filename": "a.bin", "size": -1}', "must not be negative"),
        ('{"filename": "a.bin", "size": "12kB"}', "whole number"),
        ('{"filename": "a.bin", "size": 1e3}', "whole number"),
    ],
)
def test_a_bad_create_is_a_precise_400(alice, bucket, body, error):
    answer = alice.post(
        f"{ROUTES}/multipart", data=body, content_type="application/json", **SAME_ORIGIN
    )
    assert answer.status_code == 400, answer.content
    assert error in answer.json()["error"]
    assert Upload.objects.count() == 0
    assert in_bucket(bucket) == []


def test_bad_part_numbers_and_parts_are_precise_400s(alice, bucket):
    created = create(alice, size=6 * MiB).json()
    base = f"{ROUTES}/multipart/{created['uploadId']}"
    for number in ("0", "3", "-1", "x", "99999999999999999999999"):
        answer = alice.get(f"{base}/{number}", {"key": created["key"]}, **SAME_ORIGIN)
        assert answer.status_code == 400, (number, answer.content)
    assert alice.get(f"{base}/1", **SAME_ORIGIN).status_code == 400  # no key
    for parts in (
        None,
        [],
        [{"PartNumber": 1}],
        [{"PartNumber": 2, "ETag": "a"}, {"PartNumber": 1, "ETag": "b"}],
        [{"PartNumber": True, "ETag": "a"}],
        ["1"],
    ):
        answer = complete(alice, created, parts)
        assert answer.status_code == 400, (parts, answer.content)
    # Parts the bucket does not have: its refusal, as a 400.
    answer = complete(alice, created, [{"PartNumber": 1, "ETag": '"0123"'}])
    assert answer.status_code == 400, answer.content
    assert Upload.objects.get().status == "uploading"


def test_a_small_file_in_one_signed_post(alice, user, bucket):
    data = random.Random(6).randbytes(300 * 1024)
    answer = alice.get(
        f"{ROUTES}/params",
        {"filename": "note.txt", "type": "text/plain", "metadata[size]": str(len(data))},
        **SAME_ORIGIN,
    )
    assert answer.status_code == 200, answer.content
    signed = answer.json()
    assert signed["method"] == "POST"
    assert signed["fields"]["key"].startswith(f"direct/{user.pk}/")
    policy = json.loads(base64.b64decode(signed["fields"]["policy"]))
    assert ["content-length-range", len(data), len(data)] in policy["conditions"]
    posted = requests.post(
        signed["url"], data=signed["fields"], files={"file": ("note.txt", data)}, timeout=30
    )
    assert posted.status_code in (200, 204), posted.text
    # The bucket tells the site nothing: the status API's read finds the object.
    status = alice.get(f"/uploads/api/uploads/{signed['uploadId']}/").json()
    assert status["status"] == "complete", status
    assert status["sha256"] == hashlib.sha256(data).hexdigest()


def test_direct_uploads_off_is_404_everywhere(alice, bucket, settings):
    settings.UPLOADS_DIRECT = False
    answer = create(alice, size=1)
    assert answer.status_code == 404
    assert "UPLOADS_DIRECT" in answer.json()["error"]
    assert alice.get(f"{ROUTES}/params", {"filename": "a.txt"}).status_code == 404
    assert Upload.objects.count() == 0


def test_without_login_nothing_is_signed(client, bucket):
    answer = client.post(
        f"{ROUTES}/multipart",
        data=json.dumps({"filename": "a.bin"}),
        content_type="application/json",
        **SAME_ORIGIN,
    )
    assert answer.status_code == 403
    assert in_bucket(bucket) == []


def test_an_unreachable_bucket_is_503_and_records_nothing(alice, bucket, settings):
    settings.AWS_S3_ENDPOINT_URL = "http://127.0.0.1:9"  # nothing listens there
    answer = create(alice, size=1)
    assert answer.status_code == 503, answer.content
    assert answer["Retry-After"] == "5"
    assert Upload.objects.count() == 0


def test_nul_characters_and_deep_nesting_are_400s_not_500s(alice, bucket):
    for body in (
        '{"filename": "a.bin", "metadata": {"relativePath": "a\\u0000b"}}',
        '{"filename": "a.bin", "metadata": {"note\\u0000": 1}}',
        '{"filename": "a\\u0000.bin"}',
        '{"filename": "a.bin", "metadata": ' + "[" * 100_000 + "]" * 100_000 + "}",
    ):
        answer = alice.post(
            f"{ROUTES}/multipart", data=body, content_type="application/json", **SAME_ORIGIN
        )
        assert answer.status_code == 400, answer.content
    answer = alice.get(
        f"{ROUTES}/params", {"filename": "a.txt", "metadata[note]": "a\x00b"}, **SAME_ORIGIN
    )
    assert answer.status_code == 400
    assert Upload.objects.count() == 0


def test_complete_sent_again_answers_the_same(alice, bucket):
    data = random.Random(7).randbytes(5 * MiB + 1)
    created = create(alice, size=len(data)).json()
    parts = put_parts(alice, created, data, 5 * MiB)
    first = complete(alice, created, parts)
    again = complete(alice, created, parts)  # a retry whose first answer was lost
    assert first.status_code == again.status_code == 200, again.content
    assert again.json()["status"] == "complete"
    assert Upload.objects.get().sha256 == hashlib.sha256(data).hexdigest()


def test_a_verify_whose_finisher_stopped_is_taken_over_by_cleanup(alice, bucket, settings):
    """The lease of the engine's finishing: a verify that died is run again, once."""
    data = random.Random(8).randbytes(5 * MiB + 7)
    created = create(alice, size=len(data)).json()
    parts = put_parts(alice, created, data, 5 * MiB)
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"  # a broker that takes nothing
    completed = []
    upload_completed.connect(lambda upload, **kw: completed.append(upload.pk), weak=False)
    assert complete(alice, created, parts).status_code == 200
    upload = Upload.objects.get()
    assert upload.status == "processing"
    settings.CELERY_BROKER_URL = ""
    Upload.objects.filter(pk=upload.pk).update(
        finishing_until=timezone.now() - timedelta(seconds=1)
    )
    call_command("cleanup_uploads", verbosity=0)
    call_command("cleanup_uploads", verbosity=0)
    upload.refresh_from_db()
    assert (upload.status, upload.sha256) == ("complete", hashlib.sha256(data).hexdigest())
    assert completed == [upload.pk]


def test_the_admin_shows_direct_uploads_and_cancels_them(client, user, bucket, admin_user):
    client.force_login(user)
    data = random.Random(9).randbytes(5 * MiB + 9)
    done = create(client, "done.bin", size=len(data)).json()
    assert complete(client, done, put_parts(client, done, data, 5 * MiB)).status_code == 200
    going = create(client, "going.bin", size=len(data)).json()
    client.force_login(admin_user)
    listing = client.get("/admin/uploads/upload/?protocol__exact=s3")
    assert listing.status_code == 200
    assert b"done.bin" in listing.content and b"going.bin" in listing.content
    assert client.get(f"/admin/uploads/upload/{done['uploadId']}/change/").status_code == 200
    answer = client.post(
        "/admin/uploads/upload/",
        {"action": "cancel_uploads", "_selected_action": [going["uploadId"], done["uploadId"]]},
    )
    assert answer.status_code == 302
    assert Upload.objects.get(pk=going["uploadId"]).status == "cancelled"
    assert in_bucket(bucket) == [done["key"]]
    # And verify_uploads reads the finished object back, like any stored file.
    call_command("verify_uploads", verbosity=0)
    assert Upload.objects.get(pk=done["uploadId"]).status == "complete"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
create_bodies = st.one_of(
    st.fixed_dictionaries(
        {},
        optional={
            "filename": json_values | st.text(max_size=300),
            "type": json_values | st.sampled_from(["text/plain", "a/b", "x"]),
            "metadata": json_values
            | st.fixed_dictionaries({}, optional={"size": json_values, "relativePath": st.text()}),
            "size": json_values | st.integers(-3, 2**64).map(str),
        },
    ),
    json_values,
)


@given(body=create_bodies)
@hsettings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_no_create_body_answers_500(alice, bucket, body):
    answer = alice.post(
        f"{ROUTES}/multipart", data=json.dumps(body), content_type="application/json", **SAME_ORIGIN
    )
    assert answer.status_code < 500, answer.content
    assert "error" in answer.json() or answer.status_code == 200


@given(
    query=st.dictionaries(
        st.sampled_from(["filename", "type", "size", "metadata[size]", "metadata[x]", "key"]),
        st.text(max_size=40) | st.integers(-3, 2**64).map(str),
        max_size=5,
    ),
    path=st.sampled_from(["params", "multipart/x", "multipart/x/1", "multipart/x/complete"]),
)
@hsettings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_no_query_answers_500(alice, bucket, query, path):
    answer = alice.get(f"{ROUTES}/{path}", query, **SAME_ORIGIN)
    assert answer.status_code < 500, answer.content


def test_a_multipart_upload_the_bucket_dropped_is_gone_not_500(alice, bucket):
    """Aborted behind the site's back, by the bucket's lifecycle rule say."""
    created = create(alice).json()
    staged = Upload.objects.get().staging_ref
    bucket.abort_multipart_upload(Bucket=BUCKET, Key=created["key"], UploadId=staged)
    listed = alice.get(
        f"{ROUTES}/multipart/{created['uploadId']}", {"key": created["key"]}, **SAME_ORIGIN
    )
    assert listed.status_code == 410, listed.content
    answer = complete(alice, created, [{"PartNumber": 1, "ETag": '"x"'}])
    assert answer.status_code == 410, answer.content
