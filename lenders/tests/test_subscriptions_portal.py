"""Subscriptions in the portal: list, create, edit, pause, resume; errors beside fields; the forecast."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from lenders.models import Subscription
from marketplace.analytics import subscription_forecast
from marketplace.models import PriceFloor
from marketplace.services import lead_distribute
from marketplace.tests.factories import MemberFactory, QualifiedLeadFactory, make_subscription

pytestmark = pytest.mark.django_db


def form_data(**over) -> dict:
    data = {
        "name": "Austin purchase",
        "purposes": ["purchase", "refinance"],
        "states": ["TX"],
        "credit_bands": ["excellent", "good"],
        "exclusive": "shared",
        "price": "45.00",
        "schedule_days": ["0", "1", "2", "3", "4", "5", "6"],
        "zip_codes": "",
        "radius_center_zip": "",
        "radius_miles": "",
        "min_loan_amount": "",
        "max_loan_amount": "",
        "max_ltv": "",
        "max_dti": "",
        "daily_cap": "",
        "monthly_cap": "",
        "monthly_budget": "",
        "schedule_start": "",
        "schedule_end": "",
    }
    data.update(over)
    return data


@pytest.fixture
def floors(db):
    PriceFloor.objects.create(purpose="purchase", exclusive=False, state="", price=Decimal("30.00"))
    PriceFloor.objects.create(purpose="purchase", exclusive=True, state="", price=Decimal("60.00"))


@pytest.fixture
def owner_client(client, owner):
    client.force_login(owner)
    return client


@pytest.fixture
def ours(buying_lender):
    return make_subscription(buying_lender, name="Texas all", states=["TX"], price="40.00")


@pytest.fixture
def theirs(rival_lender):
    return make_subscription(rival_lender, name="Rival Texas", states=["TX"], price="41.00")


# --- list, create, edit, pause, resume -----------------------------------------------------------------


def test_list_shows_own_subscriptions_only_in_fixed_queries(owner_client, ours, theirs, buying_lender):
    make_subscription(buying_lender, name="California", states=["CA"], price="35.00", daily_cap=10)
    # session, user, membership, subscriptions (with ZIP counts), their states
    with CaptureQueriesContext(connection) as few:
        page = owner_client.get(reverse("portal:subscriptions"))
    assert page.status_code == 200
    html = page.content.decode()
    assert "Texas all" in html and "California" in html and "10/day" in html
    assert "Rival Texas" not in html
    for i in range(5):
        make_subscription(buying_lender, name=f"More {i}", states=["TX", "CA"], zips=["78701"], price="40.00")
    with CaptureQueriesContext(connection) as many:
        owner_client.get(reverse("portal:subscriptions"))
    assert len(many) == len(few) == 5


def test_create_a_subscription_with_every_filter_and_term(owner_client, buying_lender, floors):
    response = owner_client.post(
        reverse("portal:subscription_create"),
        form_data(
            states=["TX", "CA"],
            zip_codes="78701, 78702\n78703",
            radius_center_zip="78701",
            radius_miles="5",
            min_loan_amount="100000",
            max_loan_amount="500000",
            max_ltv="95",
            max_dti="45",
            exclusive="exclusive",
            price="75.00",
            daily_cap="5",
            monthly_cap="100",
            monthly_budget="5000",
            schedule_days=["0", "1", "2"],
            schedule_start="08:00",
            schedule_end="18:00",
            purposes=["purchase"],
            credit_bands=["good", "fair"],
        ),
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    assert response.url == reverse("portal:subscriptions")
    sub = Subscription.objects.get(lender=buying_lender, name="Austin purchase")
    assert sub.states == ["CA", "TX"]
    assert sub.purposes == ["purchase"] and sub.credit_bands == ["good", "fair"]
    assert sub.exclusive and sub.price == Decimal("75.00")
    assert (sub.daily_cap, sub.monthly_cap, sub.monthly_budget) == (5, 100, Decimal("5000.00"))
    assert sub.schedule_days == "012" and sub.schedule_start.hour == 8 and sub.schedule_end.hour == 18
    assert sub.max_ltv == Decimal("95") and sub.min_loan_amount == Decimal("100000")
    listed = set(sub.zip_rows.filter(from_radius=False).values_list("zip_code", flat=True))
    assert listed == {"78701", "78702", "78703"}
    assert sub.zip_rows.filter(from_radius=True).exists() and sub.has_zip_filter


def test_price_below_the_floor_is_named_beside_the_price(owner_client, floors):
    response = owner_client.post(reverse("portal:subscription_create"), form_data(price="20.00"))
    assert response.status_code == 400
    errors = response.context["form"].errors
    assert list(errors) == ["price"]
    assert "$20.00 is below the $30.00 floor for shared purchase leads" in errors["price"][0]
    assert " in TX" not in errors["price"][0]  # the general floor applies: no state is named
    assert "below the $30.00 floor" in response.content.decode()
    assert not Subscription.objects.exists()


def test_exclusive_has_its_own_floor(owner_client, floors):
    response = owner_client.post(reverse("portal:subscription_create"), form_data(exclusive="exclusive"))
    error = response.context["form"].errors["price"][0]
    assert "below the $60.00 floor for exclusive purchase leads" in error


def test_unlicensed_state_and_impossible_range_are_named(owner_client):
    page = owner_client.get(reverse("portal:subscription_create"))
    offered = [v for v, _ in page.context["form"].fields["states"].widget.choices]
    assert offered == ["CA", "TX"]  # only the licensed states are offered
    response = owner_client.post(
        reverse("portal:subscription_create"),
        form_data(
            states=["TX", "NV"],
            min_loan_amount="500000",
            max_loan_amount="100000",
            purposes=[],
            credit_bands=[],
        ),
    )
    errors = response.context["form"].errors
    assert "You are not licensed in NV" in errors["states"][0]
    assert "below the minimum" in errors["max_loan_amount"][0]
    assert errors["purposes"] == ["Choose at least one loan purpose."]
    assert errors["credit_bands"] == ["Choose at least one credit band."]
    html = response.content.decode()
    assert 'aria-invalid="true"' in html


def test_bad_zips_and_half_a_radius_are_named(owner_client):
    response = owner_client.post(
        reverse("portal:subscription_create"),
        form_data(
            zip_codes="78701 7870x",
            radius_center_zip="78701",
            schedule_days=[],
        ),
    )
    errors = response.context["form"].errors
    assert "Not a 5-digit ZIP code: 7870x" in errors["zip_codes"][0]
    assert "Give both a center ZIP and a radius" in errors["radius_miles"][0]
    assert errors["schedule_days"] == ["Choose at least one delivery day."]


def test_edit_shows_current_terms_and_saves(owner_client, ours):
    url = reverse("portal:subscription_edit", args=[ours.pk])
    page = owner_client.get(url)
    assert page.status_code == 200
    assert page.context["form"].initial["price"] == Decimal("40.00")
    response = owner_client.post(url, form_data(name="Texas renamed", price="50.00", daily_cap="3"))
    assert response.status_code == 302
    ours.refresh_from_db()
    assert (ours.name, ours.price, ours.daily_cap) == ("Texas renamed", Decimal("50.00"), 3)


def test_pause_and_resume(owner_client, ours):
    assert owner_client.get(reverse("portal:subscription_pause", args=[ours.pk])).status_code == 405
    owner_client.post(reverse("portal:subscription_pause", args=[ours.pk]))
    ours.refresh_from_db()
    assert not ours.is_active
    page = owner_client.get(reverse("portal:subscriptions"))
    assert "Paused" in page.content.decode() and "Resume" in page.content.decode()
    owner_client.post(reverse("portal:subscription_resume", args=[ours.pk]))
    ours.refresh_from_db()
    assert ours.is_active


# --- who may ---------------------------------------------------------------------------------------------


def test_a_manager_may_manage_subscriptions(client, buying_lender, ours):
    manager = MemberFactory(lender=buying_lender, role="manager", username="manager").user
    client.force_login(manager)
    assert client.get(reverse("portal:subscriptions")).status_code == 200


def test_an_officer_cannot_reach_subscriptions(client, officer, ours):
    client.force_login(officer)
    for url in (
        reverse("portal:subscriptions"),
        reverse("portal:subscription_create"),
        reverse("portal:subscription_edit", args=[ours.pk]),
    ):
        assert client.get(url).status_code == 403
    assert client.post(reverse("portal:subscription_pause", args=[ours.pk])).status_code == 403
    assert client.post(reverse("portal:subscription_forecast"), form_data()).status_code == 403
    ours.refresh_from_db()
    assert ours.is_active


def test_another_lenders_subscription_is_404(owner_client, theirs):
    for name in ("subscription_edit", "subscription_pause", "subscription_resume"):
        url = reverse(f"portal:{name}", args=[theirs.pk])
        assert owner_client.get(url).status_code == 404
        assert owner_client.post(url, form_data()).status_code == 404
    theirs.refresh_from_db()
    assert theirs.is_active and theirs.name == "Rival Texas"


def test_anonymous_is_sent_to_login(client):
    response = client.get(reverse("portal:subscriptions"))
    assert response.status_code == 302 and "login" in response.url


# --- the forecast ------------------------------------------------------------------------------------


def qualified(**kw):
    kw.setdefault("qualified_at", timezone.now() - timedelta(days=1))
    return QualifiedLeadFactory(**kw)


def test_forecast_counts_matches_and_wins_against_other_lenders(buying_lender, rival_lender):
    # Rival buys shared at $41 (one buyer, so a shared seat is free), and exclusive at $80 on another lead.
    make_subscription(rival_lender, name="rival shared", states=["TX"], price="41.00")
    sold_shared = qualified()
    lead_distribute(lead_id=sold_shared.pk)
    Subscription.objects.filter(lender=rival_lender).update(is_active=False)
    make_subscription(rival_lender, name="rival excl", states=["TX"], price="80.00", exclusive=True)
    sold_exclusive = qualified()
    lead_distribute(lead_id=sold_exclusive.pk)
    Subscription.objects.filter(lender=rival_lender).update(is_active=False)
    qualified()  # nobody bought it: anyone wins it
    qualified(qualified_at=timezone.now() - timedelta(days=40))  # too old
    qualified(purpose="refinance")  # other purpose
    qualified(credit_band="poor")  # other band
    qualified(state="CA", zip_code="90012", city="Los Angeles", county="Los Angeles County")  # other state
    qualified(status="not_qualified")

    base = {
        "lender_id": buying_lender.pk,
        "purposes": ["purchase"],
        "states": ["TX"],
        "credit_bands": ["good", "excellent"],
    }
    with CaptureQueriesContext(connection) as q:
        f = subscription_forecast(**base, exclusive=False, price=Decimal("30.00"))
    assert len(q) == 2  # market settings, then one aggregate query
    assert (f.matched, f.won) == (3, 2)  # unsold + the free seat on the shared lead; not the $80 exclusive
    # An exclusive bid equal to a shared sale's revenue wins it.
    assert subscription_forecast(**base, exclusive=True, price=Decimal("41.00")).won == 2
    assert subscription_forecast(**base, exclusive=True, price=Decimal("80.00")).won == 2  # a tie loses
    assert subscription_forecast(**base, exclusive=True, price=Decimal("80.01")).won == 3
    assert subscription_forecast(**base, exclusive=True, price=Decimal("40.00")).won == 1
    assert subscription_forecast(**base, price=None).won is None
    assert subscription_forecast(**base, min_loan_amount=Decimal("400000")).matched == 0
    assert subscription_forecast(**base, max_ltv=Decimal("89")).matched == 0
    assert subscription_forecast(**base, zips=["78702"]).matched == 0
    assert subscription_forecast(**base, zips=["78701"]).matched == 3
    assert subscription_forecast(**base, radius_center_zip="78702", radius_miles=10).matched == 3


def test_forecast_query_count_does_not_grow_with_history(buying_lender, rival_lender):
    base = {
        "lender_id": buying_lender.pk,
        "purposes": ["purchase"],
        "states": ["TX"],
        "credit_bands": ["good"],
        "price": Decimal("50"),
    }
    make_subscription(rival_lender, states=["TX"], price="41.00")
    lead_distribute(lead_id=qualified().pk)
    with CaptureQueriesContext(connection) as few:
        subscription_forecast(**base)
    for _ in range(10):
        lead_distribute(lead_id=qualified().pk)
    with CaptureQueriesContext(connection) as many:
        assert subscription_forecast(**base).matched == 11
    assert len(few) == len(many) == 2


def test_forecast_respects_the_schedule(buying_lender):
    monday_9am = timezone.now().replace(hour=9, minute=0) - timedelta(days=timezone.now().weekday() + 7)
    qualified(qualified_at=monday_9am)
    base = {
        "lender_id": buying_lender.pk,
        "purposes": ["purchase"],
        "states": ["TX"],
        "credit_bands": ["good"],
    }
    with timezone.override(timezone.get_fixed_timezone(0)):
        assert subscription_forecast(**base, schedule_days="0").matched == 1
        assert subscription_forecast(**base, schedule_days="123456").matched == 0
        start, end = monday_9am.time().replace(hour=8), monday_9am.time().replace(hour=10)
        assert subscription_forecast(**base, schedule_start=start, schedule_end=end).matched == 1
        assert subscription_forecast(**base, schedule_start=end, schedule_end=start).matched == 0


def test_forecast_is_on_the_page_without_js_and_refreshes_with_htmx(owner_client, buying_lender):
    qualified()
    qualified()
    page = owner_client.get(reverse("portal:subscription_create"))
    html = page.content.decode()
    assert 'hx-post="/portal/subscriptions/forecast/"' in html and 'hx-trigger="change"' in html
    assert page.context["forecast"].matched == 2
    assert "qualified leads in the last 30 days matched these filters" in html
    partial = owner_client.post(reverse("portal:subscription_forecast"), form_data(purposes=["refinance"]))
    assert partial.status_code == 200
    assert partial.context["forecast"].matched == 0
    assert "<html" not in partial.content.decode()
    partial = owner_client.post(reverse("portal:subscription_forecast"), form_data(price="45.00"))
    assert (partial.context["forecast"].matched, partial.context["forecast"].won) == (2, 2)
    assert "a shared bid of $45.00 would have won" in partial.content.decode()
