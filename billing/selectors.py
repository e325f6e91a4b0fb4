"""Reads of accounts and ledgers shared by the portal, admin and checks."""

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.db.models import Count, Q, QuerySet, Sum

from .models import Account, LedgerEntry, ReturnRequest


def account_ledger_total(*, account: Account) -> Decimal:
    return LedgerEntry.objects.filter(account=account).aggregate(t=Sum("amount"))["t"] or Decimal("0.00")


def ledger_for_account(*, account: Account):
    return LedgerEntry.objects.filter(account=account).order_by("-created_at", "-id")


@dataclass(frozen=True)
class ReturnRate:
    month: date
    deliveries: int
    approved: int
    pending: int

    def rate_with(self, returns: int) -> Decimal:
        """`returns` as a % of the month's deliveries (100% when there were none)."""
        if self.deliveries == 0:
            return Decimal("100") if returns else Decimal("0")
        return Decimal(returns * 100) / Decimal(self.deliveries)

    @property
    def rate(self) -> Decimal:
        return self.rate_with(self.approved)


def _month_bounds(when: datetime, tz: ZoneInfo) -> tuple[datetime, datetime]:
    local = when.astimezone(tz)
    start = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    if start.month == 12:
        return start, start.replace(year=start.year + 1, month=1)
    return start, start.replace(month=start.month + 1)


def return_rate_for_month(*, lender_id: int, when: datetime) -> ReturnRate:
    """The lender's deliveries and returns in the lender-local month containing `when`. Two queries."""
    from lenders.models import Lender
    from marketplace.models import Delivery

    zone_name = Lender.objects.values_list("time_zone", flat=True).get(pk=lender_id)
    try:
        tz = ZoneInfo(zone_name)
    except (ZoneInfoNotFoundError, ValueError):
        tz = ZoneInfo("UTC")
    start, end = _month_bounds(when, tz)
    in_month = Q(delivery__created_at__gte=start, delivery__created_at__lt=end)
    deliveries = Delivery.objects.filter(
        lender_id=lender_id, created_at__gte=start, created_at__lt=end
    ).count()
    counts = ReturnRequest.objects.filter(in_month, lender_id=lender_id).aggregate(
        approved=Count("pk", filter=Q(status=ReturnRequest.Status.APPROVED)),
        pending=Count("pk", filter=Q(status=ReturnRequest.Status.REQUESTED)),
    )
    return ReturnRate(month=start.date(), deliveries=deliveries, **counts)


def returns_for_member(*, membership) -> QuerySet[ReturnRequest]:
    """The returns a portal user may see: the lender's; an officer only those of leads assigned to them."""
    qs = ReturnRequest.objects.filter(lender_id=membership.lender_id)
    if not membership.sees_all_leads:
        qs = qs.filter(delivery__assigned_to=membership.user)
    return qs.select_related("delivery__lead__consumer", "requested_by").order_by("-created_at", "-id")
