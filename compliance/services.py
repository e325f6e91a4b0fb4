"""Recording access to personal data, and erasing it."""

import logging
from collections import defaultdict
from datetime import timedelta

from django.db import transaction
from django.db.models import CharField, Q, Value
from django.db.models.functions import Cast, Concat
from django.utils import timezone

from leads.choices import LeadStatus
from leads.models import Consumer, Lead
from marketplace.models import Activity, Delivery, FollowUp, ReturnRequest

from .models import ContactAccess, Erasure
from .signals import consumer_erased

logger = logging.getLogger(__name__)

ERASED = "erased"
# Leads whose consumer was never sold to anyone: their PII is kept only for the retention period.
UNSOLD_STATUSES = (LeadStatus.REJECTED, LeadStatus.DUPLICATE, LeadStatus.UNSOLD, LeadStatus.NOT_QUALIFIED)


def contact_access_record(
    *,
    lead_id: int,
    channel: str,
    user=None,
    lender_id: int | None = None,
    path: str = "",
    ip_address: str | None = None,
) -> None:
    ContactAccess.objects.create(
        lead_id=lead_id,
        channel=channel,
        user=user if user and user.pk else None,
        lender_id=lender_id,
        path=path[:300],
        ip_address=ip_address,
    )


def contact_access_record_many(
    *,
    lead_ids: list[int],
    channel: str,
    user=None,
    lender_id: int | None = None,
    path: str = "",
    ip_address: str | None = None,
) -> None:
    """One insert for a page or export that shows many consumers' contact details."""
    ContactAccess.objects.bulk_create(
        [
            ContactAccess(
                lead_id=i,
                channel=channel,
                user=user if user and user.pk else None,
                lender_id=lender_id,
                path=path[:300],
                ip_address=ip_address,
            )
            for i in lead_ids
        ]
    )


def _scrub(consumer_ids: list[int], lead_ids: list[int], now) -> None:
    # One UPDATE however many consumers; each keeps a unique, undeliverable address.
    Consumer.objects.filter(pk__in=consumer_ids).update(
        first_name=ERASED,
        last_name="",
        phone="",
        erased_at=now,
        email=Concat(Value("erased-"), Cast("pk", CharField()), Value("@invalid")),
    )
    # The consent record is legal proof of what was agreed (kept for the TCPA's four-year limit) and is never
    # changed; it holds no name, e-mail or phone.
    # What lenders and staff wrote about the consumer is free text that may name them or quote their number
    # or address: it goes too. The facts stay (what was done and when, statuses, reasons chosen from lists).
    Activity.objects.filter(delivery__lead_id__in=lead_ids).exclude(note="").update(note="")
    FollowUp.objects.filter(delivery__lead_id__in=lead_ids).exclude(note="").update(note="")
    Delivery.objects.filter(lead_id__in=lead_ids).exclude(lost_reason="").update(lost_reason=ERASED)
    # A return's note is required for the reason "other" (a check constraint): it keeps a word, not the text.
    returns = ReturnRequest.objects.filter(delivery__lead_id__in=lead_ids)
    returns.exclude(note="").update(note=ERASED)
    returns.exclude(decision_note="").update(decision_note="")
    # Apps above this one (integrations: stored API answers, webhook payloads) scrub their own copies.
    consumer_erased.send(sender=Erasure, consumer_ids=consumer_ids, lead_ids=lead_ids)


@transaction.atomic
def consumer_erase(*, consumer_id: int, requested_by=None, note: str = "") -> Erasure:
    """Erase a consumer's personal data on request, with the same person's other requests: every lead
    stores its own consumer row, and the person who asks means all of them (the duplicate rule's "same
    person": the same e-mail, in any case, or phone). Statistics (the leads, their figures) stay. Returns
    the erasure of `consumer_id`; each consumer erased gets its own, logged."""
    consumer = Consumer.objects.get(pk=consumer_id)
    same_person = Q(pk=consumer.pk)
    if consumer.erased_at is None:
        same_person |= Q(email__iexact=consumer.email) | (Q(phone=consumer.phone) if consumer.phone else Q())
    # Locked in id order, as every writer of several consumers does, so two erasures cannot deadlock.
    ids = list(
        Consumer.objects.select_for_update()
        .filter(same_person)
        .filter(Q(pk=consumer.pk) | Q(erased_at__isnull=True))
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    lead_ids: dict[int, list[int]] = defaultdict(list)
    for owner_id, lead_id in (
        Lead.objects.filter(consumer_id__in=ids).order_by("pk").values_list("consumer_id", "id")
    ):
        lead_ids[owner_id].append(lead_id)
    _scrub(ids, [i for found in lead_ids.values() for i in found], timezone.now())
    erasures = Erasure.objects.bulk_create(
        [
            Erasure(
                consumer_id=i,
                lead_ids=lead_ids[i],
                reason=Erasure.Reason.REQUEST,
                requested_by=requested_by,
                note=note[:200],
            )
            for i in ids
        ]
    )
    logger.info("consumer %s erased on request, with %d other record(s)", consumer.pk, len(ids) - 1)
    return next(e for e in erasures if e.consumer_id == consumer.pk)


def consumers_erase_expired(*, retention_days: int, limit: int = 500) -> int:
    """Erase PII of consumers whose leads were never sold (rejected, duplicate, unsold, not qualified)
    and are older than the retention period. Idempotent: erased consumers are skipped."""
    cutoff = timezone.now() - timedelta(days=retention_days)
    candidates = (
        Consumer.objects.filter(
            erased_at__isnull=True, leads__created_at__lt=cutoff, leads__status__in=UNSOLD_STATUSES
        )
        .exclude(leads__status=LeadStatus.SOLD)
        .exclude(leads__created_at__gte=cutoff)
        .distinct()
    )
    with transaction.atomic():
        # Lock the batch so a concurrent run skips it instead of erasing (and logging) it twice.
        ids = list(
            Consumer.objects.select_for_update(skip_locked=True)
            .filter(pk__in=list(candidates.values_list("pk", flat=True)[:limit]), erased_at__isnull=True)
            .values_list("pk", flat=True)
        )
        if not ids:
            return 0
        lead_ids: dict[int, list[int]] = defaultdict(list)
        for consumer_id, lead_id in Lead.objects.filter(consumer_id__in=ids).values_list("consumer_id", "id"):
            lead_ids[consumer_id].append(lead_id)
        _scrub(ids, [i for found in lead_ids.values() for i in found], timezone.now())
        Erasure.objects.bulk_create(
            [Erasure(consumer_id=i, reason=Erasure.Reason.RETENTION, lead_ids=lead_ids[i]) for i in ids]
        )
    count = len(ids)
    if count:
        logger.info("retention: erased %d consumer(s)", count)
    return count
