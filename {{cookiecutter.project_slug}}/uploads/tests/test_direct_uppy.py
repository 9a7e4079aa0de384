"""
Uppy (the vendored all-in-one bundle, unchanged) with its Dashboard and the
AwsS3 plugin pointed at the site (`companionEndpoint: '/uploads/companion'`),
in Chromium, uploading straight into the bucket; the site on gunicorn with
PostgreSQL, verifying on a real Celery worker.

No real S3 can run on the project's machines: the bucket is moto's
standalone server (buckets.py), with the CORS rule the README gives.
"""

import hashlib
import os
import random
import re
import time

import boto3
import pytest
import requests

from . import servers
from .buckets import direct_env, moto_server, readme_cors
from .test_s3_hosts import FINISHED_BY_CELERY, Worker, broker_url

sync_api = pytest.importorskip(
    "playwright.sync_api",
    reason="Playwright is not installed: pip install -r requirements-dev.txt",
)

pytestmark = [
    pytest.mark.server,
    pytest.mark.scale,
    pytest.mark.timeout(300),
    pytest.mark.skipif(
        not os.access(servers.CHROMIUM, os.X_OK),
        reason="Chromium is not installed: apt-get install chromium (never a downloaded browser)",
    ),
]

BUCKET = "direct-uploads"
MiB = 1024**2
WAIT_MS = 120_000

# What a site that wants Uppy's Dashboard instead of the upload page writes (README).
UPPY_PAGE = """
import { Uppy, Dashboard, AwsS3 } from "/static/uploads/vendor/uppy/uppy.min.mjs";
const uppy = new Uppy();
uppy.use(Dashboard, { inline: true, target: "#uppy" });
uppy.use(AwsS3, {
  companionEndpoint: "/uploads/companion",
  shouldUseMultipart: true,
  getChunkSize: () => 5 * 1024 * 1024,
});
// The declared size, so that the site checks it before the first byte.
uppy.on("file-added", (file) => uppy.setFileMeta(file.id, { size: file.size }));
uppy.on("complete", (result) => { window.uppyResult = result; });
window.uppy = uppy;
"""


@pytest.fixture(scope="module")
def direct_site(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("direct")
    broker = broker_url()
    with moto_server() as endpoint, servers.postgres_database() as database_url:
        bucket = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        bucket.create_bucket(Bucket=BUCKET)
        site = servers.Site(tmp_path / "site", database_url, workers=2)
        site.env.update({**direct_env(BUCKET, endpoint), "CELERY_BROKER_URL": broker})
        bucket.put_bucket_cors(Bucket=BUCKET, CORSConfiguration=readme_cors(site.url))
        worker = Worker(tmp_path / "worker", site.env)
        try:
            site.folder.mkdir(parents=True)
            site.start()
            worker.start()
            yield site, bucket, endpoint, worker
        finally:
            site.stop()
            worker.stop()


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=servers.CHROMIUM, headless=True, args=servers.CHROMIUM_ARGS
        )
        yield browser
        browser.close()


def logged_in_page(browser, site):
    context = browser.new_context()
    context.set_default_timeout(WAIT_MS)
    page = context.new_page()
    page.goto(f"{site.url}/accounts/login/")
    page.fill("input[name=username]", site.username)
    page.fill("input[name=password]", site.password)
    page.click("form button[type=submit], form input[type=submit]")
    page.wait_for_url("**/uploads/")
    return page


def wait_for_status(page, site, upload_id, status):
    deadline = time.monotonic() + WAIT_MS / 1000
    while True:
        answer = page.request.get(f"{site.url}/uploads/api/uploads/{upload_id}/").json()
        if answer["status"] == status or time.monotonic() > deadline:
            return answer
        time.sleep(0.1)


def test_uppy_dashboard_uploads_24_mib_in_5_mib_parts_into_the_bucket(
    direct_site, browser, tmp_path
):
    site, bucket, endpoint, worker = direct_site
    data = random.Random(24).randbytes(24 * MiB)
    path = tmp_path / "survey.bin"
    path.write_bytes(data)
    page = logged_in_page(browser, site)
    errors, part_puts, through_site = [], [], []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on(
        "request",
        lambda request: (
            part_puts.append(request.url)
            if request.method == "PUT" and request.url.startswith(endpoint)
            else through_site.append(request.post_data_buffer or b"")
            if request.url.startswith(site.url)
            else None
        ),
    )

    page.evaluate("document.body.insertAdjacentHTML('beforeend', '<div id=\"uppy\"></div>')")
    page.add_style_tag(url="/static/uploads/vendor/uppy/uppy.min.css")
    page.add_script_tag(type="module", content=UPPY_PAGE)
    page.wait_for_function("window.uppy !== undefined")
    page.set_input_files("#uppy .uppy-Dashboard-input >> nth=0", str(path))
    page.click("#uppy .uppy-StatusBar-actionBtn--upload")
    page.wait_for_function("window.uppyResult !== undefined", timeout=WAIT_MS)

    result = page.evaluate(
        "({ok: uppyResult.successful.map(f => f.response.body),"
        " failed: uppyResult.failed.map(f => String(f.error))})"
    )
    assert result["failed"] == [], result
    assert len(part_puts) == 5, part_puts  # 24 MiB in parts of 5 MiB
    (body,) = result["ok"]
    upload_id = body["location"].rstrip("/").rsplit("/", 1)[1]
    status = wait_for_status(page, site, upload_id, "complete")
    assert status["status"] == "complete", status
    assert status["protocol"] == "s3"
    assert page.request.get(f"{site.url}/admin/uploads/upload/{upload_id}/change/").ok
    assert status["size"] == len(data)
    assert status["sha256"] == hashlib.sha256(data).hexdigest()
    # Verified by the Celery worker, not by the web process.
    worker.wait_for(FINISHED_BY_CELERY)
    stored = bucket.get_object(Bucket=BUCKET, Key=body["key"])["Body"].read()
    assert hashlib.sha256(stored).hexdigest() == status["sha256"]
    assert bucket.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []) == []
    # No byte of the file went to the site, nor to any disk of its host.
    assert max(len(sent) for sent in through_site) < 64 * 1024
    for folder in (site.folder / "media", site.staging, worker.folder / "media"):
        assert not folder.exists() or not any(p.is_file() for p in folder.rglob("*")), folder
    download = page.request.get(site.url + status["download_url"], max_redirects=0)
    assert download.status == 302
    assert re.match(re.escape(endpoint), download.headers["location"])
    assert requests.get(download.headers["location"], timeout=30).content == data
    assert errors == []


# Uppy as a new user first tries it: nothing but the endpoint. A file under
# 100 MB then goes in one signed POST (`GET params`), not in parts.
UPPY_UNCHANGED = """
import { Uppy, AwsS3 } from "/static/uploads/vendor/uppy/uppy.min.mjs";
const uppy = new Uppy().use(AwsS3, { companionEndpoint: "/uploads/companion" });
uppy.on("complete", (result) => { window.uppyResult = result; });
window.uppy = uppy;
"""


def test_uppy_unchanged_sends_a_small_file_in_one_signed_post(direct_site, browser):
    site, bucket, endpoint, worker = direct_site
    data = random.Random(1).randbytes(700 * 1024)
    page = logged_in_page(browser, site)
    posts = []
    page.on(
        "request",
        lambda request: (
            posts.append(request.url)
            if request.method == "POST" and request.url.startswith(endpoint)
            else None
        ),
    )
    page.add_script_tag(type="module", content=UPPY_UNCHANGED)
    page.wait_for_function("window.uppy !== undefined")
    page.evaluate(
        """(bytes) => {
            const data = new Uint8Array(bytes);
            uppy.addFile({ name: "notes.bin", type: "application/octet-stream",
                           data: new Blob([data]) });
            return uppy.upload();
        }""",
        list(data),
    )
    page.wait_for_function("window.uppyResult !== undefined", timeout=WAIT_MS)
    result = page.evaluate(
        "({ok: uppyResult.successful.map(f => f.response.body),"
        " failed: uppyResult.failed.map(f => String(f.error))})"
    )
    assert result["failed"] == [], result
    assert len(posts) == 1, posts
    (body,) = result["ok"]
    mine = page.request.get(f"{site.url}/uploads/api/uploads/").json()["results"]
    (upload,) = [u for u in mine if u["filename"] == "notes.bin"]
    assert body["key"].endswith(f"/{upload['id'].replace('-', '')}/notes.bin")
    # The bucket told the site nothing: the status read finds the object and verifies it.
    status = wait_for_status(page, site, upload["id"], "complete")
    assert status["status"] == "complete", status
    assert status["sha256"] == hashlib.sha256(data).hexdigest()
