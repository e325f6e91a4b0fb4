"""Celery tasks: the buyers' notification of deliveries and its sweeper, webhook attempts, the sweeper that
sends due retries, and e-mail notifications."""

from __future__ import annotations

import logging
import time
from decimal import Decimal

from celery import shared_task
from django.utils import timezone

from core.tasking import ReliableTask, enqueue, enqueue_batches
from marketplace.selectors import deliveries_unemailed, deliveries_unnotified

from . import deliveries, notifications, services
from .models import WebhookMessage
from .webhooks import MAX_COUNTDOWN, pools_close, webhook_message_send, webhook_messages_send

logger = logging.getLogger(__name__)


@shared_task(base=ReliableTask, time_limit=30, soft_time_limit=25)
def send_webhook(message_id: int) -> bool:
    """One attempt. A short wait is a broker countdown; a long one waits in the database for the sweeper."""
    wait = webhook_message_send(message_id=message_id)
    if wait is not None and wait <= MAX_COUNTDOWN:
        send_webhook.apply_async((message_id,), countdown=wait.total_seconds())
    return wait is None


# A batch stops for this long at most, then hands what is left to a task each: a slow receiver must not
# hold the worker, nor the batch run into the task's time limit.
BATCH_SECONDS = 10


@shared_task(base=ReliableTask, time_limit=60, soft_time_limit=50)
def send_webhooks(message_ids: list[int]) -> int:
    """First attempts at one endpoint's new messages, in order, over one connection, recorded together.
    After a failed attempt, or BATCH_SECONDS, the rest go to send_webhook one each, as retries do.
    Idempotent: a message already delivered, or being sent by another task, is skipped. Returns how many
    it left to others."""
    pools: dict = {}
    try:
        left, failed = webhook_messages_send(
            message_ids=message_ids, pools=pools, until=time.monotonic() + BATCH_SECONDS
        )
    finally:
        pools_close(pools)
    if failed is not None and failed[1] is not None and failed[1] <= MAX_COUNTDOWN:
        send_webhook.apply_async((failed[0],), countdown=failed[1].total_seconds())
    for message_id in left:
        enqueue(send_webhook, message_id)
    return len(left)


@shared_task(base=ReliableTask, max_retries=1)
def send_due_webhooks(limit: int = 500) -> int:
    """Beat: queue every message whose next attempt is due (retries, and sends lost with a broker outage)."""
    ids = list(
        WebhookMessage.objects.filter(
            status=WebhookMessage.Status.PENDING, next_attempt_at__lte=timezone.now()
        )
        .order_by("next_attempt_at")
        .values_list("id", flat=True)[:limit]
    )
    for message_id in ids:
        send_webhook.delay(message_id)
    return len(ids)


@shared_task(base=ReliableTask, max_retries=1)
def purge_expired_records() -> tuple[int, int]:
    """Beat, hourly: expired Idempotency-Key answers and old webhook payloads (copies of contact details)."""
    return services.records_expired_purge()


@shared_task(base=ReliableTask)
def email_endpoint_disabled(endpoint_id: int) -> int:
    return notifications.endpoint_disabled_notify(endpoint_id=endpoint_id)


@shared_task(base=ReliableTask)
def email_low_balance(account_id: int, balance: str) -> int:
    return notifications.low_balance_notify(account_id=account_id, balance=Decimal(balance))


@shared_task(base=ReliableTask)
def email_return_decided(return_request_id: int) -> int:
    return notifications.return_decided_email(return_request_id=return_request_id)


@shared_task(base=ReliableTask)
def notify_deliveries(delivery_ids: list[int]) -> int:
    """One task per sale: all of a lead's buyers are told together."""
    return deliveries.deliveries_notify(delivery_ids=delivery_ids)


@shared_task(base=ReliableTask)
def email_deliveries(delivery_ids: list[int]) -> int:
    """Routed to the outbound worker (the mail queue): the buyers' new-lead e-mail for a batch of sales."""
    return deliveries.deliveries_email(delivery_ids=delivery_ids)


@shared_task(base=ReliableTask, max_retries=1)
def sweep_stuck_deliveries(older_than_seconds: int = 60) -> int:
    """Beat: queue again the notification or e-mail of deliveries whose task was lost (broker down at
    commit). Tasks are idempotent, so a delivery that was merely slow is not harmed by a second push."""
    count = 0
    for stuck, task in (
        (deliveries_unnotified(older_than_seconds=older_than_seconds), notify_deliveries),
        (deliveries_unemailed(older_than_seconds=older_than_seconds), email_deliveries),
    ):
        count += enqueue_batches(task, list(stuck.values_list("id", flat=True)[:1000]), 50)
    if count:
        logger.info("sweeper pushed on %d stuck delivery(ies)", count)
    return count
