"""Speed is rewarded: each lender's median time to first contact over the last 30 days (refreshed by beat
from the daily rollup), and the allocation's ordering that lets the faster responder win among close bids.

Kept apart from the matching SQL: the sale reads the figures of its buyers once per batch (one query on this
narrow table) and reorders the bids it has already found eligible, so filters added to matching are untouched.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol, TypeVar

from django.db.models import Sum
from django.utils import timezone

from .models import CONTACT_BIN_FIELDS, DeliveryRollup, LenderSpeed
from .rollup import LENDER_WIDE, median_from_bins

WINDOW_DAYS = 30
# Any one breakdown of the rollup sums to the lender's total (DeliveryRollup); buckets are the fewest rows.
_KIND = "bucket"


def lender_speeds_refresh(*, now: datetime | None = None) -> int:
    """Beat: recompute every lender's median time to first contact over the last 30 days (deliveries sold in
    that window and contacted, from the rollup's response-time bins: one aggregate query) and their rank,
    the fastest first; lenders without a contact in the window keep a row with no median and no rank.
    Returns the number of lenders ranked. Idempotent: a second run writes the same figures."""
    now = now or timezone.now()
    since = (now - timedelta(days=WINDOW_DAYS)).date()
    sums = (
        DeliveryRollup.objects.filter(scope=LENDER_WIDE, kind=_KIND, day__gte=since)
        .values("lender_id")
        .annotate(**{f: Sum(f) for f in CONTACT_BIN_FIELDS})
        .order_by("lender_id")
    )
    figures: list[tuple[int, float | None, int]] = []
    for row in sums:
        values: dict[str, Any] = dict(row)
        counts = [values[f] or 0 for f in CONTACT_BIN_FIELDS]
        figures.append((row["lender_id"], median_from_bins(counts), sum(counts)))
    ranked = sorted((f for f in figures if f[1] is not None), key=lambda f: (f[1], f[0]))
    ranks = {lender_id: i + 1 for i, (lender_id, _, _) in enumerate(ranked)}
    rows = [
        LenderSpeed(
            lender_id=lender_id,
            median_seconds=median,
            contacts=contacts,
            rank=ranks.get(lender_id),
            ranked=len(ranked),
        )
        for lender_id, median, contacts in figures
    ]
    LenderSpeed.objects.bulk_create(
        rows,
        update_conflicts=True,
        unique_fields=["lender"],
        update_fields=["median_seconds", "contacts", "rank", "ranked"],
    )
    # Lenders whose window emptied since: no figure rather than a stale one.
    LenderSpeed.objects.exclude(lender_id__in=[f[0] for f in figures]).update(
        median_seconds=None, contacts=0, rank=None, ranked=len(ranked)
    )
    return len(ranked)


def lender_speeds_for(lender_ids: set[int]) -> dict[int, float]:
    """The buyers' medians in seconds, by lender id (those with none are left out). One query."""
    if not lender_ids:
        return {}
    rows = LenderSpeed.objects.filter(lender_id__in=lender_ids, median_seconds__isnull=False)
    return {
        lender_id: median for lender_id, median in rows.values_list("lender_id", "median_seconds") if median
    }


def lender_speed_of(*, lender_id: int) -> LenderSpeed | None:
    """A lender's own figure for its analytics page."""
    return LenderSpeed.objects.filter(lender_id=lender_id).first()


class Bid(Protocol):
    """What the ordering reads of a bid (a Subscription)."""

    lender_id: int
    exclusive: bool
    price: Decimal


B = TypeVar("B", bound=Bid)


def band_floor(price: Decimal, margin_percent: Decimal) -> Decimal:
    """The lowest bid still within the margin of `price`."""
    return price * (Decimal(100) - margin_percent) / Decimal(100)


def by_speed(bids: Sequence[B], *, medians: dict[int, float], margin_percent: Decimal) -> list[B]:
    """The bids reordered so that, among bids within `margin_percent` of each other, the faster responder
    comes first. `bids` are in the price order (best bid first, equal bids least recently served first);
    exclusive and shared bids are banded separately, as they compete separately. A band starts at its best
    bid and holds every bid within the margin of it; inside a band the lenders with a median go first,
    fastest first, and the price order breaks ties (so equal speed falls back to "served least recently").
    """
    if margin_percent <= 0 or not medians:
        return list(bids)
    keyed: list[tuple[tuple[int, int, int, float, int], B]] = []
    for exclusive in (True, False):
        band, floor = -1, None
        for position, bid in enumerate(bids):
            if bid.exclusive != exclusive:
                continue
            if floor is None or bid.price < floor:
                band, floor = band + 1, band_floor(bid.price, margin_percent)
            median = medians.get(bid.lender_id)
            keyed.append(((int(exclusive), band, median is None, median or 0.0, position), bid))
    # The two kinds keep their relative positions in the list: only the order within each kind matters.
    result = list(bids)
    for exclusive in (True, False):
        slots = [i for i, b in enumerate(bids) if b.exclusive == exclusive]
        ordered = [b for k, b in sorted(keyed, key=lambda kb: kb[0]) if k[0] == int(exclusive)]
        for slot, bid in zip(slots, ordered, strict=True):
            result[slot] = bid
    return result
