"""
Whether the Celery broker takes a task now, asked by the one request of an
upload that needs it to.

With CELERY_BROKER_URL set, the request whose chunk completes a file hands
the file's finish to a worker through the broker (finishing.finish_soon).
That is the only request of an upload that depends on the broker: the chunks
before it write bytes and record ranges (the staging and the database),
Content-Range's `complete` finishes the file in its own request, and a status
read sends a finish only to take over one whose finisher stopped. So that one
chunk, and no other, asks check(), inside the transaction that counts it,
once the count says the file is whole (recording.record): a broker that takes
no connection makes it BrokerUnavailable, `503` with Retry-After, the count
undone, and the client's retry completes the file once the broker is back. A
chunk that is not the last never waits for the broker. (Direct uploads'
complete hands its check to the broker without asking: a broker lost there is
the lease's to recover, as below.)

The probe is a new connection to the broker (for Redis, its PING), about a
millisecond once per file. A broker that failed a probe or a send is taken
to be down in this process for DOWN_FOR seconds, less than the Retry-After a
client waits, so that a burst of last chunks during an outage does not each
wait up to PROBE_TIMEOUT for a broker that does not answer. A broker lost
between the probe and the send, once the range is recorded, is what the
finishing lease is for (finishing._send_finish).
"""

import logging
import time

from django.utils.translation import gettext

from . import tasks
from .errors import BrokerUnavailable

logger = logging.getLogger(__name__)

# Seconds a probe waits for the broker to take its connection.
PROBE_TIMEOUT = 2.0
# Seconds a broker seen down stays down for this process's probes.
DOWN_FOR = 3.0

# When this process last saw the broker fail, and why (time.monotonic()).
_down = {"until": 0.0, "reason": ""}


def check():
    """Raise BrokerUnavailable unless the broker takes a connection now."""
    if time.monotonic() < _down["until"]:
        raise _unavailable(_down["reason"])
    try:
        with tasks.finish_upload.app.connection_for_write(connect_timeout=PROBE_TIMEOUT) as conn:
            conn.ensure_connection(max_retries=0, timeout=PROBE_TIMEOUT)
    except Exception as exc:  # kombu's OperationalError, a DNS failure, a refused connection
        seen_down(exc)
        raise _unavailable(_down["reason"]) from exc


def seen_down(exc):
    """The broker failed a probe or a send: trust it down for DOWN_FOR seconds."""
    logger.warning("the broker cannot be reached: %s", exc)
    _down.update(until=time.monotonic() + DOWN_FOR, reason=type(exc).__name__)


def _unavailable(reason):
    return BrokerUnavailable(
        gettext(
            "the queue that finishes uploads cannot be reached now (%(reason)s); nothing of "
            "this request was recorded: send it again in %(seconds)s seconds"
        )
        % {"reason": reason, "seconds": BrokerUnavailable.retry_after}
    )
