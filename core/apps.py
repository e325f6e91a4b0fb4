"""Plumbing with no domain words (see core/__init__.py); its models are the set-aside task and the outbox."""

from django.apps import AppConfig


class CoreConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "core"
    verbose_name = "Plumbing"
