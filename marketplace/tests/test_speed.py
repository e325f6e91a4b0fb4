"""Speed is rewarded (issue 16.6): among close bids the faster responder wins, and lenders see their rank."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from marketplace.models import Activity, Delivery, LenderSpeed, MarketSettings
from marketplace.services import activity_log, lead_distribute
from marketplace.speed import by_speed, lender_speeds_refresh

from .factories import LenderFactory, MemberFactory, QualifiedLeadFactory, make_subscription

pytestmark = pytest.mark.django_db


def _speeds(**medians: float) -> None:
    for lender_id, median in medians.items():
        LenderSpeed.objects.update_or_create(
            lender_id=int(lender_id), defaults={"median_seconds": median, "contacts": 5, "rank": 1}
        )


def _margin(percent: str) -> None:
    MarketSettings.objects.update_or_create(pk=1, defaults={"speed_margin_percent": Decimal(percent)})


def test_faster_lender_wins_a_bid_within_the_margin(buying_lender, rival_lender):
    _margin("5")
    make_subscription(buying_lender, exclusive=True, price="100.00")
    make_subscription(rival_lender, exclusive=True, price="96.00")
    _speeds(**{str(buying_lender.pk): 3600.0, str(rival_lender.pk): 120.0})
    lead = QualifiedLeadFactory()

    [delivery] = lead_distribute(lead_id=lead.pk)

    assert (delivery.lender_id, delivery.price) == (rival_lender.pk, Decimal("96.00"))
    lead.refresh_from_db()
    attempt = lead.distribution_trace[-1]
    assert attempt["note"].startswith("speed decided")
    rows = {r["lender"]: r for r in attempt["considered"]}
    assert rows[rival_lender.pk]["outcome"] == "won" and rows[rival_lender.pk]["speed"] == "won on speed"
    assert rows[rival_lender.pk]["median_contact_s"] == 120
    assert rows[buying_lender.pk]["reason"] == "outrun by a faster responder"


def test_a_bid_outside_the_margin_wins_on_price(buying_lender, rival_lender):
    _margin("5")
    make_subscription(buying_lender, exclusive=True, price="100.00")
    make_subscription(rival_lender, exclusive=True, price="94.00")
    _speeds(**{str(buying_lender.pk): 3600.0, str(rival_lender.pk): 60.0})
    lead = QualifiedLeadFactory()

    [delivery] = lead_distribute(lead_id=lead.pk)

    assert delivery.lender_id == buying_lender.pk
    lead.refresh_from_db()
    assert "note" not in lead.distribution_trace[-1]


def test_no_margin_is_price_only_and_a_lender_without_a_median_loses_the_tie(buying_lender, rival_lender):
    _margin("0")
    make_subscription(buying_lender, exclusive=True, price="100.00")
    make_subscription(rival_lender, exclusive=True, price="99.00")
    _speeds(**{str(rival_lender.pk): 30.0})
    assert lead_distribute(lead_id=QualifiedLeadFactory().pk)[0].lender_id == buying_lender.pk

    _margin("5")
    # Equal bids: a lender with a median beats one without, whoever was served longer ago.
    third = LenderFactory(states=["TX"], balance="500")
    make_subscription(third, exclusive=True, price="100.00")
    _speeds(**{str(third.pk): 900.0})
    assert lead_distribute(lead_id=QualifiedLeadFactory().pk)[0].lender_id == rival_lender.pk


def test_shared_buyers_are_chosen_by_speed_within_the_margin(buying_lender, rival_lender):
    _margin("10")
    MarketSettings.objects.filter(pk=1).update(shared_max_buyers=2)
    third = LenderFactory(states=["TX"], balance="500")
    make_subscription(buying_lender, price="50.00")
    make_subscription(rival_lender, price="48.00")
    make_subscription(third, price="46.00")
    _speeds(**{str(buying_lender.pk): 5000.0, str(rival_lender.pk): 4000.0, str(third.pk): 60.0})

    deliveries = lead_distribute(lead_id=QualifiedLeadFactory().pk)

    # All three are within 10% of 50: the two fastest buy it, each at its own bid.
    assert {(d.lender_id, d.price) for d in deliveries} == {
        (third.pk, Decimal("46.00")),
        (rival_lender.pk, Decimal("48.00")),
    }


def test_by_speed_bands_each_kind_apart():
    class B:
        def __init__(self, lender_id, exclusive, price):
            self.lender_id, self.exclusive, self.price = lender_id, exclusive, Decimal(price)

    bids = [B(1, True, "100"), B(2, False, "60"), B(3, True, "97"), B(4, False, "58"), B(5, True, "90")]
    ordered = by_speed(bids, medians={3: 10.0, 4: 10.0, 5: 1.0}, margin_percent=Decimal("5"))
    # 100 and 97 are one band (3 is faster), 90 is a band of its own; 60 and 58 are one band (4 is faster).
    assert [b.lender_id for b in ordered] == [3, 4, 1, 2, 5]


def test_refresh_ranks_lenders_by_their_30_day_median(buying_lender, rival_lender):
    owner = MemberFactory(lender=buying_lender).user
    rival_owner = MemberFactory(lender=rival_lender).user
    slow = LenderFactory(states=["TX"], balance="500")
    make_subscription(buying_lender, price="40.00")
    make_subscription(rival_lender, price="40.00")
    now = timezone.now()
    for seconds, lender, user in ((90, buying_lender, owner), (1500, rival_lender, rival_owner)):
        for _ in range(3):
            lead = QualifiedLeadFactory()
            lead_distribute(lead_id=lead.pk)
            d = Delivery.objects.get(lead=lead, lender=lender)
            Delivery.objects.filter(pk=d.pk).update(created_at=now - timedelta(seconds=seconds))
            activity_log(delivery=d, user=user, kind=Activity.Kind.CALL, outcome=Activity.Outcome.VOICEMAIL)

    assert lender_speeds_refresh() == 2

    fast, slower = LenderSpeed.objects.get(lender=buying_lender), LenderSpeed.objects.get(lender=rival_lender)
    assert (fast.rank, slower.rank, fast.ranked) == (1, 2, 2)
    assert 60 <= fast.median_seconds < 120 and 1200 <= slower.median_seconds < 1800
    assert not LenderSpeed.objects.filter(lender=slow, rank__isnull=False).exists()
    # Idempotent.
    assert lender_speeds_refresh() == 2
    assert LenderSpeed.objects.get(lender=buying_lender).rank == 1


def test_analytics_shows_the_lenders_rank_and_median(client, buying_lender):
    owner = MemberFactory(lender=buying_lender, username="speedy")
    LenderSpeed.objects.create(lender=buying_lender, median_seconds=150.0, contacts=9, rank=2, ranked=7)
    client.force_login(owner.user)

    page = client.get("/portal/analytics/").content.decode()

    assert "2 min</strong>, rank <strong>2</strong> of 7 lenders" in page
    assert "the faster responder wins" in page
