"""
The uploads app's background work on Celery, used when CELERY_BROKER_URL is
set (config/celery.py). Each task takes ids, never model instances: the
database row is read when the task runs and says what is left to do, so a
task run twice, late or after its upload changed does the right thing.

Finishing is engine.finish_upload(), the same function the web process runs
in its thread without a broker. The task is acknowledged only once it returns
(acks_late) and given back to the queue if its worker process dies
(reject_on_worker_lost), so a worker killed while hashing has the job run
again on another; the upload's lease and its conditional UPDATE to `complete`
make that second run finish it at most once, and upload_completed fire once.
The result backend is never asked: the status API reads the row.
"""

import logging

from celery import shared_task
from django.conf import settings
from django.core.management import call_command

from . import engine

logger = logging.getLogger(__name__)


def enabled():
    """Whether background work goes to Celery (a broker is configured) or stays in this process."""
    return bool(getattr(settings, "CELERY_BROKER_URL", ""))


@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def finish_upload(upload_id):
    engine.finish_upload(upload_id)


@shared_task(ignore_result=True)
def cleanup_uploads():
    """The beat schedule's hourly run of `manage.py cleanup_uploads` (deploy/crontab's)."""
    call_command("cleanup_uploads", verbosity=0)


@shared_task(ignore_result=True)
def verify_uploads():
    """The beat schedule's weekly `manage.py verify_uploads --since 8d` (deploy/crontab's)."""
    call_command("verify_uploads", "--since", "8d", verbosity=0)
