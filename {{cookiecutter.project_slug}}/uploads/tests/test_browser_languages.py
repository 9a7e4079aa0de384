"""
A German or French browser gets the site in its language, the widget's words
included; an English one still gets English. Chromium's `locale` sets the
Accept-Language that LocaleMiddleware reads.

The helpers (the site under gunicorn, a logged-in tab, ChunkGate) are test_browser.py's.
"""

import re

import pytest

from . import test_browser
from .test_browser import CHUNK, MAX_BYTES, ChunkGate, expect, make_file

pytestmark = test_browser.pytestmark
# test_browser's fixtures; module-scoped, so this module has its own site.
browser = test_browser.browser
sites = test_browser.sites
open_page = test_browser.open_page

WORDS = {
    # <html lang>, the upload page's heading, the row's Pause, what a screen reader hears,
    # the widget's refusal of a file too large, the Document form's Save.
    "de-DE": (
        "de",
        "Dateien hochladen",
        "Pausieren",
        "bericht.pdf wird hochgeladen.",
        "Zu groß",
        "Speichern",
    ),
    "fr-FR": (
        "fr",
        "Envoyer des fichiers",
        "Pause",
        "Envoi de bericht.pdf.",
        "Trop volumineux",
        "Enregistrer",
    ),
    "en-US": ("en", "Upload files", "Pause", "Uploading bericht.pdf.", "Too large", "Save"),
}


@pytest.mark.parametrize("locale", WORDS)
def test_the_pages_and_the_widget_speak_the_browsers_language(open_page, tmp_path, locale):
    lang, heading, pause, uploading, too_large, save = WORDS[locale]
    tab = open_page(locale=locale)
    page = tab.page
    expect(page.locator("html")).to_have_attribute("lang", lang)
    expect(page.locator("h1")).to_have_text(heading)

    gate = ChunkGate(page, let_through=1)
    path = make_file(tmp_path, "bericht.pdf", 4 * CHUNK, "lang")
    too_big = make_file(tmp_path, "riesig.bin", MAX_BYTES + 1, "big")
    tab.choose(path, too_big)
    tab.wait_until(lambda: gate.answered == 1 and gate.held, "the first chunk stored")
    row = tab.row("bericht.pdf")
    # Its accessible name says the file too, in the language's order.
    expect(row.get_by_role("button", name=re.compile(rf"\b{pause}\b"))).to_be_visible()
    expect(page.locator(".upload-announcer")).to_contain_text(uploading)
    tab.wait_state("riesig.bin", "rejected")
    expect(tab.row("riesig.bin")).to_contain_text(too_large)
    if lang == "de":
        tab.screenshot("upload-page-de.png")
    gate.open()
    tab.wait_state("bericht.pdf", "complete")

    tab.goto("/documents/new/")
    expect(page.locator("html")).to_have_attribute("lang", lang)
    expect(page.locator("form.document-form button[type=submit]")).to_have_text(save)
    tab.assert_no_console_errors()


@pytest.mark.parametrize("locale", ["de-DE", "fr-FR"])
def test_the_login_page_speaks_the_browsers_language(browser, sites, locale):
    site = sites("flow.js")
    context = browser.new_context(locale=locale)
    try:
        page = context.new_page()
        page.goto(f"{site.url}/accounts/login/")
        expect(page.locator("html")).to_have_attribute("lang", locale[:2])
        expect(page.locator("h1")).to_have_text(
            {"de-DE": "Anmelden", "fr-FR": "Se connecter"}[locale]
        )
    finally:
        context.close()
