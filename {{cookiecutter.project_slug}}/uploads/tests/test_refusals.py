"""
Refusals against real gunicorn: each one, sent with a body of a few MiB on a
kept-alive `requests.Session`, leaves the connection usable for the client's
next request; and the database going away answers 503 with Retry-After (JSON
on the endpoints, a plain page on the HTML pages), after which the client's
retry succeeds.
"""

import base64
import hashlib
import uuid
from urllib.parse import urlencode

import pytest
import requests

from . import servers

pytestmark = [pytest.mark.server, pytest.mark.timeout(180)]

MiB = 1024**2
BODY = bytes(range(256)) * (3 * MiB // 256)  # 3 MiB: far past gunicorn's 64 KiB drain
MAX_ACTIVE = 3


def b64(text):
    return base64.b64encode(text.encode()).decode()


def make_token(site):
    return site.manage("create_upload_token", site.username, "--name", "tests").strip()


def session_for(site, token):
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    return session


class Calls:
    """The site's endpoints, on one session."""

    def __init__(self, site, session):
        self.url, self.session = site.url, session

    def request(self, method, path, **kwargs):
        return self.session.request(
            method, self.url + path, timeout=servers.REQUEST_TIMEOUT, **kwargs
        )

    def flow(self, identifier, body=BODY, total=None, headers=None, **overrides):
        total = len(body) if total is None else total
        query = {
            "flowChunkNumber": 1,
            "flowChunkSize": len(body),
            "flowCurrentChunkSize": len(body),
            "flowTotalSize": total,
            "flowIdentifier": identifier,
            "flowFilename": "big.bin",
            "flowRelativePath": "big.bin",
            "flowTotalChunks": max(total // len(body), 1),
            **overrides,
        }
        return self.request(
            "POST",
            f"/uploads/flow/?{urlencode(query)}",
            data=body,
            headers={"Content-Type": "application/octet-stream", **(headers or {})},
        )

    def tus_create(self, size=len(BODY)):  # noqa: B008
        response = self.request(
            "POST",
            "/uploads/tus/",
            headers={
                "Tus-Resumable": "1.0.0",
                "Upload-Length": str(size),
                "Upload-Metadata": f"filename {b64('big.bin')}",
            },
        )
        assert response.status_code == 201, response.text
        return response.headers["Location"].removeprefix(self.url)

    def tus_patch(self, path, offset=0, body=BODY, **headers):
        return self.request(
            "PATCH",
            path,
            data=body,
            headers={
                "Tus-Resumable": "1.0.0",
                "Upload-Offset": str(offset),
                "Content-Type": "application/offset+octet-stream",
                **headers,
            },
        )

    def chunked(self, upload_id=None, body=BODY):
        data = {"upload_id": upload_id} if upload_id else {}
        return self.request(
            "POST",
            "/uploads/chunked/",
            data=data,
            files={"file": ("big.bin", body)},
            headers={"Content-Range": f"bytes 0-{len(body) - 1}/{len(body) * 2}"},
        )

    def good(self):
        """A request that succeeds on a usable connection."""
        response = self.request("GET", "/uploads/api/uploads/")
        assert response.status_code == 200, response.text
        return response


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    folder = tmp_path_factory.mktemp("refusals-site")
    site = servers.Site(folder, f"sqlite:///{folder / 'db.sqlite3'}", workers=1)
    site.env["UPLOADS_MAX_ACTIVE_UPLOADS"] = str(MAX_ACTIVE)
    try:
        site.start()
        yield site
    finally:
        site.stop()


def refusals(calls):
    """(expected status, a request sending a body of BODY's size that gets it)."""
    # 410: a Content-Range chunk for an upload its owner cancelled.
    cancelled = calls.chunked().json()["upload_id"]
    assert calls.request("DELETE", f"/uploads/api/uploads/{cancelled}/").status_code == 204
    # Fill the user's unfinished uploads up to MAX_ACTIVE (one for 409).
    open_upload = calls.tus_create(size=2 * len(BODY))
    for n in range(MAX_ACTIVE - 1):
        assert calls.flow(f"keep-{n}", body=BODY[:10], total=20).status_code == 200
    other = hashlib.sha1(b"other").digest()  # noqa: S324 - tus's checksum, not security
    wrong_sha1 = f"sha1 {base64.b64encode(other).decode()}"
    return [
        (400, lambda: calls.flow("bad", flowChunkNumber="x")),
        (401, lambda: calls.tus_patch(open_upload, Authorization="Bearer nope")),
        (403, lambda: calls.flow("anon", headers={"Authorization": "Bearer nope"})),
        (404, lambda: calls.tus_patch(f"/uploads/tus/{uuid.uuid4()}")),
        (409, lambda: calls.tus_patch(open_upload, offset=5)),
        (410, lambda: calls.chunked(cancelled)),
        (413, lambda: calls.flow("huge", total=60 * 1024**3)),
        (415, lambda: calls.tus_patch(open_upload, **{"Content-Type": "text/plain"})),
        (429, lambda: calls.flow("one-too-many")),
        (460, lambda: calls.tus_patch(open_upload, **{"Upload-Checksum": wrong_sha1})),
    ]


def test_every_refusal_leaves_the_connection_usable(site):
    token = make_token(site)
    with session_for(site, token) as session:
        calls = Calls(site, session)
        for status, send in refusals(calls):
            response = send()
            assert response.status_code == status, (status, response.text)
            assert response.json()["error"]
            calls.good()  # on the same session: RemoteDisconnected without the drain


# --- the database unavailable -------------------------------------------------


@pytest.fixture
def postgres_site(tmp_path):
    import psycopg

    with servers.postgres_database() as url:
        site = servers.Site(tmp_path, url, workers=1)
        admin_url = url.rsplit("/", 1)[0] + "/postgres"
        name = url.rsplit("/", 1)[1]
        try:
            site.start()
            with psycopg.connect(admin_url, autocommit=True) as admin:
                yield site, admin, name
                admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        finally:
            site.stop()


def take_database_away(admin, name):
    """New connections refused, and the site's open ones ended."""
    admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
    admin.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE datname = %s AND pid <> pg_backend_pid()",
        [name],
    )


def assert_unavailable(response, *, json=True):
    assert response.status_code == 503, response.text
    assert int(response.headers["Retry-After"]) > 0
    if json:
        assert "database is unavailable" in response.json()["error"]
    else:
        assert response.headers["Content-Type"].startswith("text/plain")
        assert "try again" in response.text


def test_the_database_down_answers_503_with_retry_after_and_the_retry_succeeds(postgres_site):
    site, admin, name = postgres_site
    token = make_token(site)
    browser = site.login()
    with session_for(site, token) as session:
        calls = Calls(site, session)
        path = calls.tus_create(size=20)
        take_database_away(admin, name)

        assert_unavailable(calls.flow("during", body=BODY))
        assert_unavailable(calls.tus_patch(path, body=b"0123456789"))
        assert_unavailable(
            calls.request(
                "POST",
                "/uploads/tus/",
                headers={
                    "Tus-Resumable": "1.0.0",
                    "Upload-Length": "5",
                    "Upload-Metadata": f"filename {b64('a.bin')}",
                },
            )
        )
        assert_unavailable(calls.chunked(body=b"x" * 10))
        assert_unavailable(calls.request("GET", "/uploads/api/uploads/"))
        assert_unavailable(browser.get("/uploads/"), json=False)
        assert_unavailable(browser.get("/documents/"), json=False)

        admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        # The same session, after the 503 of a 3 MiB chunk: the retries go through.
        assert calls.flow("during", body=BODY).status_code == 200
        assert calls.tus_patch(path, body=b"0123456789").status_code == 204
        calls.good()
        assert browser.get("/uploads/").status_code == 200
    assert "Traceback" not in site.log.read_text()
