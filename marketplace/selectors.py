"""Reads of the market shared by the portal, admin, API and sweepers. Lender-facing reads start scoped."""

from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import Final, Literal

from django.db.models import Count, F, Max, Q, QuerySet
from django.utils import timezone

from lenders.models import Membership

from .models import Activity, Delivery, FollowUp


def deliveries_for_member(*, membership: Membership) -> QuerySet[Delivery]:
    """What a portal user may see: the lender's deliveries; an officer only those assigned to them."""
    qs = Delivery.objects.for_lender(membership.lender)
    if not membership.sees_all_leads:
        qs = qs.filter(assigned_to=membership.user)
    return qs


@dataclass(frozen=True)
class InboxFilters:
    """What the inbox, its live refresh and the CSV export filter by. Empty values filter nothing."""

    status: str = ""
    q: str = ""
    purpose: str = ""
    state: str = ""
    subscription_id: int | None = None
    # A user id, or UNASSIGNED for leads nobody works yet. Only owners and managers filter by officer.
    assigned_to: int | Literal["none"] | None = None
    delivered_from: datetime | None = None  # inclusive
    delivered_before: datetime | None = None  # exclusive

    @property
    def active(self) -> bool:
        return any(getattr(self, f.name) not in (None, "") for f in fields(self))


UNASSIGNED: Final = "none"


def inbox_for_member(
    *, membership: Membership, status: str = "", q: str = "", filters: InboxFilters | None = None
) -> QuerySet[Delivery]:
    """The member's deliveries, filtered, newest first, with what a row shows joined in (one query)."""
    f = filters or InboxFilters(status=status, q=q)
    qs = deliveries_for_member(membership=membership).select_related(
        "lead", "lead__consumer", "subscription", "assigned_to"
    )
    if f.status:
        qs = qs.filter(status=f.status)
    if f.purpose:
        qs = qs.filter(lead__purpose=f.purpose)
    if f.state:
        qs = qs.filter(lead__state=f.state.upper())
    if f.subscription_id:
        qs = qs.filter(subscription_id=f.subscription_id)
    if f.assigned_to == UNASSIGNED:
        qs = qs.filter(assigned_to__isnull=True)
    elif isinstance(f.assigned_to, int):
        qs = qs.filter(assigned_to_id=f.assigned_to)
    if f.delivered_from:
        qs = qs.filter(created_at__gte=f.delivered_from)
    if f.delivered_before:
        qs = qs.filter(created_at__lt=f.delivered_before)
    if q := f.q.strip():
        digits = "".join(ch for ch in q if ch.isdigit())
        match = (
            Q(lead__consumer__first_name__icontains=q)
            | Q(lead__consumer__last_name__icontains=q)
            | Q(lead__consumer__email__icontains=q)
        )
        if " " in q:  # "maria gonzalez": first and last name together
            first, _, last = q.partition(" ")
            match |= Q(lead__consumer__first_name__icontains=first, lead__consumer__last_name__icontains=last)
        if len(digits) >= 3:
            match |= Q(lead__consumer__phone__contains=digits)
        qs = qs.filter(match)
    return qs.order_by("-created_at", "-id")


def inbox_version(qs: QuerySet[Delivery]) -> tuple[int, str]:
    """How many rows the filtered inbox has, and a version string that changes whenever a row is added,
    removed, or changes what the list shows (status, first contact, assignee: touched_at). One query."""
    agg = qs.order_by().aggregate(n=Count("id"), newest=Max("id"), touched=Max("touched_at"))
    touched = agg["touched"].timestamp() if agg["touched"] else 0
    return agg["n"], f"{agg['n']}-{agg['newest'] or 0}-{touched:.6f}"


def delivery_get_for_member(*, membership: Membership, delivery_id: int) -> Delivery | None:
    """A delivery the member may open, with what the detail page shows; None means 404."""
    return (
        deliveries_for_member(membership=membership)
        .select_related(
            "lead",
            "lead__consumer",
            "lead__consent",
            "subscription",
            "lender",
            "assigned_to",
            "return_request__credit",
        )
        .annotate(buyers=Count("lead__deliveries"))
        .filter(pk=delivery_id)
        .first()
    )


def deliveries_unnotified(*, older_than_seconds: int = 60) -> QuerySet[Delivery]:
    """Not notified, and not set aside for staff (a delivery whose notification raised on its own)."""
    return Delivery.objects.filter(
        notified_at__isnull=True,
        notify_error="",
        created_at__lt=timezone.now() - timedelta(seconds=older_than_seconds),
    )


def deliveries_unemailed(*, older_than_seconds: int = 60) -> QuerySet[Delivery]:
    """Notified, but their e-mail task was lost (broker down) or set aside after its retries; not those yet to
    be notified, nor one whose e-mail raised on its own (notify_error: staff replay it)."""
    return Delivery.objects.filter(
        notified_at__isnull=False,
        emailed_at__isnull=True,
        notify_error="",
        created_at__lt=timezone.now() - timedelta(seconds=older_than_seconds),
    )


def activities_for_delivery(*, delivery: Delivery) -> QuerySet[Activity]:
    return Activity.objects.filter(delivery=delivery).select_related("user").order_by("-created_at", "-id")


def followups_for_delivery(*, delivery: Delivery) -> QuerySet[FollowUp]:
    # Open ones first (NULL done_at sorts first on both databases only when asked), soonest due first.
    return (
        FollowUp.objects.filter(delivery=delivery)
        .select_related("user")
        .order_by(F("done_at").asc(nulls_first=True), "due_at", "id")
    )


def followups_due_for_member(*, membership: Membership, until: datetime, limit: int = 20) -> list[FollowUp]:
    """The member's own open follow-ups due before `until` (overdue first), on leads they may still see."""
    visible = deliveries_for_member(membership=membership)
    return list(
        FollowUp.objects.filter(
            user_id=membership.user_id, done_at__isnull=True, due_at__lt=until, delivery__in=visible
        )
        .select_related("delivery__lead__consumer")
        .order_by("due_at", "id")[:limit]
    )


def followup_get_for_member(*, membership: Membership, followup_id: int) -> FollowUp | None:
    """A follow-up on a lead the member may see; None means 404."""
    return (
        FollowUp.objects.filter(pk=followup_id, delivery__in=deliveries_for_member(membership=membership))
        .select_related("delivery")
        .first()
    )
