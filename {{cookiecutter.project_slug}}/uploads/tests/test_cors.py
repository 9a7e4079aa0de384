"""
Cross-origin uploads: off by default; from an allowed origin, a browser's
preflight passes and the tus headers are readable. A real browser does a
cross-origin tus upload in test_tus_clients.py.
"""

import pytest
from django.test import Client

from uploads import tokens

pytestmark = pytest.mark.django_db
APP = "https://app.example.com"


def preflight(origin, path="/uploads/tus/"):
    return Client().options(
        path,
        HTTP_ORIGIN=origin,
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="PATCH",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="authorization,tus-resumable,upload-offset,content-type",
    )


def test_off_by_default():
    response = preflight(APP)
    assert "Access-Control-Allow-Origin" not in response


def test_preflight_and_request_from_an_allowed_origin(settings, user):
    settings.CORS_ALLOWED_ORIGINS = [APP]
    response = preflight(APP)
    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == APP
    assert "PATCH" in response["Access-Control-Allow-Methods"]
    allowed = response["Access-Control-Allow-Headers"]
    for header in ("authorization", "tus-resumable", "upload-offset", "upload-metadata"):
        assert header in allowed

    _, token = tokens.create(user, "app")
    created = Client().post(
        "/uploads/tus/",
        HTTP_ORIGIN=APP,
        HTTP_AUTHORIZATION=f"Bearer {token}",
        HTTP_TUS_RESUMABLE="1.0.0",
        HTTP_UPLOAD_LENGTH="10",
        HTTP_UPLOAD_METADATA="filename YS50eHQ=",
    )
    assert created.status_code == 201
    assert created["Access-Control-Allow-Origin"] == APP
    exposed = created["Access-Control-Expose-Headers"]
    for header in ("Location", "Upload-Offset", "Upload-Length", "Tus-Resumable", "Upload-Expires"):
        assert header in exposed


def test_refused_from_another_origin(settings):
    settings.CORS_ALLOWED_ORIGINS = [APP]
    response = preflight("https://evil.example.net")
    assert "Access-Control-Allow-Origin" not in response


def test_only_the_upload_endpoints_answer_cors(settings):
    settings.CORS_ALLOWED_ORIGINS = [APP]
    assert "Access-Control-Allow-Origin" not in preflight(APP, "/admin/")
    assert preflight(APP, "/uploads/api/uploads/")["Access-Control-Allow-Origin"] == APP


def test_every_tus_header_the_site_answers_is_readable_cross_origin(settings, user):
    """A header the tus view answers but tus_headers.RESPONSE_HEADERS lacks fails here."""
    settings.CORS_ALLOWED_ORIGINS = [APP]
    _, token = tokens.create(user, "app")
    tus = {
        "HTTP_ORIGIN": APP,
        "HTTP_AUTHORIZATION": f"Bearer {token}",
        "HTTP_TUS_RESUMABLE": "1.0.0",
    }
    answers = [
        Client().options("/uploads/tus/", **tus),
        Client().post(
            "/uploads/tus/",
            HTTP_UPLOAD_DEFER_LENGTH="1",
            HTTP_UPLOAD_METADATA="filename YS50eHQ=",
            **tus,
        ),
    ]
    answers.append(Client().head(answers[1]["Location"], **tus))
    exposed = {h.strip().lower() for h in answers[1]["Access-Control-Expose-Headers"].split(",")}
    sent = {
        name.lower()
        for answer in answers
        for name in answer.headers
        if name.lower().startswith(("upload-", "tus-")) or name.lower() == "location"
    }
    assert len(sent) >= 8, sent
    assert sent <= exposed, sent - exposed
