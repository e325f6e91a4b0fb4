"""Celery tasks of the market: the qualify -> sell batch, offers of unsold leads, the sweeper of leads whose
task was lost, follow-up reminders. Thin: ids in, a service call, early return when already done."""

import logging

from celery import shared_task
from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

from core.tasking import ReliableTask, enqueue, enqueue_batches, renamed_task
from leads.choices import LeadStatus
from leads.models import Lead
from leads.selectors import leads_stuck

from . import services, speed
from .signals import deliveries_created

logger = logging.getLogger(__name__)

# The beat task that finds again the work of a task whose message was lost (ReliableTask.swept_by).
SWEPT = "marketplace.tasks.leads_stuck_sweep"


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
        enqueue(leads_qualify_and_sell, lead_id)


# renamed_task: the quoted name is the task's name before issue 13.6, kept registered for one release so that
# tasks already queued in Redis (or set aside, to replay) under it still run; drop it in the release after.
@renamed_task("marketplace.tasks.qualify_lead", base=ReliableTask, swept_by=SWEPT)  # old name
def leads_qualify_and_sell(lead_id: int | None = None) -> str | None:
    """Qualify the lead, with the others waiting in `received` (up to PIPELINE_BATCH_SIZE), then, once that
    has committed, sell the qualified ones in the same worker: one broker round trip less on the way to the
    lender, and its buyers are told from this worker too (the deliveries_created event, sent with now=True).
    Should the worker die in between, the leads wait in `qualified` (or the deliveries unnotified) and the
    sweepers push them on. A full batch queues the next task for the rest. Returns the lead's status."""
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
        sold = services.leads_distribute(lead_ids=qualified, queue_notification=False)
    if len(leads) >= size:  # more may be waiting: let another worker start on them while this one notifies
        enqueue(leads_qualify_and_sell)
    if sold:
        # Committed already (leads_distribute is its own transaction): the integrations app tells the buyers.
        deliveries_created.send(
            sender=Lead, delivery_ids=[d.pk for deliveries in sold.values() for d in deliveries], now=True
        )
    if lead_id is None:
        return None
    return Lead.objects.filter(pk=lead_id).values_list("status", flat=True).first()


@renamed_task("marketplace.tasks.sweep_stuck_leads", base=ReliableTask, max_retries=1)  # old name
def leads_stuck_sweep(older_than_seconds: int = 60) -> int:
    """Beat: a lead left in `received` or `qualified` lost its task (broker down at commit); queue it again.
    (The deliveries whose notification was lost are the integrations app's sweeper's.)
    Tasks are idempotent, so a lead that was merely slow is not harmed by a second push."""
    count = 0
    for lead_id, status in leads_stuck(older_than_seconds=older_than_seconds).values_list("id", "status")[
        :1000
    ]:
        enqueue(leads_qualify_and_sell if status == LeadStatus.RECEIVED else lead_distribute, lead_id)
        count += 1
    if count:
        logger.info("sweeper pushed on %d stuck lead(s)", count)
    return count


@renamed_task("marketplace.tasks.distribute_lead", base=ReliableTask, swept_by=SWEPT)  # old name
def lead_distribute(lead_id: int) -> int:
    return len(services.lead_distribute(lead_id=lead_id))


@renamed_task(
    "marketplace.tasks.distribute_leads", base=ReliableTask, swept_by="marketplace.tasks.leads_unsold_retry"
)  # old name
def leads_distribute(lead_ids: list[int]) -> int:
    """A batch of leads offered again (the retry sweep): one matching query and one transaction for all."""
    return sum(len(deliveries) for deliveries in services.leads_distribute(lead_ids=lead_ids).values())


@renamed_task("marketplace.tasks.retry_unsold_leads", base=ReliableTask, max_retries=1)  # old name
def leads_unsold_retry() -> int:
    """Beat: offer unsold leads again while their retry window is open (caps reset, budgets refill), in
    batches of PIPELINE_BATCH_SIZE, a task each."""
    ids = list(
        Lead.objects.filter(status=LeadStatus.UNSOLD, retry_until__gt=timezone.now())
        .order_by("id")
        .values_list("id", flat=True)[:1000]
    )
    return enqueue_batches(leads_distribute, ids, settings.PIPELINE_BATCH_SIZE)


@renamed_task("marketplace.tasks.remind_overdue_followups", base=ReliableTask, max_retries=1)  # old name
def followups_remind_overdue() -> int:
    """Beat: e-mail each member about their overdue follow-ups, each item once."""
    return services.followups_remind_overdue()


@shared_task(base=ReliableTask, max_retries=1)
def lender_speeds_refresh() -> int:
    """Beat: each lender's 30-day median time to first contact and rank (the sale's tie-breaker)."""
    return speed.lender_speeds_refresh()


@shared_task(acks_late=False, time_limit=5, soft_time_limit=4, ignore_result=False)
def ping() -> str:
    """A task that does nothing: `make bench` times its round trip as the machine's Celery ceiling."""
    return "pong"
