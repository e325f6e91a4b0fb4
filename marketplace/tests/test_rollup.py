"""Analytics' daily rollup stays equal to the live figures of the deliveries it sums, through every change the
product makes: sales (one by one and in batches), pipeline moves, first contacts, reassignment (portal and
admin), returns, and a lender's time zone changed in admin.

Two checks, each able to fail on its own: the stored rows equal the rows computed afresh from the deliveries
(the services forgot nothing), and the report read from them equals plain aggregates over the deliveries in
the ORM, written here without the rollup's code (the rollup computes the right thing).
"""

import random
import statistics
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import ValidationError
from django.db.models import Count, Q, Sum
from django.urls import reverse
from django.utils import timezone

from lenders.models import AssignmentRule, Membership
from marketplace import rollup
from marketplace.analytics import analytics_report
from marketplace.models import CONTACT_BIN_EDGES, Delivery, DeliveryRollup
from marketplace.returns import return_approve, return_deny, return_request_create
from marketplace.rollup import rollup_computed, rollup_rebuild, rollup_stored
from marketplace.services import (
    activity_log,
    delivery_reassign,
    delivery_set_status,
    lead_distribute,
    leads_distribute,
)
from marketplace.tests.factories import MemberFactory, QualifiedLeadFactory, make_subscription

pytestmark = pytest.mark.django_db

CA = {"zip_code": "90012", "city": "Los Angeles", "state": "CA", "county": "Los Angeles County"}
# A Monday, 03:00 UTC: 22:00 the evening before in Chicago (CDT), so sales either side of local midnight
# land on different local days than their UTC dates.
START = datetime(2026, 6, 1, 3, 0, tzinfo=UTC)


class Clock:
    """The time the services read (timezone.now), moved by the test."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock(monkeypatch):
    c = Clock(START)
    monkeypatch.setattr(timezone, "now", c)
    return c


@pytest.fixture
def desk(buying_lender, owner, officer, rival_lender):
    """The buying lender with two officers taking TX purchase leads in turn (others stay unassigned), two
    subscriptions, and a rival bidding on the same TX leads."""
    colleague = MemberFactory(lender=buying_lender, role="officer", username="colleague").user
    for position, user in enumerate((officer, colleague)):
        AssignmentRule.objects.create(
            lender=buying_lender,
            membership=user.membership,
            position=position,
            states=["TX"],
            purposes=["purchase"],
        )
    make_subscription(buying_lender, name="Texas", states=["TX"], price="30.00")
    make_subscription(buying_lender, name="California", states=["CA"], price="45.00")
    make_subscription(rival_lender, name="Rival Texas", states=["TX"], price="25.00")
    return {"officer": officer, "colleague": colleague}


def sell_at(clock: Clock, when: datetime, n: int = 1, **lead) -> list[Delivery]:
    clock.now = when
    ids = [QualifiedLeadFactory(**lead).pk for _ in range(n)]
    sold = lead_distribute(lead_id=ids[0]) if n == 1 else leads_distribute(lead_ids=ids)
    return sold if n == 1 else [d for ds in sold.values() for d in ds]


def assert_rollup_exact(*lenders) -> None:
    for lender in lenders:
        assert rollup_stored(lender_id=lender.pk) == rollup_computed(lender_id=lender.pk), lender


def live(membership: Membership, start: date, end: date) -> dict:
    """The report's figures straight from the deliveries (the pre-rollup way), for comparison."""
    zone = ZoneInfo(membership.lender.time_zone)
    lo = datetime.combine(start, datetime.min.time(), tzinfo=zone)
    hi = datetime.combine(end + timedelta(days=1), datetime.min.time(), tzinfo=zone)
    qs = Delivery.objects.filter(lender=membership.lender, created_at__gte=lo, created_at__lt=hi)
    if not membership.sees_all_leads:
        qs = qs.filter(assigned_to=membership.user)
    figures = {
        "leads": Count("pk"),
        "spend": Sum("price"),
        "contacted": Count("pk", filter=Q(first_contact_at__isnull=False)),
        "applications": Count("pk", filter=Q(status__in=["application", "approved", "funded"])),
        "funded": Count("pk", filter=Q(status="funded")),
        "funded_amount": Sum("funded_amount", filter=Q(status="funded")),
    }

    def clean(row: dict) -> tuple:
        return tuple(row[k] or 0 for k in figures)

    out = {"total": clean(qs.aggregate(**figures))}
    for kind, column in (
        ("purpose", "lead__purpose"),
        ("subscription", "subscription_id"),
        ("state", "lead__state"),
        ("officer", "assigned_to_id"),
    ):
        if kind == "officer" and not membership.sees_all_leads:
            continue
        out[kind] = {
            "" if r[column] is None else str(r[column]): clean(r)
            for r in qs.values(column).annotate(**figures).order_by()
        }
    seconds = [
        (c - d).total_seconds()
        for d, c in qs.filter(first_contact_at__isnull=False).values_list("created_at", "first_contact_at")
    ]
    out["contact_seconds"] = sorted(seconds)
    out["buckets"] = {
        "lt5": sum(1 for s in seconds if s < 300),
        "5to30": sum(1 for s in seconds if 300 <= s < 1800),
        "30to120": sum(1 for s in seconds if 1800 <= s < 7200),
        "gt120": sum(1 for s in seconds if s >= 7200),
        "never": out["total"][0] - len(seconds),
    }
    return out


def figures(row) -> tuple:
    return (row.leads, row.spend, row.contacted, row.applications, row.funded, row.funded_amount)


def bin_bounds(seconds: float) -> tuple[float, float]:
    i = rollup.contact_bin(seconds)
    lo = CONTACT_BIN_EDGES[i - 1] if i else 0
    return lo, CONTACT_BIN_EDGES[i] if i < len(CONTACT_BIN_EDGES) else float("inf")


def assert_report_is_live(membership: Membership, start: date, end: date) -> None:
    with timezone.override(ZoneInfo(membership.lender.time_zone)):
        report = analytics_report(
            membership=membership, start=start, end=end, revenue_per_funded=Decimal("3000")
        )
    want = live(membership, start, end)
    assert figures(report.total) == want["total"]
    for kind in ("purpose", "subscription", "state", "officer"):
        if kind not in want:
            assert kind not in report.breakdowns
            continue
        assert {r.key: figures(r) for r in report.breakdowns[kind]} == want[kind], kind
    assert {b.key: b.leads for b in report.buckets} == want["buckets"]
    seconds = want["contact_seconds"]
    if not seconds:
        assert report.total.median_contact_seconds is None
        return
    # The estimate lies within the bins of the two middle contacts (one, for an odd count).
    exact = statistics.median(seconds)
    low = bin_bounds(seconds[(len(seconds) - 1) // 2])[0]
    high = bin_bounds(seconds[len(seconds) // 2])[1]
    assert low <= report.total.median_contact_seconds <= high, (exact, report.total.median_contact_seconds)


def test_the_rollup_follows_sales_moves_contacts_reassignments_and_returns(
    clock, desk, buying_lender, rival_lender, owner, officer, rival_owner, staff
):
    rng = random.Random(14)
    people = [desk["officer"], desk["colleague"]]
    deliveries: list[Delivery] = []
    # Ten days of sales, a few an evening: either side of Chicago's midnight, TX (assigned in turn, and
    # shared with the rival) and CA (unassigned), one by one and in batches.
    for day in range(10):
        for minutes in (0, 90, 150):  # 22:00, 23:30 and 00:30 in Chicago
            when = START + timedelta(days=day, minutes=minutes)
            deliveries += sell_at(clock, when, n=rng.choice([1, 2]))
            if rng.random() < 0.5:
                deliveries += sell_at(clock, when + timedelta(seconds=1), **CA)
    mine = [d for d in deliveries if d.lender_id == buying_lender.pk]
    assert len({d.assigned_to_id for d in mine}) == 3  # two officers and unassigned
    assert_rollup_exact(buying_lender, rival_lender)

    # Work the leads, in time order, from soon after each sale: contacts after 1 min to 3 days, the
    # pipeline's moves, reassignments, returns asked and decided.
    events = []
    for d in deliveries:
        delay = timedelta(seconds=rng.choice([30, 200, 400, 1000, 2500, 5000, 9000, 30000, 90000, 260000]))
        events.append((d.created_at + delay, rng.random(), d))
    for at, _, d in sorted(events, key=lambda e: (e[0], e[1])):
        clock.now = at
        d = Delivery.objects.get(pk=d.pk)
        roll = rng.random()
        if roll < 0.15:
            continue  # never contacted
        if roll < 0.35:
            activity_log(delivery=d, user=owner, kind="call", outcome="reached")
        else:
            path = rng.choice([["contacted"], ["contacted", "application"], ["contacted", "lost"]])
            path += rng.choice([[], ["approved", "funded"]]) if path[-1] == "application" else []
            for status in path:
                clock.now += timedelta(minutes=1)
                delivery_set_status(
                    delivery=d,
                    status=status,
                    funded_amount=Decimal(rng.choice(["250000", "310500.50"]))
                    if status == "funded"
                    else None,
                    lost_reason="Went elsewhere" if status == "lost" else "",
                )
        if d.lender_id == buying_lender.pk and rng.random() < 0.3:
            to = rng.choice([*people, None])
            delivery_reassign(delivery=d, membership=to.membership if to else None)
        if d.lender_id == buying_lender.pk and rng.random() < 0.15:
            try:
                rr = return_request_create(delivery=d, user=owner, reason="bad_contact")
            except ValidationError:
                continue  # over the month's cap: refused, nothing changes
            if rr.status != "requested":
                continue  # decided at once by the evidence we hold (a reached call denies it)
            (return_approve if rng.random() < 0.5 else return_deny)(return_request_id=rr.pk, user=staff)
    # A note is not a contact, and a second contact changes nothing.
    d = Delivery.objects.filter(lender=buying_lender, first_contact_at__isnull=False).first()
    activity_log(delivery=d, user=owner, kind="note", note="Asked for a call on Friday")
    activity_log(delivery=d, user=owner, kind="text", outcome="sent")

    assert_rollup_exact(buying_lender, rival_lender)
    first, last = date(2026, 5, 30), date(2026, 6, 12)
    for member in (owner.membership, officer.membership, desk["colleague"].membership):
        member.refresh_from_db()
        assert_report_is_live(member, first, last)
        # Single local days (the rollup's grain), including the first evening's, before UTC's date turned.
        for day in (date(2026, 5, 31), date(2026, 6, 1), date(2026, 6, 6)):
            assert_report_is_live(member, day, day)
    assert_report_is_live(rival_owner.membership, first, last)


def test_a_time_zone_changed_in_admin_moves_every_sale_to_its_new_local_day(
    clock, desk, buying_lender, owner, client, staff
):
    late = START + timedelta(minutes=90)  # 23:30 on May 31 in Chicago, 08:30 on June 1 in Tokyo
    sell_at(clock, late)
    with timezone.override(ZoneInfo("America/Chicago")):
        before = analytics_report(
            membership=owner.membership, start=date(2026, 5, 31), end=date(2026, 5, 31), revenue_per_funded=1
        )
    assert before.total.leads == 1
    client.force_login(staff)
    url = reverse("admin:lenders_lender_change", args=[buying_lender.pk])
    response = client.post(
        url,
        {
            "name": buying_lender.name,
            "nmls_id": buying_lender.nmls_id,
            "time_zone": "Asia/Tokyo",
            "licenses-TOTAL_FORMS": "0",
            "licenses-INITIAL_FORMS": "0",
            "memberships-TOTAL_FORMS": "0",
            "memberships-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    buying_lender.refresh_from_db()
    assert buying_lender.time_zone == "Asia/Tokyo"
    assert_rollup_exact(buying_lender)
    owner.membership.refresh_from_db()
    assert_report_is_live(owner.membership, date(2026, 6, 1), date(2026, 6, 1))
    assert_report_is_live(owner.membership, date(2026, 5, 31), date(2026, 5, 31))
    assert set(DeliveryRollup.objects.filter(lender=buying_lender).values_list("day", flat=True)) == {
        date(2026, 6, 1)
    }


def test_a_rebuild_repairs_what_went_around_the_services_and_says_how_much(clock, desk, buying_lender):
    [d, *_] = sell_at(clock, START)
    assert rollup_rebuild(lender_id=buying_lender.pk) == 0  # nothing to repair
    Delivery.objects.filter(pk=d.pk).update(status="funded", funded_amount=Decimal("100000"))
    assert rollup_stored(lender_id=buying_lender.pk) != rollup_computed(lender_id=buying_lender.pk)
    assert rollup_rebuild(lender_id=buying_lender.pk) > 0
    assert_rollup_exact(buying_lender)


def test_a_drifted_row_never_fails_a_status_move(clock, desk, buying_lender):
    """The rollup is a read model: a row wrong by a delivery (an update around the services) must not stop
    a lender working the lead; the next rebuild repairs it."""
    [d, *_] = sell_at(clock, START)
    DeliveryRollup.objects.filter(lender=buying_lender).delete()
    delivery_set_status(delivery=d, status="contacted")
    assert DeliveryRollup.objects.filter(lender=buying_lender, leads__lt=0).exists()
    rollup_rebuild(lender_id=buying_lender.pk)
    assert_rollup_exact(buying_lender)


@pytest.mark.parametrize(
    ("counts", "expected"),
    [
        ([], None),
        ([0] * 21, None),
        ([1] + [0] * 20, 30.0),  # one contact under a minute: the bin's middle
        ([0, 0, 0, 0, 0, 0, 2] + [0] * 14, 750.0),  # two in 10–15 min: the middle of the bin
        ([0] * 20 + [3], 604800.0),  # a week or more: the bin's lower edge
    ],
)
def test_median_from_bins(counts, expected):
    assert rollup.median_from_bins(counts) == expected
