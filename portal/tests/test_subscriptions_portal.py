"""Subscriptions in the portal: list, create, edit, pause, resume; errors beside fields; the forecast."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from core import staffconfig
from lenders.models import Subscription
from lenders.services import SUBSCRIPTION_FIELDS, subscription_save, subscription_set_active
from marketplace.analytics import subscription_forecast
from marketplace.models import MarketSettings, PriceFloor
from marketplace.services import lead_distribute, leads_distribute
from marketplace.tests.factories import MemberFactory, QualifiedLeadFactory, make_subscription

pytestmark = pytest.mark.django_db


def form_data(**over) -> dict:
    data = {
        "name": "Austin purchase",
        "purposes": ["purchase", "refinance"],
        "states": ["TX"],
        "min_credit_score": "660",
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
            min_credit_score="620",
        ),
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    assert response.url == reverse("portal:subscriptions")
    sub = Subscription.objects.get(lender=buying_lender, name="Austin purchase")
    assert sub.states == ["CA", "TX"]
    assert sub.purposes == ["purchase"] and sub.min_credit_score == 620
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
            min_credit_score="299",
        ),
    )
    errors = response.context["form"].errors
    assert "You are not licensed in NV" in errors["states"][0]
    assert "below the minimum" in errors["max_loan_amount"][0]
    assert errors["purposes"] == ["Choose at least one loan purpose."]
    assert "299 is not one of the available choices" in errors["min_credit_score"][0]
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
    qualified(credit_range="640_659")  # below the minimum
    qualified(state="CA", zip_code="90012", city="Los Angeles", county="Los Angeles County")  # other state
    qualified(status="not_qualified")

    base = {
        "lender_id": buying_lender.pk,
        "purposes": ["purchase"],
        "states": ["TX"],
        "min_credit_score": 660,
    }

    def won(**kw) -> tuple[int, int]:
        f = subscription_forecast(**base, **kw)
        return f.won_low, f.won_high

    with CaptureQueriesContext(connection) as q:
        f = subscription_forecast(**base, exclusive=False, price=Decimal("30.00"))
    assert len(q) == 2  # market settings, then one aggregate query
    # unsold + the free seat on the shared lead; not the $80 exclusive
    assert (f.matched, f.won_low, f.won_high) == (3, 2, 2)
    # Prices are compared in $5 steps: a bid in the same step as what beat it may go either way.
    assert won(exclusive=True, price=Decimal("41.00")) == (1, 2)  # the $41 shared sale: same step
    assert won(exclusive=True, price=Decimal("45.00")) == (2, 2)  # a step above it
    assert won(exclusive=True, price=Decimal("80.00")) == (2, 3)  # the $80 exclusive: same step
    assert won(exclusive=True, price=Decimal("85.00")) == (3, 3)
    assert won(exclusive=True, price=Decimal("39.99")) == (1, 1)
    assert won(price=None) == (None, None)
    assert subscription_forecast(**base, min_loan_amount=Decimal("400000")).matched == 0
    assert subscription_forecast(**base, max_ltv=Decimal("89")).matched == 0
    assert subscription_forecast(**base, zips=["78702"]).matched == 0
    assert subscription_forecast(**base, zips=["78701"]).matched == 3
    assert subscription_forecast(**base, radius_center_zip="78702", radius_miles=10).matched == 3
    assert subscription_forecast(**{**base, "min_credit_score": 640}).matched == 4
    assert subscription_forecast(**{**base, "min_credit_score": 661}).matched == 0  # 660-679 may be 660


def test_forecast_answers_only_for_licensed_states(buying_lender):
    """Issue 11.11: the forecast answered for states the lender is not licensed in."""
    qualified(state="NV", zip_code="89101", city="Las Vegas", county="Clark County")
    base = {"lender_id": buying_lender.pk, "purposes": ["purchase"], "min_credit_score": 300}
    assert subscription_forecast(**base, states=["NV"]).matched == 0
    assert subscription_forecast(**base, states=["TX", "NV"]).matched == 0


def rival_bought(rival_lender, n: int, *, price: str, exclusive: bool) -> None:
    make_subscription(rival_lender, name="rival", states=["TX"], price=price, exclusive=exclusive)
    leads_distribute(lead_ids=[qualified().pk for _ in range(n)])
    Subscription.objects.filter(lender=rival_lender).update(is_active=False)


@pytest.mark.parametrize("exclusive", [True, False])
def test_a_cent_either_side_of_a_rivals_bid_gets_the_same_answer(owner_client, rival_lender, exclusive):
    """Issue 11.11: bids of $52.99 and $53.00 against a rival's $53.00 flipped "0 would have won" to "1",
    which read the rival's bid to the cent. Prices are now compared in $5 steps and the answer is a range of
    the share won, so a cent (or a few dollars) inside one step changes nothing on the page."""
    MarketSettings.objects.update_or_create(pk=1, defaults={"shared_max_buyers": 1})  # no free seats
    staffconfig.clear()
    rival_bought(rival_lender, 12, price="53.00", exclusive=True)
    rival_bought(rival_lender, 12, price="30.00", exclusive=False)  # a lower step: won for sure
    kind = "exclusive" if exclusive else "shared"
    pages = {
        price: owner_client.post(
            reverse("portal:subscription_forecast"), form_data(price=price, exclusive=kind)
        ).content.decode()
        for price in ("52.99", "53.00", "53.01", "50.00", "54.99")
    }
    answers = {p: html.split("would have won", 1)[1].split("</p>", 1)[0] for p, html in pages.items()}
    assert len(set(answers.values())) == 1, answers
    assert "about <strong" in answers["53.00"] and "50–100%" in answers["53.00"]
    # A higher step wins the rival's leads for sure.
    higher = owner_client.post(
        reverse("portal:subscription_forecast"), form_data(price="55.00", exclusive=kind)
    )
    assert "90–100%" in higher.content.decode()


def test_few_matched_leads_get_no_win_estimate(owner_client, rival_lender):
    """Issue 11.11: with a lead or two, any estimate would say what one rival paid for them."""
    rival_bought(rival_lender, 3, price="53.00", exclusive=True)
    response = owner_client.post(reverse("portal:subscription_forecast"), form_data(price="60.00"))
    html = response.content.decode()
    assert response.context["forecast"].matched == 3 and "Too few leads matched" in html
    assert "would have won" not in html


@pytest.mark.parametrize(
    "over",
    [
        {"states": ["TX", "NV"]},  # not licensed in NV
        {"radius_center_zip": "78701", "radius_miles": "5000"},
        {"zip_codes": "7870x"},
        {"min_credit_score": "900"},
    ],
)
def test_forecast_runs_only_on_terms_that_could_be_saved(owner_client, over):
    """Issue 11.11: the forecast ran on unvalidated input (unlicensed states, a 5,000-mile radius)."""
    qualified()
    response = owner_client.post(reverse("portal:subscription_forecast"), form_data(**over))
    assert response.status_code == 200 and response.context["forecast"] is None
    assert "Fix the highlighted filters to see a forecast" in response.content.decode()


@pytest.mark.parametrize("price", ["20.00", "1000.01", "abc"])
def test_a_price_out_of_bounds_gets_no_win_estimate(owner_client, floors, price):
    """Issue 11.11: the win estimate answers only for a price between the floor and the maximum bid."""
    qualified()
    response = owner_client.post(reverse("portal:subscription_forecast"), form_data(price=price))
    forecast = response.context["forecast"]
    assert forecast.matched == 1 and forecast.won_low is None
    assert "Enter a price (at least the floor)" in response.content.decode()


def test_forecast_query_count_does_not_grow_with_history(buying_lender, rival_lender):
    base = {
        "lender_id": buying_lender.pk,
        "purposes": ["purchase"],
        "states": ["TX"],
        "min_credit_score": 660,
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
        "min_credit_score": 660,
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
    assert (partial.context["forecast"].matched, partial.context["forecast"].won_high) == (2, 2)
    assert "Too few leads matched" in partial.content.decode()
    for _ in range(8):
        qualified()
    partial = owner_client.post(reverse("portal:subscription_forecast"), form_data(price="45.00"))
    assert "A shared bid of $45.00\n  would have won about" in partial.content.decode()


# --- edits and the sale counters (issue 11.2) ----------------------------------------------------------


def test_an_edit_from_a_stale_copy_keeps_the_sale_counters(buying_lender):
    """Issue 11.2: a subscription form loaded before a sale and saved after it wrote the whole row back:
    day_count returned to 0 and a daily cap of 1 sold twice. An edit writes only what it edits."""
    sub = make_subscription(buying_lender, name="One a day", states=["TX"], price="40.00", daily_cap=1)
    stale = Subscription.objects.get(pk=sub.pk)  # the copy an edit form was built from
    assert lead_distribute(lead_id=qualified().pk)  # the day's one lead is sold
    fresh = Subscription.objects.get(pk=sub.pk)
    assert fresh.day_count == 1 and fresh.month_spend == Decimal("40.00")

    subscription_save(
        lender=buying_lender,
        data={**{f: getattr(stale, f) for f in SUBSCRIPTION_FIELDS}, "name": "Renamed"},
        states=["TX"],
        subscription=stale,
    )
    saved = Subscription.objects.get(pk=sub.pk)
    assert saved.name == "Renamed"
    assert (saved.day_key, saved.day_count, saved.month_count, saved.month_spend) == (
        fresh.day_key,
        1,
        1,
        Decimal("40.00"),
    )
    assert lead_distribute(lead_id=qualified().pk) == []  # the cap of 1 holds: no second sale today


def test_an_edit_through_the_portal_keeps_the_sale_counters(buying_lender, owner_client):
    """Issue 11.2, through the page: the posted form carries no counter, and saving it keeps them."""
    sub = make_subscription(buying_lender, name="One a day", states=["TX"], price="40.00", daily_cap=1)
    assert lead_distribute(lead_id=qualified().pk)
    response = owner_client.post(
        reverse("portal:subscription_edit", args=[sub.pk]),
        form_data(name="Renamed", daily_cap="1", price="40.00", purposes=["purchase"]),
    )
    assert response.status_code == 302
    saved = Subscription.objects.get(pk=sub.pk)
    assert saved.name == "Renamed" and saved.day_count == 1 and saved.month_spend == Decimal("40.00")
    assert lead_distribute(lead_id=qualified().pk) == []


def test_credit_is_one_minimum_score_and_a_migrated_minimum_is_kept(owner_client, buying_lender):
    """Issue 12.5: the filter is one select of the thresholds, not a checkbox per range; a minimum migrated
    from the old bands ("good": 670) shows on the edit page and survives a save."""
    page = owner_client.get(reverse("portal:subscription_create")).content.decode()
    assert '<select name="min_credit_score"' in page and 'name="credit_bands"' not in page
    assert "620 or higher (conventional and VA)" in page and "700 or higher (jumbo)" in page
    sub = make_subscription(
        buying_lender, name="Was good", states=["TX"], price="40.00", min_credit_score=670
    )
    edit = owner_client.get(reverse("portal:subscription_edit", args=[sub.pk])).content.decode()
    assert '<option value="670" selected>670 or higher</option>' in edit
    response = owner_client.post(
        reverse("portal:subscription_edit", args=[sub.pk]), form_data(name="Was good", min_credit_score="670")
    )
    assert response.status_code == 302
    sub.refresh_from_db()
    assert sub.min_credit_score == 670


def test_an_edit_from_a_stale_copy_does_not_undo_a_pause(buying_lender):
    """Issue 11.2's kin: an edit that does not give `is_active` (the portal's never does) keeps a pause made
    after its copy was loaded."""
    sub = make_subscription(buying_lender, name="Paused meanwhile", states=["TX"], price="40.00")
    stale = Subscription.objects.get(pk=sub.pk)
    subscription_set_active(subscription=Subscription.objects.get(pk=sub.pk), active=False)
    subscription_save(lender=buying_lender, data={"name": "Renamed"}, states=["TX"], subscription=stale)
    saved = Subscription.objects.get(pk=sub.pk)
    assert saved.name == "Renamed" and saved.is_active is False
