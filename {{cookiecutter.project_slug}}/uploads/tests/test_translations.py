"""
French and German: every text translated, and each request answered in its language.

The browser's Accept-Language picks the language (LocaleMiddleware), for the
pages, the widget's words (the JavaScript catalog) and the endpoints' errors.
"""

import shutil
import subprocess
import sys

import polib
import pytest
from django.conf import settings
from django.test import Client

from .chunking import post_chunk

LANGUAGES = ["fr", "de"]
DOMAINS = ["django", "djangojs"]
CHUNK = 1024


def catalog(root, language, domain):
    return polib.pofile(str(root / "locale" / language / "LC_MESSAGES" / f"{domain}.po"))


def ids(po):
    return {(entry.msgctxt, entry.msgid) for entry in po if not entry.obsolete}


@pytest.fixture(scope="module")
def remade(tmp_path_factory):
    """The catalogs as makemessages makes them now, from a copy of the sources."""
    copy = tmp_path_factory.mktemp("site") / "site"
    shutil.copytree(
        settings.BASE_DIR,
        copy,
        ignore=shutil.ignore_patterns(
            ".*", "venv", "staticfiles", "media", "var", "__pycache__", "*.sqlite3*", "*.mo"
        ),
    )
    ignored = ["-i", "uploads/static/uploads/vendor/*", "-i", "uploads/tests/*"]
    for domain in DOMAINS:
        subprocess.run(
            [sys.executable, "manage.py", "makemessages", "-d", domain, "-l", "fr", "-l", "de"]
            + ignored,
            cwd=copy,
            check=True,
            capture_output=True,
            env={"DJANGO_SECRET_KEY": "makemessages", "PATH": "/usr/bin:/bin"},
        )
    return copy


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("domain", DOMAINS)
def test_every_text_is_translated_and_the_catalogs_are_up_to_date(remade, language, domain):
    shipped = catalog(settings.BASE_DIR, language, domain)
    current = catalog(remade, language, domain)
    assert ids(current) == ids(shipped), "run the README's makemessages commands"
    assert [entry.msgid for entry in shipped.untranslated_entries()] == []
    assert [entry.msgid for entry in shipped.fuzzy_entries()] == []
    assert len(shipped) > 40


@pytest.fixture
def german(user):
    client = Client(headers={"Accept-Language": "de-DE,de;q=0.9"})
    client.force_login(user)
    return client


def browser(language):
    return Client(headers={"Accept-Language": language})


@pytest.mark.parametrize(
    ("language", "lang", "words"),
    [
        ("de-DE,de;q=0.9", "de", "Anmelden"),
        ("fr-FR,fr;q=0.9", "fr", "Se connecter"),
        ("en-US,en;q=0.9", "en", "Log in"),
    ],
)
def test_the_login_page_is_in_the_browsers_language(db, language, lang, words):
    page = browser(language).get("/accounts/login/").content.decode()
    assert f'<html lang="{lang}">' in page
    assert f"<h1>{words}</h1>" in page


def test_the_upload_page_and_document_form_are_in_german(german):
    page = german.get("/uploads/").content.decode()
    assert '<html lang="de">' in page
    assert "Dateien hochladen" in page
    assert "Ihre Uploads" in page
    # The widget's words come from the catalog, loaded before its module.
    assert page.index('src="/jsi18n/"') < page.index("uploads/js/main.js")
    form = german.get("/documents/new/").content.decode()
    assert '<html lang="de">' in form
    assert ">Titel</label>" in form
    assert ">Speichern</button>" in form
    assert 'src="/jsi18n/"' in form


def test_the_widgets_words_are_in_the_catalog(db):
    assert "Pausieren" in browser("de").get("/jsi18n/").content.decode()
    assert "Reprendre" in browser("fr").get("/jsi18n/").content.decode()


@pytest.mark.parametrize(
    ("language", "too_large", "not_allowed", "logged_out"),
    [
        ("de", "angenommen werden höchstens 2048 Bytes", "werden nicht angenommen", "Melden Sie"),
        ("fr", "le maximum accepté est de 2048 octets", "ne sont pas acceptés", "connectez-vous"),
        ("en", "the largest accepted is 2048 bytes", "are not accepted", "log in, or"),
    ],
)
def test_the_endpoints_refusals_follow_the_request_language(
    user, settings, language, too_large, not_allowed, logged_out
):
    settings.UPLOADS_MAX_BYTES = 2 * CHUNK
    settings.UPLOADS_ALLOWED_EXTENSIONS = ["bin"]
    client = browser(language)
    client.force_login(user)
    url = "/uploads/flow/"
    response = post_chunk(client, url, "flow", b"x" * 3 * CHUNK, 1, chunk_size=CHUNK)
    assert response.status_code == 413
    assert too_large in response.json()["error"]
    response = post_chunk(
        client, url, "flow", b"x" * CHUNK, 1, chunk_size=CHUNK, filename="run.exe"
    )
    assert response.status_code == 415
    assert not_allowed in response.json()["error"]
    anonymous = browser(language).post(url)
    assert anonymous.status_code == 403
    assert logged_out in anonymous.json()["error"]


@pytest.mark.parametrize(
    ("language", "no_length", "no_md5", "not_a_number"),
    [
        ("de", "der Upload-Length-Header fehlt", "sind beide erforderlich", "ganze Zahl"),
        ("fr", "l’en-tête Upload-Length est manquant", "sont tous deux requis", "nombre entier"),
        ("en", "the Upload-Length header is missing", "are required", "whole number"),
    ],
)
def test_the_protocols_refusals_follow_the_request_language(
    user, language, no_length, no_md5, not_a_number
):
    client = browser(language)
    client.force_login(user)
    response = client.post("/uploads/tus/", HTTP_TUS_RESUMABLE="1.0.0", HTTP_UPLOAD_METADATA="")
    assert response.status_code == 400
    assert no_length in response.json()["error"]
    response = client.post("/uploads/chunked/complete/", {"upload_id": "x"})
    assert response.status_code == 400
    assert no_md5 in response.json()["error"]
    response = client.get("/uploads/api/uploads/?page=two")
    assert response.status_code == 400
    assert not_a_number in response.json()["error"]
