"""Celery tasks for leads: qualification, and the sweeper that pushes on leads whose task never ran."""

import logging

from celery import shared_task
from django.conf import settings

from marketplace.tasking import ReliableTask, enqueue

from . import services
from .choices import LeadStatus
from .models import Lead
from .selectors import leads_stuck

logger = logging.getLogger(__name__)


@shared_task(base=ReliableTask)
def qualify_lead(lead_id: int) -> str | None:
    """Qualify the lead, with any others waiting in `received` (up to PIPELINE_BATCH_SIZE: under load one
    task clears the backlog, and the later tasks of the leads it took find nothing to do), then, once that
    has committed, sell the qualified ones in the same worker: one broker round trip less on the way to the
    lender. Should the worker die in between, the leads wait in `qualified` and the sweeper queues
    distribute_lead for them. Returns the lead's status."""
    leads = services.leads_qualify(
        lead_ids=[lead_id], claim=settings.PIPELINE_BATCH_SIZE - 1, queue_distribution=False
    )
    qualified = [lead.pk for lead in leads if lead.status == LeadStatus.QUALIFIED]
    if qualified:
        from marketplace.services import leads_distribute

        leads_distribute(lead_ids=qualified)
    return Lead.objects.filter(pk=lead_id).values_list("status", flat=True).first()


@shared_task(base=ReliableTask, max_retries=1)
def sweep_stuck_leads(older_than_seconds: int = 60) -> int:
    """Beat: a lead left in `received` or `qualified` lost its task (broker down at commit); queue it again.
    Tasks are idempotent, so a lead that was merely slow is not harmed by a second push."""
    from marketplace.selectors import deliveries_unnotified
    from marketplace.tasks import distribute_lead, notify_deliveries

    count = 0
    for lead_id, status in leads_stuck(older_than_seconds=older_than_seconds).values_list("id", "status")[
        :1000
    ]:
        enqueue(qualify_lead if status == LeadStatus.RECEIVED else distribute_lead, lead_id)
        count += 1
    unnotified = list(
        deliveries_unnotified(older_than_seconds=older_than_seconds).values_list("id", flat=True)[:1000]
    )
    for start in range(0, len(unnotified), 50):
        enqueue(notify_deliveries, unnotified[start : start + 50])
    count += len(unnotified)
    if count:
        logger.info("sweeper pushed on %d stuck item(s)", count)
    return count
