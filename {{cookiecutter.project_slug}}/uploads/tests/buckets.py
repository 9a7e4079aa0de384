"""
moto's standalone S3 server, for the tests of object storage and S3 staging.

No S3 server can run on the project's machines, so these tests talk to moto
(`python -m moto.server`, a separate process on a free port) through the same
boto3 client a real bucket would get. What moto does not check (real S3's
consistency, permissions, part-size limits) the tests do not check either.

`Relay` stands between the site and moto so that a test can make the bucket
unreachable and reachable again: stopping moto itself would forget its buckets.
"""

import socket
import subprocess
import sys
import threading
import time
from contextlib import contextmanager, suppress

from .servers import free_port

START_TIMEOUT = 30


def direct_env(bucket, endpoint):
    """A site's settings for direct uploads into `bucket` at `endpoint` (moto)."""
    return {
        "UPLOADS_DIRECT": "True",
        "AWS_STORAGE_BUCKET_NAME": bucket,
        "AWS_S3_ENDPOINT_URL": endpoint,
        "AWS_S3_REGION_NAME": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }


def readme_cors(origin):
    """The README's CORS rule for direct uploads: the site's origin may PUT parts
    and POST small files, and read the ETag S3 answers a part with."""
    return {
        "CORSRules": [
            {
                "AllowedOrigins": [origin],
                "AllowedMethods": ["PUT", "POST"],
                "AllowedHeaders": ["*"],
                "ExposeHeaders": ["ETag"],
                "MaxAgeSeconds": 3600,
            }
        ]
    }


@contextmanager
def moto_server():
    """Yields the endpoint URL of a moto S3 server, stopped afterwards."""
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError("moto's S3 server did not start") from None
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(10)


class Relay:
    """A TCP relay to `target` (host, port) on a port of its own: while it is
    down, connections to it are refused, as to a bucket (or a broker) that is
    unreachable. `accepted` counts the connections it took."""

    def __init__(self, target):
        self.target = target
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._listener = None
        self._connections = []
        self.accepted = 0

    def up(self):
        """Accept connections (again): no error if it already does."""
        if self._listener is not None:
            return
        self._listener = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._accept, args=(self._listener,), daemon=True).start()

    def down(self):
        """Refuse new connections and cut the open ones."""
        listener, self._listener = self._listener, None
        if listener is not None:
            # close() alone leaves a socket that a thread is accepting on listening.
            with suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        for sock in self._connections:
            with suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        self._connections = []

    def _accept(self, listener):
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            self.accepted += 1
            upstream = socket.create_connection(self.target)
            self._connections += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=_pipe, args=(source, sink), daemon=True).start()


def _pipe(source, sink):
    try:
        while data := source.recv(256 * 1024):
            sink.sendall(data)
    except OSError:
        pass
    finally:
        with suppress(OSError):
            sink.shutdown(socket.SHUT_WR)
