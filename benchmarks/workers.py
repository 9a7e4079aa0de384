"""
What a gunicorn master's workers use, read from /proc: their memory peaks and
CPU time, and the moment they have all finished starting.
"""

import os
import time
from pathlib import Path

from sizes import MB


def worker_pids(master):
    try:
        return sorted(
            int(pid) for pid in Path(f"/proc/{master}/task/{master}/children").read_text().split()
        )
    except OSError:
        return []


def wait_until_started(master, workers, timeout):
    """
    Every worker is up and has finished importing the app. gunicorn answers as
    soon as one worker does; the others may still be importing Django, which
    would be counted as the upload's CPU.
    """
    deadline = time.monotonic() + timeout
    previous = None
    while (current := _cpu_ticks(master)) != previous or len(current) < workers:
        if time.monotonic() > deadline:
            raise RuntimeError(f"gunicorn's {workers} workers did not settle in {timeout} s")
        previous = current
        time.sleep(0.5)


def workers_cpu(master):
    """{pid: (user, system) CPU seconds} each worker has used so far."""
    tick = os.sysconf("SC_CLK_TCK")
    return {pid: tuple(ticks / tick for ticks in _cpu_split(pid)) for pid in worker_pids(master)}


def workers_memory(master):
    """{pid: (VmHWM, VmRSS)} in MB for each worker: peak and current resident size."""
    return {
        pid: (_status_kib(pid, "VmHWM") * 1024 / MB, _status_kib(pid, "VmRSS") * 1024 / MB)
        for pid in worker_pids(master)
    }


def _cpu_ticks(master):
    return tuple(sum(_cpu_split(pid)) for pid in worker_pids(master))


def _cpu_split(pid):
    """(user, system) clock ticks of a process: Python's own work, and the kernel's for it."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        return int(fields[11]), int(fields[12])  # utime, stime
    except (OSError, IndexError, ValueError):
        return 0, 0


def _status_kib(pid, key):
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0
