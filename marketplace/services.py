"""Selling leads: match in SQL, lock, check, allocate, deliver and charge in one transaction."""

import dataclasses
import logging
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import takewhile
from typing import NamedTuple
from zoneinfo import ZoneInfo

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from billing.models import Account
from billing.services import accounts_charge
from core import staffconfig
from core.batching import failure_summary, is_transient, one_by_one
from core.bulk import bulk_insert, bulk_set
from core.tasking import enqueue, enqueue_on_commit
from core.terms import values_params
from leads import services as lead_services
from leads.choices import LeadStatus, lead_statuses_to
from leads.models import Lead
from leads.services import lead_hold, lead_set_status
from lenders.models import AssignmentRule, Lender, Membership, Subscription

from .matching import LEAD_VALUES, in_schedule, matching_sql
from .models import Activity, Delivery, FollowUp, MarketSettings, PriceFloor
from .rollup import facts_of, facts_read, rollups_apply
from .signals import deliveries_created, delivery_status_changed
from .speed import band_floor, by_speed, lender_speeds_for

logger = logging.getLogger(__name__)

SELLABLE = tuple(sorted(lead_statuses_to(LeadStatus.SOLD)))  # qualified and unsold


def market_settings_current() -> MarketSettings:
    """The staff's market settings, read through the short per-process cache (asked for on every batch)."""
    return staffconfig.cached("market", MarketSettings.load)


def price_floors_current() -> list[PriceFloor]:
    return staffconfig.cached("floors", lambda: list(PriceFloor.objects.all()))


def leads_qualify(*, lead_ids: list[int], claim: int = 0, queue_distribution: bool = True) -> list[Lead]:
    """The first half of the batch: leads.services.leads_qualify, then, unless the caller (the qualify
    task) sells the batch itself, each qualified lead's sale queued on commit."""
    from . import tasks  # tasks import this module: the one import inside the app's cycle

    leads = lead_services.leads_qualify(lead_ids=lead_ids, claim=claim)
    if queue_distribution:
        for lead in leads:
            if lead.status == LeadStatus.QUALIFIED:
                enqueue_on_commit(tasks.lead_distribute, lead.pk)
    return leads


def lead_waiting_queue(*, lead_id: int, status: str, **kwargs: object) -> None:
    """Receiver of leads.signals.lead_waiting (sent on commit): queue a received lead's qualification, or a
    released qualified lead's sale."""
    from . import tasks

    if status == LeadStatus.RECEIVED:
        tasks.qualify_soon(lead_id)
    else:
        enqueue(tasks.lead_distribute, lead_id)


# Price points of bids read per lead; a sale that walks past them all reads that lead's every match.
MATCH_DEPTH = 25


class Match(NamedTuple):
    """A light row of the matching query: enough to rank bids and decide which to lock and load."""

    subscription_id: int
    lender_id: int
    exclusive: bool
    price: Decimal
    lender_last_served_at: datetime | None
    matched: int  # how many subscriptions the lead matched in all (rows may stop at MATCH_DEPTH prices)


def subscriptions_matching(*, leads: list[Lead], prices: int | None = None) -> dict[int, list[Match]]:
    """Every live subscription each lead meets the filters of, best bid first (then the lender served
    longest ago), by lead id. One SQL query for the whole batch, driven by the (state, subscription) index.

    `prices` keeps only the bids at a lead's best `prices` price points (ties included, so whatever is left
    out bids strictly less): the sale walks a handful of bids, and a market of 10,000 subscriptions must
    not send thousands of rows per lead back to Python.

    Funds are pre-checked here (the bid fits the balance plus credit limit) and checked again under the
    account lock; terms that depend on the moment (caps, budget, schedule, floors) are checked only there.
    """
    if not leads:
        return {}
    # One spec (marketplace.matching) writes this SQL and the forecast's ORM filter; lead values are params.
    sql = matching_sql(len(leads))
    params = values_params(LEAD_VALUES, leads)
    matches: dict[int, list[Match]] = {lead.pk: [] for lead in leads}
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, Lender.Status.ACTIVE, prices or 2**31 - 1])
        for lead_id, sub_id, lender_id, exclusive, price, served, matched in cursor.fetchall():
            if isinstance(served, str):  # SQLite (local runs) hands datetimes back as text
                parsed = parse_datetime(served)
                served = timezone.make_aware(parsed, UTC) if parsed else None
            matches[lead_id].append(
                Match(sub_id, lender_id, bool(exclusive), Decimal(str(price)), served, matched)
            )
    return matches


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


class TermsFloor(NamedTuple):
    """The least bid an order's terms may carry, and where it comes from (for the page to say)."""

    price: Decimal
    purpose: str  # "" when no floor applies
    state: str  # "" for the all-states floor
    exclusive: bool

    def describe(self) -> str:
        """ "shared purchase leads in TX", as the price field and its error say it."""
        kind = "exclusive" if self.exclusive else "shared"
        where = f" in {self.state}" if self.state else ""
        return f"{kind} {self.purpose.replace('_', ' ')} leads{where}"


def price_floor_for_terms(
    *, floors: list[PriceFloor], purposes: list[str], states: list[str], exclusive: bool
) -> TermsFloor:
    """The highest floor among the order's purposes and states (no state: the all-states floors): a bid at
    least this is above every floor the order can meet, and one under it is refused."""
    best = TermsFloor(Decimal("0.00"), "", "", exclusive)
    for purpose in purposes:
        for state in states or [""]:
            floor = price_floor_for(floors=floors, purpose=purpose, exclusive=exclusive, state=state)
            if floor > best.price:
                # Name the state only when it has a floor of its own; otherwise it is the general floor.
                own = any(
                    f.state == state and f.purpose == purpose and f.exclusive == exclusive for f in floors
                )
                best = TermsFloor(floor, purpose, state if state and own else "", exclusive)
    return best


def subscription_price_check(
    *, data: dict, states: list[str], purposes: list[str], err: Callable[[str, str], None], **kwargs: object
) -> None:
    """Receiver of lenders.signals.subscription_validating: a bid below the staff's floor for any of the
    order's purposes and states is named on the price field (once, with the highest floor it must meet)."""
    price = data["price"]
    floor = price_floor_for_terms(
        floors=list(PriceFloor.objects.all()),
        purposes=purposes,
        states=states,
        exclusive=bool(data.get("exclusive")),
    )
    if price < floor.price:
        err("price", f"${price} is below the ${floor.price} floor for {floor.describe()}.")


def _counters_today(sub: Subscription, local_now: datetime) -> tuple[int, int, Decimal]:
    today, month = local_now.date(), local_now.date().replace(day=1)
    day_count = sub.day_count if sub.day_key == today else 0
    if sub.month_key == month:
        return day_count, sub.month_count, sub.month_spend
    return day_count, 0, Decimal("0.00")


def _ineligible_reason(sub: Subscription, *, local_now: datetime, available: Decimal, floor: Decimal) -> str:
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
    if available < sub.price:
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


def _speed_cutoff(eligible: list[Subscription], shared_max: int, margin: Decimal) -> Decimal | None:
    """The lowest bid still within the speed margin of the weakest buyer the allocation would take now
    (None without a margin or a buyer): bids down to it must be read before the sale is decided."""
    if margin <= 0:
        return None
    needed: list[Decimal] = []
    exclusive = next((s for s in eligible if s.exclusive), None)
    if exclusive is not None:
        needed.append(exclusive.price)
    seen: list[int] = []
    for s in eligible:
        if not s.exclusive and s.lender_id not in seen and len(seen) < shared_max:
            seen.append(s.lender_id)
            needed.append(s.price)
    return band_floor(min(needed), margin) if needed else None


def _within(rows: list[Match], cutoff: Decimal) -> list[Match]:
    """The leading rows (best bid first) bidding at least `cutoff`."""
    return list(takewhile(lambda r: r.price >= cutoff, rows))


def _speed_note(considered: list[dict], margin: Decimal) -> dict[str, str]:
    """The trace's word on the attempt when speed, not price, chose a buyer."""
    if any(row.get("speed") for row in considered):
        return {"note": f"speed decided: a faster responder won among bids within {margin}%"}
    return {}


def _next_batch(rows: list[Match], *, need_exclusive: bool, need_shared: int) -> list[Match]:
    """The next rows to evaluate: enough for the buyers still missing, plus spares for any that turn out
    ineligible (caps, schedule, funds), so one batch nearly always decides."""
    want_exclusive = 2 if need_exclusive else 0
    want_lenders = need_shared + 2 if need_shared > 0 else 0
    lenders: set[int] = set()
    for i, row in enumerate(rows):
        if row.exclusive:
            want_exclusive -= 1
        elif row.lender_id not in lenders:
            lenders.add(row.lender_id)
        if want_exclusive <= 0 and len(lenders) >= want_lenders:
            return rows[: i + 1]
    return rows


class _Market:
    """What one distribution transaction has locked and read: buyers' accounts (row-locked), their
    subscriptions, and the sales made so far in this batch, so each lead of a batch sees the caps, budgets,
    funds and rotation its predecessors left, exactly as if it had been sold alone after them."""

    def __init__(self, now: datetime):
        self.now = now
        self.locked: set[int] = set()
        self.accounts: dict[int, Account] = {}
        self.subs: dict[int, Subscription] = {}
        self.pending: dict[int, Decimal] = defaultdict(Decimal)  # charges of this batch, not yet posted
        self.served: dict[int, datetime] = {}  # lenders that won a lead of this batch
        # The buyers' median times to first contact (marketplace.speed), read once per batch.
        self.medians: dict[int, float] = {}
        self.speed_margin = Decimal("0")

    def load(self, rows: list[Match]) -> None:
        """Lock the accounts of lenders new to this transaction (in id order, one query), then read their
        subscriptions, so caps and counters are current."""
        new_lenders = {r.lender_id for r in rows} - self.locked
        if new_lenders:
            self.accounts.update(
                (a.lender_id, a)
                for a in Account.objects.select_for_update().filter(lender_id__in=new_lenders).order_by("id")
            )
            self.locked |= new_lenders
        missing = [r.subscription_id for r in rows if r.subscription_id not in self.subs]
        if missing:
            self.subs.update(Subscription.objects.select_related("lender").in_bulk(missing))

    def rank(self, row: Match) -> tuple[Decimal, tuple[int] | tuple[int, datetime], int, int]:
        """The SQL order (best bid, lender served longest ago first, ids), with this batch's sales counted."""
        served = self.served.get(row.lender_id, row.lender_last_served_at)
        return (-row.price, (0,) if served is None else (1, served), row.lender_id, row.subscription_id)

    def available(self, account: Account) -> Decimal:
        return account.available - self.pending[account.pk]


def _choose(
    lead: Lead, rows: list[Match], market: _Market, *, floors: list[PriceFloor], shared_max: int
) -> tuple[str, list[Subscription], list[dict], bool]:
    """Walk one lead's matches best bid first; stop once one exclusive buyer and N shared buyers are found:
    what follows bids no more, so a market of 10,000 subscriptions costs about what one of 100 does.
    Returns the mode, the winners, the trace rows, and whether every row was walked."""
    rows = sorted(rows, key=market.rank)
    eligible: list[Subscription] = []
    considered: list[dict] = []
    done = 0
    while done < len(rows):
        found_exclusive = any(s.exclusive for s in eligible)
        found_shared = len({s.lender_id for s in eligible if not s.exclusive})
        rest = rows[done:]
        if (found_exclusive or not any(r.exclusive for r in rest)) and (
            found_shared >= shared_max or all(r.exclusive for r in rest)
        ):
            # Enough buyers; but a bid within the speed margin of one of them may still win on speed.
            cutoff = _speed_cutoff(eligible, shared_max, market.speed_margin)
            batch = [] if cutoff is None else _within(rest, cutoff)
            if not batch:
                break
        else:
            batch = _next_batch(
                rest, need_exclusive=not found_exclusive, need_shared=shared_max - found_shared
            )
        done += len(batch)
        # The first batch was locked with the whole sale; a later one (rare: its best bids all turned out
        # ineligible) locks out of id order, which PostgreSQL resolves as a deadlock and the task retries.
        market.load(batch)
        for sub in (market.subs[r.subscription_id] for r in batch if r.subscription_id in market.subs):
            account = market.accounts.get(sub.lender_id)
            floor = price_floor_for(
                floors=floors, purpose=lead.purpose, exclusive=sub.exclusive, state=lead.state
            )
            reason = (
                "no account"
                if account is None
                else _ineligible_reason(
                    sub,
                    local_now=market.now.astimezone(ZoneInfo(sub.lender.time_zone)),
                    available=market.available(account),
                    floor=floor,
                )
            )
            row = {
                "subscription": sub.pk,
                "name": sub.name,
                "lender": sub.lender_id,
                "lender_name": sub.lender.name,
                "price": str(sub.price),
                "exclusive": sub.exclusive,
                "reason": reason,
            }
            if sub.lender_id in market.medians:
                row["median_contact_s"] = round(market.medians[sub.lender_id])
            considered.append(row)
            if not reason:
                eligible.append(sub)

    mode, winners = _allocate(
        by_speed(eligible, medians=market.medians, margin_percent=market.speed_margin), shared_max
    )
    winner_ids = {s.pk for s in winners}
    # Speed decided when the price order alone would have chosen other buyers.
    _, by_price = _allocate(eligible, shared_max)
    if {s.pk for s in by_price} != winner_ids:
        for row in considered:
            if row["subscription"] in winner_ids - {s.pk for s in by_price}:
                row["speed"] = "won on speed"
            elif row["subscription"] in {s.pk for s in by_price} - winner_ids:
                row["speed"] = "outrun by a faster responder"
    for row in considered:
        if row["subscription"] in winner_ids:
            row["outcome"] = "won"
        elif row["reason"]:
            row["outcome"] = "ineligible"
        else:
            row["outcome"] = "lost"
            row["reason"] = row.pop("speed", "outbid") if mode != "unsold" else ""
    return mode, winners, considered, done >= len(rows)


def lead_distribute(*, lead_id: int) -> list[Delivery]:
    """Sell one qualified lead (see leads_distribute)."""
    return leads_distribute(lead_ids=[lead_id]).get(lead_id, [])


def leads_distribute(*, lead_ids: list[int], queue_notification: bool = True) -> dict[int, list[Delivery]]:
    """Sell a batch of qualified leads in one transaction; returns the deliveries of each lead sold.
    Their notification is queued on commit, unless the caller (the qualify task) sends it itself.

    Idempotent and safe to run concurrently: the lead row locks (taken in id order) serialise sellers of one
    lead, account locks (taken in id order) serialise sales to one lender, and the unique constraints on
    Delivery are the final guard. Leads are decided one after another in id order, each seeing the caps,
    budgets, funds and rotation the ones before it left; the writes are then made in bulk, so a batch of
    fifty costs a few more queries than a batch of one.

    A batch isolates its leads: should the batch raise, it is rolled back and its leads are sold one by one
    (in the same order, so each still sees what the ones before it left); a lead whose sale raises alone is
    held for staff review and the others are sold. A transient error propagates, and the task retries.
    """
    try:
        return _leads_distribute(lead_ids=lead_ids, queue_notification=queue_notification)
    except Exception as exc:
        if is_transient(exc) or not lead_ids:
            raise
        logger.warning(
            "selling a batch of %d lead(s) raised %s; selling them one by one",
            len(lead_ids),
            failure_summary(exc),
        )
    sold: dict[int, list[Delivery]] = {}
    for result in one_by_one(
        sorted(set(lead_ids)),
        run=lambda pk: _leads_distribute(lead_ids=[pk], queue_notification=queue_notification),
        set_aside=lambda pk, exc: lead_hold(lead_id=pk, reason=f"{failure_summary(exc)} while selling"),
    ):
        sold.update(result)
    return sold


def _leads_distribute(*, lead_ids: list[int], queue_notification: bool) -> dict[int, list[Delivery]]:
    """One transaction of leads_distribute."""
    now = timezone.now()
    settings_ = market_settings_current()
    floors = price_floors_current()
    shared_max = settings_.shared_max_buyers
    with transaction.atomic():
        leads = [
            lead
            # The engine's full working (a few kB of JSON per lead) plays no part in a sale.
            for lead in Lead.objects.select_for_update()
            .defer("qualification")
            .filter(pk__in=lead_ids, status__in=SELLABLE)
            .order_by("pk")
            if not (lead.status == LeadStatus.UNSOLD and lead.retry_until and lead.retry_until < now)
        ]
        if not leads:
            return {}
        matches = subscriptions_matching(leads=leads, prices=MATCH_DEPTH)
        market = _Market(now)
        market.speed_margin = settings_.speed_margin_percent
        market.medians = lender_speeds_for({r.lender_id for rows in matches.values() for r in rows})
        # Lock every account the leads' best bids need in one go, in id order.
        market.load(
            [
                row
                for rows in matches.values()
                for row in _next_batch(
                    sorted(rows, key=market.rank), need_exclusive=True, need_shared=shared_max
                )
            ]
        )

        sales: list[tuple[Lead, str, Subscription]] = []
        counted: dict[int, Subscription] = {}
        for i, lead in enumerate(leads):
            # Each sale of the batch is its own moment, so equal bids rotate between lenders as they would
            # were the leads sold one by one.
            moment = now + timedelta(microseconds=i)
            rows = matches[lead.pk]
            mode, winners, considered, walked_all = _choose(
                lead, rows, market, floors=floors, shared_max=shared_max
            )
            if walked_all and rows and rows[0].matched > len(rows):
                # Every bid read was ineligible or taken, and cheaper ones were left in the database.
                rows = matches[lead.pk] = subscriptions_matching(leads=[lead])[lead.pk]
                mode, winners, considered, _ = _choose(
                    lead, rows, market, floors=floors, shared_max=shared_max
                )
            for sub in winners:
                market.pending[market.accounts[sub.lender_id].pk] += sub.price
                market.served[sub.lender_id] = moment
                counted[sub.pk] = _counted(sub, now)
                sales.append((lead, mode, sub))
            lead.distribution_attempts, lead.updated_at = lead.distribution_attempts + 1, now
            lead.distribution_trace = [
                *lead.distribution_trace,
                {
                    "attempt": lead.distribution_attempts,
                    "at": now.isoformat(),
                    "mode": mode,
                    "revenue": str(sum((s.price for s in winners), Decimal("0.00"))),
                    "matched": rows[0].matched if rows else 0,
                    "considered": considered,
                    **_speed_note(considered, market.speed_margin),
                },
            ][-20:]  # unsold leads retry for a day; keep the trace bounded
            # The lead's row is locked: the move is checked here and written with the batch (bulk_set below).
            if winners:
                lead_set_status(lead=lead, to=LeadStatus.SOLD, save=False)
            else:
                lead_set_status(lead=lead, to=LeadStatus.UNSOLD, save=False)
                lead.retry_until = lead.retry_until or now + timedelta(hours=settings_.unsold_retry_hours)
            logger.info("lead %s %s to %d buyer(s)", lead.pk, mode, len(winners))

        deliveries: list[Delivery] = []
        # The sale's time is when it is written, just before commit (the decisions above took a moment).
        written = timezone.now()
        for lead in leads:
            if lead.status == LeadStatus.SOLD:
                lead.sold_at = written
        if sales:
            charges = accounts_charge(
                charges=[
                    (market.accounts[sub.lender_id], sub.price, f"Lead {lead.reference} ({mode})")
                    for lead, mode, sub in sales
                ]
            )
            deliveries = bulk_insert(
                [
                    Delivery(
                        lead=lead,
                        lender_id=sub.lender_id,
                        subscription=sub,
                        exclusive=(mode == "exclusive"),
                        price=sub.price,
                        purpose=lead.purpose,
                        state=lead.state,
                        charge=charge,
                        created_at=written,
                        status_changed_at=written,
                    )
                    for (lead, mode, sub), charge in zip(sales, charges, strict=True)
                ]
            )
            bulk_set(
                list(counted.values()), ["day_key", "day_count", "month_key", "month_count", "month_spend"]
            )
            bulk_set(
                [Lender(pk=lender_id, last_served_at=at) for lender_id, at in market.served.items()],
                ["last_served_at"],
            )
            # Give each new lead its loan officer before anyone is told about it (notify reads assigned_to).
            deliveries_assign_round_robin(deliveries=deliveries, now=now)
            # Analytics' daily rollup, last: its shared lock comes after every row lock the sale takes.
            rollups_apply(after=[facts_of(d, zone=d.subscription.lender.time_zone) for d in deliveries])
        bulk_set(
            leads,
            ["status", "sold_at", "retry_until", "distribution_attempts", "distribution_trace", "updated_at"],
        )
        if deliveries and queue_notification:
            ids = [d.pk for d in deliveries]
            # The integrations app subscribes (integrations.apps) and queues the buyers' webhooks and e-mail.
            transaction.on_commit(
                lambda: deliveries_created.send(sender=Delivery, delivery_ids=ids, now=False)
            )
    sold: dict[int, list[Delivery]] = defaultdict(list)
    for d in deliveries:
        sold[d.lead_id].append(d)
    return dict(sold)


def _counted(sub: Subscription, now: datetime) -> Subscription:
    """The subscription with this sale counted against its lender-local day and month."""
    local_now = now.astimezone(ZoneInfo(sub.lender.time_zone))
    day_count, month_count, month_spend = _counters_today(sub, local_now)
    sub.day_key, sub.day_count = local_now.date(), day_count + 1
    sub.month_key, sub.month_count = local_now.date().replace(day=1), month_count + 1
    sub.month_spend = month_spend + sub.price
    return sub


def lead_redistribute(*, lead_id: int) -> bool:
    """Staff: give an unsold (or stuck qualified) lead a fresh retry window and queue its sale."""
    from . import tasks

    market = MarketSettings.load()
    updated = Lead.objects.filter(pk=lead_id, status__in=SELLABLE).update(
        retry_until=timezone.now() + timedelta(hours=market.unsold_retry_hours)
    )
    if updated:
        enqueue_on_commit(tasks.lead_distribute, lead_id)
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
    # The lender's zone comes along for the rollup; only the delivery's row is locked.
    d = (
        Delivery.objects.select_for_update(of=("self",))
        .annotate(rollup_zone=F("lender__time_zone"))
        .get(pk=delivery.pk)
    )
    before = facts_of(d, zone=d.rollup_zone)
    if status not in LEGAL_MOVES.get(d.status, set()):
        raise ValidationError(
            f"A lead cannot move from {d.get_status_display()} to "
            f"{S(status).label if status in S.values else status}."
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
    d.status, d.status_changed_at, d.touched_at = status, now, now
    d.save()
    rollups_apply(before=[before], after=[facts_of(d, zone=d.rollup_zone)])
    delivery.__dict__.update(d.__dict__)
    transaction.on_commit(
        lambda: delivery_status_changed.send(sender=Delivery, delivery_id=d.pk, status=status)
    )
    return d


# --- Assignment: which loan officer works a new lead ---------------------------------------------------


def deliveries_assign_round_robin(*, deliveries: list[Delivery], now: datetime | None = None) -> None:
    """Give each new delivery a loan officer by its lender's round-robin rules; leave it unassigned (so
    owners and managers see it and are e-mailed) when no active officer's rule fits the lead.

    Called inside lead_distribute's transaction while the buying lenders' account rows are locked
    (select_for_update), so sales to one lender run one at a time and each reads the counters the previous
    sale wrote: the rotation stays fair under concurrency without locking the rule rows themselves.
    Three queries however many buyers: every buyer's rules with their officers, then two bulk updates.
    """
    if not deliveries:
        return
    now = now or timezone.now()
    rules_by_lender: dict[int, list[AssignmentRule]] = defaultdict(list)
    for rule in AssignmentRule.objects.filter(lender_id__in={d.lender_id for d in deliveries}).select_related(
        "membership"
    ):
        rules_by_lender[rule.lender_id].append(rule)
    assigned: list[Delivery] = []
    touched_rules: list[AssignmentRule] = []
    for d in deliveries:
        rules = rules_by_lender.get(d.lender_id, [])
        fitting = [
            r
            for r in rules
            if r.is_active
            and r.membership.is_active
            and r.membership.lender_id == d.lender_id
            and r.fits(state=d.lead.state, purpose=d.lead.purpose)
        ]
        if not fitting:
            continue
        # Served longest ago first; never-served rules (seq 0) in their list order.
        rule = min(fitting, key=lambda r: (r.last_seq, r.position, r.pk))
        rule.last_seq = max(r.last_seq for r in rules) + 1
        rule.assigned_count += 1
        rule.last_assigned_at = now
        d.assigned_to_id = rule.membership.user_id
        assigned.append(d)
        touched_rules.append(rule)
    if assigned:
        bulk_set(assigned, ["assigned_to"])
        bulk_set(touched_rules, ["last_seq", "assigned_count", "last_assigned_at"])


@transaction.atomic
def delivery_reassign(*, delivery: Delivery, membership: Membership | None) -> Delivery:
    """Hand a lead to another member of the same lender by hand (or to nobody: owners and managers see it)."""
    if membership is not None and (membership.lender_id != delivery.lender_id or not membership.is_active):
        raise ValidationError("Choose an active member of your team.")
    now = timezone.now()
    user_id = membership.user_id if membership is not None else None
    before = facts_read(delivery.pk, lock=True)
    Delivery.objects.filter(pk=delivery.pk).update(assigned_to_id=user_id, touched_at=now)
    rollups_apply(before=[before], after=[dataclasses.replace(before, assigned_to_id=user_id)])
    delivery.assigned_to_id, delivery.touched_at = user_id, now
    return delivery


# --- Working a lead: activity and follow-ups ----------------------------------------------------------


@transaction.atomic
def activity_log(*, delivery: Delivery, user, kind: str, outcome: str = "", note: str = "") -> Activity:
    """Record a call, e-mail, text or note. The first call, e-mail or text sets the first contact time
    (response time is what lenders judge themselves by); notes never do.

    Reaching the consumer (a call, e-mail or text with outcome "reached") on a lead still New moves it to
    Contacted, by the declared move (delivery_set_status) in the same transaction: an officer who has spoken
    to the borrower should not have to say so twice, and the pipeline must not read New while the inbox says
    contacted. A voicemail or no answer is an attempt, not contact, and leaves the status alone. The caller
    sees the move on `delivery` (its status is updated in place) and tells webhooks about it."""
    note = note.strip()
    if kind not in Activity.Kind.values:
        raise ValidationError({"kind": "Choose call, e-mail, text or note."})
    if outcome and (outcome not in Activity.Outcome.values or outcome in Activity.CONSUMER_OUTCOMES):
        raise ValidationError({"outcome": "Choose an outcome from the list."})
    if kind == Activity.Kind.NOTE:
        if not note:
            raise ValidationError({"note": "Write the note."})
        outcome = ""
    elif not outcome:
        raise ValidationError({"outcome": "Say how it went."})
    now = timezone.now()
    activity = Activity.objects.create(
        delivery=delivery, user=user, kind=kind, outcome=outcome, note=note[:2000], created_at=now
    )
    # Conditional: of two contacts logged at once, only the earlier commit sets the time.
    if kind in Activity.CONTACT_KINDS and Delivery.objects.filter(
        pk=delivery.pk, first_contact_at__isnull=True
    ).update(first_contact_at=now, touched_at=now):
        delivery.first_contact_at = delivery.touched_at = now
        # The UPDATE holds the row lock: the facts read now are the first contact's, and only it changed.
        after = facts_read(delivery.pk)
        rollups_apply(before=[dataclasses.replace(after, first_contact_at=None)], after=[after])
    if kind in Activity.CONTACT_KINDS and outcome == Activity.Outcome.REACHED:
        # Read under the row lock delivery_set_status takes next: a lead someone moved on meanwhile (to
        # application, or lost) is left where it is rather than refused with the activity rolled back.
        current = Delivery.objects.select_for_update().values_list("status", flat=True).get(pk=delivery.pk)
        if current == S.NEW:
            delivery_set_status(delivery=delivery, status=S.CONTACTED)
    return activity


@transaction.atomic
def activities_log_automated(
    *, delivery_ids: list[int], kind: str, outcome: str, note: str = "", replied: bool = False
) -> int:
    """Log what the platform did or heard on these deliveries (a text it sent, a consumer's reply or stop):
    one insert however many buyers. A reply also stamps `replied_at` (and `touched_at`, so the live inbox
    shows it). Never sets the first contact: response time measures the officer, not the machine."""
    if kind not in Activity.Kind.values or (
        outcome not in Activity.Outcome.values and kind != Activity.Kind.NOTE
    ):
        raise ValueError(f"unknown activity {kind!r}/{outcome!r}")
    if not delivery_ids:
        return 0
    now = timezone.now()
    Activity.objects.bulk_create(
        [
            Activity(
                delivery_id=pk, kind=kind, outcome=outcome, note=note[:2000], automated=True, created_at=now
            )
            for pk in sorted(set(delivery_ids))
        ]
    )
    if replied:
        Delivery.objects.filter(pk__in=delivery_ids).update(replied_at=now, touched_at=now)
    return len(set(delivery_ids))


def followup_create(*, delivery: Delivery, user, due_at: datetime, note: str = "") -> FollowUp:
    return FollowUp.objects.create(delivery=delivery, user=user, due_at=due_at, note=note.strip()[:200])


def followup_complete(*, followup: FollowUp) -> bool:
    """Mark a follow-up done; True the first time, False when it already was."""
    now = timezone.now()
    done = FollowUp.objects.filter(pk=followup.pk, done_at__isnull=True).update(done_at=now)
    if done:
        followup.done_at = now
    return bool(done)


def _followup_recipient(followup: FollowUp, members: dict[int, Membership]) -> Membership | None:
    """Who is reminded of a follow-up: whoever holds its lead now. The member who set it while they still may
    work the lead (an owner or manager, or the officer it is assigned to); else, when the lead was reassigned
    since, its new assignee; else nobody (an officer who lost an unassigned lead hears nothing about it)."""
    delivery = followup.delivery
    author = members.get(followup.user_id)
    if (
        author is not None
        and author.lender_id == delivery.lender_id
        and (author.sees_all_leads or delivery.assigned_to_id == followup.user_id)
    ):
        return author
    holder = members.get(delivery.assigned_to_id) if delivery.assigned_to_id else None
    if holder is not None and holder.lender_id == delivery.lender_id:
        return holder
    return None


def followups_remind_overdue(*, now: datetime | None = None, limit: int = 2000) -> int:
    """E-mail each member one list of the overdue follow-ups on the leads they hold, each follow-up once
    (reminded_at). A follow-up whose lead was reassigned reminds the lead's holder, not the officer who set it
    and lost the lead (_followup_recipient).

    Idempotent and safe to run concurrently: rows are taken with SKIP LOCKED and marked in the same
    transaction as the e-mail is sent, so a second run finds nothing to do. A failed send rolls back and
    the next run tries again. Returns the number of e-mails sent.
    """
    from django.conf import settings
    from django.core.mail import EmailMultiAlternatives
    from django.template.loader import render_to_string
    from django.urls import reverse

    now = now or timezone.now()
    site = settings.SITE_URL
    sent = 0
    with transaction.atomic():
        due = list(
            FollowUp.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(done_at__isnull=True, reminded_at__isnull=True, due_at__lte=now)
            .select_related("delivery__lead__consumer")
            .order_by("due_at", "id")[:limit]
        )
        # The active members who set them or hold their leads now, with their lender's time zone, to write
        # due times as the officer reads them.
        members = {
            m.user_id: m
            for m in Membership.objects.filter(
                user_id__in={f.user_id for f in due}
                | {f.delivery.assigned_to_id for f in due if f.delivery.assigned_to_id},
                is_active=True,
            ).select_related("user", "lender")
        }
        by_user: dict[int, list[FollowUp]] = defaultdict(list)
        for f in due:
            recipient = _followup_recipient(f, members)
            if recipient is not None:
                by_user[recipient.user_id].append(f)
        for user_id, items in by_user.items():
            user = members[user_id].user
            # A deactivated user hears nothing; every item is marked below so none is retried forever.
            if not user.is_active or not user.email:
                continue
            rows = [
                {"followup": f, "url": site + reverse("portal:delivery_detail", args=[f.delivery_id])}
                for f in items
            ]
            context = {"user": user, "rows": rows, "inbox_url": site + reverse("portal:inbox")}
            with timezone.override(ZoneInfo(members[user_id].lender.time_zone)):
                text = render_to_string("email/followups_overdue.txt", context)
                html = render_to_string("email/followups_overdue.html", context)
            message = EmailMultiAlternatives(
                subject=f"{len(items)} overdue follow-up{'s' if len(items) != 1 else ''} in your lead portal",
                body=text,
                to=[user.email],
            )
            message.attach_alternative(html, "text/html")
            message.send()
            sent += 1
        FollowUp.objects.filter(pk__in=[f.pk for f in due]).update(reminded_at=now)
    logger.info("overdue follow-ups: %d item(s), %d e-mail(s)", len(due), sent)
    return sent
