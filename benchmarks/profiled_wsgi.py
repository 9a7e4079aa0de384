"""
The generated site's WSGI app, with every request run under cProfile.

upload_throughput.py --profile copies this module into its temp dir and serves
`profiled_wsgi:application` with the site's own gunicorn.conf.py, so the site
is profiled without a line of it changing. cProfile follows one thread, the
one that enables it, so each request gets its own profiler in the gthread
thread that serves it; the results are added into one pstats.Stats per worker
process and written to $BENCH_PROFILE_DIR/<pid>.prof after each request (a
worker may be killed rather than exit, so there is no "at exit").

Times are the thread's CPU time by default, not wall-clock time: on a
machine others load too, wall-clock profiles mostly measure waiting for a CPU.
Time spent blocked (a lock, a socket with nothing to read) does not show in
them; BENCH_PROFILE_CLOCK=wall profiles wall-clock time instead, which shows
where a request waits (that is how the PostgreSQL gap was found: see the
README's "PostgreSQL").
"""

import cProfile
import os
import pstats
import threading
import time

from config.wsgi import application as site_application

PROFILE_DIR = os.environ["BENCH_PROFILE_DIR"]
CLOCK = {"cpu": time.thread_time, "wall": time.perf_counter}[
    os.environ.get("BENCH_PROFILE_CLOCK", "cpu")
]
# The benchmark's warm-up requests carry X-Bench-Warm-Up; they are not the upload's cost.
WARM_UP_HEADER = "HTTP_X_BENCH_WARM_UP"
_stats = None
_lock = threading.Lock()


def application(environ, start_response):
    if WARM_UP_HEADER in environ:
        return site_application(environ, start_response)
    profile = cProfile.Profile(CLOCK)
    profile.enable()
    try:
        # The body is consumed and closed inside the profile: close() is where
        # Django sends request_finished, which closes database connections.
        response = site_application(environ, start_response)
        try:
            return [b"".join(response)]
        finally:
            response.close()
    finally:
        profile.disable()
        _add(profile)


def _add(profile):
    global _stats
    with _lock:
        if _stats is None:
            _stats = pstats.Stats(profile)
        else:
            _stats.add(profile)
        _stats.dump_stats(os.path.join(PROFILE_DIR, f"{os.getpid()}.prof"))
