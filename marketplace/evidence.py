"""The evidence we hold on a returned lead, and what it says about the lender's reason (issue 16.4).

Read only from the market's own rows and the apps below it: the channels (integrations) record what they
hear as automated activities on the deliveries (a text or e-mail that bounced: Activity.Outcome.BOUNCED),
so this module never imports integrations. A verdict of APPROVE backs the reason, DENY contradicts it (the
note says with what, and the lender sees it); "" leaves the return to staff.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.core.exceptions import ValidationError
from django.db.models import Q
from django.utils import timezone
from django.utils.dateformat import format as date_format

from leads.forms import us_phone_digits
from leads.models import Lead

from .matching import leads_meeting, subscription_terms
from .models import Activity, Delivery, ReturnRequest

APPROVE, DENY = "approve", "deny"
R = ReturnRequest.Reason


@dataclass(frozen=True)
class Evidence:
    verdict: str  # APPROVE, DENY, or "" (staff decide)
    note: str = ""


def _when(moment) -> str:
    return date_format(timezone.localtime(moment), "M j, g:i A")


def _contact_contradiction(delivery: Delivery) -> Evidence | None:
    """The lender's own record shows the consumer was reached: by an officer's call, e-mail or text logged
    as reached, or by the consumer's reply."""
    reached = (
        Activity.objects.filter(delivery=delivery)
        .filter(
            Q(automated=False, kind__in=Activity.CONTACT_KINDS, outcome=Activity.Outcome.REACHED)
            | Q(outcome=Activity.Outcome.REPLIED)
        )
        .order_by("created_at")
        .values_list("kind", "outcome", "created_at")
        .first()
    )
    if reached is None:
        return None
    kind, outcome, at = reached
    if outcome == Activity.Outcome.REPLIED:
        return Evidence(DENY, f"The consumer replied to your text on {_when(at)}, so the contact data works.")
    label = Activity.Kind(kind).label.lower()
    return Evidence(DENY, f"Your team logged a {label} that reached the consumer on {_when(at)}.")


def _contact_failure(delivery: Delivery) -> Evidence | None:
    """The phone fails validation, or a text or e-mail to the consumer bounced (to any buyer of the lead:
    the address is the consumer's, whoever wrote to it)."""
    phone = delivery.lead.consumer.phone
    if phone:
        try:
            us_phone_digits(phone)
        except ValidationError:
            return Evidence(APPROVE, "The phone number fails validation: it is not a valid US number.")
    bounce = (
        Activity.objects.filter(delivery__lead_id=delivery.lead_id, outcome=Activity.Outcome.BOUNCED)
        .order_by("created_at")
        .values_list("kind", "created_at")
        .first()
    )
    if bounce is None:
        return None
    kind, at = bounce
    what = "A text to the phone number" if kind == Activity.Kind.TEXT else "An e-mail to the address"
    return Evidence(APPROVE, f"{what} bounced as undeliverable on {_when(at)}.")


def _earlier_purchase(delivery: Delivery, *, duplicate_days: int) -> Evidence | None:
    """The lender bought this consumer (same person, phone or e-mail) from us within the duplicate window
    before this sale."""
    consumer = delivery.lead.consumer
    same = Q(lead__consumer_id=consumer.pk)
    if consumer.phone:
        same |= Q(lead__consumer__phone=consumer.phone)
    if consumer.email:
        same |= Q(lead__consumer__email=consumer.email)
    earlier = (
        Delivery.objects.filter(
            same,
            lender_id=delivery.lender_id,
            created_at__gte=delivery.created_at - timedelta(days=duplicate_days),
            created_at__lte=delivery.created_at,
        )
        .exclude(pk=delivery.pk)
        .select_related("lead")
        .order_by("created_at")
        .first()
    )
    if earlier is None:
        return None
    return Evidence(
        APPROVE,
        f"You bought this consumer's request {earlier.lead.reference} on {_when(earlier.created_at)}, within "
        f"the {duplicate_days}-day duplicate window.",
    )


def _outside_filters(delivery: Delivery) -> Evidence | None:
    """The lead does not meet the subscription's filters (the same spec the sale matches by). Only while the
    subscription is as it was at the sale: filters the lender narrowed since say nothing of the sale, and
    would otherwise approve any return past the cap; those go to staff."""
    if delivery.subscription.updated_at > delivery.created_at:
        return None
    terms = subscription_terms(delivery.subscription)
    if Lead.objects.filter(pk=delivery.lead_id).filter(leads_meeting(terms)).exists():
        return None
    return Evidence(
        APPROVE, f"The lead is outside the filters of your subscription “{delivery.subscription}”."
    )


def return_evidence(*, delivery: Delivery, reason: str, duplicate_days: int) -> Evidence:
    """What the evidence we hold says about this return's reason."""
    found: Evidence | None = None
    if reason == R.BAD_CONTACT:
        found = _contact_contradiction(delivery) or _contact_failure(delivery)
    elif reason == R.DUPLICATE:
        found = _earlier_purchase(delivery, duplicate_days=duplicate_days)
    elif reason == R.NOT_AS_DESCRIBED:
        found = _outside_filters(delivery)
    return found or Evidence("")
