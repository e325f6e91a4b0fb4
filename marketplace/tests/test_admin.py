"""Staff admin: changelists that stay cheap as tables grow, actions that go through services, and records
that nobody may change (ledger entries, consent)."""

from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from billing.models import LedgerEntry
from billing.selectors import account_ledger_total
from leads.models import ConsentRecord
from lenders.models import Subscription
from marketplace.models import MarketSettings
from marketplace.services import lead_distribute
from marketplace.tests.factories import QualifiedLeadFactory, make_subscription

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client, staff):
    client.force_login(staff)
    return client


@pytest.fixture
def market(buying_lender, rival_lender):
    """Two lenders bidding on shared Texas leads, so every sale makes two deliveries and two charges."""
    make_subscription(buying_lender, states=["TX"], price="40.00")
    make_subscription(rival_lender, states=["TX"], price="35.00")


def sell_leads(n: int) -> None:
    for _ in range(n):
        lead = QualifiedLeadFactory()
        ConsentRecord.objects.create(lead=lead, text="I agree.", ip_address="203.0.113.7")
        lead_distribute(lead_id=lead.pk)


def count_queries(client, url: str) -> int:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
    assert response.status_code == 200
    return len(ctx.captured_queries)


@pytest.mark.parametrize(
    "changelist",
    [
        "admin:leads_lead_changelist",
        "admin:marketplace_delivery_changelist",
        "admin:billing_ledgerentry_changelist",
        "admin:lenders_subscription_changelist",
        "admin:billing_account_changelist",
        "admin:lenders_lender_changelist",
        "admin:leads_consentrecord_changelist",
    ],
)
def test_changelists_load_with_a_fixed_query_count(staff_client, market, changelist):
    url = reverse(changelist)
    sell_leads(1)
    with_one = count_queries(staff_client, url)
    sell_leads(6)
    # Related rows come from joins (list_select_related) or one prefetch per relation, never one per row.
    assert count_queries(staff_client, url) == with_one


@pytest.mark.parametrize(
    "model",
    [
        "leads/lead",
        "leads/consumer",
        "leads/consentrecord",
        "leads/guidelineset",
        "leads/countyloanlimit",
        "lenders/lender",
        "lenders/subscription",
        "lenders/membership",
        "billing/account",
        "billing/ledgerentry",
        "marketplace/delivery",
        "marketplace/pricefloor",
        "marketplace/marketsettings",
    ],
)
def test_every_model_has_a_changelist(staff_client, model):
    assert staff_client.get(f"/admin/{model}/").status_code == 200


def test_change_pages_render(staff_client, market, buying_lender):
    sell_leads(1)
    lead = QualifiedLeadFactory._meta.model.objects.get()
    sub = Subscription.objects.filter(lender=buying_lender).get()
    for url in (
        reverse("admin:leads_lead_change", args=[lead.pk]),
        reverse("admin:lenders_lender_change", args=[buying_lender.pk]),
        reverse("admin:lenders_subscription_change", args=[sub.pk]),
        reverse("admin:billing_account_change", args=[buying_lender.account.pk]),
        reverse("admin:marketplace_delivery_change", args=[lead.deliveries.first().pk]),
    ):
        assert staff_client.get(url).status_code == 200, url


def test_lead_page_shows_qualification_and_trace_as_escaped_tables(staff_client, market):
    lead = QualifiedLeadFactory(
        qualification={
            "qualified": True,
            "reasons": ["<script>alert(1)</script>"],
            "results": [{"product": "fha", "eligible": True, "max_loan": "420000.00"}],
        }
    )
    lead_distribute(lead_id=lead.pk)
    html = staff_client.get(reverse("admin:leads_lead_change", args=[lead.pk])).content.decode()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script>alert(1)" not in html
    assert "420000.00" in html
    assert "Attempt 1 at" in html and "Lone Star Lending" in html and "won" in html


def test_redistribute_queues_only_sellable_leads(
    staff_client, buying_lender, django_capture_on_commit_callbacks
):
    unsold = QualifiedLeadFactory(status="unsold")
    not_qualified = QualifiedLeadFactory(status="not_qualified")
    make_subscription(buying_lender, states=["TX"], price="40.00")  # a buyer has appeared since

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = staff_client.post(
            reverse("admin:leads_lead_changelist"),
            {"action": "redistribute", "_selected_action": [unsold.pk, not_qualified.pk]},
            follow=True,
        )

    html = response.content.decode()
    assert "1 lead(s) queued for distribution." in html
    assert f"#{not_qualified.pk}" in html and "only qualified or unsold" in html
    assert callbacks  # the distribute task was enqueued on commit, not run inside the request
    unsold.refresh_from_db()
    not_qualified.refresh_from_db()
    assert unsold.status == "sold" and unsold.deliveries.get().lender == buying_lender
    assert not_qualified.status == "not_qualified"


def test_ledger_entries_cannot_be_changed_in_admin(staff_client, buying_lender):
    entry = LedgerEntry.objects.get(account__lender=buying_lender)  # the opening top-up
    url = reverse("admin:billing_ledgerentry_change", args=[entry.pk])

    page = staff_client.get(url)
    assert page.status_code == 200
    assert 'name="amount"' not in page.content.decode() and 'name="_save"' not in page.content.decode()
    assert staff_client.post(url, {"amount": "999999.00", "kind": "top_up"}).status_code == 403
    assert staff_client.get(reverse("admin:billing_ledgerentry_add")).status_code == 403
    assert (
        staff_client.post(
            reverse("admin:billing_ledgerentry_delete", args=[entry.pk]), {"post": "yes"}
        ).status_code
        == 403
    )
    entry.refresh_from_db()
    assert entry.amount == Decimal("1000.00")


def test_consent_records_cannot_be_changed_in_admin(staff_client):
    lead = QualifiedLeadFactory()
    consent = ConsentRecord.objects.create(lead=lead, text="I agree.", ip_address="203.0.113.7")
    url = reverse("admin:leads_consentrecord_change", args=[consent.pk])

    page = staff_client.get(url)
    assert page.status_code == 200 and "I agree." in page.content.decode()
    assert 'name="text"' not in page.content.decode()
    assert staff_client.post(url, {"text": "Something else"}).status_code == 403
    assert (
        staff_client.post(
            reverse("admin:leads_consentrecord_delete", args=[consent.pk]), {"post": "yes"}
        ).status_code
        == 403
    )
    consent.refresh_from_db()
    assert consent.text == "I agree."


def test_account_balance_is_not_editable(staff_client, buying_lender):
    account = buying_lender.account
    url = reverse("admin:billing_account_change", args=[account.pk])
    html = staff_client.get(url).content.decode()
    assert 'name="balance"' not in html and 'name="credit_limit"' in html
    staff_client.post(
        url,
        {
            "balance": "5000000",
            "credit_limit": "100.00",
            "low_balance_threshold": "50.00",
            "entries-TOTAL_FORMS": "0",
            "entries-INITIAL_FORMS": "0",
        },
    )
    account.refresh_from_db()
    assert account.balance == Decimal("1000.00") and account.credit_limit == Decimal("100.00")


def test_a_top_up_through_admin_posts_an_entry_and_the_balance_follows_the_ledger(
    staff_client, buying_lender
):
    account = buying_lender.account
    url = reverse("admin:billing_account_post_entry", args=[account.pk])
    assert staff_client.get(url).status_code == 200

    response = staff_client.post(url, {"kind": "top_up", "amount": "250.00", "memo": "Wire 42"})
    assert response.status_code == 302
    entry = LedgerEntry.objects.filter(account=account).first()  # newest first
    assert (entry.kind, entry.amount, entry.memo, entry.created_by.username) == (
        "top_up",
        Decimal("250.00"),
        "Wire 42",
        "staff",
    )
    staff_client.post(url, {"kind": "adjustment", "amount": "-50.00", "memo": "Duplicate wire"})
    staff_client.post(url, {"kind": "credit", "amount": "10.00", "memo": "Bad lead #7"})

    account.refresh_from_db()
    assert account.balance == Decimal("1210.00") == account_ledger_total(account=account)
    assert LedgerEntry.objects.filter(account=account).count() == 4


def test_a_credit_without_a_memo_is_refused(staff_client, buying_lender):
    url = reverse("admin:billing_account_post_entry", args=[buying_lender.account.pk])
    response = staff_client.post(url, {"kind": "credit", "amount": "10.00", "memo": ""})
    assert response.status_code == 200 and "Say why" in response.content.decode()
    assert LedgerEntry.objects.filter(account__lender=buying_lender).count() == 1


def test_subscription_admin_validates_like_the_portal(staff_client, buying_lender):
    data = {
        "lender": buying_lender.pk,
        "name": "Texas purchase",
        "is_active": "on",
        "price": "40.00",
        "purposes": ["purchase"],
        "min_credit_score": "670",
        "schedule_days": "0123456",
        "states": "TX, NY",
        "zip_codes": "",
    }
    response = staff_client.post(reverse("admin:lenders_subscription_add"), data)
    assert response.status_code == 200
    assert "You are not licensed in NY" in response.content.decode()
    assert not Subscription.objects.exists()

    response = staff_client.post(reverse("admin:lenders_subscription_add"), {**data, "states": "tx ca"})
    assert response.status_code == 302
    sub = Subscription.objects.get()
    assert sub.states == ["CA", "TX"] and sub.lender == buying_lender


def test_pause_and_resume_lender_actions(staff_client, buying_lender):
    url = reverse("admin:lenders_lender_changelist")
    staff_client.post(url, {"action": "pause", "_selected_action": [buying_lender.pk]})
    buying_lender.refresh_from_db()
    assert buying_lender.status == "paused"
    staff_client.post(url, {"action": "resume", "_selected_action": [buying_lender.pk]})
    buying_lender.refresh_from_db()
    assert buying_lender.status == "active"


def test_market_settings_is_a_singleton(staff_client):
    assert staff_client.get(reverse("admin:marketplace_marketsettings_add")).status_code == 200
    MarketSettings.load()
    assert staff_client.get(reverse("admin:marketplace_marketsettings_add")).status_code == 403


def test_a_lender_added_in_admin_gets_an_account(client, staff):
    from billing.models import Account
    from lenders.models import Lender

    client.force_login(staff)
    response = client.post(
        "/admin/lenders/lender/add/",
        {
            "name": "New Lender",
            "nmls_id": "777",
            "time_zone": "America/Chicago",
            "status": "active",
            "licenses-TOTAL_FORMS": "0",
            "licenses-INITIAL_FORMS": "0",
            "memberships-TOTAL_FORMS": "0",
            "memberships-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 302, response.content[:2000]
    assert Account.objects.filter(lender=Lender.objects.get(name="New Lender"), balance=0).exists()
