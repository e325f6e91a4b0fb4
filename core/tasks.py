"""Celery tasks of the plumbing: the sweeper of the outbox."""

from . import tasking
from .tasking import ReliableTask, renamed_task


# renamed_task: the quoted name is the task's name before issue 13.6, kept registered for one release so that
# tasks already queued in Redis (or set aside, to replay) under it still run; drop it in the release after.
@renamed_task("core.tasks.sweep_outbox", base=ReliableTask, max_retries=1)  # old name
def outbox_flush(older_than_seconds: int = 60) -> int:
    """Beat: publish the outbox tasks (e-mails about events) whose own publish the broker refused."""
    return tasking.outbox_flush(older_than_seconds=older_than_seconds)
