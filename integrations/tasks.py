"""Celery tasks: webhook sends per endpoint, the sweeper that queues due ones, and e-mail notifications."""

from __future__ import annotations

import logging
import time
from decimal import Decimal

from celery import shared_task

from marketplace.tasking import ReliableTask

from . import notifications, services
from .services import webhook_endpoints_schedule
from .webhooks import (
    MAX_COUNTDOWN,
    webhook_endpoint_send_due,
    webhook_endpoints_due,
    webhook_lender_next_endpoint,
)

logger = logging.getLogger(__name__)


# A task sends for this long at most, then hands on through the back of the queue: a slow receiver must not
# hold the worker, nor the task run into its time limit.
BATCH_SECONDS = 10


@shared_task(
    base=ReliableTask, time_limit=60, soft_time_limit=50, swept_by="integrations.tasks.send_due_webhooks"
)
def send_endpoint_webhooks(endpoint_id: int) -> int:
    """One endpoint's due messages, in order, over one connection (integrations.webhooks, "Scheduling"),
    then hand on to the lender's next due endpoint (this one again if it has more). A short retry wait is a
    countdown; a long one waits in the database for the sweeper. Idempotent: a message already delivered,
    or being sent by another task, is skipped. Returns the attempts made."""
    run = webhook_endpoint_send_due(endpoint_id=endpoint_id, until=time.monotonic() + BATCH_SECONDS)
    if run.lender_id is None:
        return 0
    if run.retry is not None and run.retry <= MAX_COUNTDOWN:
        webhook_endpoints_schedule(endpoint_ids=[endpoint_id], countdown=run.retry.total_seconds())
    following = webhook_lender_next_endpoint(lender_id=run.lender_id)
    if following is not None:
        webhook_endpoints_schedule(endpoint_ids=[following])
    return run.sent


@shared_task(base=ReliableTask, max_retries=1)
def send_due_webhooks(limit: int = 500) -> int:
    """Beat: queue a send for each endpoint with a due message (retries, and sends lost with a broker
    outage) that has none queued: what waits in the broker is never queued twice."""
    return webhook_endpoints_schedule(endpoint_ids=webhook_endpoints_due(limit=limit))


@shared_task(base=ReliableTask, max_retries=1)
def purge_expired_records() -> tuple[int, int]:
    """Beat, hourly: expired Idempotency-Key answers and old webhook payloads (copies of contact details)."""
    return services.records_expired_purge()


@shared_task(base=ReliableTask, outbox=True)
def email_endpoint_disabled(endpoint_id: int) -> int:
    return notifications.endpoint_disabled_notify(endpoint_id=endpoint_id)


@shared_task(base=ReliableTask, outbox=True)
def email_low_balance(account_id: int, balance: str) -> int:
    return notifications.low_balance_notify(account_id=account_id, balance=Decimal(balance))


@shared_task(base=ReliableTask, outbox=True)
def email_return_decided(return_request_id: int) -> int:
    return notifications.return_decided_email(return_request_id=return_request_id)
