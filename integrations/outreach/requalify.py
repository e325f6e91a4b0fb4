"""Re-qualification when staff activate a new rate sheet (issue 15 §4): the engine re-runs the numbers of the
open leads of the last REQUALIFY_WINDOW_DAYS; a delivery whose estimate rises by more than
REQUALIFY_RISE_SHARE, or that a product newly fits, gets a call task on My day ("Maria may now qualify for
$38,000 more") and an activity. The task is a StepRun on the delivery's enrolment, keyed by the guideline set:
once per delivery and set, however often this runs."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from leads.choices import Product
from leads.models import GuidelineSet
from leads.qualification import Guidelines, Qualification
from leads.services import leads_evaluate
from marketplace.models import Activity, Delivery

from .models import Action, Enrolment, StepRun
from .services import money_whole

logger = logging.getLogger(__name__)

KEY_PREFIX = "requalify:"
OPEN_STATUSES = (Delivery.Status.NEW, Delivery.Status.CONTACTED)
# The consumer said stop, was erased, or the lead went back: no call about better numbers.
NO_CALL_REASONS = (
    Enrolment.StopReason.OPTED_OUT,
    Enrolment.StopReason.ERASED,
    Enrolment.StopReason.RETURNED,
)


def requalify_key(guideline_set_id: int) -> str:
    return f"{KEY_PREFIX}{guideline_set_id}"


@dataclass(frozen=True)
class Better:
    """What the new rate sheet offers a lead beyond what it was sold with."""

    rise: Decimal  # estimate now minus estimate then (0 or less when only a product newly fits)
    new_products: list[str]

    def says(self) -> str:
        parts = []
        if self.rise > 0:
            parts.append(f"may now qualify for {money_whole(self.rise)} more")
        if self.new_products:
            labels = ", ".join(Product(p).label if p in Product.values else p for p in self.new_products)
            parts.append(f"now fits {labels}")
        return " and ".join(parts) or "may now qualify for more"


def better_than_sold(*, estimate: Decimal | None, products: list[str], now: Qualification, share: Decimal):
    """Better | None: the estimate rose by more than `share` of the old one, or a product newly fits."""
    before = estimate or Decimal("0")
    rise = now.estimate - before
    new_products = [p for p in now.products if p not in (products or [])]
    if (before > 0 and rise > before * share) or (before <= 0 and rise > 0) or new_products:
        return Better(rise=rise, new_products=new_products)
    return None


@dataclass(frozen=True)
class RequalifyResult:
    checked: int
    tasks: int
    set_aside: dict[int, str]  # lead id -> why the engine could not evaluate it (no personal data)


def guideline_set_requalify(*, guideline_set_id: int, now: datetime | None = None) -> RequalifyResult:
    """Re-run the open leads' numbers against this guideline set and open a call task where they improved.
    Idempotent: a delivery already given this set's task is skipped (checked again under the enrolment's
    row lock, so two workers at once write one task). One query for the deliveries, one evaluation per lead
    (limits read once for the batch), then the writes in bulk."""
    now = now or timezone.now()
    row = GuidelineSet.objects.filter(pk=guideline_set_id, is_active=True).first()
    if row is None:
        return RequalifyResult(0, 0, {})  # deactivated (or deleted) before the task ran
    guidelines = Guidelines.from_dict({**row.rules, "version": row.version})
    share = Decimal(str(settings.REQUALIFY_RISE_SHARE))
    key = requalify_key(guideline_set_id)
    deliveries = list(
        Delivery.objects.filter(
            status__in=OPEN_STATUSES,
            created_at__gte=now - timedelta(days=settings.REQUALIFY_WINDOW_DAYS),
            lead__consumer__erased_at__isnull=True,
            enrolment__isnull=False,
        )
        .exclude(enrolment__stop_reason__in=NO_CALL_REASONS)
        .exclude(return_request__status="approved")
        .exclude(Exists(StepRun.objects.filter(enrolment__delivery=OuterRef("pk"), key=key)))
        .select_related("lead", "enrolment")
        .order_by("pk")
    )
    leads = list({d.lead_id: d.lead for d in deliveries}.values())
    results, set_aside = leads_evaluate(leads=leads, guidelines=guidelines)
    for lead_id, why in set_aside.items():
        logger.warning("re-qualification of lead %s set aside: %s", lead_id, why)
    found: dict[int, Better] = {}
    for d in deliveries:
        result = results.get(d.lead_id)
        if result is None:
            continue
        better = better_than_sold(estimate=d.lead.estimate, products=d.lead.products, now=result, share=share)
        if better is not None:
            found[d.pk] = better
    created = _tasks_open(
        found={d.enrolment.pk: (d, found[d.pk]) for d in deliveries if d.pk in found},
        key=key,
        version=row.version,
        now=now,
    )
    logger.info(
        "re-qualified %d lead(s) against guideline set %s: %d call task(s), %d set aside",
        len(leads),
        guideline_set_id,
        created,
        len(set_aside),
    )
    return RequalifyResult(len(leads), created, set_aside)


@transaction.atomic
def _tasks_open(*, found: dict[int, tuple[Delivery, Better]], key: str, version: str, now: datetime) -> int:
    if not found:
        return 0
    # Locked, then checked again: a second run of the same set waits here and finds the tasks written.
    locked = list(
        Enrolment.objects.select_for_update().filter(pk__in=sorted(found)).values_list("pk", flat=True)
    )
    done = set(
        StepRun.objects.filter(enrolment_id__in=locked, key=key).values_list("enrolment_id", flat=True)
    )
    todo = [pk for pk in locked if pk not in done]
    runs, activities = [], []
    for enrolment_id in todo:
        delivery, better = found[enrolment_id]
        says = better.says()
        runs.append(
            StepRun(
                enrolment_id=enrolment_id,
                key=key,
                title=f"New rate sheet: {says}"[:120],
                action=Action.CALL,
                # What to say, filled on My day with the lead's merge fields (never stored with the name).
                body=f"{{{{first_name}}}} {says} under our new rates ({version}).",
                due_at=now,
                claimed_at=now,
                state=StepRun.State.OPEN,
                result="Due",
            )
        )
        activities.append(
            Activity(
                delivery_id=delivery.pk,
                kind=Activity.Kind.NOTE,
                note=f"Re-qualified against rate sheet {version}: {says}. Call task added to My day."[:2000],
                automated=True,
                created_at=now,
            )
        )
    StepRun.objects.bulk_create(runs)
    Activity.objects.bulk_create(activities)
    return len(runs)


def requalify_open_q() -> Q:
    """My day shows a re-qualification task whatever its enrolment's state: the automated routine may have
    finished or stopped on a reply long before the rate sheet changed, and this is a person's call."""
    return Q(key__startswith=KEY_PREFIX)
