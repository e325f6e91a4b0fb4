"""Reads of the market shared by the portal, admin, API and sweepers. Lender-facing reads start scoped."""

from datetime import timedelta

from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from lenders.models import Membership

from .models import Delivery


def deliveries_for_member(*, membership: Membership) -> QuerySet[Delivery]:
    """What a portal user may see: the lender's deliveries; an officer only those assigned to them."""
    qs = Delivery.objects.for_lender(membership.lender)
    if not membership.sees_all_leads:
        qs = qs.filter(assigned_to=membership.user)
    return qs


def inbox_for_member(*, membership: Membership, status: str = "", q: str = "") -> QuerySet[Delivery]:
    qs = deliveries_for_member(membership=membership).select_related("lead", "lead__consumer", "subscription")
    if status:
        qs = qs.filter(status=status)
    if q:
        qs = qs.filter(
            Q(lead__consumer__first_name__icontains=q)
            | Q(lead__consumer__last_name__icontains=q)
            | Q(lead__consumer__email__icontains=q)
            | Q(lead__consumer__phone__contains="".join(ch for ch in q if ch.isdigit()) or q)
        )
    return qs.order_by("-created_at", "-id")


def delivery_get_for_member(*, membership: Membership, delivery_id: int) -> Delivery | None:
    """A delivery the member may open, with what the detail page shows; None means 404."""
    return (
        deliveries_for_member(membership=membership)
        .select_related("lead", "lead__consumer", "lead__consent", "subscription", "lender")
        .annotate(buyers=Count("lead__deliveries"))
        .filter(pk=delivery_id)
        .first()
    )


def deliveries_unnotified(*, older_than_seconds: int = 60) -> QuerySet[Delivery]:
    return Delivery.objects.filter(
        notified_at__isnull=True, created_at__lt=timezone.now() - timedelta(seconds=older_than_seconds)
    )
