"""Selling leads: match in SQL, lock, check, allocate, deliver and charge in one transaction."""

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Exists, F, OuterRef, Q, QuerySet
from django.utils import timezone

from billing.models import Account
from billing.services import account_charge
from leads.choices import LeadStatus
from leads.models import Lead
from lenders.models import Lender, LenderLicense, Subscription, SubscriptionState, SubscriptionZip

from .models import Delivery, MarketSettings, PriceFloor

logger = logging.getLogger(__name__)

SELLABLE = (LeadStatus.QUALIFIED, LeadStatus.UNSOLD)


def subscriptions_matching(*, lead: Lead) -> QuerySet[Subscription]:
    """Live subscriptions whose filters the lead meets, best bid first. One indexed SQL query.

    Terms that depend on the moment (caps, budget, schedule, floors) are checked after the lock.
    """
    loan, ltv, dti = lead.requested_loan, lead.ltv, lead.dti
    return (
        Subscription.objects.live()
        .filter(
            Exists(SubscriptionState.objects.filter(subscription=OuterRef("pk"), state=lead.state)),
            Exists(LenderLicense.objects.filter(lender=OuterRef("lender_id"), state=lead.state)),
            Q(has_zip_filter=False)
            | Exists(SubscriptionZip.objects.filter(subscription=OuterRef("pk"), zip_code=lead.zip_code)),
            Q(min_loan_amount__isnull=True) | Q(min_loan_amount__lte=loan),
            Q(max_loan_amount__isnull=True) | Q(max_loan_amount__gte=loan),
            Q(max_ltv__isnull=True) | Q(max_ltv__gte=ltv),
            Q(max_dti__isnull=True) | Q(max_dti__gte=dti),
            **{f"purpose_{lead.purpose}": True, f"credit_{lead.credit_band}": True},
        )
        .order_by("-price", F("lender__last_served_at").asc(nulls_first=True), "lender_id", "id")
    )


def price_floor_for(*, floors: list[PriceFloor], purpose: str, exclusive: bool, state: str) -> Decimal:
    """The staff floor for this kind of sale: a state's own floor beats the all-states one."""
    general = Decimal("0.00")
    for f in floors:
        if f.purpose == purpose and f.exclusive == exclusive:
            if f.state == state:
                return f.price
            if not f.state:
                general = f.price
    return general


def in_schedule(sub: Subscription, local_now: datetime) -> bool:
    if str(local_now.weekday()) not in sub.schedule_days:
        return False
    start, end, now = sub.schedule_start, sub.schedule_end, local_now.time()
    if start is None or end is None:
        return True
    if start <= end:
        return start <= now < end
    return now >= start or now < end  # an overnight window, e.g. 20:00–06:00


@dataclass
class _Candidate:
    sub: Subscription
    local_now: datetime
    reason: str = ""
    trace: dict = field(default_factory=dict)


def _counters_today(sub: Subscription, local_now: datetime) -> tuple[int, int, Decimal]:
    today, month = local_now.date(), local_now.date().replace(day=1)
    day_count = sub.day_count if sub.day_key == today else 0
    if sub.month_key == month:
        return day_count, sub.month_count, sub.month_spend
    return day_count, 0, Decimal("0.00")


def _ineligible_reason(sub: Subscription, *, local_now: datetime, account: Account, floor: Decimal) -> str:
    if sub.price < floor:
        return f"bid ${sub.price} below floor ${floor}"
    if not in_schedule(sub, local_now):
        return "outside delivery schedule"
    day_count, month_count, month_spend = _counters_today(sub, local_now)
    if sub.daily_cap is not None and day_count >= sub.daily_cap:
        return "daily cap reached"
    if sub.monthly_cap is not None and month_count >= sub.monthly_cap:
        return "monthly cap reached"
    if sub.monthly_budget is not None and month_spend + sub.price > sub.monthly_budget:
        return "monthly budget reached"
    if account.available < sub.price:
        return "insufficient funds"
    return ""


def _allocate(eligible: list[Subscription], shared_max: int) -> tuple[str, list[Subscription]]:
    """Exclusive to the best exclusive bid, or shared to the best bids of up to N distinct lenders:
    whichever earns more. `eligible` is already ordered best bid first, ties least recently served first."""
    best_exclusive = next((s for s in eligible if s.exclusive), None)
    shared: list[Subscription] = []
    seen: set[int] = set()
    for s in eligible:
        if not s.exclusive and s.lender_id not in seen and len(shared) < shared_max:
            shared.append(s)
            seen.add(s.lender_id)
    shared_revenue = sum((s.price for s in shared), Decimal("0.00"))
    # On equal revenue the exclusive sale wins: one buyer, and the consumer hears from one lender.
    if best_exclusive is not None and best_exclusive.price >= shared_revenue:
        return "exclusive", [best_exclusive]
    if shared:
        return "shared", shared
    return "unsold", []


def lead_distribute(*, lead_id: int) -> list[Delivery]:
    """Sell a qualified lead. Idempotent and safe to run concurrently: the lead row lock serialises
    sellers of one lead, account locks (taken in id order) serialise sales to one lender, and the
    unique constraints on Delivery are the final guard."""
    now = timezone.now()
    market = MarketSettings.load()
    with transaction.atomic():
        lead = Lead.objects.select_for_update().filter(pk=lead_id).first()
        if lead is None or lead.status not in SELLABLE:
            return []
        if lead.status == LeadStatus.UNSOLD and lead.retry_until and lead.retry_until < now:
            return []

        candidate_ids = list(subscriptions_matching(lead=lead).values_list("id", "lender_id"))
        lender_ids = sorted({lender_id for _, lender_id in candidate_ids})
        # Lock the candidate lenders' accounts in a fixed (id) order so concurrent sales cannot deadlock.
        accounts = {
            a.lender_id: a
            for a in Account.objects.select_for_update().filter(lender_id__in=lender_ids).order_by("id")
        }
        # Re-read the subscriptions now that their lenders are locked: caps and counters are current.
        subs = list(
            Subscription.objects.filter(id__in=[sid for sid, _ in candidate_ids])
            .select_related("lender")
            .order_by("-price", F("lender__last_served_at").asc(nulls_first=True), "lender_id", "id")
        )
        floors = list(PriceFloor.objects.all())

        eligible: list[Subscription] = []
        considered = []
        for sub in subs:
            local_now = now.astimezone(ZoneInfo(sub.lender.time_zone))
            account = accounts.get(sub.lender_id)
            floor = price_floor_for(floors=floors, purpose=lead.purpose, exclusive=sub.exclusive, state=lead.state)
            reason = (
                "no account" if account is None
                else _ineligible_reason(sub, local_now=local_now, account=account, floor=floor)
            )
            considered.append({
                "subscription": sub.pk, "name": sub.name, "lender": sub.lender_id, "lender_name": sub.lender.name,
                "price": str(sub.price), "exclusive": sub.exclusive, "reason": reason,
            })
            if not reason:
                eligible.append(sub)

        mode, winners = _allocate(eligible, market.shared_max_buyers)
        winner_ids = {s.pk for s in winners}
        for row in considered:
            if row["subscription"] in winner_ids:
                row["outcome"] = "won"
            elif row["reason"]:
                row["outcome"] = "ineligible"
            else:
                row["outcome"] = "lost"
                row["reason"] = "outbid" if mode != "unsold" else ""

        deliveries = []
        for sub in sorted(winners, key=lambda s: accounts[s.lender_id].pk):
            charge = account_charge(
                account=accounts[sub.lender_id], amount=sub.price, memo=f"Lead #{lead.pk} ({mode})"
            )
            deliveries.append(Delivery(
                lead=lead, lender_id=sub.lender_id, subscription=sub, exclusive=(mode == "exclusive"),
                price=sub.price, charge=charge, created_at=now, status_changed_at=now,
            ))
            _count_sale(sub, now)
        Delivery.objects.bulk_create(deliveries)
        if winners:
            Lender.objects.filter(pk__in=[s.lender_id for s in winners]).update(last_served_at=now)

        lead.distribution_attempts += 1
        lead.distribution_trace = [*lead.distribution_trace, {
            "attempt": lead.distribution_attempts, "at": now.isoformat(), "mode": mode,
            "revenue": str(sum((s.price for s in winners), Decimal("0.00"))), "considered": considered,
        }][-20:]  # unsold leads retry for a day; keep the trace bounded
        if winners:
            lead.status, lead.sold_at = LeadStatus.SOLD, now
        else:
            lead.status = LeadStatus.UNSOLD
            lead.retry_until = lead.retry_until or now + timedelta(hours=market.unsold_retry_hours)
        lead.save(update_fields=[
            "status", "sold_at", "retry_until", "distribution_attempts", "distribution_trace", "updated_at",
        ])

        if deliveries:
            from .tasks import notify_delivery

            ids = [d.pk for d in deliveries]
            transaction.on_commit(lambda: [notify_delivery.delay(i) for i in ids])
    logger.info("lead %s %s to %d buyer(s)", lead_id, mode, len(deliveries))
    return deliveries


def _count_sale(sub: Subscription, now: datetime) -> None:
    local = now.astimezone(ZoneInfo(sub.lender.time_zone)).date()
    day_count, month_count, month_spend = _counters_today(sub, now.astimezone(ZoneInfo(sub.lender.time_zone)))
    Subscription.objects.filter(pk=sub.pk).update(
        day_key=local, day_count=day_count + 1, month_key=local.replace(day=1),
        month_count=month_count + 1, month_spend=month_spend + sub.price,
    )


def lead_redistribute(*, lead_id: int) -> bool:
    """Staff: give an unsold (or stuck qualified) lead a fresh retry window and queue its sale."""
    from .tasks import distribute_lead

    market = MarketSettings.load()
    updated = Lead.objects.filter(pk=lead_id, status__in=SELLABLE).update(
        retry_until=timezone.now() + timedelta(hours=market.unsold_retry_hours)
    )
    if updated:
        transaction.on_commit(lambda: distribute_lead.delay(lead_id))
    return bool(updated)


# --- The lender's pipeline ----------------------------------------------------------------------------

S = Delivery.Status
LEGAL_MOVES: dict[str, set[str]] = {
    S.NEW: {S.CONTACTED, S.LOST},
    S.CONTACTED: {S.APPLICATION, S.LOST},
    S.APPLICATION: {S.APPROVED, S.LOST},
    S.APPROVED: {S.FUNDED, S.LOST},
    S.FUNDED: set(),
    S.LOST: set(),
}


def delivery_next_statuses(delivery: Delivery) -> list[str]:
    return [s for s in S.values if s in LEGAL_MOVES[delivery.status]]


@transaction.atomic
def delivery_set_status(
    *, delivery: Delivery, status: str, funded_amount: Decimal | None = None, lost_reason: str = ""
) -> Delivery:
    """Move a delivery along the pipeline; refuses illegal moves with a message the user can act on."""
    d = Delivery.objects.select_for_update().get(pk=delivery.pk)
    if status not in LEGAL_MOVES.get(d.status, set()):
        raise ValidationError(
            f"A lead cannot move from {d.get_status_display()} to {S(status).label if status in S.values else status}."
        )
    now = timezone.now()
    if status == S.FUNDED:
        if funded_amount is None or funded_amount <= 0:
            raise ValidationError({"funded_amount": "Enter the funded loan amount."})
        d.funded_amount = funded_amount
    if status == S.LOST:
        if not lost_reason.strip():
            raise ValidationError({"lost_reason": "Say why the lead was lost."})
        d.lost_reason = lost_reason.strip()[:200]
    if status == S.CONTACTED and d.first_contact_at is None:
        d.first_contact_at = now
    d.status, d.status_changed_at = status, now
    d.save()
    delivery.__dict__.update(d.__dict__)
    return d
