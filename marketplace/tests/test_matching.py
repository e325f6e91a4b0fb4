"""The one matching spec (marketplace.matching): the sale's SQL and the forecast's ORM filter give the same
answer, on a randomized market and on the cases that once differed; purposes are a list of choices."""

from datetime import time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.migrations.executor import MigrationExecutor
from django.urls import reverse
from django.utils import timezone
from hypothesis import given, settings
from hypothesis import strategies as st

from leads.choices import CreditRange, LoanPurpose
from leads.qualification.guidelines import credit_range_for_score
from lenders.models import Subscription
from lenders.services import lender_set_licenses
from marketplace.analytics import leads_forecast_base, subscription_forecast
from marketplace.matching import SCHEDULE, in_schedule, leads_meeting, matching_sql, subscription_terms
from marketplace.services import lead_distribute, subscriptions_matching

from .factories import LenderFactory, QualifiedLeadFactory, make_subscription

pytestmark = pytest.mark.django_db

STATES = ["TX", "CA", "NV"]
ZIPS = ["78701", "78702", "75201", "90012", "89101"]
ZONES = ["America/Chicago", "America/Los_Angeles", "UTC"]
MONEY = st.sampled_from([Decimal(v) for v in ("200000", "300000", "360000", "500000")])

subscriptions = st.fixed_dictionaries(
    {
        "lender": st.integers(0, 2),
        "states": st.lists(st.sampled_from(STATES), min_size=1, unique=True),
        "zips": st.lists(st.sampled_from(ZIPS), max_size=2, unique=True),
        "radius": st.booleans(),
        "purposes": st.lists(st.sampled_from(LoanPurpose.values), min_size=1, unique=True),
        "min_credit_score": st.sampled_from([300, 500, 580, 620, 640, 661, 680, 700, 740, 760, 850]),
        "loans": st.tuples(st.none() | MONEY, st.none() | MONEY),
        "max_ltv": st.none() | st.sampled_from([Decimal("80"), Decimal("90"), Decimal("95")]),
        "max_dti": st.none() | st.sampled_from([Decimal("30"), Decimal("35"), Decimal("45")]),
        "days": st.lists(st.sampled_from("0123456"), min_size=1, unique=True),
        "hours": st.none() | st.tuples(st.integers(0, 23), st.integers(0, 23)).filter(lambda h: h[0] != h[1]),
        "price": st.integers(20, 80),
        "exclusive": st.booleans(),
    }
)

leads = st.fixed_dictionaries(
    {
        "state": st.sampled_from(STATES),
        "zip_code": st.sampled_from(ZIPS),
        "purpose": st.sampled_from(LoanPurpose.values),
        "requested_loan": MONEY,
        # None: a lead qualified before the qualified loan was stored (the sale falls back to the request).
        "qualified_loan": st.none() | MONEY,
        "ltv": st.none() | st.sampled_from([Decimal("75"), Decimal("80"), Decimal("90"), Decimal("96.5")]),
        "dti": st.none() | st.sampled_from([Decimal("28"), Decimal("35"), Decimal("44"), Decimal("50")]),
        "credit_range": st.sampled_from(CreditRange.values),
        "credit_score": st.none() | st.integers(300, 850),
        "minutes_ago": st.integers(60, 29 * 24 * 60),
    }
)


def _build_market(draw_subs: list[dict], draw_leads: list[dict], lapsed: list[list[str]]):
    now = timezone.now()
    lenders = [
        LenderFactory(states=STATES, balance="100000.00", time_zone=zone, name=f"Lender {i}")
        for i, zone in enumerate(ZONES)
    ]
    subs = []
    for d in draw_subs:
        lo, hi = d["loans"]
        if lo is not None and hi is not None and lo > hi:
            lo, hi = hi, lo
        start_end = (time(d["hours"][0]), time(d["hours"][1])) if d["hours"] else (None, None)
        subs.append(
            make_subscription(
                lenders[d["lender"]],
                states=d["states"],
                zips=d["zips"],
                price=str(d["price"]),
                exclusive=d["exclusive"],
                purposes=d["purposes"],
                min_credit_score=d["min_credit_score"],
                min_loan_amount=lo,
                max_loan_amount=hi,
                max_ltv=d["max_ltv"],
                max_dti=d["max_dti"],
                radius_center_zip="78701" if d["radius"] else "",
                radius_miles=3 if d["radius"] else None,
                schedule_days="".join(sorted(d["days"])),
                schedule_start=start_end[0],
                schedule_end=start_end[1],
            )
        )
    # Licences lapse after the orders were placed: the sale (and the forecast) must stop in those states.
    for lender, states in zip(lenders, lapsed, strict=True):
        lender_set_licenses(lender=lender, states=states)
    made = []
    for d in draw_leads:
        d = dict(d)
        qualified_at = now - timedelta(minutes=d.pop("minutes_ago"))
        if d["credit_score"] is not None:
            d["credit_range"] = credit_range_for_score(d["credit_score"])
        made.append(QualifiedLeadFactory(**d, qualified_at=qualified_at))
    return now, subs, made


@settings(max_examples=30, deadline=None)
@given(
    draw_subs=st.lists(subscriptions, min_size=1, max_size=8),
    draw_leads=st.lists(leads, min_size=1, max_size=8),
    lapsed=st.lists(st.lists(st.sampled_from(STATES), unique=True), min_size=3, max_size=3),
)
def test_forecast_and_matcher_agree_on_a_random_market(draw_subs, draw_leads, lapsed):
    """Issue 13.3: on a random market, the sale (SQL match, then the delivery schedule at the lead's moment
    in the lender's zone) and the forecast (the ORM filter over the same leads, in the lender's zone) find
    the same leads for every subscription, and the forecast's count is that set's size."""
    with transaction.atomic():
        now, subs, made = _build_market(draw_subs, draw_leads, lapsed)
        matches = subscriptions_matching(leads=made)
        for sub in Subscription.objects.filter(pk__in=[s.pk for s in subs]).select_related("lender"):
            zone = ZoneInfo(sub.lender.time_zone)
            by_sale = {
                lead.pk
                for lead in made
                if any(m.subscription_id == sub.pk for m in matches[lead.pk])
                and in_schedule(sub, lead.qualified_at.astimezone(zone))
            }
            terms = subscription_terms(sub)
            with timezone.override(zone):
                by_forecast = set(
                    leads_forecast_base(now=now)
                    .filter(leads_meeting(terms), SCHEDULE.q(terms))
                    .values_list("pk", flat=True)
                )
                counted = subscription_forecast(
                    lender_id=sub.lender_id,
                    purposes=sub.purposes,
                    states=sub.states,
                    min_credit_score=sub.min_credit_score,
                    zips=[z.zip_code for z in sub.zip_rows.all() if not z.from_radius],
                    radius_center_zip=sub.radius_center_zip,
                    radius_miles=sub.radius_miles,
                    min_loan_amount=sub.min_loan_amount,
                    max_loan_amount=sub.max_loan_amount,
                    max_ltv=sub.max_ltv,
                    max_dti=sub.max_dti,
                    schedule_days=sub.schedule_days,
                    schedule_start=sub.schedule_start,
                    schedule_end=sub.schedule_end,
                    now=now,
                ).matched
            assert by_sale == by_forecast, f"subscription {sub.pk}: sale {by_sale} != forecast {by_forecast}"
            assert counted == len(by_forecast)
        transaction.set_rollback(True)


def test_the_forecast_judges_a_lead_without_a_qualified_loan_on_its_request(buying_lender):
    """Issue 13.3: a lead qualified before the qualified loan was stored is sold on its requested loan; the
    forecast counted it on the missing qualified loan, so a loan filter hid a lead the sale would sell."""
    make_subscription(buying_lender, min_loan_amount=Decimal("300000"), max_loan_amount=Decimal("400000"))
    lead = QualifiedLeadFactory(
        qualified_loan=None, requested_loan=Decimal("360000"), qualified_at=timezone.now() - timedelta(days=1)
    )
    terms = {
        "lender_id": buying_lender.pk,
        "purposes": ["purchase"],
        "states": ["TX"],
        "min_credit_score": 620,
    }
    forecast = subscription_forecast(
        **terms, min_loan_amount=Decimal("300000"), max_loan_amount=Decimal("400000")
    )
    assert forecast.matched == 1
    assert subscription_forecast(**terms, min_loan_amount=Decimal("400000")).matched == 0
    assert [d.lead_id for d in lead_distribute(lead_id=lead.pk)] == [lead.pk]


def test_a_purpose_is_a_choice_not_a_column(buying_lender):
    """Issue 13.3: the matching SQL names no purpose (nor any credit range): it reads the subscription's list
    of purposes, so a new LoanPurpose choice needs no column, no migration and no edit of the query."""
    sql = matching_sql(1)
    for value in [*LoanPurpose.values, *CreditRange.values]:
        assert value not in sql
    refi = make_subscription(buying_lender, name="refi", purposes=["refinance"])
    both = make_subscription(buying_lender, name="both", purposes=["home_equity", "purchase", "purchase"])
    assert both.purposes == ["purchase", "home_equity"]  # the choices' order, each once
    lead = QualifiedLeadFactory(purpose="purchase")
    assert [m.subscription_id for m in subscriptions_matching(leads=[lead])[lead.pk]] == [both.pk]
    refi_lead = QualifiedLeadFactory(purpose="refinance")
    assert [m.subscription_id for m in subscriptions_matching(leads=[refi_lead])[refi_lead.pk]] == [refi.pk]


@pytest.mark.parametrize(
    ("purposes", "message"),
    [
        ([], "Choose at least one loan purpose."),
        (["purchase", "reverse_mortgage"], "Unknown loan purpose: reverse_mortgage."),
        ("purchase", "Give the loan purposes as a list."),
    ],
)
def test_a_subscription_refuses_purposes_that_are_not_choices(buying_lender, purposes, message):
    """Issue 13.3: a JSON list accepts anything, so the service names what it refuses before it is saved."""
    with pytest.raises(ValidationError) as exc:
        make_subscription(buying_lender, purposes=purposes)
    assert any(message in m for m in exc.value.message_dict["purposes"])
    assert not Subscription.objects.exists()


def test_staff_filter_subscriptions_by_purpose(client, staff, buying_lender):
    """Issue 13.3: the admin's purpose filter (one per column before) reads the list."""
    client.force_login(staff)
    make_subscription(buying_lender, name="Refi only", purposes=["refinance"])
    make_subscription(buying_lender, name="Home equity only", purposes=["home_equity"])
    url = reverse("admin:lenders_subscription_changelist")
    page = client.get(url, {"purpose": "home_equity"}).content.decode()
    assert "Home equity only" in page and "Refi only" not in page
    page = client.get(url, {"purpose": "refinance"}).content.decode()
    assert "Refi only" in page and "Home equity only" not in page


@pytest.mark.django_db(transaction=True)
def test_the_purposes_migration_keeps_what_each_subscription_took():
    """Issue 13.3: lenders 0006 turns the three purpose columns into the list, purpose for purpose, touching
    nothing else on the row; and back."""
    before = [("lenders", "0005_remove_subscription_credit_bands")]
    after = [("lenders", "0006_subscription_purposes_list")]
    old = migrate(before)
    Lender, Subscription = old.get_model("lenders", "Lender"), old.get_model("lenders", "Subscription")
    lender = Lender.objects.create(name="L", nmls_id="1")
    took = {
        "all": (True, True, True),
        "refi": (False, True, False),
        "purchase and equity": (True, False, True),
        "none": (False, False, False),
    }
    for name, (purchase, refinance, equity) in took.items():
        Subscription.objects.create(
            lender=lender,
            name=name,
            price=Decimal("40.00"),
            day_count=1,
            purpose_purchase=purchase,
            purpose_refinance=refinance,
            purpose_home_equity=equity,
        )

    Subscription = migrate(after).get_model("lenders", "Subscription")
    assert dict(Subscription.objects.values_list("name", "purposes")) == {
        "all": ["purchase", "refinance", "home_equity"],
        "refi": ["refinance"],
        "purchase and equity": ["purchase", "home_equity"],
        "none": [],
    }
    assert set(Subscription.objects.values_list("day_count", flat=True)) == {1}

    Subscription = migrate(before).get_model("lenders", "Subscription")
    back = Subscription.objects.values_list(
        "name", "purpose_purchase", "purpose_refinance", "purpose_home_equity"
    )
    assert {name: tuple(flags) for name, *flags in back} == took
    migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())  # the schema the other tests expect


def migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps
