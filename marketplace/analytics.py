"""Reads that tell a lender what its leads earn, and what a subscription would buy: SQL aggregates only.

Every function here runs a fixed number of queries whatever the volume of leads and deliveries: the counts
are GROUP BY aggregates computed by the database, never a Python loop over rows. What the leads earn is read
from the daily rollup (marketplace.rollup), whose size grows with days and groups, not with deliveries.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, cast

from django.db.models import (
    Case,
    Count,
    DecimalField,
    Exists,
    F,
    IntegerField,
    Min,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Floor
from django.utils import timezone

from leads import geo
from leads.choices import LeadStatus, LoanPurpose
from leads.models import Lead
from lenders.models import LenderLicense, Membership, Subscription

from .matching import SCHEDULE, leads_meeting
from .models import CONTACT_BIN_FIELDS, Delivery, DeliveryRollup, MarketSettings
from .rollup import LENDER_WIDE, METRICS, median_from_bins

ZERO = Decimal("0.00")
CENT = Decimal("0.01")
FORECAST_DAYS = 30

# --- forecast --------------------------------------------------------------------------------------------


# Prices are compared in steps this wide, never exactly: a bid of $52.99 and one of $53.00 get the same
# answer against a rival's $53.00, so probing the forecast cent by cent cannot read a competitor's bid.
PRICE_STEP = Decimal("5.00")
# Below this many matched leads the forecast does not estimate wins at all: with one or two leads any answer
# would say what one rival paid for them.
MIN_LEADS_FOR_WIN_ESTIMATE = 10
SHARE_STEP = 10  # the win share is shown as a range of whole tens of percent


@dataclass(frozen=True)
class Forecast:
    """What the filters matched (exact: it reveals nobody's bid) and, as a range, what the price would win.

    won_low: leads the bid would have won for sure (nobody else bought them, a free seat, or a rival's price
    in a lower price step); won_high adds those where a rival paid within the bid's own price step, which
    could go either way. Pages show only `share` (a range of tens of percent) and `per_week`."""

    matched: int
    won_low: int | None = None  # None when there is no valid price to judge
    won_high: int | None = None
    days: int = FORECAST_DAYS

    @property
    def judged(self) -> bool:
        """A price was judged and there are enough leads for an estimate that names no one's bid."""
        return self.won_low is not None and self.matched >= MIN_LEADS_FOR_WIN_ESTIMATE

    @property
    def share(self) -> tuple[int, int] | None:
        """The share of matched leads the bid would have won, widened to whole tens: (40, 60) is 40–60%."""
        if not self.judged or self.won_low is None or self.won_high is None:
            return None
        unit = self.matched * SHARE_STEP
        low = self.won_low * 100 // unit * SHARE_STEP  # rounded down to a ten
        high = -(-self.won_high * 100 // unit) * SHARE_STEP  # rounded up to a ten
        if high == low:  # an exact ten: still a range, a step either side
            low, high = low - SHARE_STEP, high + SHARE_STEP
        return max(low, 0), min(high, 100)

    @property
    def per_week(self) -> str:
        share = self.share
        if share is None:
            return ""
        low, high = (self.matched * pct * 7 / 100 / self.days for pct in share)
        if high < 1:
            return "less than one"
        return f"{low:.0f}–{high:.0f}" if f"{low:.0f}" != f"{high:.0f}" else f"about {high:.0f}"


def _money_sub(qs, expr) -> Subquery:
    return Subquery(qs.values("lead").annotate(v=expr).values("v")[:1], output_field=DecimalField())


def _step(value) -> Floor:
    return Floor(value / Value(PRICE_STEP), output_field=DecimalField())


def leads_forecast_base(*, now: datetime) -> QuerySet[Lead]:
    """The leads a forecast counts from: qualified in the last FORECAST_DAYS days, whatever became of them."""
    return Lead.objects.filter(
        status__in=[LeadStatus.QUALIFIED, LeadStatus.SOLD, LeadStatus.UNSOLD],
        qualified_at__gte=now - timedelta(days=FORECAST_DAYS),
        qualified_at__lte=now,
    )


def subscription_forecast(
    *,
    lender_id: int,
    purposes: list[str],
    states: list[str],
    min_credit_score: int,
    zips: list[str] | None = None,
    radius_center_zip: str = "",
    radius_miles: int | None = None,
    min_loan_amount: Decimal | None = None,
    max_loan_amount: Decimal | None = None,
    max_ltv: Decimal | None = None,
    max_dti: Decimal | None = None,
    schedule_days: str = "0123456",
    schedule_start: time | None = None,
    schedule_end: time | None = None,
    exclusive: bool = False,
    price: Decimal | None = None,
    now: datetime | None = None,
) -> Forecast:
    """How many qualified leads of the last 30 days these filters match, and about how many this price
    would win. The caller validates the terms first (lenders.services.subscription_validate: licensed states,
    radius, price between the floor and the maximum); this still keeps to the lender's licensed states.

    Matched: leads qualified in the last 30 days (status qualified, sold or unsold) that meet every filter,
    including the delivery schedule (the lead's qualification time, in the current time zone, falls on a
    scheduled day and inside the hour window).

    Won: judged against the other lenders' Delivery rows for that lead (this lender's own purchases are left
    out, so a lead it bought itself counts as open), with prices compared in PRICE_STEP steps. With N = the
    market's most buyers of a shared lead:
    - no competing delivery (unsold, still qualified, or bought only by this lender): won;
    - a shared bid against a shared sale with fewer than N buyers: won (a free seat);
    - otherwise the bid is set against what beat it: an exclusive sale's price, a shared sale's revenue (for
      an exclusive bid: the marketplace takes the sale that earns more), or the lowest shared buyer's price
      (for a shared bid). In a lower price step than the bid: won; in the same step: either way (counted in
      won_high only); higher: lost.
    Caps, budget and balance are not applied: the forecast answers "what do these terms reach", not "what
    can the account afford". Two queries (the market settings row and the count).
    """
    now = now or timezone.now()
    zip_filter = set(zips or [])
    if radius_center_zip and radius_miles:
        zip_filter |= set(geo.zips_within(radius_center_zip, radius_miles))
    # The same terms the sale matches on (marketplace.matching), as an ORM filter over past leads; the
    # lender's licences are a subquery of the count (no query of their own).
    terms = {
        "states": sorted({s.upper() for s in states}),
        "licensed_states": LenderLicense.objects.filter(lender_id=lender_id).values("state"),
        "zips": sorted(zip_filter),
        "purposes": purposes,
        "min_credit_score": min_credit_score,
        "min_loan_amount": min_loan_amount,
        "max_loan_amount": max_loan_amount,
        "max_ltv": max_ltv,
        "max_dti": max_dti,
    }
    schedule = {
        "schedule_days": schedule_days,
        "schedule_start": schedule_start,
        "schedule_end": schedule_end,
    }
    qs = leads_forecast_base(now=now).filter(leads_meeting(terms), SCHEDULE.q(schedule))

    if price is None or price <= 0:
        return Forecast(matched=qs.count())

    shared_max = MarketSettings.load().shared_max_buyers
    rivals = Delivery.objects.filter(lead=OuterRef("pk")).exclude(lender_id=lender_id)
    qs = qs.annotate(
        rival_revenue=_money_sub(rivals, Sum("price")),
        rival_min=_money_sub(rivals, Min("price")),
        rival_buyers=Subquery(
            rivals.values("lead").annotate(n=Count("pk")).values("n")[:1], output_field=IntegerField()
        ),
        rival_exclusive=Exists(rivals.filter(exclusive=True)),
    )
    # The price that stands between the bid and the lead, in steps.
    if exclusive:
        qs = qs.annotate(against=_step(F("rival_revenue")))
        free = Q(rival_buyers__isnull=True)
    else:
        qs = qs.annotate(
            against=Case(
                When(rival_exclusive=True, then=_step(F("rival_revenue"))),
                default=_step(F("rival_min")),
                output_field=DecimalField(),
            )
        )
        free = Q(rival_buyers__isnull=True) | Q(rival_exclusive=False, rival_buyers__lt=shared_max)
    bid = int(price // PRICE_STEP)
    totals = qs.aggregate(
        matched=Count("pk"),
        won_low=Count("pk", filter=free | Q(against__lt=bid)),
        won_high=Count("pk", filter=free | Q(against__lte=bid)),
    )
    return Forecast(matched=totals["matched"], won_low=totals["won_low"], won_high=totals["won_high"])


# --- what the leads earn ---------------------------------------------------------------------------------

# Response-time buckets: (key, label, upper bound). "never" holds leads with no contact yet.
BUCKETS = [
    ("lt5", "Under 5 minutes", timedelta(minutes=5)),
    ("5to30", "5–30 minutes", timedelta(minutes=30)),
    ("30to120", "30 minutes–2 hours", timedelta(hours=2)),
    ("gt120", "Over 2 hours", None),
    ("never", "Not contacted", None),
]

BREAKDOWNS = [
    ("purpose", "Loan purpose"),
    ("subscription", "Subscription"),
    ("state", "State"),
    ("officer", "Loan officer"),
]


def _pct(part: int | Decimal, whole: int | Decimal) -> Decimal | None:
    if not whole:
        return None
    return (Decimal(part) * 100 / Decimal(whole)).quantize(Decimal("0.1"), ROUND_HALF_UP)


def _div(a: Decimal | None, b: int | Decimal | None) -> Decimal | None:
    if a is None or not b:
        return None
    return (Decimal(a) / Decimal(b)).quantize(CENT, ROUND_HALF_UP)


def break_even_conversion(*, cost_per_lead: Decimal | None, revenue_per_funded: Decimal) -> Decimal | None:
    """The share of leads that must fund to pay for them: cost per lead / revenue per funded loan, as a %.
    At $30 a lead and $3,000 a loan, 1% of leads must fund."""
    if cost_per_lead is None or not revenue_per_funded:
        return None
    return (cost_per_lead * 100 / revenue_per_funded).quantize(CENT, ROUND_HALF_UP)


@dataclass
class Row:
    key: str
    label: str
    leads: int = 0
    spend: Decimal = ZERO
    contacted: int = 0
    applications: int = 0
    funded: int = 0
    funded_amount: Decimal = ZERO
    median_contact_seconds: float | None = None
    revenue_per_funded: Decimal = Decimal("3000.00")

    @property
    def cost_per_lead(self) -> Decimal | None:
        return _div(self.spend, self.leads)

    @property
    def contact_rate(self) -> Decimal | None:
        return _pct(self.contacted, self.leads)

    @property
    def application_rate(self) -> Decimal | None:
        return _pct(self.applications, self.leads)

    @property
    def funded_rate(self) -> Decimal | None:
        return _pct(self.funded, self.leads)

    @property
    def cost_per_funded(self) -> Decimal | None:
        return _div(self.spend, self.funded)

    @property
    def average_funded_amount(self) -> Decimal | None:
        return _div(self.funded_amount, self.funded)

    @property
    def revenue(self) -> Decimal:
        return (self.revenue_per_funded * self.funded).quantize(CENT)

    @property
    def roi(self) -> Decimal | None:
        """Return on the lead spend: (revenue − spend) / spend, as a %."""
        return _pct(self.revenue - self.spend, self.spend) if self.spend else None

    @property
    def break_even(self) -> Decimal | None:
        return break_even_conversion(
            cost_per_lead=self.cost_per_lead, revenue_per_funded=self.revenue_per_funded
        )

    @property
    def median_contact(self) -> str:
        return humanize_seconds(self.median_contact_seconds)


@dataclass
class Report:
    start: date
    end: date
    revenue_per_funded: Decimal
    total: Row
    breakdowns: dict[str, list[Row]] = field(default_factory=dict)
    buckets: list[Row] = field(default_factory=list)


def humanize_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min"
    if seconds < 86400:
        return f"{seconds // 3600} h {seconds % 3600 // 60} min"
    return f"{seconds // 86400} d {seconds % 86400 // 3600} h"


def _label_maps(membership: Membership) -> dict[str, dict[str, str]]:
    """Names for the subscription and officer groups: the lender's subscriptions and, for owners and
    managers, its members (a query each, however many groups the range has)."""
    maps = {
        "purpose": dict(LoanPurpose.choices),
        "subscription": {
            str(pk): name
            for pk, name in Subscription.objects.filter(lender_id=membership.lender_id).values_list(
                "pk", "name"
            )
        },
    }
    if membership.sees_all_leads:
        officers = {"": "Unassigned"}
        for pk, first, last, username in Membership.objects.filter(
            lender_id=membership.lender_id
        ).values_list("user_id", "user__first_name", "user__last_name", "user__username"):
            officers[str(pk)] = f"{first} {last}".strip() or username
        maps["officer"] = officers
    return maps


def _row(key: str, label: str, values: dict[str, Any] | None, revenue_per_funded: Decimal) -> Row:
    v = values or {}
    return Row(
        key=key,
        label=label,
        leads=v.get("leads", 0),
        spend=Decimal(v.get("spend") or 0).quantize(CENT),
        contacted=v.get("contacted", 0),
        applications=v.get("applications", 0),
        funded=v.get("funded", 0),
        funded_amount=Decimal(v.get("funded_amount") or 0).quantize(CENT),
        median_contact_seconds=median_from_bins([v.get(b) or 0 for b in CONTACT_BIN_FIELDS]),
        revenue_per_funded=revenue_per_funded,
    )


def analytics_team_total(*, lender_id: int, start: date, end: date, revenue_per_funded: Decimal) -> Row:
    """The whole lender's total over the same days, for an officer to measure their own against (their
    page shows its speed and conversion, not its money). One query on the rollup's lender-wide rows."""
    sums = DeliveryRollup.objects.filter(
        lender_id=lender_id, scope=LENDER_WIDE, kind="bucket", day__gte=start, day__lte=end
    ).aggregate(**{m: Sum(m) for m in METRICS})
    # No rows in the range: every sum is None, and the row must read as zeros.
    return _row("", "Your team", {m: v or 0 for m, v in sums.items()}, revenue_per_funded)


def analytics_report(
    *, membership: Membership, start: date, end: date, revenue_per_funded: Decimal
) -> Report:
    """Leads bought from `start` to `end` (inclusive: the lender's local days of the sales), their cost and
    what became of them, overall and by purpose, subscription, state, officer (owners and managers only) and
    response time. Officers get their own leads only (their scope of the rollup).

    Read from the daily rollup (marketplace.rollup), never from the deliveries: a year is a few thousand
    rows however many leads it bought. Medians of the time to first contact are estimated from its
    response-time bins (exact to the bin, evenly spread inside it), and the page says so.

    Queries: the rollup's groups, the lender's subscriptions' names and, for owners and managers, its
    members' names: 3 for an owner, 2 for an officer, at any volume.
    """
    scope = LENDER_WIDE if membership.sees_all_leads else membership.user_id
    kinds = [k for k, _ in BREAKDOWNS if k != "officer" or membership.sees_all_leads]
    groups = (
        DeliveryRollup.objects.filter(
            lender_id=membership.lender_id, scope=scope, day__gte=start, day__lte=end
        )
        .values("kind", "key")
        .annotate(**{m: Sum(m) for m in METRICS})
        .order_by()
    )
    by_kind: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    # The sums are named by METRICS, which the stubs cannot follow from **kwargs.
    for g in cast(Iterable[dict[str, Any]], groups):
        if g["leads"]:  # a group whose deliveries all moved away (reassigned) sums to nothing
            by_kind[g["kind"]][g["key"]] = g
    labels = _label_maps(membership)

    def row(key: str, label: str, values: dict[str, Any] | None) -> Row:
        return _row(key, label, values, revenue_per_funded)

    # Every delivery is in exactly one bucket: the buckets sum to the total.
    buckets = by_kind.get("bucket", {})
    total = {m: sum((g[m] for g in buckets.values()), start=0) for m in METRICS}
    report = Report(
        start=start, end=end, revenue_per_funded=revenue_per_funded, total=row("", "All leads", total)
    )
    for kind in kinds:
        names = labels.get(kind)  # states are their own names
        report.breakdowns[kind] = sorted(
            # A key without a name: an officer who has since left the lender (their user deleted).
            (
                row(key, key if names is None else names.get(key, f"#{key}"), g)
                for key, g in by_kind.get(kind, {}).items()
            ),
            key=lambda r: (-r.leads, r.label),
        )
    report.buckets = [row(key, label, buckets.get(key)) for key, label, _ in BUCKETS]
    return report
