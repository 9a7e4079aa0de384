"""
The upload page in a real browser: Debian's Chromium, driven by Playwright,
against the site served by gunicorn with several workers (servers.Site).

Chunks are small (64 KiB, set through the page's settings) so that a file of
a few hundred KB is several chunks. "Mid-upload" is made exact, not timed:
a ChunkGate lets the first N chunk requests through and holds the others
until the test lets them go (or the page drops them).

Set UPLOADS_SCREENSHOT_DIR to keep screenshots of the pages (the template's
README shows them).
"""

import base64
import contextlib
import hashlib
import os
import re
from pathlib import Path

import pytest

from . import servers

sync_api = pytest.importorskip(
    "playwright.sync_api",
    reason="Playwright is not installed: pip install -r requirements-dev.txt",
)
expect = sync_api.expect


pytestmark = [
    pytest.mark.server,
    pytest.mark.timeout(240),
    pytest.mark.skipif(
        not os.access(servers.CHROMIUM, os.X_OK),
        reason="Chromium is not installed: apt-get install chromium (never a downloaded browser)",
    ),
]

WORKERS = 3
CHUNK = 64 * 1024
MAX_BYTES = 1024 * 1024
EXTENSIONS = "bin,csv,pdf,txt"
WAIT_MS = 30_000  # the longest any one step may take
CHUNK_URL = re.compile(r"/uploads/(flow|resumable)/")


def start_site(folder, client):
    site = servers.Site(folder, f"sqlite:///{folder / 'db.sqlite3'}", workers=WORKERS)
    site.env.update(
        {
            "UPLOADS_CLIENT": client,
            "UPLOADS_CHUNK_SIZE": str(CHUNK),
            "UPLOADS_SIMULTANEOUS_CHUNKS": "2",
            "UPLOADS_MAX_BYTES": str(MAX_BYTES),
            "UPLOADS_ALLOWED_EXTENSIONS": EXTENSIONS,
        }
    )
    folder.mkdir(parents=True)
    site.start()
    return site


@pytest.fixture(scope="module")
def sites(tmp_path_factory):
    """One site per client, started the first time a test asks for it."""
    started = {}

    def get(client="flow.js"):
        if client not in started:
            folder = tmp_path_factory.mktemp("browser") / client.replace(".", "_")
            started[client] = start_site(folder, client)
        return started[client]

    yield get
    for site in started.values():
        site.stop()


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=servers.CHROMIUM, headless=True, args=servers.CHROMIUM_ARGS
        )
        yield browser
        browser.close()


class Page:
    """A logged-in tab on one site, collecting console errors as it goes."""

    def __init__(self, browser, site, **context_options):
        self.site = site
        options = {"viewport": {"width": 1100, "height": 900}, **context_options}
        self.context = browser.new_context(**options)
        self.context.set_default_timeout(WAIT_MS)
        self.page = self.context.new_page()
        self.errors = []
        self.scripts = []  # every script the tab loaded: (url, status, Cache-Control)
        self.page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        self.page.on(
            "response",
            lambda response: (
                self.scripts.append(
                    (response.url, response.status, response.headers.get("cache-control", ""))
                )
                if response.request.resource_type == "script"
                else None
            ),
        )
        self.page.on(
            "console",
            lambda msg: (
                self.errors.append(f"{msg.text} ({msg.location.get('url')})")
                if msg.type == "error"
                else None
            ),
        )
        self.page.goto(f"{site.url}/accounts/login/")
        self.page.fill("input[name=username]", site.username)
        self.page.fill("input[name=password]", site.password)
        self.page.click("form button[type=submit], form input[type=submit]")
        self.page.wait_for_url("**/uploads/")

    def goto(self, path):
        self.page.goto(self.site.url + path)

    def choose(self, *paths):
        self.page.set_input_files(".upload-drop input.upload-input:not([webkitdirectory])", paths)

    def row(self, name):
        name_cell = self.page.locator(".upload-name", has_text=name)
        return self.page.locator(".upload-row", has=name_cell)

    def wait_state(self, name, state):
        expect(self.row(name)).to_have_attribute("data-state", state, timeout=WAIT_MS)

    def api(self, path):
        response = self.page.request.get(self.site.url + path)
        assert response.ok, f"{path}: {response.status} {response.text()}"
        return response.json()

    def upload_named(self, filename):
        uploads = self.api("/uploads/api/uploads/")["results"]
        return next(upload for upload in uploads if upload["filename"] == filename)

    def downloaded_sha256(self, upload):
        response = self.page.request.get(self.site.url + upload["download_url"])
        assert response.ok
        return hashlib.sha256(response.body()).hexdigest()

    def wait_until(self, predicate, what):
        """Let the page run until predicate() holds; bounded, never a fixed sleep."""
        for _ in range(WAIT_MS // 50):
            if predicate():
                return
            self.page.wait_for_timeout(50)
        raise AssertionError(f"timed out waiting for {what}")

    def screenshot(self, name):
        folder = os.environ.get("UPLOADS_SCREENSHOT_DIR")
        if folder:
            Path(folder).mkdir(parents=True, exist_ok=True)
            self.page.screenshot(path=str(Path(folder) / name), full_page=True)

    def assert_no_console_errors(self):
        assert self.errors == [], f"console errors: {self.errors}"

    def close(self):
        self.context.close()


@pytest.fixture
def open_page(browser, sites):
    pages = []

    def open_(client="flow.js", **context_options):
        page = Page(browser, sites(client), **context_options)
        pages.append(page)
        return page

    yield open_
    for page in pages:
        page.close()


class ChunkGate:
    """Lets the first `let_through` chunk POSTs reach the server and holds the rest."""

    def __init__(self, page, let_through):
        self.page, self.left, self.held, self.answered = page, let_through, [], 0
        page.route(CHUNK_URL, self._route)
        page.on("requestfinished", self._finished)

    def _route(self, route, request):
        if request.method == "POST" and self.left <= 0:
            self.held.append(route)
            return
        if request.method == "POST":
            self.left -= 1
        route.continue_()

    def _finished(self, request):
        if request.method == "POST" and CHUNK_URL.search(request.url):
            self.answered += 1

    def open(self):
        """Stop holding: held requests the page still wants go on, new ones pass."""
        self.page.unroute(CHUNK_URL, self._route)
        held, self.held = self.held, []
        for route in held:
            # The page may have given up on it (paused, cancelled, reloaded).
            with contextlib.suppress(sync_api.Error):
                route.continue_()


def make_file(folder, name, size, seed):
    data = hashlib.sha256(seed.encode()).digest() * (size // 32 + 1)
    path = folder / name
    path.write_bytes(data[:size])
    return path


def staged_file(site, upload):
    """Where the site keeps an unfinished upload's bytes (uploads/staging.py)."""
    return site.staging / f"{upload['id'].replace('-', '')}.part"


def sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def chunk_requests(page, method="POST"):
    """The URLs of the chunk requests (POST) or chunk tests (GET) the page sends from now on."""
    sent = []
    page.on(
        "request",
        lambda request: (
            sent.append(request.url)
            if request.method == method and CHUNK_URL.search(request.url)
            else None
        ),
    )
    return sent


@pytest.mark.parametrize("client", ["flow.js", "resumable.js"])
def test_two_files_dropped_at_once_are_stored_whole(open_page, tmp_path, client):
    tab = open_page(client)
    files = [
        make_file(tmp_path, "first.bin", 5 * CHUNK + 123, "one"),
        make_file(tmp_path, "second.csv", 3 * CHUNK + 7, "two"),
    ]
    # Dropped, as a user drags them from the desktop.
    payload = [
        {"name": path.name, "data": base64.b64encode(path.read_bytes()).decode()} for path in files
    ]
    posts, tests = chunk_requests(tab.page), chunk_requests(tab.page, "GET")
    tab.page.evaluate(
        """files => {
            const transfer = new DataTransfer();
            for (const f of files) {
                const bytes = Uint8Array.from(atob(f.data), c => c.charCodeAt(0));
                transfer.items.add(new File([bytes], f.name));
            }
            document.querySelector(".upload-drop").dispatchEvent(
                new DragEvent("drop", {dataTransfer: transfer, bubbles: true, cancelable: true}));
        }""",
        payload,
    )
    for path in files:
        tab.wait_state(path.name, "complete")
        expect(tab.row(path.name).locator(".upload-bar")).to_have_attribute("aria-valuenow", "100")
        upload = tab.upload_named(path.name)
        assert upload["protocol"] == client.removesuffix(".js")
        assert upload["sha256"] == sha256(path)
        assert tab.downloaded_sha256(upload) == sha256(path)
    # The list below shows both, with a download link each.
    # New to the server, so no chunk was tested first: one request per chunk.
    assert len(posts) == 5 + 3
    assert tests == []
    for path in files:
        row = tab.page.locator("#uploads-table tr", has_text=path.name)
        expect(row.get_by_role("link", name="Download")).to_be_visible()
    tab.screenshot("uploads-list.png")
    tab.assert_no_console_errors()


@pytest.mark.parametrize("client", ["flow.js", "resumable.js"])
def test_pause_reload_and_resume_send_only_the_missing_chunks(open_page, tmp_path, client):
    tab = open_page(client)
    big = make_file(tmp_path, "report.pdf", 9 * CHUNK + 5, "big")
    others = [
        make_file(tmp_path, "notes.txt", 6 * CHUNK, "notes"),
        make_file(tmp_path, "data.csv", 7 * CHUNK + 99, "data"),
    ]
    gate = ChunkGate(tab.page, let_through=6)
    tab.choose(big, *others)
    tab.wait_until(lambda: gate.answered == 6 and gate.held, "six chunks stored, more waiting")
    tab.row("report.pdf").get_by_role("button", name="Pause").click()
    tab.wait_state("report.pdf", "paused")
    tab.screenshot("upload-page.png")

    stored = tab.upload_named("report.pdf")["received_bytes"]
    assert 0 < stored < big.stat().st_size

    tab.page.reload()
    gate.open()
    hint = tab.page.locator("#uploads-unfinished")
    expect(hint).to_be_visible()
    listed = tab.page.locator("#uploads-table tr", has_text="report.pdf")
    expect(listed).to_contain_text("Interrupted")

    posts, tests = chunk_requests(tab.page), chunk_requests(tab.page, "GET")
    tab.choose(big)
    tab.wait_state("report.pdf", "complete")
    total_chunks = 9
    # The server had part of it: each chunk was tested, and only the missing sent.
    assert len(tests) == total_chunks
    assert 0 < len(posts) < total_chunks, f"sent {len(posts)} of {total_chunks} chunks again"
    upload = tab.upload_named("report.pdf")
    assert upload["sha256"] == sha256(big)
    assert tab.downloaded_sha256(upload) == sha256(big)
    tab.assert_no_console_errors()


def test_cancel_deletes_the_bytes_already_sent(open_page, tmp_path, sites):
    tab = open_page()
    path = make_file(tmp_path, "cancel-me.bin", 8 * CHUNK, "cancel")
    gate = ChunkGate(tab.page, let_through=2)
    tab.choose(path)
    tab.wait_until(lambda: gate.answered == 2 and gate.held, "two chunks stored")
    upload = tab.upload_named("cancel-me.bin")
    staged = staged_file(sites(), upload)
    assert upload["received_bytes"] == 2 * CHUNK
    assert staged.exists()

    tab.row("cancel-me.bin").get_by_role("button", name="Cancel cancel-me.bin").click()
    expect(tab.row("cancel-me.bin").locator(".upload-message")).to_contain_text("deleted")
    gate.open()
    assert tab.api(f"/uploads/api/uploads/{upload['id']}/")["status"] == "cancelled"
    assert not staged.exists()
    # The list's row, by the id Upload.get_absolute_url() links to.
    expect(tab.page.locator(f"#upload-{upload['id']}")).to_contain_text("Cancelled")
    tab.assert_no_console_errors()


HASHED_NAME = re.compile(r"\.[0-9a-f]{12}\.js$")  # collectstatic's name.<hash>.js


def test_the_widget_modules_load_under_their_hashed_names(open_page, tmp_path):
    """
    The widget is ES modules importing each other (main.js, core.js, views/...).
    collectstatic hashes their names and rewrites the imports to match, so a
    browser never runs a cached old module beside a new release's: each one
    comes under its hashed name, cached for good, and the widget runs.
    """
    tab = open_page()
    modules = {}
    for url, status, cache in tab.scripts:
        if "/static/uploads/js/" in url:
            name = HASHED_NAME.sub(".js", url.split("/static/uploads/js/")[1])
            modules[name] = (url, status, cache)
    assert set(modules) == {
        "main.js",
        "api.js",
        "core.js",
        "format.js",
        "retrying.js",
        "speed.js",
        "words.js",
        "drivers/common.js",
        "drivers/flow.js",
        "drivers/resumable.js",
        "drivers/s3.js",
        "views/announcer.js",
        "views/drop_zone.js",
        "views/list.js",
        "views/overall.js",
        "views/rows.js",
    }
    for url, status, cache in modules.values():
        assert HASHED_NAME.search(url), f"not a hashed name: {url}"
        assert status == 200 and "immutable" in cache, (url, status, cache)
    tab.choose(make_file(tmp_path, "program.exe", 10, "exe"))
    tab.wait_state("program.exe", "rejected")
    tab.assert_no_console_errors()


def test_an_unfinished_upload_is_cancelled_from_the_list(open_page, tmp_path, sites):
    """After a reload the list (drawn by the server) offers Cancel, and redraws itself."""
    tab = open_page()
    path = make_file(tmp_path, "left-behind.bin", 6 * CHUNK, "left")
    gate = ChunkGate(tab.page, let_through=2)
    tab.choose(path)
    tab.wait_until(lambda: gate.answered == 2 and gate.held, "two chunks stored")
    upload = tab.upload_named("left-behind.bin")
    staged = staged_file(sites(), upload)
    assert staged.exists()
    tab.page.reload()
    gate.open()
    listed = tab.page.locator(f"#upload-{upload['id']}")
    expect(listed).to_contain_text("Interrupted")
    expect(tab.page.locator("#uploads-unfinished")).to_contain_text("1 unfinished upload")

    listed.get_by_role("button", name="Cancel left-behind.bin").click()
    expect(listed).to_contain_text("Cancelled")
    expect(listed.locator("td.name")).to_be_focused()
    expect(listed.get_by_role("button", name="Cancel")).to_have_count(0)
    expect(tab.page.locator("#uploads-unfinished")).to_have_count(0)
    assert tab.api(f"/uploads/api/uploads/{upload['id']}/")["status"] == "cancelled"
    assert not staged.exists()
    tab.assert_no_console_errors()


def test_a_finished_file_is_deleted_from_the_list_after_asking(open_page, tmp_path):
    tab = open_page()
    path = make_file(tmp_path, "old-backup.bin", 2 * CHUNK, "old")
    tab.choose(path)
    tab.wait_state(path.name, "complete")
    upload = tab.upload_named(path.name)
    tab.page.reload()
    listed = tab.page.locator(f"#upload-{upload['id']}")
    asked = []

    def answer(dialog):
        asked.append(dialog.message)
        if len(asked) == 1:
            dialog.dismiss()
        else:
            dialog.accept()

    tab.page.on("dialog", answer)
    listed.get_by_role("button", name="Delete").click()  # dismissed: nothing happens
    expect(listed).to_contain_text("Complete")
    listed.get_by_role("button", name="Delete").click()
    expect(listed).to_contain_text("Deleted")
    expect(listed.get_by_role("link", name="Download")).to_have_count(0)
    assert asked == ["Delete old-backup.bin from the server? This cannot be undone."] * 2
    assert tab.api(f"/uploads/api/uploads/{upload['id']}/")["status"] == "deleted"
    assert tab.page.request.get(tab.site.url + upload["download_url"]).status == 404
    tab.assert_no_console_errors()


def test_too_large_and_forbidden_types_are_refused_before_sending(open_page, tmp_path):
    tab = open_page()
    posts = chunk_requests(tab.page)
    too_big = make_file(tmp_path, "huge.bin", MAX_BYTES + 1, "huge")
    wrong = make_file(tmp_path, "program.exe", 1000, "exe")
    tab.choose(too_big, wrong)
    tab.wait_state("huge.bin", "rejected")
    expect(tab.row("huge.bin")).to_contain_text("Too large")
    tab.wait_state("program.exe", "rejected")
    expect(tab.row("program.exe")).to_contain_text("Type not allowed")
    tab.row("program.exe").get_by_role("button", name="Remove").click()
    expect(tab.row("program.exe")).to_have_count(0)
    assert posts == []
    names = {upload["filename"] for upload in tab.api("/uploads/api/uploads/")["results"]}
    assert not names & {"huge.bin", "program.exe"}
    tab.assert_no_console_errors()


def save_document(tab, title, path):
    tab.page.fill("input[name=title]", title)
    tab.choose(path)
    tab.wait_state(path.name, "complete")


def test_document_form_saves_the_uploaded_file(open_page, tmp_path):
    tab = open_page()
    path = make_file(tmp_path, "contract.pdf", 4 * CHUNK + 10, "contract")
    tab.goto("/documents/new/")
    save_document(tab, "The contract", path)
    tab.page.get_by_role("button", name="Save").click()
    tab.page.wait_for_url("**/documents/")
    row = tab.page.locator("#documents-table tr", has_text="The contract")
    link = row.get_by_role("link", name=path.name)
    response = tab.page.request.get(tab.site.url + link.get_attribute("href"))
    assert hashlib.sha256(response.body()).hexdigest() == sha256(path)
    tab.assert_no_console_errors()


def test_document_form_waits_for_its_upload_and_keeps_it_after_an_error(open_page, tmp_path):
    tab = open_page()
    path = make_file(tmp_path, "slow.pdf", 6 * CHUNK, "slow")
    tab.goto("/documents/new/")
    save = tab.page.get_by_role("button", name="Save")
    gate = ChunkGate(tab.page, let_through=1)
    tab.choose(path)
    tab.wait_until(lambda: gate.answered == 1 and gate.held, "the first chunk stored")
    # Saving now would save a file that is not there yet.
    expect(save).to_be_disabled()
    gate.open()
    tab.wait_state("slow.pdf", "complete")
    expect(save).to_be_enabled()

    # Sent without a title: the form comes back with its error, and the
    # finished upload is still there, not to be chosen again.
    save.click()
    expect(tab.page.get_by_role("alert")).to_be_visible()
    tab.wait_state("slow.pdf", "complete")
    upload = tab.upload_named("slow.pdf")
    expect(tab.page.locator("input.upload-value")).to_have_value(upload["id"])
    tab.page.fill("input[name=title]", "Saved after an error")
    tab.page.get_by_role("button", name="Save").click()
    tab.page.wait_for_url("**/documents/")
    expect(tab.page.locator("#documents-table")).to_contain_text("Saved after an error")
    tab.assert_no_console_errors()


def test_document_admin_saves_the_uploaded_file(open_page, tmp_path):
    tab = open_page()
    path = make_file(tmp_path, "admin-file.txt", 3 * CHUNK + 1, "admin")
    tab.goto("/admin/documents/document/add/")
    save_document(tab, "Added in the admin", path)
    tab.screenshot("admin-document.png")
    tab.page.locator("input[name=_save]").click()
    expect(tab.page.locator(".messagelist")).to_contain_text("was added successfully")
    tab.goto("/documents/")
    row = tab.page.locator("#documents-table tr", has_text="Added in the admin")
    link = row.get_by_role("link", name=path.name)
    response = tab.page.request.get(tab.site.url + link.get_attribute("href"))
    assert hashlib.sha256(response.body()).hexdigest() == sha256(path)

    tab.page.set_viewport_size({"width": 1440, "height": 800})
    tab.goto("/admin/uploads/upload/")
    expect(tab.page.locator("#result_list")).to_contain_text("admin-file.txt")
    tab.screenshot("admin.png")
    tab.assert_no_console_errors()
