"""The Celery app: qualification, distribution, notification and billing jobs run here."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("marketplace")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
# Outreach's tasks live beside its services (integrations.outreach.tasks), not in integrations.tasks.
app.autodiscover_tasks(["integrations.outreach"])
