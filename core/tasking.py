"""The base class of every Celery task here: bounded retries with backoff, then set aside for staff."""

import logging

from celery import Task

logger = logging.getLogger(__name__)


class ReliableTask(Task):
    """Idempotent work: acknowledge late (a killed worker's task is redelivered), retry transient errors
    with exponential backoff and jitter, and after the last retry record a FailedTask that admin can
    replay."""

    acks_late = True
    reject_on_worker_lost = True
    autoretry_for = (Exception,)
    max_retries = 5
    retry_backoff = 2
    retry_backoff_max = 300  # well inside the broker's visibility timeout
    retry_jitter = True
    time_limit = 60
    soft_time_limit = 50

    def on_failure(self, exc, task_id, args, kwargs, einfo):
        from .models import FailedTask

        # Only the exception's type and message: tasks take ids, and messages never carry PII.
        summary = f"{type(exc).__name__}: {exc}"[:500]
        logger.error(
            "task %s[%s] set aside after %s retries: %s",
            self.name,
            task_id,
            self.request.retries,
            type(exc).__name__,
        )
        try:
            FailedTask.objects.update_or_create(
                task_id=task_id,
                defaults={
                    "task_name": self.name,
                    "args": list(args or []),
                    "kwargs": dict(kwargs or {}),
                    "exception": summary,
                    "retries": self.request.retries,
                },
            )
        except Exception:  # noqa: BLE001 - the database may be what failed; the log line above remains
            logger.exception("could not record failed task %s", task_id)


def failed_task_replay(*, failed_task_id: int) -> str:
    """Send a set-aside task again with its original arguments; returns the new task id."""
    from celery import current_app
    from django.utils import timezone

    from .models import FailedTask

    ft = FailedTask.objects.get(pk=failed_task_id)
    result = current_app.tasks[ft.task_name].apply_async(args=ft.args, kwargs=ft.kwargs)
    FailedTask.objects.filter(pk=ft.pk).update(replayed_at=timezone.now())
    return result.id


def enqueue(task: Task, *args) -> None:
    """Queue a task now, without blocking on or failing for a broker outage.

    Called from transaction.on_commit hooks: the row is already committed, so a lost message costs only
    time — the sweeper (marketplace.tasks.sweep_stuck_leads) finds the work and queues it again.
    """
    from kombu.exceptions import OperationalError

    try:
        task.apply_async(args=args, retry=False)
    except (OperationalError, ConnectionError, OSError) as exc:
        logger.warning(
            "could not queue %s%s (%s); the sweeper will retry", task.name, args, type(exc).__name__
        )


def enqueue_batches(task: Task, ids: list[int], size: int) -> int:
    """Queue `task` once per `size` ids (a batch per task, as the sweeps hand work on); returns len(ids)."""
    for start in range(0, len(ids), size):
        enqueue(task, ids[start : start + size])
    return len(ids)


def enqueue_on_commit(task: Task, *args) -> None:
    from django.db import transaction

    transaction.on_commit(lambda: enqueue(task, *args))
