"""The billing page: balance, credit, low-balance threshold, the ledger with its running balance, CSV."""

import csv
import io
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from billing.models import Account, LedgerEntry
from billing.services import account_adjust, account_top_up
from portal.billing import LEDGER_PAGE_SIZE

pytestmark = pytest.mark.django_db


@pytest.fixture
def account(buying_lender) -> Account:
    return Account.objects.get(lender=buying_lender)


@pytest.fixture
def owner_client(client, owner):
    client.force_login(owner)
    return client


def test_shows_balance_credit_threshold_and_running_balance(owner_client, account):
    Account.objects.filter(pk=account.pk).update(credit_limit=Decimal("250.00"))
    account_adjust(account_id=account.pk, amount=Decimal("-1200.00"), memo="Chargeback")
    page = owner_client.get(reverse("portal:billing"))
    assert page.status_code == 200
    html = page.content.decode()
    assert "−$200.00" in html  # balance after 1000 − 1200, with a real minus sign
    assert "$250.00" in html and "$50.00" in html  # credit limit, available
    assert "Below your low-balance threshold" in html
    assert "+$1,000.00" in html and "−$1,200.00" in html and "Chargeback" in html
    entries = page.context["entries"]
    assert [e.balance_after for e in entries] == [Decimal("-200.00"), Decimal("1000.00")]


def test_ledger_is_paged_newest_first_with_a_fixed_query_count(owner_client, account):
    with CaptureQueriesContext(connection) as few:
        owner_client.get(reverse("portal:billing"))
    for i in range(LEDGER_PAGE_SIZE + 5):
        account_top_up(account_id=account.pk, amount=Decimal("1.00"), memo=f"top-up {i}")
    with CaptureQueriesContext(connection) as many:
        page = owner_client.get(reverse("portal:billing"))
    # session, user, membership, account, the ledger page (no count: keyset pages)
    assert len(few) == len(many) == 5
    assert len(page.context["entries"]) == LEDGER_PAGE_SIZE
    older = page.context["page_obj"].next_query
    assert f"?{older}" in page.content.decode()  # the "Older" link
    with CaptureQueriesContext(connection) as deep:
        second = owner_client.get(reverse("portal:billing") + f"?{older}")
    assert len(deep) == 5
    assert len(second.context["entries"]) == 6
    assert "Opening balance" in second.content.decode()
    back = owner_client.get(reverse("portal:billing") + f"?{second.context['page_obj'].previous_query}")
    assert [e.pk for e in back.context["entries"]] == [e.pk for e in page.context["entries"]]


def test_paging_visits_every_entry_once_even_when_times_are_equal(owner_client, account):
    """Entries written by one batch can share a time to the microsecond: the cursor's id settles them."""
    when = timezone.now()
    LedgerEntry.objects.bulk_create(
        [
            LedgerEntry(account=account, kind="top_up", amount=1, balance_after=1000 + i, created_at=when)
            for i in range(1, 2 * LEDGER_PAGE_SIZE + 3)
        ]
    )
    seen, query = [], ""
    while True:
        page = owner_client.get(reverse("portal:billing") + (f"?{query}" if query else ""))
        seen += [e.pk for e in page.context["entries"]]
        if not page.context["page_obj"].has_next:
            break
        query = page.context["page_obj"].next_query
    expected = list(
        LedgerEntry.objects.filter(account=account)
        .order_by("-created_at", "-id")
        .values_list("pk", flat=True)
    )
    assert seen == expected and len(seen) == 2 * LEDGER_PAGE_SIZE + 3


@pytest.mark.parametrize(
    "cursor", ["older_than=abc", "older_than=1.2.3", "newer_than=99999999999999999.1", "older_than=5.-1"]
)
def test_a_page_link_edited_by_hand_is_a_400_with_the_first_page(owner_client, account, cursor):
    page = owner_client.get(reverse("portal:billing") + f"?{cursor}")
    assert page.status_code == 400
    assert "not one of ours" in page.content.decode()
    assert [e.memo for e in page.context["entries"]] == ["Opening balance"]


def test_owner_changes_the_threshold(owner_client, account):
    response = owner_client.post(reverse("portal:billing"), {"low_balance_threshold": "500.00"})
    assert response.status_code == 302
    account.refresh_from_db()
    assert account.low_balance_threshold == Decimal("500.00")
    bad = owner_client.post(reverse("portal:billing"), {"low_balance_threshold": "-5"})
    assert bad.status_code == 400
    assert bad.context["threshold_form"].errors["low_balance_threshold"]


def test_csv_download_is_complete_and_injection_safe(owner_client, account):
    account_adjust(account_id=account.pk, amount=Decimal("-10.00"), memo='=HYPERLINK("http://evil")')
    account_top_up(account_id=account.pk, amount=Decimal("5.00"), memo="@SUM(A1)")
    response = owner_client.get(reverse("portal:billing_csv"))
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0] == ["time", "entry", "amount", "balance after", "memo"]
    assert len(rows) == 1 + LedgerEntry.objects.filter(account=account).count()
    memos = [r[4] for r in rows[1:]]
    assert '\'=HYPERLINK("http://evil")' in memos and "'@SUM(A1)" in memos
    amounts = [r[2] for r in rows[1:]]
    assert "-10.00" in amounts  # numbers stay numbers


def test_officer_cannot_reach_billing(client, officer, account):
    client.force_login(officer)
    assert client.get(reverse("portal:billing")).status_code == 403
    assert client.get(reverse("portal:billing_csv")).status_code == 403
    assert client.post(reverse("portal:billing"), {"low_balance_threshold": "1"}).status_code == 403
    account.refresh_from_db()
    assert account.low_balance_threshold == Decimal("200.00")


def test_another_lender_sees_only_its_own_ledger(client, rival_owner, account):
    account_top_up(account_id=account.pk, amount=Decimal("7.77"), memo="ours-only")
    client.force_login(rival_owner)
    html = client.get(reverse("portal:billing")).content.decode()
    assert "ours-only" not in html and "$7.77" not in html
    body = b"".join(client.get(reverse("portal:billing_csv")).streaming_content).decode()
    assert "ours-only" not in body
