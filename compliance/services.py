"""Recording access to personal data, and erasing it."""

import logging
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from leads.choices import LeadStatus
from leads.models import Consumer, Lead

from .models import ContactAccess, Erasure

logger = logging.getLogger(__name__)

ERASED = "erased"
# Leads whose consumer was never sold to anyone: their PII is kept only for the retention period.
UNSOLD_STATUSES = (LeadStatus.REJECTED, LeadStatus.DUPLICATE, LeadStatus.UNSOLD, LeadStatus.NOT_QUALIFIED)


def contact_access_record(
    *, lead_id: int, channel: str, user=None, lender_id: int | None = None, path: str = ""
) -> None:
    ContactAccess.objects.create(
        lead_id=lead_id,
        channel=channel,
        user=user if user and user.pk else None,
        lender_id=lender_id,
        path=path[:300],
    )


def contact_access_record_many(
    *, lead_ids: list[int], channel: str, user=None, lender_id: int | None = None, path: str = ""
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
            )
            for i in lead_ids
        ]
    )


def _scrub(consumer: Consumer, now) -> None:
    Consumer.objects.filter(pk=consumer.pk).update(
        first_name=ERASED, last_name="", email=f"erased-{consumer.pk}@invalid", phone="", erased_at=now
    )
    # The consent record is legal proof of what was agreed (kept for the TCPA's four-year limit) and is never
    # changed; it holds no name, e-mail or phone.


@transaction.atomic
def consumer_erase(*, consumer_id: int, requested_by=None, note: str = "") -> Erasure:
    """Erase one consumer's personal data on request. Statistics (the leads, their figures) stay."""
    consumer = Consumer.objects.select_for_update().get(pk=consumer_id)
    now = timezone.now()
    _scrub(consumer, now)
    erasure = Erasure.objects.create(
        consumer_id=consumer.pk,
        lead_ids=list(consumer.leads.values_list("id", flat=True)),
        reason=Erasure.Reason.REQUEST,
        requested_by=requested_by,
        note=note[:200],
    )
    logger.info("consumer %s erased on request", consumer.pk)
    return erasure


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
        .distinct()[:limit]
    )
    count = 0
    for consumer in candidates:
        with transaction.atomic():
            now = timezone.now()
            _scrub(consumer, now)
            Erasure.objects.create(
                consumer_id=consumer.pk,
                reason=Erasure.Reason.RETENTION,
                lead_ids=list(Lead.objects.filter(consumer=consumer).values_list("id", flat=True)),
            )
        count += 1
    if count:
        logger.info("retention: erased %d consumer(s)", count)
    return count
