"""Returns: a lender's claim that a delivered lead was bad, and staff's decision, which credits the lead's
price back. Requesting, approving and denying one locks the lender's account first (the same lock a sale
takes), so the last 30 days' returns are counted under the lock and a return is credited exactly once."""

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Count, Q, QuerySet
from django.utils import timezone
from django.utils.dateformat import format as date_format

from billing.models import Account, LedgerEntry
from billing.services import account_post
from marketplace.models import ReturnRequest

from .evidence import APPROVE, DENY, return_evidence
from .models import Delivery, MarketSettings
from .signals import return_decided

RATE_WINDOW_DAYS = 30


@dataclass(frozen=True)
class ReturnRate:
    """A lender's deliveries and returns over the rolling 30 days, and how many returns that allows: the
    staff's % of the deliveries, but never fewer than one per `per` deliveries (so a small lender's first
    bad lead is not already "20%")."""

    since: datetime
    deliveries: int
    approved: int
    pending: int
    cap_percent: Decimal
    per: int

    @property
    def allowed(self) -> int:
        by_rate = int(Decimal(self.deliveries) * self.cap_percent / Decimal(100))
        by_allowance = -(-self.deliveries // self.per) if self.per else 0  # ceiling
        return max(by_rate, by_allowance)

    def rate_with(self, returns: int) -> Decimal:
        """`returns` as a % of the window's deliveries (100% when there were none)."""
        if self.deliveries == 0:
            return Decimal("100") if returns else Decimal("0")
        return Decimal(returns * 100) / Decimal(self.deliveries)

    @property
    def rate(self) -> Decimal:
        return self.rate_with(self.approved)


def return_rate_rolling(*, lender_id: int, now: datetime | None = None) -> ReturnRate:
    """The lender's deliveries and the returns it asked for in the last 30 days. Three queries."""
    now = now or timezone.now()
    since = now - timedelta(days=RATE_WINDOW_DAYS)
    market = MarketSettings.load()
    deliveries = Delivery.objects.filter(lender_id=lender_id, created_at__gte=since).count()
    # Returns our evidence decided do not count against the lender (see below).
    counts = ReturnRequest.objects.filter(
        lender_id=lender_id, created_at__gte=since, by_evidence=False
    ).aggregate(
        approved=Count("pk", filter=Q(status=ReturnRequest.Status.APPROVED)),
        pending=Count("pk", filter=Q(status=ReturnRequest.Status.REQUESTED)),
    )
    return ReturnRate(
        since=since,
        deliveries=deliveries,
        cap_percent=market.return_rate_cap,
        per=market.return_allowance_per,
        **counts,
    )


def returns_for_member(*, membership) -> QuerySet[ReturnRequest]:
    """The returns a portal user may see: the lender's; an officer only those of leads assigned to them."""
    qs = ReturnRequest.objects.filter(lender_id=membership.lender_id)
    if not membership.sees_all_leads:
        qs = qs.filter(delivery__assigned_to=membership.user)
    return qs.select_related("delivery__lead__consumer", "requested_by").order_by("-created_at", "-id")


# --- returns ------------------------------------------------------------------------------------------
#
# The cap (MarketSettings.return_rate_cap and return_allowance_per, over the rolling 30 days) is enforced
# when the lender asks, counting returns still waiting for staff as if approved: the lender hears "no" at
# once, with the numbers, instead of days later. Approval by staff checks it again (approved returns only).
# A return our own evidence approves is not held to the cap: the lead was bad by what we know, not by the
# lender's say-so (marketplace.evidence).


def return_deadline(*, delivery, window_days: int) -> datetime:
    return delivery.created_at + timedelta(days=window_days)


def _lock_lender_account(lender_id: int) -> Account:
    return Account.objects.select_for_update().get(lender_id=lender_id)


def _cap_message(*, stats: ReturnRate, would_be: int) -> str:
    rule = f"{stats.cap_percent.normalize():f}% of your deliveries"
    if stats.per:
        rule += f" (at least one return per {stats.per} deliveries)"
    return (
        f"Returns are capped at {rule} over the last {RATE_WINDOW_DAYS} days. In that time you had "
        f"{stats.deliveries} deliver{'y' if stats.deliveries == 1 else 'ies'} and {would_be - 1} "
        f"return{'s' if would_be != 2 else ''} approved or pending, which allows {stats.allowed}; another "
        f"would make {stats.rate_with(would_be):.1f}%."
    )


@transaction.atomic
def return_request_create(
    *, delivery, user, reason: str, note: str = "", now: datetime | None = None
) -> ReturnRequest:
    """A lender asks for its money back on a bad lead. Refused, with the reason, outside the window, for a
    second request on the same lead, or when the returns of the last 30 days would pass the staff cap.

    Decided at once where we hold the evidence (marketplace.evidence): approved and credited when it backs
    the reason, denied with the evidence shown when it contradicts it; otherwise left for staff."""
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
    found = return_evidence(delivery=delivery, reason=reason, duplicate_days=market.duplicate_window_days)
    if found.verdict != APPROVE:
        stats = return_rate_rolling(lender_id=delivery.lender_id, now=now)
        would_be = stats.approved + stats.pending + 1
        if would_be > stats.allowed:
            raise ValidationError(_cap_message(stats=stats, would_be=would_be))
    try:
        with transaction.atomic():
            rr = ReturnRequest.objects.create(
                delivery=delivery,
                lender_id=delivery.lender_id,
                reason=reason,
                note=note[:1000],
                requested_by=user,
                created_at=now,
            )
    except IntegrityError as exc:  # another request for this lead won the race (the lock makes this rare)
        raise ValidationError("A return has already been requested for this lead.") from exc
    if found.verdict == APPROVE:
        return return_approve(return_request_id=rr.pk, user=None, note=found.note, by_evidence=True)
    if found.verdict == DENY:
        return return_deny(return_request_id=rr.pk, user=None, note=found.note, by_evidence=True)
    return rr


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
def return_approve(
    *, return_request_id: int, user, note: str = "", by_evidence: bool = False
) -> ReturnRequest:
    """Approve a return and credit the lead's price back, in one transaction, exactly once. Staff's
    approval is held to the cap; one our evidence decided is not (see above)."""
    account, rr = _decide(return_request_id)
    if not by_evidence:
        stats = return_rate_rolling(lender_id=rr.lender_id)
        if stats.approved + 1 > stats.allowed:
            raise ValidationError(_cap_message(stats=stats, would_be=stats.approved + 1))
    rr.credit = account_post(
        account=account,
        kind=LedgerEntry.Kind.CREDIT,
        amount=rr.delivery.price,
        memo=f"Return of lead {rr.delivery.lead.reference} approved",
        user=user,
    )
    rr.status, rr.decided_by, rr.decided_at = ReturnRequest.Status.APPROVED, user, timezone.now()
    rr.decision_note, rr.by_evidence = (note or "").strip()[:500], by_evidence
    rr.save(update_fields=["credit", "status", "decided_by", "decided_at", "decision_note", "by_evidence"])
    # The returned delivery no longer holds the lead: its exclusivity is released, and the lead may be
    # offered again to other lenders (resale, issue 16.5, is not built yet).
    Delivery.objects.filter(pk=rr.delivery_id).update(returned_at=rr.decided_at)
    _notify_decided(rr)
    return rr


@transaction.atomic
def return_deny(*, return_request_id: int, user, note: str = "", by_evidence: bool = False) -> ReturnRequest:
    _, rr = _decide(return_request_id)
    rr.status, rr.decided_by, rr.decided_at = ReturnRequest.Status.DENIED, user, timezone.now()
    rr.decision_note, rr.by_evidence = (note or "").strip()[:500], by_evidence
    rr.save(update_fields=["status", "decided_by", "decided_at", "decision_note", "by_evidence"])
    _notify_decided(rr)
    return rr


def _notify_decided(rr: ReturnRequest) -> None:
    # The return.decided webhook and the lender's e-mail: the integrations app subscribes (integrations.apps)
    # and writes them in this transaction, queued on commit.
    return_decided.send(sender=ReturnRequest, return_request=rr)
