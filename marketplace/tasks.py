"""Celery tasks of the market. Thin: ids in, a service call, early return when already done."""

import logging

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from leads.choices import LeadStatus
from leads.models import Lead

from . import notifications, services
from .tasking import ReliableTask, enqueue_batches, outbox_flush

logger = logging.getLogger(__name__)


SWEPT = "leads.tasks.sweep_stuck_leads"


@shared_task(base=ReliableTask, swept_by=SWEPT)
def distribute_lead(lead_id: int) -> int:
    return len(services.lead_distribute(lead_id=lead_id))


@shared_task(base=ReliableTask, swept_by="marketplace.tasks.retry_unsold_leads")
def distribute_leads(lead_ids: list[int]) -> int:
    """A batch of leads offered again (the retry sweep): one matching query and one transaction for all."""
    return sum(len(deliveries) for deliveries in services.leads_distribute(lead_ids=lead_ids).values())


@shared_task(base=ReliableTask, swept_by=SWEPT)
def notify_deliveries(delivery_ids: list[int]) -> int:
    """One task per sale: all of a lead's buyers are told together."""
    return notifications.deliveries_notify(delivery_ids=delivery_ids)


@shared_task(base=ReliableTask, swept_by=SWEPT)
def email_deliveries(delivery_ids: list[int]) -> int:
    """Routed to the outbound worker (the mail queue): the buyers' new-lead e-mail for a batch of sales."""
    return notifications.deliveries_email(delivery_ids=delivery_ids)


@shared_task(base=ReliableTask, max_retries=1)
def retry_unsold_leads() -> int:
    """Beat: offer unsold leads again while their retry window is open (caps reset, budgets refill), in
    batches of PIPELINE_BATCH_SIZE, a task each."""
    ids = list(
        Lead.objects.filter(status=LeadStatus.UNSOLD, retry_until__gt=timezone.now())
        .order_by("id")
        .values_list("id", flat=True)[:1000]
    )
    return enqueue_batches(distribute_leads, ids, settings.PIPELINE_BATCH_SIZE)


@shared_task(base=ReliableTask, max_retries=1)
def sweep_outbox(older_than_seconds: int = 60) -> int:
    """Beat: publish the outbox tasks (e-mails about events) whose own publish the broker refused."""
    return outbox_flush(older_than_seconds=older_than_seconds)


@shared_task(acks_late=False, time_limit=5, soft_time_limit=4, ignore_result=False)
def ping() -> str:
    """A task that does nothing: `make bench` times its round trip as the machine's Celery ceiling."""
    return "pong"
