"""Celery tasks of the plumbing: the sweeper of the outbox."""

from celery import shared_task

from .tasking import ReliableTask, outbox_flush


@shared_task(base=ReliableTask, max_retries=1)
def sweep_outbox(older_than_seconds: int = 60) -> int:
    """Beat: publish the outbox tasks (e-mails about events) whose own publish the broker refused."""
    return outbox_flush(older_than_seconds=older_than_seconds)
