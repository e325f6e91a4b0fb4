"""Returns: a lender's claim that a delivered lead was bad, and staff's decision, which credits the lead's
price back. Requesting, approving and denying one locks the lender's account first (the same lock a sale
takes), so the month's return rate is counted under the lock and a return is credited exactly once."""

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Count, Q, QuerySet
from django.utils import timezone
from django.utils.dateformat import format as date_format

from billing.models import Account, LedgerEntry
from billing.services import account_post
from lenders.models import Lender
from marketplace.models import ReturnRequest

from .models import Delivery, MarketSettings
from .signals import return_decided


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


# --- returns ------------------------------------------------------------------------------------------
#
# The return-rate cap (MarketSettings.return_rate_cap, % of a month's deliveries) is enforced when the lender
# asks, counting returns still waiting for staff as if approved: the lender hears "no" at once, with the
# numbers, instead of days later. Approval checks the cap again (approved returns only) as the last guard.
# The month is the lender-local calendar month in which the returned lead was delivered.


def return_deadline(*, delivery, window_days: int) -> datetime:
    return delivery.created_at + timedelta(days=window_days)


def _lock_lender_account(lender_id: int) -> Account:
    return Account.objects.select_for_update().get(lender_id=lender_id)


def _cap_message(*, stats, cap: Decimal, would_be: int) -> str:
    return (
        f"Returns are capped at {cap.normalize():f}% of a month's deliveries. In {stats.month:%B %Y} you had "
        f"{stats.deliveries} deliveries and {would_be - 1} return{'s' if would_be != 2 else ''} approved or "
        f"pending, so another would make {stats.rate_with(would_be):.1f}%."
    )


@transaction.atomic
def return_request_create(
    *, delivery, user, reason: str, note: str = "", now: datetime | None = None
) -> ReturnRequest:
    """A lender asks for its money back on a bad lead. Refused, with the reason, outside the window, for a
    second request on the same lead, or when the month's returns would pass the staff cap."""
    now = now or timezone.now()
    note = (note or "").strip()
    if reason not in ReturnRequest.Reason.values:
        raise ValidationError({"reason": "Choose a reason."})
    if reason == ReturnRequest.Reason.OTHER and not note:
        raise ValidationError({"note": "Say what was wrong with the lead."})
    market = MarketSettings.load()
    _lock_lender_account(delivery.lender_id)
    if ReturnRequest.objects.filter(delivery_id=delivery.pk).exists():
        raise ValidationError("A return has already been requested for this lead.")
    deadline = return_deadline(delivery=delivery, window_days=market.return_window_days)
    if now > deadline:
        raise ValidationError(
            f"The return window for this lead closed on "
            f"{date_format(timezone.localtime(deadline), 'M j, Y, g:i A T')}: "
            f"returns are accepted for {market.return_window_days} days after delivery."
        )
    stats = return_rate_for_month(lender_id=delivery.lender_id, when=delivery.created_at)
    would_be = stats.approved + stats.pending + 1
    if stats.rate_with(would_be) > market.return_rate_cap:
        raise ValidationError(_cap_message(stats=stats, cap=market.return_rate_cap, would_be=would_be))
    try:
        with transaction.atomic():
            return ReturnRequest.objects.create(
                delivery=delivery,
                lender_id=delivery.lender_id,
                reason=reason,
                note=note[:1000],
                requested_by=user,
                created_at=now,
            )
    except IntegrityError as exc:  # another request for this lead won the race (the lock makes this rare)
        raise ValidationError("A return has already been requested for this lead.") from exc


def _decide(return_request_id: int) -> tuple[Account, ReturnRequest]:
    """Lock the lender's account, then the return (always in this order), and refuse a decided return."""
    lender_id = ReturnRequest.objects.values_list("lender_id", flat=True).get(pk=return_request_id)
    account = _lock_lender_account(lender_id)
    # The lead is read for its reference (the memo), not locked: the return and its delivery are.
    rr = (
        ReturnRequest.objects.select_for_update(of=("self", "delivery"))
        .select_related("delivery__lead")
        .get(pk=return_request_id)
    )
    if rr.status != ReturnRequest.Status.REQUESTED:
        raise ValidationError(f"This return was already {rr.get_status_display().lower()}.")
    return account, rr


@transaction.atomic
def return_approve(*, return_request_id: int, user, note: str = "") -> ReturnRequest:
    """Approve a return and credit the lead's price back, in one transaction, exactly once."""
    account, rr = _decide(return_request_id)
    market = MarketSettings.load()
    stats = return_rate_for_month(lender_id=rr.lender_id, when=rr.delivery.created_at)
    if stats.rate_with(stats.approved + 1) > market.return_rate_cap:
        would_be = stats.approved + 1
        raise ValidationError(_cap_message(stats=stats, cap=market.return_rate_cap, would_be=would_be))
    rr.credit = account_post(
        account=account,
        kind=LedgerEntry.Kind.CREDIT,
        amount=rr.delivery.price,
        memo=f"Return of lead {rr.delivery.lead.reference} approved",
        user=user,
    )
    rr.status, rr.decided_by, rr.decided_at = ReturnRequest.Status.APPROVED, user, timezone.now()
    rr.decision_note = (note or "").strip()[:500]
    rr.save(update_fields=["credit", "status", "decided_by", "decided_at", "decision_note"])
    _notify_decided(rr)
    return rr


@transaction.atomic
def return_deny(*, return_request_id: int, user, note: str = "") -> ReturnRequest:
    _, rr = _decide(return_request_id)
    rr.status, rr.decided_by, rr.decided_at = ReturnRequest.Status.DENIED, user, timezone.now()
    rr.decision_note = (note or "").strip()[:500]
    rr.save(update_fields=["status", "decided_by", "decided_at", "decision_note"])
    _notify_decided(rr)
    return rr


def _notify_decided(rr: ReturnRequest) -> None:
    # The return.decided webhook and the lender's e-mail: the integrations app subscribes (integrations.apps)
    # and writes them in this transaction, queued on commit.
    return_decided.send(sender=ReturnRequest, return_request=rr)
