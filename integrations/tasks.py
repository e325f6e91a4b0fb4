"""Celery tasks: the buyers' notification of deliveries and its sweeper, webhook sends per endpoint, the
sweeper that queues due ones, and e-mail notifications."""

from __future__ import annotations

import logging
import time
from decimal import Decimal

from celery import shared_task

from core.tasking import ReliableTask, enqueue_batches, renamed_task
from marketplace.selectors import deliveries_unemailed, deliveries_unnotified

from . import deliveries, exports, notifications, services, webhooks
from .services import webhook_endpoints_schedule
from .webhooks import (
    MAX_COUNTDOWN,
    webhook_endpoints_due,
    webhook_lender_next_endpoint,
)

logger = logging.getLogger(__name__)


# A task sends for this long at most, then hands on through the back of the queue: a slow receiver must not
# hold the worker, nor the task run into its time limit.
BATCH_SECONDS = 10


# renamed_task: the quoted name is the task's name before issue 13.6, kept registered for one release so that
# tasks already queued in Redis (or set aside, to replay) under it still run; drop it in the release after.
@renamed_task(
    "integrations.tasks.send_endpoint_webhooks",
    base=ReliableTask,
    time_limit=60,
    soft_time_limit=50,
    swept_by="integrations.tasks.webhook_endpoints_schedule_due",
)  # old name
def webhook_endpoint_send_due(endpoint_id: int) -> int:
    """One endpoint's due messages, in order, over one connection (integrations.webhooks, "Scheduling"),
    then hand on to the lender's next due endpoint (this one again if it has more). A short retry wait is a
    countdown; a long one waits in the database for the sweeper. Idempotent: a message already delivered,
    or being sent by another task, is skipped. Returns the attempts made."""
    run = webhooks.webhook_endpoint_send_due(endpoint_id=endpoint_id, until=time.monotonic() + BATCH_SECONDS)
    if run.lender_id is None:
        return 0
    if run.retry is not None and run.retry <= MAX_COUNTDOWN:
        webhook_endpoints_schedule(endpoint_ids=[endpoint_id], countdown=run.retry.total_seconds())
    following = webhook_lender_next_endpoint(lender_id=run.lender_id)
    if following is not None:
        webhook_endpoints_schedule(endpoint_ids=[following])
    return run.sent


@renamed_task("integrations.tasks.send_due_webhooks", base=ReliableTask, max_retries=1)  # old name
def webhook_endpoints_schedule_due(limit: int = 500) -> int:
    """Beat: queue a send for each endpoint with a due message (retries, and sends lost with a broker
    outage) that has none queued: what waits in the broker is never queued twice."""
    return webhook_endpoints_schedule(endpoint_ids=webhook_endpoints_due(limit=limit))


@renamed_task("integrations.tasks.purge_expired_records", base=ReliableTask, max_retries=1)  # old name
def records_expired_purge() -> tuple[int, int]:
    """Beat, hourly: expired Idempotency-Key answers, old webhook payloads and inbox exports whose links have
    expired (copies of contact details)."""
    exports.inbox_exports_expired_purge()
    return services.records_expired_purge()


# A 100,000-row export takes some seconds; the limit leaves room for a far larger one on a slow machine. Its
# message is durable (outbox): nothing else would notice a pending export whose message was lost.
@shared_task(base=ReliableTask, outbox=True, time_limit=900, soft_time_limit=840)
def inbox_export_build(export_id: int) -> int:
    return exports.inbox_export_build(export_id=export_id)


@renamed_task("integrations.tasks.email_endpoint_disabled", base=ReliableTask, outbox=True)  # old name
def endpoint_disabled_notify(endpoint_id: int) -> int:
    return notifications.endpoint_disabled_notify(endpoint_id=endpoint_id)


@renamed_task("integrations.tasks.email_low_balance", base=ReliableTask, outbox=True)  # old name
def low_balance_notify(account_id: int, balance: str) -> int:
    return notifications.low_balance_notify(account_id=account_id, balance=Decimal(balance))


@renamed_task("integrations.tasks.email_return_decided", base=ReliableTask, outbox=True)  # old name
def return_decided_email(return_request_id: int) -> int:
    return notifications.return_decided_email(return_request_id=return_request_id)


@shared_task(base=ReliableTask, outbox=True)
def text_reply_notify(text_message_id: int) -> int:
    """Routed to the mail queue: e-mail the buyers' officers that the consumer answered a text."""
    return notifications.text_reply_notify(text_message_id=text_message_id)


SWEPT_DELIVERIES = "integrations.tasks.deliveries_stuck_sweep"


@renamed_task(
    "integrations.tasks.notify_deliveries", base=ReliableTask, swept_by=SWEPT_DELIVERIES
)  # old name
def deliveries_notify(delivery_ids: list[int]) -> int:
    """One task per sale: all of a lead's buyers are told together."""
    return deliveries.deliveries_notify(delivery_ids=delivery_ids)


@renamed_task("integrations.tasks.email_deliveries", base=ReliableTask, swept_by=SWEPT_DELIVERIES)  # old name
def deliveries_email(delivery_ids: list[int]) -> int:
    """Routed to the outbound worker (the mail queue): the buyers' new-lead e-mail for a batch of sales."""
    return deliveries.deliveries_email(delivery_ids=delivery_ids)


@renamed_task("integrations.tasks.sweep_stuck_deliveries", base=ReliableTask, max_retries=1)  # old name
def deliveries_stuck_sweep(older_than_seconds: int = 60) -> int:
    """Beat: queue again the notification or e-mail of deliveries whose task was lost (broker down at
    commit). Tasks are idempotent, so a delivery that was merely slow is not harmed by a second push."""
    count = 0
    for stuck, task in (
        (deliveries_unnotified(older_than_seconds=older_than_seconds), deliveries_notify),
        (deliveries_unemailed(older_than_seconds=older_than_seconds), deliveries_email),
    ):
        count += enqueue_batches(task, list(stuck.values_list("id", flat=True)[:1000]), 50)
    if count:
        logger.info("sweeper pushed on %d stuck delivery(ies)", count)
    return count
