"""
The upload page when life happens: cancelling with chunks in flight, the
server going away for a while, leaving the page, coming back after a reload,
many files at once, and the speed it shows after a resume.

The browser talks to the site through a ThrottlingProxy (throttle.py) at
RATE bytes a second, so that an upload takes seconds and can be caught
half-way, and so that the link can be cut as a network is.
"""

import os
import re
import types

import pytest

from . import servers, test_browser
from .test_browser import CHUNK_URL, Page, expect, make_file, sha256, staged_file
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

CHUNK = 64 * 1024
RATE = 256 * 1024  # bytes a second, through the proxy
OUTAGE_S = 30
SPEED = re.compile(r"([\d.]+)\s(bytes|KB|MB|GB)/s")
UNITS = {"bytes": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3}


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    folder = tmp_path_factory.mktemp("resilience") / "site"
    site = servers.Site(folder, f"sqlite:///{folder / 'db.sqlite3'}", workers=3)
    site.env.update(
        {
            "UPLOADS_CLIENT": "flow.js",
            "UPLOADS_CHUNK_SIZE": str(CHUNK),
            "UPLOADS_SIMULTANEOUS_CHUNKS": "3",
            "UPLOADS_ALLOWED_EXTENSIONS": "bin,pdf,txt",
        }
    )
    folder.mkdir(parents=True)
    site.start()
    yield site
    site.stop()


@pytest.fixture
def proxy(site):
    proxy = ThrottlingProxy(int(site.url.rsplit(":", 1)[1]), RATE)
    yield proxy
    proxy.close()


@pytest.fixture
def tab(browser, site, proxy):
    """A logged-in tab that reaches the site through the proxy."""
    through = types.SimpleNamespace(
        url=proxy.url, username=site.username, password=site.password, staging=site.staging
    )
    tab = Page(browser, through)
    yield tab
    tab.close()


def in_flight(page):
    """The chunk POSTs the page has sent and not had an answer to, as a live set."""
    pending = set()
    page.on(
        "request",
        lambda r: pending.add(r) if r.method == "POST" and CHUNK_URL.search(r.url) else None,
    )
    page.on("requestfinished", lambda r: pending.discard(r))
    page.on("requestfailed", lambda r: pending.discard(r))
    return pending


def chunk_posts(page):
    sent = []
    page.on(
        "request",
        lambda r: sent.append(r.url) if r.method == "POST" and CHUNK_URL.search(r.url) else None,
    )
    return sent


def shown_speed(row):
    """The speed a row shows, in bytes a second (0 when it shows none)."""
    match = SPEED.search(row.locator(".upload-speed").inner_text())
    return float(match[1]) * UNITS[match[2]] if match else 0


def received(tab, name):
    """The bytes the server has of the upload named `name` (0 before it exists)."""
    uploads = tab.api("/uploads/api/uploads/")["results"]
    return next((u["received_bytes"] for u in uploads if u["filename"] == name), 0)


def unfinished(tab):
    return [u for u in tab.api("/uploads/api/uploads/")["results"] if u["status"] == "uploading"]


def test_cancel_with_chunks_in_flight_leaves_nothing_behind(tab, tmp_path):
    path = make_file(tmp_path, "ghost.bin", 40 * CHUNK, "ghost")
    pending = in_flight(tab.page)
    tab.choose(path)
    tab.wait_until(
        lambda: len(pending) == 3 and received(tab, "ghost.bin"), "a chunk stored, three in flight"
    )
    upload = tab.upload_named("ghost.bin")
    assert upload["status"] == "uploading"

    tab.row("ghost.bin").get_by_role("button", name="Cancel").click()
    after_cancel = chunk_posts(tab.page)
    expect(tab.row("ghost.bin").locator(".upload-message")).to_contain_text("deleted")
    tab.wait_state("ghost.bin", "cancelled")
    # Long enough for a late chunk or a library's retry timer to come.
    tab.page.wait_for_timeout(3000)
    assert after_cancel == [], "the page sent chunks after Cancel"
    assert tab.api(f"/uploads/api/uploads/{upload['id']}/")["status"] == "cancelled"
    assert not staged_file(tab.site, upload).exists()
    tab.assert_no_console_errors()
    # The requests aborted in flight had their bytes in the socket buffers
    # already: they reach the server anyway, which refuses them as gone.
    assert unfinished(tab) == [], "a late chunk of a cancelled upload started a new one"

    # Sent again on purpose, the same file is a new upload (a new attempt's
    # identifier), which completes.
    tab.row("ghost.bin").get_by_role("button", name="Remove").click()
    tab.choose(path)
    tab.wait_state("ghost.bin", "complete")
    again = tab.upload_named("ghost.bin")
    assert again["id"] != upload["id"]
    assert tab.api(f"/uploads/api/uploads/{again['id']}/")["sha256"] == sha256(path)


def test_an_outage_of_the_server_is_waited_out_without_a_click(tab, site, proxy, tmp_path):
    path = make_file(tmp_path, "outage.bin", 24 * CHUNK + 7, "outage")
    tab.choose(path)
    row = tab.row("outage.bin")
    tab.wait_until(lambda: received(tab, "outage.bin") >= 4 * CHUNK, "a start")

    # The server goes away: its connections drop, and it refuses new ones.
    proxy.drop_connections()
    site.stop()
    tab.wait_state("outage.bin", "retrying")
    countdown = re.compile(r"Reconnecting… \(retry in \d+ s\)")
    expect(row.locator(".upload-message")).to_contain_text(countdown)
    tab.screenshot("upload-reconnecting.png")
    tab.page.wait_for_timeout(OUTAGE_S * 1000)
    expect(row).to_have_attribute("data-state", "retrying")
    site.serve()

    # Retries wait at most 30 s between them.
    expect(row).to_have_attribute("data-state", "complete", timeout=60_000)
    upload = tab.upload_named("outage.bin")
    assert upload["sha256"] == sha256(path)
    assert tab.downloaded_sha256(upload) == sha256(path)
    # Chromium logs each request the outage broke; nothing else may be logged.
    assert [error for error in tab.errors if "net::ERR_" not in error] == []


def test_offline_is_said_and_the_upload_goes_on_when_back_online(tab, tmp_path):
    path = make_file(tmp_path, "train.bin", 24 * CHUNK, "train")
    tab.choose(path)
    row = tab.row("train.bin")
    tab.wait_until(lambda: received(tab, "train.bin") >= 2 * CHUNK, "a start")
    tab.context.set_offline(True)
    expect(row.locator(".upload-message")).to_contain_text("Offline")
    tab.context.set_offline(False)
    # Back online: at once, not at the next turn of the countdown.
    tab.wait_state("train.bin", "complete")
    assert tab.downloaded_sha256(tab.upload_named("train.bin")) == sha256(path)
    assert [error for error in tab.errors if "net::ERR_" not in error] == []


def test_leaving_while_uploading_asks_first(tab, tmp_path):
    path = make_file(tmp_path, "leaving.bin", 40 * CHUNK, "leaving")
    tab.page.locator("h1").click()  # a person's gesture: Chromium asks only then
    tab.choose(path)
    tab.wait_state("leaving.bin", "uploading")
    asked = []
    tab.page.on("dialog", lambda dialog: (asked.append(dialog.type), dialog.dismiss()))
    tab.page.close(run_before_unload=True)
    tab.wait_until(lambda: asked, "the prompt before leaving")
    assert asked == ["beforeunload"]
    # Dismissed: the page stays, and goes on uploading.
    tab.wait_state("leaving.bin", "uploading")


def test_a_reload_lists_the_interrupted_file_first_and_resumes_it_honestly(tab, tmp_path):
    big = make_file(tmp_path, "interrupted.pdf", 32 * CHUNK + 3, "interrupted")
    small = make_file(tmp_path, "small.txt", 2 * CHUNK, "small")
    tab.page.on("dialog", lambda dialog: dialog.accept())  # "Leave site?": yes
    tab.choose(big)
    half = big.stat().st_size // 2
    tab.wait_until(lambda: received(tab, "interrupted.pdf") >= half, "half")
    tab.page.reload()
    tab.choose(small)
    tab.wait_state("small.txt", "complete")
    tab.page.reload()

    # Unfinished uploads first (other tests' too), then the rest, newest first.
    listed = tab.page.eval_on_selector_all(
        "#uploads-table tbody tr", "rows => rows.map(r => [r.dataset.filename, r.dataset.status])"
    )
    statuses = [status for _, status in listed]
    assert statuses == sorted(statuses, key=lambda status: status != "uploading"), listed
    names = [name for name, _ in listed]
    assert names.index("interrupted.pdf") < names.index("small.txt"), listed
    interrupted = tab.page.locator("#uploads-table tbody tr", has_text="interrupted.pdf")
    expect(interrupted).to_contain_text("Interrupted")

    # Resume asks for the file, and refuses another one.
    resume = interrupted.locator("input[data-resume]")
    resume.set_input_files(small)
    expect(interrupted).to_contain_text("choose the same file")
    posts = chunk_posts(tab.page)
    resume.set_input_files(big)
    row = tab.row("interrupted.pdf")
    speeds = []
    while row.get_attribute("data-state") != "complete":
        speeds.append(shown_speed(row))
        tab.page.wait_for_timeout(200)
    total_chunks = 33
    assert 0 < len(posts) < total_chunks * 0.7, f"sent {len(posts)} of {total_chunks} chunks"
    # Chunks the server already had are not speed.
    assert max(speeds) > 0
    assert max(speeds) < 2 * RATE, f"shown {max(speeds):.0f} B/s through a {RATE} B/s link"
    upload = tab.upload_named("interrupted.pdf")
    assert tab.downloaded_sha256(upload) == sha256(big)
    expect(tab.page.locator(f"#upload-{upload['id']}")).to_contain_text("Complete")
    tab.assert_no_console_errors()


def test_the_overall_bar_pauses_and_resumes_all(tab, tmp_path):
    first = make_file(tmp_path, "first.bin", 16 * CHUNK, "first")
    second = make_file(tmp_path, "second.bin", 8 * CHUNK, "second")
    tab.choose(first, second)
    # Queued behind the first, the second has not started.
    tab.wait_state("first.bin", "uploading")
    tab.wait_state("second.bin", "waiting")
    expect(tab.row("second.bin").locator(".upload-message")).to_have_text("Waiting")
    # Chosen again while it uploads: said so, not silently ignored, and no second row.
    tab.choose(first)
    expect(tab.page.locator(".upload-notice")).to_have_text("Already in the list: first.bin.")
    expect(tab.page.locator(".upload-rows .upload-row")).to_have_count(2)
    overall = tab.page.locator(".upload-overall")
    expect(overall.locator(".upload-overall-summary")).to_contain_text("left")
    tab.screenshot("upload-overall.png")

    overall.get_by_role("button", name="Pause all").click()
    tab.wait_state("first.bin", "paused")
    tab.wait_state("second.bin", "paused")
    posts = chunk_posts(tab.page)
    tab.page.wait_for_timeout(1000)
    assert posts == []

    overall.get_by_role("button", name="Resume all").click()
    tab.wait_state("first.bin", "complete")
    tab.wait_state("second.bin", "complete")
    expect(overall.locator(".upload-overall-summary")).to_contain_text("(100%)")
    overall.get_by_role("button", name="Clear finished").click()
    expect(tab.page.locator(".upload-rows .upload-row")).to_have_count(0)
    for path in (first, second):
        assert tab.downloaded_sha256(tab.upload_named(path.name)) == sha256(path)
    tab.assert_no_console_errors()
