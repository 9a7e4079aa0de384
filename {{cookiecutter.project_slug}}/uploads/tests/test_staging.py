"""
Staging backends: the contract in uploads/staging/base.py is all the engine
needs, UPLOADS_STAGING picks the backend, and a wrong name says so.
"""

import inspect
import io
import threading
from contextlib import contextmanager

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.files.base import ContentFile

from uploads import engine, staging
from uploads.models import Upload
from uploads.staging.base import StagingBackend
from uploads.staging.local import LocalStaging

from .chunking import sha256

pytestmark = pytest.mark.django_db


class MemoryStaging(StagingBackend):
    """Staged bytes in a dict: a backend written only against the contract."""

    def __init__(self):
        self.files, self.lock = {}, threading.Lock()

    def create(self, upload):
        self.files[upload.pk] = bytearray()

    @contextmanager
    def open_locked(self, upload, start=0, length=0, *, timeout=None):
        if upload.pk not in self.files:
            raise staging.Gone(upload.pk)
        with self.lock:
            yield self.files[upload.pk]

    def write_block(self, data, block, position):
        data.extend(bytes(max(position - len(data), 0)))  # a hole reads as zeros, as in a file
        data[position : position + len(block)] = block
        return position + len(block)

    def size(self, data):
        return len(data)

    def read_in_order(self, data, size, start=0):
        for first in range(start, size, staging.BLOCK_SIZE):
            yield memoryview(data)[first : min(first + staging.BLOCK_SIZE, size)]

    def staged_file(self, upload):
        return ContentFile(bytes(self.files[upload.pk]), name=upload.name)

    def remove(self, upload):
        self.files.pop(upload.pk, None)


@pytest.fixture
def memory(settings, monkeypatch):
    monkeypatch.setitem(staging.BACKENDS, "memory", f"{__name__}.MemoryStaging")
    settings.UPLOADS_STAGING = "memory"
    return staging.backend


def test_by_default_an_upload_is_staged_as_one_file_in_the_staging_dir(user, settings):
    upload = engine.start(user, Upload.Protocol.FLOW, filename="m.bin", size=10)
    assert isinstance(staging.backend._wrapped, LocalStaging)
    assert (settings.UPLOADS_STAGING_DIR / f"{upload.id.hex}.part").is_file()


def test_an_upload_goes_through_any_backend_that_keeps_the_contract(user, memory):
    data = bytes(range(256)) * 40
    upload = engine.start(user, Upload.Protocol.FLOW, filename="m.bin", size=len(data))
    for start in (4096, 0, 8192):  # out of order, as flow.js may send them
        piece = data[start : start + 4096]
        engine.write(upload, engine.Piece(start, len(piece), io.BytesIO(piece)))
    upload.refresh_from_db()
    assert upload.status == Upload.Status.COMPLETE
    assert upload.sha256 == sha256(data)
    assert upload.file.read() == data
    assert memory.files == {}, "the staged bytes are gone once the file is stored"


def test_cancel_removes_what_any_backend_staged(user, memory):
    upload = engine.start(user, Upload.Protocol.FLOW, filename="m.bin", size=10)
    engine.write(upload, engine.Piece(0, 5, io.BytesIO(b"hello")))
    engine.cancel(upload)
    assert memory.files == {}


def test_an_unknown_backend_is_refused_by_name(settings):
    settings.UPLOADS_STAGING = "ftp"
    with pytest.raises(ImproperlyConfigured, match="must be one of local, s3, not 'ftp'"):
        staging.backend.create(None)


@pytest.mark.parametrize(
    "name",
    ["create", "open_locked", "write_block", "size", "read_in_order", "staged_file", "remove"],
)
def test_each_required_method_names_itself_when_a_backend_lacks_it(name):
    method = getattr(StagingBackend(), name)
    parameters = inspect.signature(method).parameters.values()
    required = [p for p in parameters if p.default is p.empty and p.kind == p.POSITIONAL_OR_KEYWORD]
    with pytest.raises(NotImplementedError, match=rf"provide an? {name}\(\) method"):
        method(*[None] * len(required))
