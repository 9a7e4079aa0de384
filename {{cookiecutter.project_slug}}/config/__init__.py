# Loaded with Django, so that @shared_task binds to the site's Celery app
# (Celery's Django guide). It connects to no broker until a task is sent.
from .celery import app as celery_app

__all__ = ("celery_app",)
