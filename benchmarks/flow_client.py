"""
flow.js, as a client: one file cut into chunks as flow.js cuts it, sent over
`simultaneousUploads` persistent connections with the parameters and the
multipart layout a browser sends, and the status API polled until the site
says the upload is complete.
"""

import contextlib
import http.client
import json
import re
import secrets
import threading
import time
from dataclasses import dataclass
from urllib.parse import quote, urlencode

from sizes import MB

HOST = "127.0.0.1"
FLOW_PATH = "/uploads/flow/"
# The status API list the site's page asks before it sends a file.
UNFINISHED_PATH = "/uploads/api/uploads/"
BOUNDARY_CHARACTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

# Bounds, so that a hung server or client never hangs the benchmark.
REQUEST_TIMEOUT = 300  # one chunk, including the finishing pass of the last one
# Bytes/s: an upload slower than this is broken, not slow; it is stopped.
SLOWEST_RATE = 5 * MB
# Short: the wait after the last chunk is a target of its own (100 ms).
POLL_INTERVAL = 0.01
POLL_TIMEOUT = 300


@dataclass(frozen=True)
class Chunk:
    number: int
    offset: int
    length: int


@dataclass(frozen=True)
class Plan:
    """One file cut as flow.js cuts it, with the parameters it sends for each chunk."""

    size: int
    chunk_size: int
    filename: str

    @property
    def count(self):
        # flow.js: Math.max(Math.floor(size / chunkSize), 1) without forceChunkSize.
        return max(self.size // self.chunk_size, 1)

    @property
    def identifier(self):
        # flow.js's generateUniqueIdentifier: size + '-' + name without [^0-9a-zA-Z_-].
        return f"{self.size}-{re.sub(r'[^0-9a-zA-Z_-]', '', self.filename)}"

    def chunks(self):
        for index in range(self.count):
            start = index * self.chunk_size
            # The last chunk takes the remainder: up to 2 x chunkSize - 1 bytes.
            end = self.size if index == self.count - 1 else start + self.chunk_size
            yield Chunk(index + 1, start, end - start)

    def params(self, chunk):
        # The order of flow.js's FlowChunk.getParams(), which is also the form's field order.
        return {
            "flowChunkNumber": chunk.number,
            "flowChunkSize": self.chunk_size,
            "flowCurrentChunkSize": chunk.length,
            "flowTotalSize": self.size,
            "flowIdentifier": self.identifier,
            "flowFilename": self.filename,
            "flowRelativePath": self.filename,
            "flowTotalChunks": self.count,
        }


def query_string(params):
    # encodeURIComponent's safe characters.
    return urlencode(params, quote_via=lambda value, *_: quote(value, safe="-_.!~*'()"))


def multipart_envelope(params, filename):
    """What a browser's FormData puts around the file's bytes: (boundary, before, after)."""
    boundary = "----WebKitFormBoundary" + "".join(
        secrets.choice(BOUNDARY_CHARACTERS) for _ in range(16)
    )
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
        for name, value in params.items()
    ]
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    )
    return boundary, "".join(parts).encode(), f"\r\n--{boundary}--\r\n".encode()


@dataclass
class Exchange:
    """One chunk's POST, as the client saw it."""

    number: int
    start: float
    end: float
    body: dict


class Slot:
    """
    One of flow.js's simultaneous uploads: a persistent HTTP/1.1 connection and
    a handle on the source file. Chunks go out with sendfile(), straight from
    the page cache, so the client costs next to no CPU of the two cores it
    shares with the server.
    """

    def __init__(self, hosts, path, source, method):
        self.path, self.method = path, method
        self.source = source  # an open file of its own: sendfile() moves its position
        # One connection to each host, with the headers a browser sends there (its Origin).
        self.hosts = [
            (http.client.HTTPConnection(HOST, port, timeout=REQUEST_TIMEOUT), headers)
            for port, headers in hosts
        ]
        self.conn, self.headers = self.hosts[0]
        self.retries = 0

    def close(self):
        for conn, _ in self.hosts:
            conn.close()

    def list_unfinished(self):
        """The site's page asks the status API which files it has a part of before sending."""
        status, _ = self._retrying(
            lambda: self._request("GET", {}, b"", None, b"", path=UNFINISHED_PATH)
        )
        if status not in (200, 204):
            raise RuntimeError(f"{UNFINISHED_PATH} answered {status}")

    def test(self, plan, chunk):
        """flow.js's testChunks GET: True when the server already has the chunk."""
        self._to_host_of(chunk)
        status, _ = self._retrying(lambda: self._request("GET", plan.params(chunk), b"", None, b""))
        if status not in (200, 204):
            raise RuntimeError(f"test GET of chunk {chunk.number} answered {status}")
        return status == 200

    def send(self, plan, chunk):
        self._to_host_of(chunk)
        params = plan.params(chunk)
        start = time.perf_counter()
        if self.method == "octet":
            status, body = self._retrying(lambda: self._request("POST", params, b"", chunk, b""))
        else:
            status, body = self._retrying(
                lambda: self._send_multipart(params, plan.filename, chunk)
            )
        end = time.perf_counter()
        if status != 200:
            raise RuntimeError(f"chunk {chunk.number} answered {status}: {body[:300]!r}")
        return Exchange(chunk.number, start, end, json.loads(body or b"{}"))

    def _to_host_of(self, chunk):
        # Chunk n goes to host n % hosts: consecutive chunks alternate, as behind
        # a load balancer without affinity.
        self.conn, self.headers = self.hosts[chunk.number % len(self.hosts)]

    def _send_multipart(self, params, filename, chunk):
        boundary, before, after = multipart_envelope(params, filename)
        content_type = f"multipart/form-data; boundary={boundary}"
        return self._request("POST", {}, before, chunk, after, content_type)

    def _request(
        self,
        method,
        params,
        before,
        chunk,
        after,
        content_type="application/octet-stream",
        path=None,
    ):
        url = (path or self.path) + ("?" + query_string(params) if params else "")
        conn = self.conn
        conn.putrequest(method, url, skip_accept_encoding=True)
        for name, value in self.headers.items():
            conn.putheader(name, value)
        if chunk is not None:
            conn.putheader("Content-Type", content_type)
            conn.putheader("Content-Length", str(len(before) + chunk.length + len(after)))
        conn.endheaders(before or None)
        if chunk is not None:
            conn.sock.sendfile(self.source, chunk.offset, chunk.length)
            if after:
                conn.sock.sendall(after)
        response = conn.getresponse()
        return response.status, response.read()

    def _retrying(self, send):
        """A request, sent again once on a fresh connection if the kept-alive one was closed."""
        try:
            return send()
        except (ConnectionError, http.client.HTTPException):
            self.retries += 1
            self.conn.close()
            return send()


class StatusPoller(threading.Thread):
    """Polls the status API from the moment the last chunk goes out until it says complete."""

    def __init__(self, port, headers):
        super().__init__(daemon=True)
        self.port, self.headers = port, headers
        self.upload_id = None
        self.go = threading.Event()
        self.complete_at = None  # when it first said `complete`
        self.final = None  # the status it said then
        self.error = None  # reported by the main thread

    def start_clock(self, upload_id):
        self.upload_id = upload_id
        self.go.set()

    def run(self):
        if not self.go.wait(POLL_TIMEOUT):
            return
        conn = http.client.HTTPConnection(HOST, self.port, timeout=30)
        try:
            self._poll(conn, time.perf_counter() + POLL_TIMEOUT)
        except (OSError, ValueError, http.client.HTTPException) as exc:
            self.error = exc
        finally:
            conn.close()

    def _poll(self, conn, deadline):
        path = f"/uploads/api/uploads/{self.upload_id}/"
        while time.perf_counter() < deadline:
            conn.request("GET", path, headers=self.headers)
            response = conn.getresponse()
            body = response.read()
            if response.status != 200:
                raise ValueError(f"{path} answered {response.status}: {body[:200]!r}")
            status = json.loads(body).get("status")
            if status == "complete":
                self.complete_at = time.perf_counter()
                self.final = json.loads(body)
                return
            if status == "failed":
                raise ValueError(f"the upload failed: {body[:300]!r}")
            time.sleep(POLL_INTERVAL)


@dataclass
class UploadRun:
    wall: float
    exchanges: list
    retries: int
    last_started: float  # when the last chunk in flow.js's order started
    poller: StatusPoller = None
    began: float = 0.0  # the first request went out
    last_answer: float = 0.0  # the chunk that completed the file was answered
    complete_at: float = 0.0  # the server said the file is whole (the ceiling: last answer)

    @property
    def end_to_end(self):
        """From the first byte sent to the server's `complete`: what the user waits."""
        return self.complete_at - self.began

    @property
    def answer_to_complete(self):
        """From the last chunk's answer (`processing`) to `complete`: the wait after it."""
        return self.complete_at - self.last_answer

    def finishing(self):
        """The exchange whose response said `complete` (the site), else the last to end."""
        done = [e for e in self.exchanges if e.body.get("status") == "complete"]
        return done[0] if done else max(self.exchanges, key=lambda e: e.end)


def upload(hosts, plan, source, *, method, slots, test_chunks, poll):
    """
    Send every chunk of `plan` as flow.js does: `slots` connections take chunks
    in order. `hosts`: (port, headers) of each host serving the site; with
    more than one, consecutive chunks alternate between them, and the status
    API is polled on the first.
    """
    pending = iter(plan.chunks())
    lock = threading.Lock()
    exchanges, errors = [], []
    state = {"upload_id": None, "last_started": None}
    poller = StatusPoller(*hosts[0]) if poll else None

    def next_chunk():
        with lock:
            return None if errors else next(pending, None)

    def work(slot):
        try:
            while (chunk := next_chunk()) is not None:
                if test_chunks and slot.test(plan, chunk):
                    continue
                if chunk.number == plan.count:
                    state["last_started"] = time.perf_counter()
                    if poller and state["upload_id"]:
                        poller.start_clock(state["upload_id"])
                exchange = slot.send(plan, chunk)
                with lock:
                    exchanges.append(exchange)
                    state["upload_id"] = state["upload_id"] or exchange.body.get("id")
        except (OSError, ValueError, RuntimeError, http.client.HTTPException) as exc:
            with lock:  # reported by the main thread
                errors.append(exc)

    with contextlib.ExitStack() as stack:
        pool = []
        for _ in range(slots):
            slot = Slot(hosts, FLOW_PATH, stack.enter_context(open(source, "rb")), method)
            stack.callback(slot.close)
            pool.append(slot)
        threads = [threading.Thread(target=work, args=(slot,), daemon=True) for slot in pool]
        if poller:
            poller.start()
        began = time.perf_counter()
        if not test_chunks:
            pool[0].list_unfinished()
        for thread in threads:
            thread.start()
        deadline = began + REQUEST_TIMEOUT + plan.size / SLOWEST_RATE
        for thread in threads:
            thread.join(max(deadline - time.perf_counter(), 0))
    if errors or any(thread.is_alive() for thread in threads):
        raise RuntimeError(f"the {method} upload failed: {errors[0] if errors else 'timed out'}")
    if len(exchanges) != plan.count:
        raise RuntimeError(f"the {method} upload sent {len(exchanges)} of {plan.count} chunks")
    if poller:
        if not poller.go.is_set() and state["upload_id"]:
            # A one-chunk file: its id came with the only response.
            poller.start_clock(state["upload_id"])
        poller.join(POLL_TIMEOUT + 5)
        if poller.error:
            raise RuntimeError(f"polling the status API failed: {poller.error}")
    last = max(exchanges, key=lambda e: e.end)
    run = UploadRun(
        last.end - began, exchanges, sum(s.retries for s in pool), state["last_started"], poller
    )
    run.began, run.last_answer, run.complete_at = began, last.end, last.end
    answered_complete = [e.end for e in exchanges if e.body.get("status") == "complete"]
    if answered_complete:  # the last chunk's answer said `complete` already
        run.complete_at = min(answered_complete)
    elif poller and poller.complete_at:
        # Never before the last answer: the page learns `complete` after it.
        run.complete_at = max(poller.complete_at, last.end)
    return run


def unique_filename(stem):
    """
    A name no earlier try used: flow.js's identifier is size + name, and the
    site sends a late copy of a finished upload's chunk to that upload (it
    drains it and answers `complete`), so a reused name would measure a drain.
    """
    return f"{stem}-{secrets.token_hex(4)}.bin"
