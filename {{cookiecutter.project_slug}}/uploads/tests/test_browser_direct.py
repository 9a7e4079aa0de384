"""
Our upload page and form widget in direct mode (UPLOADS_DIRECT with a bucket):
the browser sends every part straight to the bucket through Uppy's AwsS3
plugin (drivers/s3.js), the site only signs and keeps the record.

No real S3 can run on the project's machines: the bucket is moto's
standalone server (buckets.py), with the CORS rule the README gives. The
browser and the site reach it through a ThrottlingProxy (throttle.py), so
that an upload takes seconds and can be caught half-way; the site signs its
URLs for that address, so every part PUT goes through the proxy, and the
tests count the ones the bucket answered.
"""

import hashlib
import os

import boto3
import pytest

from . import servers, test_browser
from .buckets import direct_env, moto_server, readme_cors
from .test_browser import Page, expect, make_file, sha256
from .throttle import ThrottlingProxy

browser = test_browser.browser  # the fixture: one Chromium for this module

pytestmark = [
    pytest.mark.server,
    pytest.mark.timeout(240),
    pytest.mark.skipif(
        not os.access(servers.CHROMIUM, os.X_OK),
        reason="Chromium is not installed: apt-get install chromium (never a downloaded browser)",
    ),
]

BUCKET = "direct-bucket"
MiB = 1024**2
PART = 5 * MiB
SIZE = 24 * MiB  # five parts: four of 5 MiB and one of 4 MiB
PARTS = 5
RATE = 6 * MiB  # bytes a second from the browser (and the site) to the bucket


@pytest.fixture(scope="module")
def bucket_proxy():
    with moto_server() as endpoint:
        proxy = ThrottlingProxy(int(endpoint.rsplit(":", 1)[1]), RATE)
        bucket = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        bucket.create_bucket(Bucket=BUCKET)
        yield bucket, proxy
        proxy.close()


@pytest.fixture(scope="module")
def site(tmp_path_factory, bucket_proxy):
    bucket, proxy = bucket_proxy
    folder = tmp_path_factory.mktemp("direct") / "site"
    site = servers.Site(folder, f"sqlite:///{folder / 'db.sqlite3'}", workers=3)
    site.env.update({**direct_env(BUCKET, proxy.url), "UPLOADS_CHUNK_SIZE": str(PART)})
    # The README's rule: PUT from the site's origin, ETag readable by its pages.
    bucket.put_bucket_cors(Bucket=BUCKET, CORSConfiguration=readme_cors(site.url))
    folder.mkdir(parents=True)
    site.start()
    yield site
    site.stop()


@pytest.fixture
def open_page(browser, site, bucket_proxy):
    pages = []

    def open_():
        page = Page(browser, site)
        pages.append(page)
        return page

    yield open_
    for page in pages:
        page.close()
    bucket_proxy[1].resume()


def part_puts(page, proxy):
    """The part PUTs the bucket stored (answered 200) from now on: their URLs."""
    stored = []

    def finished(request):
        if request.method == "PUT" and request.url.startswith(proxy.url):
            response = request.response()
            if response is not None and response.status == 200:
                stored.append(request.url)

    page.on("requestfinished", finished)
    return stored


def multipart_uploads(bucket):
    return bucket.list_multipart_uploads(Bucket=BUCKET).get("Uploads", [])


def parts_in_bucket(bucket, name):
    (upload,) = [u for u in multipart_uploads(bucket) if u["Key"].endswith("/" + name)]
    parts = bucket.list_parts(Bucket=BUCKET, Key=upload["Key"], UploadId=upload["UploadId"])
    return parts.get("Parts", [])


def assert_nothing_on_the_app_host(site):
    """No byte of a direct upload in the site's staging or media folders."""
    for folder in (site.staging, site.folder / "media"):
        found = [path for path in folder.rglob("*") if path.is_file()] if folder.exists() else []
        assert found == [], f"written to the app host: {found}"


def wait_complete(tab, name):
    tab.wait_state(name, "complete")
    upload = tab.upload_named(name)
    assert upload["status"] == "complete"
    return upload


def test_the_page_sends_a_file_straight_into_the_bucket(open_page, tmp_path, site, bucket_proxy):
    bucket, proxy = bucket_proxy
    tab = open_page()
    path = make_file(tmp_path, "film.bin", SIZE, "film")
    puts = part_puts(tab.page, proxy)
    through_site = []
    tab.page.on(
        "request",
        lambda request: (
            through_site.append(request.url)
            if request.url.startswith(site.url) and request.method in ("PUT", "POST")
            else None
        ),
    )
    tab.choose(path)
    # Speed and time left show as for the site's own endpoints.
    expect(tab.row("film.bin").locator(".upload-speed")).to_contain_text("/s")
    upload = wait_complete(tab, "film.bin")
    assert upload["protocol"] == "s3"
    assert upload["size"] == SIZE
    assert upload["sha256"] == sha256(path)
    assert tab.downloaded_sha256(upload) == sha256(path)
    assert len(puts) == PARTS
    # Only the small JSON requests of the signing routes went to the site.
    assert all("/uploads/companion/s3/" in url for url in through_site), through_site
    assert multipart_uploads(bucket) == []
    assert_nothing_on_the_app_host(site)
    tab.assert_no_console_errors()


def test_pause_reload_and_choosing_again_sends_only_the_missing_parts(
    open_page, tmp_path, site, bucket_proxy
):
    bucket, proxy = bucket_proxy
    tab = open_page()
    path = make_file(tmp_path, "archive.bin", SIZE, "archive")
    puts = part_puts(tab.page, proxy)
    tab.choose(path)
    tab.wait_until(lambda: len(puts) >= 2, "two parts in the bucket")
    tab.row("archive.bin").get_by_role("button", name="Pause").click()
    tab.wait_state("archive.bin", "paused")
    stored = len(parts_in_bucket(bucket, "archive.bin"))
    assert 2 <= stored < PARTS

    tab.page.reload()
    expect(tab.page.locator("#uploads-unfinished")).to_be_visible()
    again = part_puts(tab.page, proxy)
    tab.choose(path)
    upload = wait_complete(tab, "archive.bin")
    assert len(again) == PARTS - stored, f"sent {len(again)} parts again, {stored} were there"
    assert upload["sha256"] == sha256(path)
    assert tab.downloaded_sha256(upload) == sha256(path)
    assert multipart_uploads(bucket) == []
    assert_nothing_on_the_app_host(site)
    tab.assert_no_console_errors()


def test_cancel_aborts_the_multipart_upload(open_page, tmp_path, bucket_proxy):
    bucket, proxy = bucket_proxy
    tab = open_page()
    path = make_file(tmp_path, "mistake.bin", SIZE, "mistake")
    puts = part_puts(tab.page, proxy)
    tab.choose(path)
    tab.wait_until(lambda: len(puts) >= 1, "a part in the bucket")
    upload = tab.upload_named("mistake.bin")
    assert upload["status"] == "uploading"
    tab.row("mistake.bin").get_by_role("button", name="Cancel mistake.bin").click()
    expect(tab.row("mistake.bin").locator(".upload-message")).to_contain_text("deleted")
    tab.wait_until(lambda: multipart_uploads(bucket) == [], "the multipart upload aborted")
    assert tab.api(f"/uploads/api/uploads/{upload['id']}/")["status"] == "cancelled"
    # Chosen again after a cancel: a new upload, from its first part.
    tab.row("mistake.bin").get_by_role("button", name="Remove").click()
    expect(tab.row("mistake.bin")).to_have_count(0)
    again = part_puts(tab.page, proxy)
    tab.choose(path)
    second = wait_complete(tab, "mistake.bin")
    assert second["id"] != upload["id"]
    assert len(again) == PARTS
    tab.assert_no_console_errors()


def test_the_form_widget_fills_its_field_and_the_form_saves(open_page, tmp_path, site):
    tab = open_page()
    path = make_file(tmp_path, "contract.pdf", 7 * MiB, "contract")
    tab.goto("/documents/new/")
    tab.page.fill("input[name=title]", "Signed straight into the bucket")
    tab.choose(path)
    upload = wait_complete(tab, "contract.pdf")
    expect(tab.page.locator("input.upload-value")).to_have_value(upload["id"])
    tab.page.get_by_role("button", name="Save").click()
    tab.page.wait_for_url("**/documents/")
    row = tab.page.locator("#documents-table tr", has_text="Signed straight into the bucket")
    link = row.get_by_role("link", name=path.name)
    response = tab.page.request.get(site.url + link.get_attribute("href"))
    assert hashlib.sha256(response.body()).hexdigest() == sha256(path)
    assert_nothing_on_the_app_host(site)
    tab.assert_no_console_errors()


def test_a_file_under_one_part_goes_as_one_signed_post(open_page, tmp_path, site, bucket_proxy):
    bucket, proxy = bucket_proxy
    tab = open_page()
    path = make_file(tmp_path, "note.txt", 300 * 1024, "note")
    posts = []
    tab.page.on(
        "requestfinished",
        lambda request: (
            posts.append(request.url)
            if request.method == "POST" and request.url.startswith(proxy.url)
            else None
        ),
    )
    tab.choose(path)
    upload = wait_complete(tab, "note.txt")
    assert upload["protocol"] == "s3"
    assert upload["sha256"] == sha256(path)
    assert tab.downloaded_sha256(upload) == sha256(path)
    assert len(posts) == 1
    assert_nothing_on_the_app_host(site)
    # moto exposes no header on a POST's answer, whatever the CORS rule says;
    # AwsS3 reads the ETag there but needs none.
    tab.errors = [error for error in tab.errors if 'unsafe header "etag"' not in error]
    tab.assert_no_console_errors()
