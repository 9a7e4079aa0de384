"""
The site's Celery application, in the layout Celery's Django guide gives:
https://docs.celeryq.dev/en/stable/django/first-steps-with-django.html

Configured from the CELERY_* settings (config/settings.py); it finds the tasks
in each app's tasks.py. A site without CELERY_BROKER_URL never sends it a task
(uploads.tasks.enabled()), so importing it needs no broker.
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("config")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
