"""Actions on lenders and their subscriptions."""

from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from leads import geo
from leads.choices import LoanPurpose

from .models import Lender, LenderLicense, Subscription, SubscriptionState, SubscriptionZip
from .signals import subscription_validating

# The most a bid may be: far above any lead's worth, so a typo ($5,000 for $50.00) is refused, and the
# forecast never answers for prices no one would pay.
MAX_PRICE = Decimal("1000.00")
MIN_CREDIT_SCORE, MAX_CREDIT_SCORE = 300, 850

# What a lender edits. Everything else on the row (the sale counters above all: day_count, month_spend ...)
# is written by the sale under the account lock, and an edit must never write it back (issue 11.2).
SUBSCRIPTION_FIELDS = (
    "name",
    "is_active",
    "purposes",
    "min_credit_score",
    "min_loan_amount",
    "max_loan_amount",
    "max_ltv",
    "max_dti",
    "radius_center_zip",
    "radius_miles",
    "exclusive",
    "price",
    "daily_cap",
    "monthly_cap",
    "monthly_budget",
    "schedule_days",
    "schedule_start",
    "schedule_end",
)


def subscription_validate(
    *, lender: Lender, data: dict[str, Any], states: list[str], zips: list[str]
) -> None:
    """Name every problem with the order, field by field, before anything is saved."""
    errors: dict[str, list[str]] = {}

    def err(field: str, message: str) -> None:
        errors.setdefault(field, []).append(message)

    states = [s.upper() for s in states]
    if not states:
        err("states", "Choose at least one state.")
    licensed = set(LenderLicense.objects.filter(lender=lender).values_list("state", flat=True))
    unlicensed = sorted(set(states) - licensed)
    if unlicensed:
        err(
            "states",
            f"You are not licensed in {', '.join(unlicensed)}. Licensed states: "
            f"{', '.join(sorted(licensed)) or 'none on file'}.",
        )
    purposes = data.get("purposes")
    if not isinstance(purposes, list | tuple) or not all(isinstance(p, str) for p in purposes):
        err("purposes", "Give the loan purposes as a list.")
        purposes = []
    elif not purposes:
        err("purposes", "Choose at least one loan purpose.")
    elif unknown := sorted(set(purposes) - set(LoanPurpose.values)):
        choices = ", ".join(LoanPurpose.values)
        err("purposes", f"Unknown loan purpose: {', '.join(unknown)}. Choose from {choices}.")
    score = data.get("min_credit_score")
    if (
        isinstance(score, bool)
        or not isinstance(score, int)
        or not MIN_CREDIT_SCORE <= score <= MAX_CREDIT_SCORE
    ):
        err(
            "min_credit_score",
            f"Choose a minimum credit score between {MIN_CREDIT_SCORE} and {MAX_CREDIT_SCORE}.",
        )
    lo, hi = data.get("min_loan_amount"), data.get("max_loan_amount")
    if lo is not None and hi is not None and lo > hi:
        err("max_loan_amount", f"The maximum loan (${hi:,}) is below the minimum (${lo:,}).")
    for f, label in (("max_ltv", "LTV"), ("max_dti", "DTI")):
        v = data.get(f)
        if v is not None and not (Decimal("0") < v <= Decimal("125")):
            err(f, f"Maximum {label} must be between 0 and 125%.")
    price = data.get("price")
    if price is None or price <= 0:
        err("price", "Enter a price above $0.")
    elif price > MAX_PRICE:
        err("price", f"A bid can be at most ${MAX_PRICE:,} a lead.")
    else:
        # The market's rule (a bid never below the staff's floor) is the market's to check.
        subscription_validating.send(
            sender=Subscription, lender=lender, data=data, states=states, purposes=purposes, err=err
        )
    for z in zips:
        if geo.lookup_zip(z) is None:
            err("zip_codes", f"Unknown ZIP code {z}.")
    center, miles = data.get("radius_center_zip") or "", data.get("radius_miles")
    if bool(center) != bool(miles):
        err("radius_miles", "Give both a center ZIP and a radius, or neither.")
    elif center and geo.lookup_zip(center) is None:
        err("radius_center_zip", f"Unknown ZIP code {center}.")
    if miles is not None and miles > 500:
        err("radius_miles", "A radius can be at most 500 miles.")
    start, end = data.get("schedule_start"), data.get("schedule_end")
    if (start is None) != (end is None):
        err("schedule_end", "Give both a start and an end hour, or neither.")
    elif start is not None and start == end:
        err("schedule_end", "The delivery window cannot start and end at the same time.")
    days = data.get("schedule_days", "0123456")
    if not days or any(ch not in "0123456" for ch in days):
        err("schedule_days", "Choose at least one delivery day.")
    if errors:
        raise ValidationError(errors)


def _radius_zips(center: str, miles: int) -> set[str]:
    return set(geo.zips_within(center, miles))


@transaction.atomic
def subscription_save(
    *,
    lender: Lender,
    data: dict[str, Any],
    states: list[str],
    zips: list[str] | None = None,
    subscription: Subscription | None = None,
) -> Subscription:
    """Create or update a subscription with its states and ZIP filter (listed ZIPs plus a radius)."""
    zips = sorted({z.strip() for z in (zips or []) if z.strip()})
    sub = subscription or Subscription(lender=lender)
    if sub.lender_id != lender.pk:
        raise ValidationError("This subscription belongs to another lender.")
    for f in SUBSCRIPTION_FIELDS:
        if f in data:
            setattr(sub, f, data[f])
    # Validate the order as it will be saved: given fields over current values (or the model's defaults).
    subscription_validate(
        lender=lender, data={f: getattr(sub, f) for f in SUBSCRIPTION_FIELDS}, states=states, zips=zips
    )
    # Kept in the choices' order, each once, so equal orders read (and diff) the same.
    sub.purposes = [p for p in LoanPurpose.values if p in sub.purposes]
    sub.radius_center_zip = sub.radius_center_zip or ""
    # Validated above: a center ZIP comes with a radius and a radius with a center ZIP.
    center, miles = sub.radius_center_zip, sub.radius_miles
    radius = _radius_zips(center, miles) if center and miles else set()
    sub.has_zip_filter = bool(zips or radius)
    if sub.pk is None:
        sub.save()
    else:
        # Only what this edit gives. The copy may have been loaded before, maybe long before, a sale (or a
        # pause); writing the whole row back would reset the sale counters it read then (a daily cap of 1
        # selling twice) or undo the pause.
        given = [f for f in SUBSCRIPTION_FIELDS if f in data]
        sub.save(update_fields=[*given, "radius_center_zip", "has_zip_filter", "updated_at"])
    SubscriptionState.objects.filter(subscription=sub).delete()
    SubscriptionState.objects.bulk_create(
        [SubscriptionState(subscription=sub, state=s.upper()) for s in sorted(set(states))]
    )
    SubscriptionZip.objects.filter(subscription=sub).delete()
    SubscriptionZip.objects.bulk_create(
        [SubscriptionZip(subscription=sub, zip_code=z) for z in zips]
        + [
            SubscriptionZip(subscription=sub, zip_code=z, from_radius=True)
            for z in sorted(radius - set(zips))
        ]
    )
    return sub


def subscription_set_active(*, subscription: Subscription, active: bool) -> Subscription:
    Subscription.objects.filter(pk=subscription.pk).update(is_active=active)
    subscription.is_active = active
    return subscription


def lender_set_status(*, lender: Lender, status: str) -> Lender:
    Lender.objects.filter(pk=lender.pk).update(status=status)
    lender.status = status
    return lender


def lender_set_licenses(*, lender: Lender, states: list[str]) -> None:
    states = sorted({s.upper() for s in states})
    with transaction.atomic():
        LenderLicense.objects.filter(lender=lender).exclude(state__in=states).delete()
        LenderLicense.objects.bulk_create(
            [LenderLicense(lender=lender, state=s) for s in states], ignore_conflicts=True
        )
