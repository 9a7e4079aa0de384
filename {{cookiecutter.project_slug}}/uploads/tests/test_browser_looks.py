"""
How the pages look and read, in Chromium: on a phone, to a screen reader and
a keyboard, in dark mode, in the admin's themes, and to axe-core.

The helpers (the site under gunicorn, a logged-in tab, ChunkGate to hold an
upload mid-way) are test_browser.py's. axe-core is pinned in the template's
frontend/ and injected from there: AXE_CORE_JS names its axe.min.js (the
template's tests set it).
"""

import os
from pathlib import Path

import pytest

from . import test_browser
from .test_browser import CHUNK, ChunkGate, expect, make_file, save_document

pytestmark = test_browser.pytestmark
# test_browser's fixtures; module-scoped, so this module has its own site.
browser = test_browser.browser
sites = test_browser.sites
open_page = test_browser.open_page

AXE_JS = Path(os.environ.get("AXE_CORE_JS", "/nonexistent/axe.min.js"))
PHONE = {"viewport": {"width": 390, "height": 844}, "has_touch": True, "is_mobile": True}
LONG_NAMES = [
    "Quarterly-report-for-the-board-of-directors-2026-final-version-3-signed.pdf",
    "x" * 90 + ".txt",
    "meeting notes from the long planning session in the spring of 2026.txt",
]


def axe_violations(page):
    """axe-core's violations on a Playwright page, as (rule, impact, first elements)."""
    if not AXE_JS.is_file():
        pytest.skip(
            f"axe-core is not installed at {AXE_JS}: run `npm ci` in the template's frontend/ "
            "and set AXE_CORE_JS (the template's tests do)"
        )
    page.add_script_tag(path=str(AXE_JS))
    result = page.evaluate("() => axe.run(document, {resultTypes: ['violations']})")
    return [
        (violation["id"], violation["impact"], [node["target"] for node in violation["nodes"][:3]])
        for violation in result["violations"]
    ]


def assert_axe_clean(tab, where):
    assert axe_violations(tab.page) == [], f"axe-core on {where}"


def assert_no_sideways_scroll(tab, where):
    width = tab.page.evaluate("() => [document.documentElement.scrollWidth, innerWidth]")
    assert width[0] <= width[1], f"{where} scrolls sideways: {width[0]} px in {width[1]}"


def luminance(tab, selector, prop="background-color"):
    """The relative luminance (0 black .. 1 white) of an element's colour."""
    return tab.page.evaluate(
        """([selector, prop]) => {
            const probe = document.createElement("canvas").getContext("2d");
            probe.fillStyle = getComputedStyle(document.querySelector(selector))[prop];
            probe.fillRect(0, 0, 1, 1);
            const [r, g, b] = probe.getImageData(0, 0, 1, 1).data;
            const lin = (c) => (c /= 255) <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
            return 0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b);
        }""",
        [selector, prop],
    )


def focus_ring_contrast(tab, selector):
    """The contrast ratio of a control's keyboard focus ring against the background behind it."""
    tab.page.locator(selector).first.focus()
    tab.page.keyboard.press("Shift+Tab")
    tab.page.keyboard.press("Tab")  # focused from the keyboard: :focus-visible
    ring = luminance(tab, ":focus-visible", "outline-color")
    tab.page.evaluate(
        """() => {
            let el = document.activeElement.parentElement;
            const clear = (node) => getComputedStyle(node).backgroundColor === "rgba(0, 0, 0, 0)";
            while (clear(el)) el = el.parentElement;
            el.setAttribute("data-behind-ring", "");
        }"""
    )
    behind = luminance(tab, "[data-behind-ring]")
    light, dark = max(ring, behind), min(ring, behind)
    return (light + 0.05) / (dark + 0.05)


def record_announcements(tab):
    """Collect every line added to the widget's live region, and count progress redraws."""
    tab.page.evaluate(
        """() => {
            window.announced = [];
            window.ticks = 0;
            const region = document.querySelector(".upload-announcer");
            new MutationObserver((changes) => {
                for (const change of changes) {
                    for (const node of change.addedNodes) window.announced.push(node.textContent);
                }
            }).observe(region, {childList: true});
            new MutationObserver(() => { window.ticks += 1; })
                .observe(document.querySelector(".upload-rows"), {attributes: true, subtree: true,
                    attributeFilter: ["aria-valuenow"]});
        }"""
    )
    return lambda: tab.page.evaluate("() => window.announced")


def test_every_page_is_axe_clean(open_page, browser, sites, tmp_path):
    site = sites()
    visitor = browser.new_page()
    try:
        for path in ["/", "/accounts/login/"]:
            visitor.goto(site.url + path)
            assert axe_violations(visitor) == [], f"axe-core on {path}"
    finally:
        visitor.close()

    tab = open_page()
    assert_axe_clean(tab, "/uploads/ with no uploads")
    gate = ChunkGate(tab.page, let_through=2)
    report = make_file(tmp_path, "report.pdf", 6 * CHUNK, "report")
    tab.choose(report, make_file(tmp_path, "a.exe", 10, "x"))
    tab.wait_until(lambda: gate.answered == 2 and gate.held, "two chunks stored")
    tab.page.reload()
    tab.choose(report)
    tab.wait_state("report.pdf", "uploading")
    assert_axe_clean(tab, "/uploads/ mid-upload, with the list")
    gate.open()
    tab.wait_state("report.pdf", "complete")

    tab.goto("/documents/new/")
    assert_axe_clean(tab, "the Document form")
    save_document(tab, "Axe", make_file(tmp_path, "axe.txt", CHUNK + 1, "axe"))
    tab.page.get_by_role("button", name="Save").click()
    tab.page.wait_for_url("**/documents/")
    assert_axe_clean(tab, "the Documents list")
    tab.page.get_by_role("link", name="Edit “Axe”").click()
    # Editing shows the current file as a person reads it: name, size, link.
    current = tab.page.locator(".upload-current")
    expect(current).to_contain_text("axe.txt")
    expect(current).to_contain_text("KB")
    link = current.get_by_role("link", name="axe.txt")
    expect(link).to_have_attribute("href", "/documents/1/download/")
    assert_axe_clean(tab, "the Document edit form")

    for path in ["/admin/uploads/upload/", "/admin/documents/document/add/"]:
        tab.goto(path)
        assert_axe_clean(tab, path)
    tab.goto("/admin/uploads/upload/")
    tab.page.locator("#result_list a", has_text="report.pdf").first.click()
    expect(tab.page.locator("#content h1, #content h2").first).to_be_visible()
    assert_axe_clean(tab, "the admin's Upload page")
    tab.assert_no_console_errors()


def test_on_a_phone_nothing_scrolls_sideways(open_page, tmp_path):
    tab = open_page(**PHONE)
    expect(tab.page.get_by_text("Tap to choose files")).to_be_visible()
    expect(tab.page.get_by_text("Drop files or folders here")).to_be_hidden()
    names = [f"{index}-{LONG_NAMES[index % 3]}" for index in range(10)]
    files = [make_file(tmp_path, name, 2 * CHUNK, name) for name in names]
    gate = ChunkGate(tab.page, let_through=11)
    tab.choose(*files)
    tab.wait_until(lambda: gate.answered == 11 and gate.held, "five files stored, one started")
    # The list below shows the five stored and the one started.
    for path in files[:6]:
        expect(tab.page.locator("#uploads-table td.name", has_text=path.name)).to_have_count(1)
    expect(tab.page.locator(".upload-row")).to_have_count(10)
    assert_no_sideways_scroll(tab, "/uploads/ with ten uploads")
    assert tab.page.evaluate("() => matchMedia('(hover: none) and (pointer: coarse)').matches")
    # A phone as tall as the page, so that "on screen" means "not cut off at the
    # side" (and a full-page screenshot would drop the touch emulation).
    height = tab.page.evaluate("() => document.documentElement.scrollHeight")
    tab.page.set_viewport_size({"width": 390, "height": height})
    # Every row's actions are wholly on screen, in the widget and in the list
    # below (which may be redrawn meanwhile: expect retries), and so are the
    # long names, wrapped.
    # (A live row's Resume and Cancel are hidden: the widget above has them.)
    actions = (
        ".upload-actions button, .upload-message a, #uploads-table td.actions > :not([hidden])"
    )
    for element in tab.page.locator(f"{actions}, .upload-name, #uploads-table td.name").all():
        expect(element).to_be_in_viewport(ratio=1)
    tab.screenshot("phone-uploads.png")
    gate.open()

    for path in ["/", "/documents/", "/documents/new/"]:
        tab.goto(path)
        assert_no_sideways_scroll(tab, path)
    tab.page.context.clear_cookies()
    tab.goto("/accounts/login/")
    assert_no_sideways_scroll(tab, "the login page")
    tab.assert_no_console_errors()


def test_screen_readers_hear_state_changes_and_focus_follows(open_page, tmp_path):
    tab = open_page()
    path = make_file(tmp_path, "report.pdf", 8 * CHUNK, "report")
    announced = record_announcements(tab)
    gate = ChunkGate(tab.page, let_through=3)
    tab.choose(path)
    tab.wait_until(lambda: gate.answered == 3 and gate.held, "three chunks stored")
    row = tab.row("report.pdf")
    bar = row.get_by_role("progressbar", name="Upload of report.pdf")
    expect(bar).to_have_attribute("aria-valuetext", "37%, 192.0\u00a0KB of 512.0\u00a0KB")
    assert focus_ring_contrast(tab, ".upload-row .upload-button") >= 3
    # No live region wraps the rows: progress is not read out as it ticks.
    live = ".upload-rows[aria-live], .upload-rows [aria-live], .upload-rows [role=status]"
    assert tab.page.locator(live).count() == 0

    row.get_by_role("button", name="Pause report.pdf", exact=True).click()
    tab.wait_state("report.pdf", "paused")
    expect(row.get_by_role("button", name="Resume report.pdf", exact=True)).to_be_focused()
    row.get_by_role("button", name="Resume report.pdf", exact=True).click()
    expect(row.get_by_role("button", name="Pause report.pdf", exact=True)).to_be_focused()
    gate.open()
    tab.wait_state("report.pdf", "complete")
    expect(row.get_by_role("link", name="Download report.pdf")).to_be_visible()
    assert announced() == [
        "Uploading report.pdf.",
        "report.pdf paused.",
        "Uploading report.pdf.",
        "report.pdf sent; checking it.",
        "report.pdf uploaded.",
    ]
    assert tab.page.evaluate("() => window.ticks") > len(announced())

    other = make_file(tmp_path, "notes.txt", 6 * CHUNK, "notes")
    gate = ChunkGate(tab.page, let_through=1)
    tab.choose(other)
    tab.wait_until(lambda: gate.answered == 1 and gate.held, "one chunk stored")
    notes = tab.row("notes.txt")
    notes.get_by_role("button", name="Cancel notes.txt", exact=True).click()
    expect(notes.get_by_role("button", name="Remove notes.txt", exact=True)).to_be_focused()
    expect(notes.locator(".upload-message")).to_contain_text("deleted")
    notes.get_by_role("button", name="Remove notes.txt").click()
    assert tab.page.evaluate("() => document.activeElement !== document.body")
    assert announced()[-1] == "notes.txt cancelled."
    gate.open()
    tab.assert_no_console_errors()


def test_dark_mode_restyles_the_site_and_the_widget(open_page, tmp_path):
    tab = open_page(color_scheme="dark")
    gate = ChunkGate(tab.page, let_through=2)
    tab.choose(make_file(tmp_path, "dark.pdf", 5 * CHUNK, "dark"))
    tab.wait_until(lambda: gate.answered == 2 and gate.held, "two chunks stored")
    assert luminance(tab, "body") < 0.05
    assert luminance(tab, ".card") < 0.05
    assert luminance(tab, ".upload-drop") < 0.05
    assert luminance(tab, ".upload-row") < 0.05
    assert luminance(tab, ".upload-name", "color") > 0.6
    assert focus_ring_contrast(tab, ".upload-row .upload-button") >= 3
    tab.screenshot("dark-upload-page.png")
    assert_axe_clean(tab, "/uploads/ in dark mode")
    gate.open()
    tab.assert_no_console_errors()


def test_the_widget_follows_the_admins_theme_switch(open_page, tmp_path):
    tab = open_page()
    long_name = make_file(tmp_path, "y" * 120 + ".csv", 100, "long")
    tab.choose(long_name)
    tab.wait_state(long_name.name, "complete")
    tab.goto("/admin/documents/document/add/")
    assert luminance(tab, ".upload-drop") > 0.8
    toggle = tab.page.locator("button.theme-toggle")
    while tab.page.evaluate("() => document.documentElement.dataset.theme") != "dark":
        toggle.click()
    tab.wait_until(lambda: luminance(tab, ".upload-drop") < 0.05, "the widget to turn dark")
    assert luminance(tab, ".upload-drop-title", "color") > 0.6
    tab.screenshot("admin-dark.png")
    # The theme is kept (the admin's localStorage): the uploads pages are dark too.
    tab.page.set_viewport_size({"width": 1440, "height": 800})
    tab.goto("/admin/uploads/upload/")
    assert luminance(tab, "body") < 0.05
    # A long name ends in an ellipsis instead of widening its column.
    name = tab.page.locator("#result_list .field-filename a", has_text=long_name.name)
    assert name.evaluate("a => a.offsetWidth <= 320 && a.scrollWidth > a.clientWidth")
    tab.screenshot("admin-uploads-dark.png")
    # The admin's "light" wins over a dark system, as the admin's own colours do.
    dark_system = open_page(color_scheme="dark")
    dark_system.goto("/admin/documents/document/add/")
    toggle = dark_system.page.locator("button.theme-toggle")
    while dark_system.page.evaluate("() => document.documentElement.dataset.theme") != "light":
        toggle.click()
    dark_system.wait_until(
        lambda: luminance(dark_system, ".upload-drop") > 0.8, "the widget to turn light"
    )
    # Last, as they skip without axe-core: the dark admin pages are clean too.
    assert_axe_clean(tab, "the admin's uploads list, dark")
    tab.goto("/admin/documents/document/add/")
    assert_axe_clean(tab, "the admin's Document form, dark")
    tab.assert_no_console_errors()


def test_pasted_files_are_added_and_a_file_chosen_twice_says_so(open_page, tmp_path):
    tab = open_page()
    gate = ChunkGate(tab.page, let_through=1)
    tab.page.evaluate(
        """() => {
            const transfer = new DataTransfer();
            transfer.items.add(new File(["x".repeat(200000)], "pasted.txt"));
            document.dispatchEvent(
                new ClipboardEvent("paste", {clipboardData: transfer, bubbles: true}));
        }"""
    )
    tab.wait_state("pasted.txt", "uploading")
    path = make_file(tmp_path, "twice.csv", 4 * CHUNK, "twice")
    tab.choose(path)
    tab.wait_state("twice.csv", "waiting")  # behind the pasted file, held at the gate
    tab.choose(path)
    expect(tab.page.locator(".upload-notice")).to_have_text("Already in the list: twice.csv.")
    expect(tab.page.locator(".upload-row")).to_have_count(2)
    # Limits are shown, and the file input only offers the allowed types.
    expect(tab.page.locator(".upload-limits")).to_contain_text("Up to 1.0\u00a0MB each")
    files_input = tab.page.locator("input.upload-input:not([webkitdirectory])")
    assert files_input.get_attribute("accept") == ".bin,.csv,.pdf,.txt"
    gate.open()
    tab.wait_state("twice.csv", "complete")
    tab.goto("/documents/new/")
    expect(tab.page.locator(".upload-limits")).to_contain_text("types: bin, csv, pdf, txt")
    assert tab.page.locator("input.upload-input").get_attribute("accept") == ".bin,.csv,.pdf,.txt"
    tab.assert_no_console_errors()
