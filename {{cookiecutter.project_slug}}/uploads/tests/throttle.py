"""
A throttling TCP proxy between a browser and the site, for the browser tests.

Chromium's network emulation slows answers but not request bodies, so an
upload through it cannot be caught half-way. This proxy, on loopback, passes
what the browser sends at most `rate` bytes a second (all connections
together), and can hold everything (pause) or drop every connection (as a
network that is lost does). When the site is down it accepts the browser's
connection and closes it: the browser sees the connection reset, as it does
when a server restarts behind a load balancer.
"""

import contextlib
import socket
import threading
import time

BLOCK = 8 * 1024  # bytes sent at a time: small enough to keep the rate smooth


class ThrottlingProxy:
    def __init__(self, upstream_port, rate):
        self.upstream_port = upstream_port
        self.rate = rate
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self._lock = threading.Lock()
        self._next_send = 0.0  # when the shared budget allows the next block
        self._flowing = threading.Event()
        self._flowing.set()
        self._sockets = set()
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def pause(self):
        """Hold what the browser sends, as a link that stalls."""
        self._flowing.clear()

    def resume(self):
        self._flowing.set()

    def drop_connections(self):
        """Close every open connection, as a lost network or a restarting server does."""
        with self._lock:
            sockets, self._sockets = self._sockets, set()
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)  # their pipes close them

    def close(self):
        self._closed = True
        self._flowing.set()
        self._listener.close()
        self.drop_connections()

    def _accept(self):
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client):
        try:
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port), timeout=5)
        except OSError:
            client.close()  # the site is down
            return
        upstream.settimeout(None)
        with self._lock:
            self._sockets.update((client, upstream))
        threading.Thread(target=self._pipe, args=(upstream, client, False), daemon=True).start()
        self._pipe(client, upstream, True)

    def _pipe(self, source, target, throttled):
        try:
            while True:
                data = source.recv(BLOCK)
                if not data:
                    break
                if throttled:
                    self._wait_for_budget(len(data))
                target.sendall(data)
        except OSError:
            pass
        finally:
            # One side is done: the other pipe learns it (its recv returns)
            # and closes its own source in turn.
            for sock in (source, target):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
            with self._lock:
                self._sockets.discard(source)
            source.close()

    def _wait_for_budget(self, size):
        self._flowing.wait()
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next_send)
            self._next_send = start + size / self.rate
        time.sleep(max(0.0, start - now))
