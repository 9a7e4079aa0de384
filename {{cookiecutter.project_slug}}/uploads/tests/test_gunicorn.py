"""
The engine across processes: a real gunicorn (the site's gunicorn.conf.py, four
gthread workers) takes several files at once, each in parallel chunks sent in
shuffled order, some of them twice at the same moment, on SQLite and on
PostgreSQL. Every file must come out whole and be finished exactly once.
"""

import random
import re
import sqlite3
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from urllib.parse import urlencode

import pytest

from . import servers
from .chunking import chunk_bounds, chunk_count, params, sha256

# Well under pytest-timeout's 300 s: each case takes seconds when all is well.
pytestmark = [pytest.mark.server, pytest.mark.timeout(120)]

WORKERS = 4
PARALLEL_CHUNKS = 4  # per file, as flow.js's simultaneousUploads
CHUNK_SIZE = 256 * 1024
MB = 1024 * 1024
# The line engine/finishing.py's finish() logs once per upload, after the file is in storage.
COMPLETE_LINE = re.compile(r"upload ([0-9a-f-]{36}) complete: ")


@dataclass
class File:
    name: str
    size: int  # never a multiple of CHUNK_SIZE: the last chunk takes the rest
    protocol: str  # the URL and parameter prefix: "flow" or "resumable"
    method: str  # "octet", "multipart", or "mixed" (each request picks one)
    data: bytes = b""

    @property
    def identifier(self):
        return f"{self.size}-{self.name}"  # flow.js's default identifier


def files_to_send(rng):
    files = [
        File("octet.bin", 3 * MB + 1234, "flow", "octet"),
        File("multipart.bin", 2 * MB + 99_999, "flow", "multipart"),
        File("bigger-mixed.bin", 6 * MB + 4321, "flow", "mixed"),
        File("resumable.bin", 2 * MB + 777, "resumable", "multipart"),
    ]
    for file in files:
        file.data = rng.randbytes(file.size)
    return files


def plan(file, rng):
    """
    (chunk number, method) for every request of `file`: chunks shuffled, a
    quarter of them twice in a row, so that both copies are in flight together.
    """
    numbers = list(range(1, chunk_count(file.size, CHUNK_SIZE) + 1))
    rng.shuffle(numbers)
    twice = set(rng.sample(numbers, max(len(numbers) // 4, 1)))
    sends = [number for number in numbers for _ in range(2 if number in twice else 1)]
    methods = ("octet", "multipart") if file.method == "mixed" else (file.method,)
    return [(number, rng.choice(methods)) for number in sends]


def send_chunk(client, file, number, method):
    """One chunk, as flow.js or resumable.js sends it."""
    query = params(
        file.protocol,
        file.data,
        number,
        chunk_size=CHUNK_SIZE,
        identifier=file.identifier,
        filename=file.name,
    )
    start, end = chunk_bounds(file.size, CHUNK_SIZE, number)
    chunk = file.data[start:end]
    path = f"/uploads/{file.protocol}/"
    if method == "octet":
        return client.post(
            f"{path}?{urlencode(query)}",
            data=chunk,
            headers={"Content-Type": "application/octet-stream"},
        )
    # requests writes the form fields before the file, as browsers do.
    return client.post(
        path, data=query, files={"file": ("blob", chunk, "application/octet-stream")}
    )


def upload(client, file, sends):
    """Send every chunk of `file`, PARALLEL_CHUNKS at a time; the upload's id."""
    with ThreadPoolExecutor(PARALLEL_CHUNKS) as pool:
        responses = list(pool.map(lambda send: send_chunk(client, file, *send), sends))
    chunks_by_id = {}
    for (number, method), response in zip(sends, responses, strict=True):
        assert response.status_code == 200, (
            f"{file.name} chunk {number} ({method}): {response.status_code} {response.text}"
        )
        chunks_by_id.setdefault(response.json()["id"], []).append(number)
    assert len(chunks_by_id) == 1, (
        f"{file.name}: its chunks went to several uploads (id: chunk numbers) {chunks_by_id}"
    )
    return next(iter(chunks_by_id))


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'db.sqlite3'}"
    else:
        with servers.postgres_database() as url:
            yield url


@pytest.fixture
def site(tmp_path, database_url):
    site = servers.Site(tmp_path / "site", database_url, workers=WORKERS)
    try:
        site.start()
        yield site
    finally:
        site.stop()


def test_parallel_uploads_are_whole_and_finished_once(site, database_url):
    seed = random.randrange(2**32)
    print(f"random seed {seed}")  # pytest shows it when the test fails
    rng = random.Random(seed)
    files = files_to_send(rng)
    plans = [plan(file, rng) for file in files]
    client = site.login()

    with ThreadPoolExecutor(len(files)) as pool:
        ids = list(pool.map(upload, [client] * len(files), files, plans))

    # The site finishes an upload in a thread after answering its last chunk.
    for file, upload_id in zip(files, ids, strict=True):
        status = client.finished(upload_id)
        assert status["status"] == "complete", f"{file.name}: {status}"
        assert status["size"] == status["received_bytes"] == file.size
        assert status["sha256"] == sha256(file.data), file.name
        download = client.get(status["download_url"])
        assert download.status_code == 200, file.name
        assert download.content == file.data, file.name
    listed = client.get("/uploads/api/uploads/").json()
    assert sorted(upload["id"] for upload in listed["results"]) == sorted(ids)

    # Stopped, every worker has written its last log line.
    site.stop()
    log = site.log.read_text()
    assert Counter(COMPLETE_LINE.findall(log)) == Counter(ids), "each upload finished once"
    assert [line for line in log.splitlines() if " ERROR " in line] == []
    assert sorted(path.name for path in site.staging.iterdir()) == []
    if database_url.startswith("sqlite"):
        with sqlite3.connect(database_url.removeprefix("sqlite:///")) as db:
            assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
