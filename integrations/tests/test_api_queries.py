"""Query counts of the API's reads, partner and lender: fixed whatever the number of rows, each expected
query named (as the portal's list pages are). A count that grows with the page is an N+1 a client pays
for on every poll.

Each test makes the key's first request, so the once-a-minute `last_used_at` write is always one query."""

import pytest

from billing.models import LedgerEntry
from marketplace.services import lead_distribute
from marketplace.tests.factories import QualifiedLeadFactory, make_subscription

pytestmark = pytest.mark.django_db

# Issue 13.7: the API list endpoints get query-count assertions like the portal's, at one row and many.
ROWS = [1, 10]  # the buying lender's 1000.00 buys eleven leads at 90.00


def sell_more(count: int) -> None:
    """`count` more leads sold to the buying lender (its exclusive subscription from the `delivery`
    fixture), each with its charge in the ledger."""
    for _ in range(count):
        lead_distribute(lead_id=QualifiedLeadFactory().pk)


@pytest.mark.parametrize("rows", ROWS)
def test_deliveries_list_query_count_does_not_grow_with_rows(
    lender_api, delivery, rival_delivery, django_assert_num_queries, rows
):
    sell_more(rows - 1)
    # 1 the API key with its partner and lender joined, 2 the key's last_used_at (first use),
    # 3 the page of the lender's deliveries with their leads joined (cursor pages need no count).
    with django_assert_num_queries(3):
        response = lender_api.get("/api/v1/deliveries/")
    assert response.status_code == 200
    assert len(response.json()["results"]) == rows  # the rival's delivery is not listed


@pytest.mark.parametrize("rows", ROWS)
def test_filtered_deliveries_list_query_count_does_not_grow_with_rows(
    lender_api, delivery, django_assert_num_queries, rows
):
    sell_more(rows - 1)
    filters = {"status": "new", "purpose": "purchase", "since": "2020-01-01T00:00:00Z", "page_size": 5}
    # 1 the key, 2 its last_used_at, 3 the filtered page with leads joined: the filters are WHERE clauses
    # of that one query, not queries of their own.
    with django_assert_num_queries(3):
        response = lender_api.get("/api/v1/deliveries/", filters)
    assert response.status_code == 200
    assert len(response.json()["results"]) == min(rows, 5)


def test_the_next_deliveries_page_costs_what_the_first_did(lender_api, delivery, django_assert_num_queries):
    sell_more(9)
    first = lender_api.get("/api/v1/deliveries/", {"page_size": 5}).json()
    # 1 the key (its last_used_at was written by the first page, a minute has not passed), 2 the page after
    # the cursor's position with leads joined.
    with django_assert_num_queries(2):
        response = lender_api.get(first["next"])
    assert len(response.json()["results"]) == 5


@pytest.mark.parametrize("rows", ROWS)
def test_ledger_query_count_does_not_grow_with_rows(
    lender_api, buying_lender, delivery, django_assert_num_queries, rows
):
    sell_more(rows - 1)
    entries = LedgerEntry.objects.filter(account__lender=buying_lender).count()  # the top-up and the charges
    # 1 the key, 2 its last_used_at, 3 the lender's account, 4 the page of its ledger entries.
    with django_assert_num_queries(4):
        response = lender_api.get("/api/v1/account/ledger/")
    assert response.status_code == 200
    assert len(response.json()["results"]) == entries == rows + 1


def test_account_query_count(lender_api, delivery, django_assert_num_queries):
    # 1 the key, 2 its last_used_at, 3 the lender's account.
    with django_assert_num_queries(3):
        response = lender_api.get("/api/v1/account/")
    assert response.status_code == 200


@pytest.mark.parametrize("rows", ROWS)
def test_delivery_detail_query_count_does_not_grow_with_the_lenders_deliveries(
    lender_api, delivery, django_assert_num_queries, rows
):
    sell_more(rows - 1)
    # 1 the key, 2 its last_used_at, 3 the delivery with lead, consumer, consent and subscription joined,
    # 4 the contact-access record (full contact details left the marketplace).
    with django_assert_num_queries(4):
        response = lender_api.get(f"/api/v1/deliveries/{delivery.pk}/")
    assert response.status_code == 200
    assert response.json()["contact"]["email"] == delivery.lead.consumer.email


def test_partner_lead_detail_query_count(partner_api, partner, buying_lender, django_assert_num_queries):
    make_subscription(buying_lender, price="50.00")
    lead = QualifiedLeadFactory(source=partner)
    lead_distribute(lead_id=lead.pk)
    # 1 the key with its partner joined, 2 its last_used_at, 3 the lead, scoped to the key's partner (its
    # qualification and attribution are columns of the lead: no further reads).
    with django_assert_num_queries(3):
        response = partner_api.get(f"/api/v1/leads/{lead.public_id}/")
    assert response.status_code == 200
    assert response.json()["status"] == "sold"
