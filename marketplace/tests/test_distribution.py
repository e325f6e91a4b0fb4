"""Distribution: who buys a lead, on what terms, and that every sale is charged exactly once."""

from datetime import time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.db.models import Sum
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from billing.models import Account, LedgerEntry
from leads.models import Lead
from lenders.models import LenderLicense
from marketplace.models import Delivery, MarketSettings, PriceFloor
from marketplace.services import lead_distribute, subscriptions_matching

from .factories import LenderFactory, QualifiedLeadFactory, make_subscription

pytestmark = pytest.mark.django_db


def assert_books_balance():
    """Every account's balance equals the sum of its ledger, and every delivery has its own charge."""
    for account in Account.objects.all():
        total = LedgerEntry.objects.filter(account=account).aggregate(t=Sum("amount"))["t"] or Decimal("0")
        assert account.balance == total, f"account {account.pk} balance {account.balance} != ledger {total}"
    charges = LedgerEntry.objects.filter(kind="charge")
    assert charges.count() == Delivery.objects.count()
    for d in Delivery.objects.select_related("charge"):
        assert d.charge.amount == -d.price and d.charge.account.lender_id == d.lender_id


def test_exclusive_bid_wins_when_it_earns_more(buying_lender, rival_lender):
    make_subscription(buying_lender, exclusive=True, price="90.00")
    make_subscription(rival_lender, price="40.00")
    lead = QualifiedLeadFactory()

    deliveries = lead_distribute(lead_id=lead.pk)

    assert [(d.lender, d.exclusive, d.price) for d in deliveries] == [(buying_lender, True, Decimal("90.00"))]
    lead.refresh_from_db()
    assert lead.status == "sold"
    assert Account.objects.get(lender=buying_lender).balance == Decimal("910.00")
    assert_books_balance()


def test_shared_sale_wins_when_several_bids_earn_more(buying_lender, rival_lender):
    third = LenderFactory(states=["TX"], balance="500")
    make_subscription(buying_lender, exclusive=True, price="90.00")
    make_subscription(buying_lender, price="35.00", name="shared")
    make_subscription(rival_lender, price="40.00")
    make_subscription(third, price="30.00")
    lead = QualifiedLeadFactory()

    deliveries = lead_distribute(lead_id=lead.pk)

    # 40 + 35 + 30 = 105 > 90 exclusive
    assert sorted(d.price for d in deliveries) == [Decimal("30.00"), Decimal("35.00"), Decimal("40.00")]
    assert not any(d.exclusive for d in deliveries)
    assert len({d.lender_id for d in deliveries}) == 3
    assert_books_balance()


def test_shared_sale_is_capped_at_n_distinct_lenders(buying_lender, rival_lender):
    MarketSettings.objects.update_or_create(pk=1, defaults={"shared_max_buyers": 2})
    third = LenderFactory(states=["TX"], balance="500")
    make_subscription(buying_lender, price="50.00", name="a")
    make_subscription(buying_lender, price="45.00", name="b")  # same lender: may not buy twice
    make_subscription(rival_lender, price="40.00")
    make_subscription(third, price="30.00")
    lead = QualifiedLeadFactory()

    deliveries = lead_distribute(lead_id=lead.pk)

    assert {(d.lender_id, d.price) for d in deliveries} == {
        (buying_lender.pk, Decimal("50.00")),
        (rival_lender.pk, Decimal("40.00")),
    }


def test_equal_bids_go_to_the_lender_served_least_recently(buying_lender, rival_lender):
    make_subscription(buying_lender, exclusive=True, price="70.00")
    make_subscription(rival_lender, exclusive=True, price="70.00")
    buying_lender.last_served_at = timezone.now()
    buying_lender.save()

    first = lead_distribute(lead_id=QualifiedLeadFactory().pk)
    second = lead_distribute(lead_id=QualifiedLeadFactory().pk)

    assert first[0].lender == rival_lender
    assert second[0].lender == buying_lender


def test_filters_are_matched_in_sql(buying_lender):
    make_subscription(buying_lender, name="refi only", purposes=["refinance", "home_equity"])
    make_subscription(buying_lender, name="California", states=["CA"])
    make_subscription(buying_lender, name="740 and up", min_credit_score=740)
    make_subscription(buying_lender, name="big loans", min_loan_amount=Decimal("500000"))
    make_subscription(buying_lender, name="low LTV", max_ltv=Decimal("80"))
    make_subscription(buying_lender, name="low DTI", max_dti=Decimal("30"))
    make_subscription(buying_lender, name="Dallas ZIPs", zips=["75201"])
    ok = make_subscription(buying_lender, name="Austin ZIP", zips=["78701", "78702"])
    lead = QualifiedLeadFactory()

    assert [m.subscription_id for m in subscriptions_matching(leads=[lead])[lead.pk]] == [ok.pk]


def test_credit_matches_the_leads_lowest_possible_score_against_the_minimum(buying_lender):
    """Issue 12.5: a subscription takes a lead when the lead's lowest possible score (its exact score, else
    the lowest of its range) reaches the subscription's minimum, in the matching SQL."""
    at_660 = make_subscription(buying_lender, name="660+", min_credit_score=660)
    at_670 = make_subscription(buying_lender, name="670+ (was 'good')", min_credit_score=670)
    at_680 = make_subscription(buying_lender, name="680+", min_credit_score=680)

    def matched(**credit) -> set[int]:
        lead = QualifiedLeadFactory(**credit)
        return {m.subscription_id for m in subscriptions_matching(leads=[lead])[lead.pk]}

    assert matched(credit_range="660_679") == {at_660.pk}  # may be 660: below 670
    assert matched(credit_range="680_699") == {at_660.pk, at_670.pk, at_680.pk}
    assert matched(credit_range="640_659") == set()
    assert matched(credit_range="660_679", credit_score=675) == {at_660.pk, at_670.pk}
    assert matched(credit_range="660_679", credit_score=670) == {at_660.pk, at_670.pk}


def test_loan_amount_filters_take_the_loan_the_consumer_qualifies_for(buying_lender):
    """Issue 12.1: a consumer asking $300,000 who qualifies for $160,000 is a $160,000 lead: a subscription
    for loans up to $200,000 buys it, one for loans from $200,000 does not."""
    small = make_subscription(buying_lender, name="up to 200k", max_loan_amount=Decimal("200000"))
    make_subscription(buying_lender, name="from 200k", min_loan_amount=Decimal("200000"))
    lead = QualifiedLeadFactory(
        requested_loan=Decimal("300000"), estimate=Decimal("160000"), qualified_loan=Decimal("160000")
    )

    assert [m.subscription_id for m in subscriptions_matching(leads=[lead])[lead.pk]] == [small.pk]


def test_radius_filter_takes_zips_near_the_center(buying_lender):
    near = make_subscription(buying_lender, name="near Austin", radius_center_zip="78702", radius_miles=10)
    make_subscription(buying_lender, name="near Houston", radius_center_zip="77002", radius_miles=10)
    lead = QualifiedLeadFactory()  # 78701, Austin

    assert [m.subscription_id for m in subscriptions_matching(leads=[lead])[lead.pk]] == [near.pk]


def test_never_sells_to_an_unlicensed_lender(buying_lender):
    make_subscription(buying_lender, exclusive=True, price="90.00")
    LenderLicense.objects.filter(
        lender=buying_lender, state="TX"
    ).delete()  # licence lapsed after subscribing
    lead = QualifiedLeadFactory()

    assert lead_distribute(lead_id=lead.pk) == []
    lead.refresh_from_db()
    assert lead.status == "unsold"
    assert lead.retry_until > timezone.now() + timedelta(hours=23)


def test_never_sells_past_daily_cap_budget_or_funds(buying_lender, rival_lender):
    capped = make_subscription(buying_lender, exclusive=True, price="90.00", daily_cap=1)
    lead_distribute(lead_id=QualifiedLeadFactory().pk)
    lead = QualifiedLeadFactory()
    assert lead_distribute(lead_id=lead.pk) == []
    lead.refresh_from_db()
    reasons = {row["subscription"]: row["reason"] for row in lead.distribution_trace[-1]["considered"]}
    assert reasons[capped.pk] == "daily cap reached"

    make_subscription(rival_lender, exclusive=True, price="60.00", monthly_budget=Decimal("100.00"))
    assert len(lead_distribute(lead_id=lead.pk)) == 1  # 60 of 100 spent
    third = QualifiedLeadFactory()
    assert lead_distribute(lead_id=third.pk) == []  # 120 would pass the budget
    third.refresh_from_db()
    assert "monthly budget reached" in {r["reason"] for r in third.distribution_trace[-1]["considered"]}

    poor = LenderFactory(states=["TX"], balance="10.00")
    make_subscription(poor, exclusive=True, price="50.00")
    fourth = QualifiedLeadFactory()
    assert lead_distribute(lead_id=fourth.pk) == []
    assert_books_balance()


def test_credit_limit_lets_a_lender_go_below_zero_but_no_further(buying_lender):
    Account.objects.filter(lender=buying_lender).update(credit_limit=Decimal("300.00"))
    make_subscription(buying_lender, exclusive=True, price="400.00")
    sold = [bool(lead_distribute(lead_id=QualifiedLeadFactory().pk)) for _ in range(4)]

    assert sold == [
        True,
        True,
        True,
        False,
    ]  # two sales leave 200; with 300 of credit a third takes it to -200; no fourth
    assert Account.objects.get(lender=buying_lender).balance == Decimal("-200.00")
    assert_books_balance()


def test_outside_schedule_is_skipped(buying_lender):
    now_local = timezone.now().astimezone(timezone.get_fixed_timezone(0))
    closed_day = str((now_local.weekday() + 3) % 7)
    make_subscription(buying_lender, exclusive=True, price="90.00", schedule_days=closed_day)
    lead = QualifiedLeadFactory()
    assert lead_distribute(lead_id=lead.pk) == []
    lead.refresh_from_db()
    assert lead.distribution_trace[-1]["considered"][0]["reason"] == "outside delivery schedule"


def test_overnight_schedule_window():
    from types import SimpleNamespace

    from marketplace.services import in_schedule

    sub = SimpleNamespace(schedule_days="0123456", schedule_start=time(20, 0), schedule_end=time(6, 0))
    at = timezone.now().replace(hour=23, minute=0)
    assert in_schedule(sub, at)
    assert in_schedule(sub, at.replace(hour=5))
    assert not in_schedule(sub, at.replace(hour=12))


def test_a_floor_raised_after_subscribing_stops_the_bid(buying_lender):
    make_subscription(buying_lender, exclusive=True, price="60.00")
    PriceFloor.objects.create(purpose="purchase", exclusive=True, state="TX", price=Decimal("75.00"))
    lead = QualifiedLeadFactory()
    assert lead_distribute(lead_id=lead.pk) == []
    lead.refresh_from_db()
    assert "below floor" in lead.distribution_trace[-1]["considered"][0]["reason"]


def test_distributing_twice_sells_once(buying_lender, rival_lender):
    make_subscription(buying_lender, price="40.00")
    make_subscription(rival_lender, price="40.00")
    lead = QualifiedLeadFactory()

    assert len(lead_distribute(lead_id=lead.pk)) == 2
    assert lead_distribute(lead_id=lead.pk) == []
    assert Delivery.objects.filter(lead=lead).count() == 2
    assert_books_balance()


def test_unsold_lead_is_sold_when_a_buyer_appears_within_the_window(buying_lender):
    lead = QualifiedLeadFactory()
    assert lead_distribute(lead_id=lead.pk) == []
    make_subscription(buying_lender, price="40.00")
    assert len(lead_distribute(lead_id=lead.pk)) == 1

    expired = QualifiedLeadFactory(status="unsold", retry_until=timezone.now() - timedelta(minutes=1))
    assert lead_distribute(lead_id=expired.pk) == []


def test_trace_records_every_subscription_considered(buying_lender, rival_lender):
    win = make_subscription(buying_lender, exclusive=True, price="90.00")
    lose = make_subscription(rival_lender, exclusive=True, price="80.00")
    lead = QualifiedLeadFactory()
    lead_distribute(lead_id=lead.pk)
    lead.refresh_from_db()
    rows = {r["subscription"]: r for r in lead.distribution_trace[-1]["considered"]}
    assert rows[win.pk]["outcome"] == "won"
    assert rows[lose.pk]["outcome"] == "lost" and rows[lose.pk]["reason"] == "outbid"
    assert lead.distribution_trace[-1]["mode"] == "exclusive"


def test_only_qualified_leads_are_sold(buying_lender):
    make_subscription(buying_lender, price="40.00")
    for status in ["received", "not_qualified", "duplicate", "rejected"]:
        lead = QualifiedLeadFactory(status=status)
        assert lead_distribute(lead_id=lead.pk) == []
        assert Lead.objects.get(pk=lead.pk).status == status


def _outcome(leads: list[Lead]) -> list[tuple]:
    return [
        (
            lead.status,
            sorted((d.lender_id, d.price, d.exclusive, d.assigned_to_id) for d in lead.deliveries.all()),
            # A batch matches every lead before charging any, so its trace may also list a bid the lender can
            # no longer pay for ("insufficient funds") where a lone sale's SQL pre-check left it out.
            [r["subscription"] for r in lead.distribution_trace[-1]["considered"] if r["outcome"] == "won"],
        )
        for lead in Lead.objects.filter(pk__in=[lead.pk for lead in leads]).order_by("pk")
    ]


def test_a_batch_sells_exactly_as_one_lead_at_a_time(buying_lender, rival_lender):
    """Caps, budgets, funds and the rotation of equal bids carry from one lead of a batch to the next."""
    from django.db import transaction

    from marketplace.services import leads_distribute

    third = LenderFactory(states=["TX"], balance="130.00")  # funds for two of its 45.00 bids, not three
    make_subscription(buying_lender, exclusive=True, price="90.00", daily_cap=2)
    make_subscription(rival_lender, exclusive=True, price="90.00", monthly_budget=Decimal("200.00"))
    make_subscription(rival_lender, price="40.00", name="shared")
    make_subscription(buying_lender, price="40.00", name="shared")
    make_subscription(third, price="45.00")
    leads = [QualifiedLeadFactory() for _ in range(9)]

    savepoint = transaction.savepoint()
    for lead in leads:
        lead_distribute(lead_id=lead.pk)
    one_by_one = _outcome(leads)
    transaction.savepoint_rollback(savepoint)
    assert not Delivery.objects.exists()

    sold = leads_distribute(lead_ids=[lead.pk for lead in reversed(leads)])

    assert _outcome(leads) == one_by_one
    modes = [("exclusive" if row[1][0][2] else len(row[1])) if row[1] else "unsold" for row in one_by_one]
    # Shared to three until the third lender's funds run out, then exclusive until the cap and the budget
    # are spent, alternating between the two equal bids; then shared to the two left.
    assert modes == [3, 3, "exclusive", "exclusive", "exclusive", "exclusive", 2, 2, 2], modes
    exclusive_buyers = [row[1][0][0] for row in one_by_one if row[1] and row[1][0][2]]
    assert exclusive_buyers == [buying_lender.pk, rival_lender.pk] * 2
    assert sum(len(v) for v in sold.values()) == Delivery.objects.count()
    assert Account.objects.get(lender=third).balance == Decimal("40.00")
    assert_books_balance()


def test_a_batch_costs_one_matching_query_per_lead_and_fixed_writes(
    buying_lender, rival_lender, django_assert_max_num_queries
):
    from marketplace.services import leads_distribute

    make_subscription(buying_lender, exclusive=True, price="90.00")
    make_subscription(rival_lender, price="40.00")
    make_subscription(buying_lender, price="35.00", name="shared")
    leads = [QualifiedLeadFactory() for _ in range(20)]
    lead_distribute(lead_id=leads[0].pk)  # warm the per-process settings cache

    with django_assert_max_num_queries(20 + 12):
        sold = leads_distribute(lead_ids=[lead.pk for lead in leads[1:]])
    assert len(sold) == 19
    assert_books_balance()


def test_when_every_bid_read_is_spent_the_cheaper_ones_are_read_too(buying_lender, rival_lender, monkeypatch):
    """A sale reads a lead's best few price points; if all of them are capped it reads the rest, so a
    market full of spent subscriptions still sells to the bid that can buy."""
    from marketplace import services

    monkeypatch.setattr(services, "MATCH_DEPTH", 2)
    for price in ("95.00", "90.00", "85.00"):
        capped = make_subscription(
            buying_lender, exclusive=True, price=price, daily_cap=1, name=f"capped {price}"
        )
        capped.day_key, capped.day_count = timezone.localdate(timezone=ZoneInfo(capped.lender.time_zone)), 1
        capped.save(update_fields=["day_key", "day_count"])
    cheap = make_subscription(rival_lender, exclusive=True, price="60.00")
    lead = QualifiedLeadFactory()

    with CaptureQueriesContext(connection) as queries:
        deliveries = lead_distribute(lead_id=lead.pk)

    assert [d.subscription_id for d in deliveries] == [cheap.pk]
    assert sum("RANK() OVER" in q["sql"] for q in queries.captured_queries) == 2  # the first read, then all
    lead.refresh_from_db()
    trace = lead.distribution_trace[-1]
    assert trace["matched"] == 4
    assert [r["reason"] for r in trace["considered"]] == ["daily cap reached"] * 3 + [""]
