"""
The deploy kit agrees with the site: nginx accepts the largest request the
site asks a client to send, the README's examples stay within it, the
systemd units parse, and downloads can be handed to nginx.
uploads/tests/test_nginx.py runs the same files for real.
"""

import re
import shutil
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.test import override_settings

from uploads import limits
from uploads.conf import DEFAULTS

from .servers import SITE_ROOT
from .test_api import make

DEPLOY = SITE_ROOT / "deploy"
MiB = 1024**2


def upload_location():
    """The text of nginx.conf's location for the upload endpoints."""
    config = (DEPLOY / "nginx.conf").read_text()
    endpoints = re.escape("location ~ ^/uploads/(flow|resumable|tus|chunked)/ {")
    location = re.search(endpoints + r"(.*?)\n    \}", config, re.S)
    assert location, "deploy/nginx.conf has no location for the upload endpoints"
    return location[1]


def upload_location_body_limit():
    """Its client_max_body_size, in bytes."""
    return int(re.search(r"client_max_body_size (\d+)m;", upload_location())[1]) * MiB


@override_settings(UPLOADS_CHUNK_SIZE=DEFAULTS["CHUNK_SIZE"])
def test_nginx_takes_the_largest_request_of_the_default_settings():
    assert upload_location_body_limit() >= limits.largest_request_body()
    # The page's last chunk carries up to twice the chunk size, less a byte.
    assert limits.largest_request_body() > 2 * DEFAULTS["CHUNK_SIZE"] - 1


@override_settings(UPLOADS_CHUNK_SIZE=DEFAULTS["CHUNK_SIZE"])
def test_upload_limits_prints_the_line_nginx_conf_has():
    out = StringIO()
    call_command("upload_limits", stdout=out)
    line = out.getvalue().splitlines()[-1]
    assert line == "client_max_body_size 65m;"
    assert f" {line}\n" in upload_location()


@override_settings(UPLOADS_CHUNK_SIZE=40 * MiB)
def test_a_bigger_chunk_size_asks_for_a_bigger_limit():
    out = StringIO()
    call_command("upload_limits", stdout=out)
    # The last chunk: 80 MiB less a byte, and its multipart fields.
    assert out.getvalue().splitlines()[-1] == "client_max_body_size 81m;"
    assert "83951615" in out.getvalue()  # 2 x 40 MiB - 1 + 64 KiB


def test_the_readme_sends_pieces_nginx_takes():
    readme = (SITE_ROOT / "README.md").read_text()
    pieces = re.findall(r"(?:chunk_size=|PIECE=\$\(\(|CHUNK=\$\(\()(\d+) \* 1024 \* 1024", readme)
    assert len(pieces) >= 3, "the tuspy example and both curl loops name their piece size"
    assert {int(piece) * MiB for piece in pieces} == {limits.PIECE_SIZE}
    # No example sends a whole file in one request: that is over any proxy's limit.
    assert '-T "$FILE"' not in readme


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze is not here")
def test_the_systemd_units_parse(tmp_path):
    """
    `systemd-analyze verify` on each unit, with /srv/<slug> pointing at a folder
    whose .venv has the commands the units run (it checks that they exist).
    """
    site = tmp_path / "srv"
    (site / ".venv" / "bin").mkdir(parents=True)
    (site / ".env").touch()
    for command in ("python", "gunicorn", "celery"):
        (site / ".venv" / "bin" / command).symlink_to(Path(sys.executable).parent / command)
    units = sorted(DEPLOY.glob("*.service")) + sorted(DEPLOY.glob("*.timer"))
    assert {unit.name for unit in units} >= {
        "gunicorn.service",
        "cleanup-uploads.service",
        "cleanup-uploads.timer",
        "verify-uploads.service",
        "verify-uploads.timer",
        "celery-worker.service",
        "celery-beat.service",
    }
    slug = SITE_ROOT.name
    for unit in units:
        text = unit.read_text().replace(f"/srv/{slug}", str(site))
        (tmp_path / unit.name).write_text(text)
    done = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", *(unit.name for unit in units)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (done.returncode, done.stderr) == (0, "")


@pytest.mark.django_db
@override_settings(UPLOADS_ACCEL_REDIRECT="/protected-media/")
def test_downloads_are_handed_to_nginx_when_asked(alice, user, other_user, client):
    upload = make(user, b"bytes on disk", name="report final.pdf")
    response = alice.get(upload.get_download_url())
    assert response.status_code == 200
    assert response.content == b""  # nginx sends the file
    # Quoted: nginx decodes the URI before it looks for the file.
    quoted = upload.file.name.replace(" ", "%20")
    assert response["X-Accel-Redirect"] == f"/protected-media/{quoted}"
    assert response["Content-Disposition"] == 'attachment; filename="report final.pdf"'
    # Still the owner's only.
    client.force_login(other_user)
    assert client.get(upload.get_download_url()).status_code == 404
