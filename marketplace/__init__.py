"""Project wiring and the market itself: price floors, distribution, Delivery."""

from .celery import app as celery_app

__all__ = ("celery_app",)
