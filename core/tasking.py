"""How work is queued, and the base class of every Celery task here: one enqueue that never fails a request,
an outbox for work no sweeper can find again, bounded retries with backoff, then set aside for staff."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from celery import Task, shared_task
from django.db import transaction
from django.utils import timezone
from kombu.exceptions import OperationalError

logger = logging.getLogger(__name__)

# After the broker refuses a message, this process stops trying for a while: every kind of work is found
# again by a sweeper or kept in the outbox, so a staff action deciding 50 returns while the broker is down
# waits once for the connection to fail, not 50 times.
BROKER_BACKOFF_SECONDS = 5.0
_broker_down_until = 0.0


class ReliableTask(Task):
    """Idempotent work: acknowledge late (a killed worker's task is redelivered), retry transient errors
    with exponential backoff and jitter, and after the last retry record a FailedTask that admin can
    replay.

    A task whose lost message no sweeper would notice (an e-mail about an event: nothing in the database
    says it is still owed) sets `outbox = True`: enqueue_on_commit then writes an OutboxTask row in the
    caller's transaction, deleted once the broker has the message, and outbox_flush publishes what is left.
    Every other task names, in `swept_by`, the beat task that finds its work again (or is a beat task)."""

    acks_late = True
    reject_on_worker_lost = True
    autoretry_for = (Exception,)
    max_retries = 5
    retry_backoff = 2
    retry_backoff_max = 300  # well inside the broker's visibility timeout
    retry_jitter = True
    time_limit = 60
    soft_time_limit = 50
    outbox = False
    swept_by = ""

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


def _broker_errors(task: Task) -> tuple[type[BaseException], ...]:
    # kombu wraps most connection failures in OperationalError; the transport's own (redis-py's) can surface
    # too. A TypeError (wrong arguments) is a bug and still raises.
    return (OperationalError, OSError, *task.app.connection_for_write().connection_errors)


def _publish(task: Task, args: tuple, kwargs: dict | None = None, countdown: float | None = None) -> bool:
    """Hand one message to the broker now; False (logged, never raised) if the broker cannot take it."""
    global _broker_down_until
    if time.monotonic() < _broker_down_until:
        logger.warning("broker marked down: %s%s left for its sweeper", task.name, args)
        return False
    try:
        task.apply_async(args=args, kwargs=kwargs, countdown=countdown, retry=False)
    except Exception as exc:
        if not isinstance(exc, _broker_errors(task)):
            raise
        _broker_down_until = time.monotonic() + BROKER_BACKOFF_SECONDS
        logger.warning("could not queue %s%s (%s); its sweeper will", task.name, args, type(exc).__name__)
        return False
    return True


def enqueue(task: Task, *args, countdown: float | None = None) -> bool:
    """Queue a task now, without blocking on or failing for a broker outage; True if the broker took it.

    For workers and beat, outside any transaction (a task handing work on). Everything that changes rows
    first uses enqueue_on_commit. A lost message costs only time: the task's sweeper (ReliableTask.swept_by)
    finds the work and queues it again.
    """
    return _publish(task, args, countdown=countdown)


def enqueue_batches(task: Task, ids: list[int], size: int) -> int:
    """Queue `task` once per `size` ids (a batch per task, as the sweeps hand work on); returns len(ids)."""
    for start in range(0, len(ids), size):
        enqueue(task, ids[start : start + size])
    return len(ids)


def enqueue_on_commit(task: Task, *args) -> None:
    """The one way to queue work caused by a change: once the caller's transaction commits (at once outside
    one), never raising for a broker outage, so a request or a staff action always completes.

    An `outbox` task is durable: its OutboxTask row joins the caller's transaction (rolled back with it) and
    is deleted only once the broker has the message; outbox_flush publishes any row left behind."""
    if not getattr(task, "outbox", False):
        transaction.on_commit(lambda: _publish(task, args))
        return
    from .models import OutboxTask

    row = OutboxTask.objects.create(task_name=task.name, args=list(args))

    def publish() -> None:
        if _publish(task, args):
            # Should this delete fail, the sweeper sends the message again: outbox tasks are idempotent.
            OutboxTask.objects.filter(pk=row.pk).delete()

    transaction.on_commit(publish)


def outbox_flush(*, older_than_seconds: int = 60, limit: int = 500) -> int:
    """Publish outbox rows whose own on-commit publish failed (or whose process died first); returns how
    many the broker took. Rows younger than `older_than_seconds` are left to their publisher."""
    from celery import current_app as app

    from .models import OutboxTask

    sent = 0
    with transaction.atomic():
        # Locked and skipped: two sweepers (or a slow one and the next) never publish the same row twice.
        rows = list(
            OutboxTask.objects.select_for_update(skip_locked=True)
            .filter(created_at__lt=timezone.now() - timedelta(seconds=older_than_seconds))
            .order_by("pk")[:limit]
        )
        done = []
        for row in rows:
            task = app.tasks.get(row.task_name)
            if task is None:  # renamed or removed since: keep the row for staff, log the name only
                logger.error("outbox row %s names no task %s", row.pk, row.task_name)
                continue
            if not _publish(task, tuple(row.args)):
                break  # the broker is still down: the rest wait for the next sweep
            done.append(row.pk)
        OutboxTask.objects.filter(pk__in=done).delete()
        sent = len(done)
    if sent:
        logger.info("outbox: published %d task(s)", sent)
    return sent


def failed_task_replay(*, failed_task_id: int) -> bool:
    """Send a set-aside task again with its original arguments, through the one enqueue (an outbox task
    keeps its row until the broker has it). True once queued, or kept in the outbox; False if the broker
    refused it, and then nothing is marked: staff can replay it again. Tasks are idempotent, so two staff
    replaying the same task at once do no harm."""
    from celery import current_app as app

    from .models import FailedTask

    ft = FailedTask.objects.get(pk=failed_task_id)
    task = app.tasks[ft.task_name]
    if getattr(task, "outbox", False):
        enqueue_on_commit(task, *ft.args)  # outside a transaction: the row is written, then published
        queued = True
    else:
        queued = _publish(task, tuple(ft.args), kwargs=ft.kwargs or None)
    if queued:
        FailedTask.objects.filter(pk=ft.pk).update(replayed_at=timezone.now())
    return queued


def failed_tasks_replay(*, failed_task_ids: list[int]) -> tuple[int, int]:
    """failed_task_replay for each (staff's admin action); returns (queued, refused by the broker)."""
    queued = sum(failed_task_replay(failed_task_id=pk) for pk in failed_task_ids)
    return queued, len(failed_task_ids) - queued


def renamed_task(old_name: str, **options: Any) -> Callable[[Callable[..., Any]], Task]:
    """shared_task that also registers the task under the name it had before a rename, for one release:
    messages already queued in Redis under the old name (and set-aside FailedTask rows or outbox rows naming
    it) still run, with the same options. Our own code only ever queues the new name."""

    def decorate(fun: Callable[..., Any]) -> Task:
        task = shared_task(**options)(fun)

        def forward(*args: Any, **kwargs: Any) -> Any:
            return task(*args, **kwargs)

        forward.__name__ = forward.__qualname__ = old_name.rsplit(".", 1)[-1]
        name = options.get("name") or f"{fun.__module__}.{fun.__name__}"
        forward.__doc__ = f"The old name of {name}, kept for one release."
        # Work lost under the old name is found again as the new task's is (a beat job finds its own).
        shared_task(name=old_name, **{"swept_by": name, **options})(forward)
        return task

    return decorate
