"""Celery tasks for leads: qualification, and the sweeper that pushes on leads whose task never ran."""

import logging

from celery import shared_task
from django.conf import settings
from django.core.cache import cache

from marketplace.tasking import ReliableTask, enqueue, enqueue_batches

from . import services
from .choices import LeadStatus
from .models import Lead
from .selectors import leads_stuck

logger = logging.getLogger(__name__)


# Set while a qualify task is queued and not yet started: the leads received meanwhile wait for that task,
# which takes the whole backlog, instead of each queueing one of their own.
QUEUED_FLAG = "leads:qualify-queued"
QUEUED_FLAG_SECONDS = 5  # a task lost with its broker costs the next lead only this long


def qualify_soon(lead_id: int) -> None:
    """Queue qualification for a lead just received, unless a qualify task is already queued: under load
    that turns a task per lead into a task per batch. The queued task clears the flag before it looks at the
    backlog, so a lead committed after that look always queues a task of its own."""
    try:
        first = cache.add(QUEUED_FLAG, lead_id, timeout=QUEUED_FLAG_SECONDS)
    except Exception:  # noqa: BLE001 - the cache is down: queue anyway, as if no task were waiting
        first = True
    if first:
        enqueue(qualify_lead, lead_id)


@shared_task(base=ReliableTask, swept_by="leads.tasks.sweep_stuck_leads")
def qualify_lead(lead_id: int | None = None) -> str | None:
    """Qualify the lead, with the others waiting in `received` (up to PIPELINE_BATCH_SIZE), then, once that
    has committed, sell the qualified ones in the same worker: one broker round trip less on the way to the
    lender, and it notifies the buyers too. Should the worker die in between, the leads wait in `qualified`
    (or the deliveries unnotified) and the sweeper pushes them on. A full batch queues the next task for the
    rest. Returns the lead's status."""
    try:
        cache.delete(QUEUED_FLAG)
    except Exception:  # noqa: BLE001 - without the cache every lead queues its own task: slower, still right
        logger.warning("could not clear the qualify-queued flag")
    size = settings.PIPELINE_BATCH_SIZE
    leads = services.leads_qualify(
        lead_ids=[lead_id] if lead_id else [], claim=size - 1 if lead_id else size, queue_distribution=False
    )
    qualified = [lead.pk for lead in leads if lead.status == LeadStatus.QUALIFIED]
    sold = {}
    if qualified:
        from marketplace.services import leads_distribute

        sold = leads_distribute(lead_ids=qualified, queue_notification=False)
    if len(leads) >= size:  # more may be waiting: let another worker start on them while this one notifies
        enqueue(qualify_lead)
    if sold:
        from marketplace.notifications import deliveries_notify_now

        deliveries_notify_now(delivery_ids=[d.pk for deliveries in sold.values() for d in deliveries])
    if lead_id is None:
        return None
    return Lead.objects.filter(pk=lead_id).values_list("status", flat=True).first()


@shared_task(base=ReliableTask, max_retries=1)
def sweep_stuck_leads(older_than_seconds: int = 60) -> int:
    """Beat: a lead left in `received` or `qualified` lost its task (broker down at commit); queue it again,
    and the notification or e-mail of deliveries whose task was lost.
    Tasks are idempotent, so a lead that was merely slow is not harmed by a second push."""
    from marketplace.selectors import deliveries_unemailed, deliveries_unnotified
    from marketplace.tasks import distribute_lead, email_deliveries, notify_deliveries

    count = 0
    for lead_id, status in leads_stuck(older_than_seconds=older_than_seconds).values_list("id", "status")[
        :1000
    ]:
        enqueue(qualify_lead if status == LeadStatus.RECEIVED else distribute_lead, lead_id)
        count += 1
    for stuck, task in (
        (deliveries_unnotified(older_than_seconds=older_than_seconds), notify_deliveries),
        (deliveries_unemailed(older_than_seconds=older_than_seconds), email_deliveries),
    ):
        count += enqueue_batches(task, list(stuck.values_list("id", flat=True)[:1000]), 50)
    if count:
        logger.info("sweeper pushed on %d stuck item(s)", count)
    return count
