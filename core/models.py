"""The plumbing's models: a Celery task set aside after its retries ran out, and the outbox of tasks waiting
for the broker."""

from django.db import models
from django.utils import timezone


class FailedTask(models.Model):
    """A task set aside after its retries ran out. Staff read it in admin and replay it once fixed.

    Arguments are ids only (tasks never carry personal data), so keeping them here is safe.
    """

    task_name = models.CharField(max_length=200)
    task_id = models.CharField(max_length=64, unique=True)
    args = models.JSONField(default=list)
    kwargs = models.JSONField(default=dict)
    exception = models.CharField(max_length=500)
    retries = models.PositiveIntegerField(default=0)
    failed_at = models.DateTimeField(default=timezone.now)
    replayed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-failed_at"]
        # The table keeps the name it had when the model lived in marketplace (moved without a copy).
        db_table = "marketplace_failedtask"
        indexes = [models.Index(fields=["replayed_at", "failed_at"], name="marketplace_replaye_8a8172_idx")]

    def __str__(self) -> str:
        return f"{self.task_name}{tuple(self.args)} failed"


class OutboxTask(models.Model):
    """A task written in the transaction whose change it announces, deleted once the broker has it: work
    no sweeper could find again (an e-mail about an event) survives a broker outage. Ids only, as tasks."""

    task_name = models.CharField(max_length=200)
    args = models.JSONField(default=list)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["created_at", "id"]
        # The table keeps the name it had when the model lived in marketplace (moved without a copy).
        db_table = "marketplace_outboxtask"

    def __str__(self) -> str:
        return f"{self.task_name}{tuple(self.args)} waiting for the broker"
