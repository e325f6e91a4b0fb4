"""The daily rollup analytics reads (DeliveryRollup): what each delivery contributes, kept up to date by the
services that change a figure, and rebuilt from the deliveries when that cannot be done by difference.

Why maintained by the services rather than rebuilt by beat: a status move can change a figure of any past
day (a lead bought in March funds in June), so a periodic rebuild would either redo a lender's whole year
every few minutes or lag behind what the lender just did on the lead page. A change knows exactly what it
moved: the services read the delivery's facts before and after, under the delivery's row lock, and add the
difference to the rows they touch (one upsert of a few rows), in the change's own transaction. The rollup is
therefore exact at every commit, on PostgreSQL and SQLite alike.

Concurrency: writers add differences (`x = x + excluded.x`), so two changes of the same day never lose each
other; each upsert writes its rows in key order, so two of them never deadlock. A rebuild (time zone changed,
repair) takes a lender's advisory lock exclusively on PostgreSQL and every writer takes it shared before its
upsert, so a rebuild never counts a change that then adds its difference again, nor misses one.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.db import connection, transaction

from .models import CONTACT_BIN_EDGES, CONTACT_BIN_FIELDS, Delivery, DeliveryRollup

# Statuses at or past an application (the report's "to application").
APPLICATION_OR_LATER = frozenset(
    {Delivery.Status.APPLICATION, Delivery.Status.APPROVED, Delivery.Status.FUNDED}
)
# The response-time buckets by their upper bound in seconds (None: no bound), as the report lists them.
BUCKET_BOUNDS = (("lt5", 300), ("5to30", 1800), ("30to120", 7200), ("gt120", None))
NEVER = "never"
METRICS = ("leads", "spend", "contacted", "applications", "funded", "funded_amount", *CONTACT_BIN_FIELDS)
_BINS_AT = 6  # CONTACT_BIN_FIELDS start here in a vector
KINDS = ("purpose", "subscription", "state", "officer", "bucket")
LENDER_WIDE = 0  # DeliveryRollup.scope of the whole lender's rows
# Advisory lock namespace (pg_advisory_xact_lock(classid, objid)): the second key is the lender's id.
LOCK_CLASS = 7414


def zone_of(name: str) -> ZoneInfo:
    """The lender's zone, as the portal reads it: a mistyped one counts as UTC rather than failing a sale."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def contact_bin(seconds: float) -> int:
    """The CONTACT_BIN_FIELDS index a first contact this long after the delivery counts in."""
    return bisect.bisect_right(CONTACT_BIN_EDGES, max(seconds, 0))


def bucket_of(seconds: float | None) -> str:
    if seconds is None:
        return NEVER
    for key, bound in BUCKET_BOUNDS:
        if bound is None or seconds < bound:
            return key
    raise AssertionError("the last bucket has no bound")  # pragma: no cover


def median_from_bins(counts: Sequence[int]) -> float | None:
    """The median response time estimated from the bins: the middle contact's bin is exact, and inside it
    the contacts are taken as evenly spread (the last bin, a week or more, answers its lower edge)."""
    n = sum(counts)
    if n <= 0:
        return None
    middle = (n - 1) / 2  # the 0-based rank PERCENTILE_CONT(0.5) reads (between two for an even count)
    below = 0
    for i, c in enumerate(counts):
        if c > 0 and middle < below + c:
            lo = CONTACT_BIN_EDGES[i - 1] if i else 0
            if i == len(CONTACT_BIN_EDGES):
                return float(lo)
            hi = CONTACT_BIN_EDGES[i]
            return lo + (hi - lo) * (middle - below + 0.5) / c
        below += c
    return None  # pragma: no cover - counts went negative (a drifted row): no estimate


@dataclass(frozen=True)
class DeliveryFacts:
    """What a delivery contributes to the rollup: the fields of it, its lead and its lender that move a
    figure or choose a row."""

    lender_id: int
    zone: str
    created_at: datetime
    subscription_id: int
    purpose: str
    state: str
    assigned_to_id: int | None
    status: str
    price: Decimal
    first_contact_at: datetime | None
    funded_amount: Decimal | None


# The columns facts are read from, in DeliveryFacts' order (a values_list over Delivery: the purpose and
# state are the delivery's copies of its lead's, so the wide lead rows are never read).
FACT_FIELDS = (
    "lender_id",
    "lender__time_zone",
    "created_at",
    "subscription_id",
    "purpose",
    "state",
    "assigned_to_id",
    "status",
    "price",
    "first_contact_at",
    "funded_amount",
)


def facts_of(delivery: Delivery, *, zone: str) -> DeliveryFacts:
    """A delivery's facts from the object, in its lender's zone (`zone`, the lender's time_zone)."""
    return DeliveryFacts(
        lender_id=delivery.lender_id,
        zone=zone,
        created_at=delivery.created_at,
        subscription_id=delivery.subscription_id,
        purpose=delivery.purpose,
        state=delivery.state,
        assigned_to_id=delivery.assigned_to_id,
        status=delivery.status,
        price=delivery.price,
        first_contact_at=delivery.first_contact_at,
        funded_amount=delivery.funded_amount,
    )


def facts_read(delivery_id: int, *, lock: bool = False) -> DeliveryFacts:
    """A delivery's facts as stored (one query): with `lock`, taking the delivery's row lock (not its lead's
    or lender's); without, call it holding that lock already."""
    qs = Delivery.objects.all()
    if lock:
        qs = qs.select_for_update(of=("self",))
    return DeliveryFacts(*qs.values_list(*FACT_FIELDS).get(pk=delivery_id))


# A group of deliveries that land in the same rows with the same figures: (lender, day, officer, purpose,
# subscription, state, bin or -1, application or later, funded).
_Grain = tuple[int, date, int | None, str, int, str, int, bool, bool]


class _Sums:
    """Signed sums per grain: how many deliveries, their price and their funded amounts."""

    def __init__(self) -> None:
        self.by_grain: dict[_Grain, list[Any]] = defaultdict(lambda: [0, Decimal("0.00"), Decimal("0.00")])
        self._zones: dict[str, ZoneInfo] = {}

    def add(self, f: DeliveryFacts, sign: int) -> None:
        zone = self._zones.get(f.zone) or self._zones.setdefault(f.zone, zone_of(f.zone))
        contact = (
            contact_bin((f.first_contact_at - f.created_at).total_seconds())
            if f.first_contact_at is not None
            else -1
        )
        funded = f.status == Delivery.Status.FUNDED
        grain: _Grain = (
            f.lender_id,
            f.created_at.astimezone(zone).date(),
            f.assigned_to_id,
            f.purpose,
            f.subscription_id,
            f.state,
            contact,
            f.status in APPLICATION_OR_LATER,
            funded,
        )
        sums = self.by_grain[grain]
        sums[0] += sign
        sums[1] += sign * f.price
        if funded and f.funded_amount is not None:
            sums[2] += sign * f.funded_amount

    def rows(self) -> dict[tuple[int, int, date, str, str], list[Any]]:
        """(lender, scope, day, kind, key) -> a vector in METRICS order, zero vectors left out."""
        out: dict[tuple[int, int, date, str, str], list[Any]] = {}
        for grain, (n, spend, funded_amount) in self.by_grain.items():
            lender_id, day, officer, purpose, sub_id, state, contact, applied, funded = grain
            if n == 0 and spend == 0 and funded_amount == 0:
                continue
            vector: list[Any] = [0] * len(METRICS)
            vector[0], vector[1] = n, spend
            if contact >= 0:
                vector[2] = n
                vector[_BINS_AT + contact] = n
            vector[3] = n if applied else 0
            vector[4] = n if funded else 0
            vector[5] = funded_amount
            seconds = None if contact < 0 else (CONTACT_BIN_EDGES[contact - 1] if contact else 0)
            groups = [
                ("purpose", purpose),
                ("subscription", str(sub_id)),
                ("state", state),
                ("bucket", bucket_of(seconds)),
            ]
            scopes = [(LENDER_WIDE, [*groups, ("officer", "" if officer is None else str(officer))])]
            if officer is not None:
                scopes.append((officer, groups))
            for scope, keys in scopes:
                for kind, key in keys:
                    row = out.setdefault((lender_id, scope, day, kind, key), [0] * len(METRICS))
                    for i, v in enumerate(vector):
                        if v:
                            row[i] += v
        return {k: v for k, v in out.items() if any(v)}


def rollups_apply(*, before: Iterable[DeliveryFacts] = (), after: Iterable[DeliveryFacts] = ()) -> int:
    """Add to the rollup what the deliveries `after` contribute and take away what they did `before`, in the
    caller's transaction (the caller holds the deliveries' row locks, or just inserted them). Returns the
    rows written. One upsert (plus the shared lock on PostgreSQL), whatever the number of deliveries."""
    sums = _Sums()
    for f in before:
        sums.add(f, -1)
    for f in after:
        sums.add(f, 1)
    rows = sums.rows()
    if not rows:
        return 0
    lender_ids = sorted({k[0] for k in rows})
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_advisory_xact_lock_shared(%s, l) FROM unnest(%s::int[]) AS l ORDER BY l",
                [LOCK_CLASS, lender_ids],
            )
    _upsert(sorted(rows.items()), add=True)
    return len(rows)


_COLUMNS = ("lender_id", "scope", "day", "kind", "key", *METRICS)
_CHUNK = 400  # rows per statement: 26 parameters each, under SQLite's 32,766


def _upsert(items: Sequence[tuple[tuple[int, int, date, str, str], list[Any]]], *, add: bool) -> None:
    """Insert the rows, or on conflict add their figures to the stored ones (add) or replace them."""
    qn = connection.ops.quote_name
    table = qn(DeliveryRollup._meta.db_table)
    target = ", ".join(qn(c) for c in _COLUMNS[:5])
    if add:
        assign = ", ".join(f"{qn(m)} = {table}.{qn(m)} + excluded.{qn(m)}" for m in METRICS)
    else:
        assign = ", ".join(f"{qn(m)} = excluded.{qn(m)}" for m in METRICS)
    placeholders = "(" + ", ".join(["%s"] * len(_COLUMNS)) + ")"
    with connection.cursor() as cursor:
        for start in range(0, len(items), _CHUNK):
            chunk = items[start : start + _CHUNK]
            # Only quoted model metadata and placeholders are formatted in; the figures are parameters.
            sql = (
                f"INSERT INTO {table} ({', '.join(qn(c) for c in _COLUMNS)}) "  # noqa: S608  # nosec B608
                f"VALUES {', '.join([placeholders] * len(chunk))} "
                f"ON CONFLICT ({target}) DO UPDATE SET {assign}"
            )
            params: list[Any] = []
            for key, vector in chunk:
                params += [*key, *vector]
            cursor.execute(sql, params)


def rollup_computed(*, lender_id: int) -> dict[tuple[int, int, date, str, str], list[Any]]:
    """The lender's rollup rows as the deliveries stand now, computed from them (one streamed query)."""
    sums = _Sums()
    for values in (
        Delivery.objects.filter(lender_id=lender_id).values_list(*FACT_FIELDS).iterator(chunk_size=5000)
    ):
        sums.add(DeliveryFacts(*values), 1)
    return sums.rows()


def rollup_stored(*, lender_id: int) -> dict[tuple[int, int, date, str, str], list[Any]]:
    """The lender's rollup rows as stored, rows summing to nothing left out."""
    stored: dict[tuple[int, int, date, str, str], list[Any]] = {}
    for r in DeliveryRollup.objects.filter(lender_id=lender_id).values_list(*_COLUMNS):
        vector = list(r[5:])
        if any(vector):
            stored[(r[0], r[1], r[2], r[3], r[4])] = vector
    return stored


@transaction.atomic
def rollup_rebuild(*, lender_id: int) -> int:
    """Recompute a lender's rollup from its deliveries (its time zone changed, or a repair). Returns how
    many rows differed from what was stored. Waits for the lender's writers in flight (see above)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [LOCK_CLASS, lender_id])
    computed = rollup_computed(lender_id=lender_id)
    stored = rollup_stored(lender_id=lender_id)
    differing = sum(1 for k in computed.keys() | stored.keys() if computed.get(k) != stored.get(k))
    if differing:
        DeliveryRollup.objects.filter(lender_id=lender_id).delete()
        _upsert(sorted(computed.items()), add=False)
    return differing


def rollup_rebuild_for_zone(*, lender_id: int, **kwargs: object) -> None:
    """lenders.signals.lender_time_zone_changed: every sale's day moves to the new zone."""
    rollup_rebuild(lender_id=lender_id)
