"""Wiring only: settings read from the environment, the root URLs, the Celery app, WSGI, /healthz."""

from .celery import app as celery_app

__all__ = ("celery_app",)
