"""Outreach's Celery tasks, on the outbound worker's mail queue (config.settings routes them). A module of
its own (config.celery discovers it): the channels' services queue integrations.tasks, which must not
import these services back."""

from __future__ import annotations

from celery import shared_task

from core.tasking import ReliableTask

from . import services

SWEPT_BY = "integrations.outreach.tasks.outreach_run_due"


@shared_task(base=ReliableTask, swept_by=SWEPT_BY)
def deliveries_outreach_start(delivery_ids: list[int]) -> int:
    """A sale's first touch within seconds, its call-now task, the consumer's confirmation. Idempotent:
    each step runs once (integrations.outreach.services). Lost, outreach_run_due enrols the deliveries."""
    return services.deliveries_outreach_start(delivery_ids=delivery_ids)


@shared_task(base=ReliableTask, max_retries=1)
def outreach_run_due() -> int:
    """Beat (every OUTREACH_INTERVAL_SECONDS): the sequence steps now due, each once, quiet hours kept;
    claims of dead workers settled; deliveries whose start task was lost enrolled."""
    return services.outreach_run_due(seconds=20.0)


# Durable (outbox): nothing else would notice a lost message. A whole window of leads: more time than a step.
@shared_task(base=ReliableTask, outbox=True, max_retries=3, time_limit=600, soft_time_limit=540)
def guideline_set_requalify(guideline_set_id: int) -> int:
    """A new rate sheet is active: re-run the open leads' numbers, a call task where they improved. Idempotent
    (one task per delivery and guideline set, integrations.outreach.requalify)."""
    from .requalify import guideline_set_requalify as run

    return run(guideline_set_id=guideline_set_id).tasks
