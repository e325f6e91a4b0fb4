"""The inbox's reads at scale (issue 14): what they read and what the live refresh notices; the figures are
in bench/reads.py and the README."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from marketplace.models import Delivery
from marketplace.selectors import inbox_version
from marketplace.services import delivery_reassign, lead_distribute
from marketplace.tests.factories import (
    ConsumerFactory,
    MemberFactory,
    QualifiedLeadFactory,
    make_subscription,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def owner_client(client: Client, owner) -> Client:
    client.force_login(owner)
    return client


CALIFORNIA = {"zip_code": "90012", "city": "Los Angeles", "state": "CA", "county": "Los Angeles County"}


def sell(lender, where=None, **consumer) -> Delivery:
    lead = QualifiedLeadFactory(consumer=ConsumerFactory(**consumer), **(where or {}))
    return next(d for d in lead_distribute(lead_id=lead.pk) if d.lender_id == lender.pk)


@pytest.fixture
def people(buying_lender, rival_lender):
    make_subscription(buying_lender, states=["TX"], price="40.00")
    make_subscription(rival_lender, states=["CA"], price="40.00")
    return {
        "maria": sell(
            buying_lender,
            first_name="Maria",
            last_name="Gonzalez",
            email="maria.g@example.com",
            phone="5125550142",
        ),  # fmt: skip
        "john": sell(
            buying_lender,
            first_name="John",
            last_name="Smith",
            email="jsmith@example.org",
            phone="7135550199",
        ),  # fmt: skip
    }


def names(client, q: str) -> list[str]:
    html = client.get(reverse("portal:inbox"), {"q": q}).content.decode()
    return sorted(n for n in ("Maria", "John") if f">{n} " in html)


@pytest.mark.parametrize(
    "q, found",
    [
        ("gonzalez", ["Maria"]),
        ("MARIA GONZ", ["Maria"]),
        ("maria.g@", ["Maria"]),
        ("example.org", ["John"]),
        ("(713) 555-0199", ["John"]),
        ("555-01", ["John", "Maria"]),
        ("0142", ["Maria"]),
        ("nobody", []),
    ],
)
def test_search_by_name_e_mail_or_phone(owner_client, people, q, found):
    assert names(owner_client, q) == found


def test_search_never_finds_another_lenders_leads(client, owner_client, rival_owner, rival_lender, people):
    theirs = sell(rival_lender, CALIFORNIA, first_name="Marisol", last_name="Gonzalez", phone="2135550142")
    assert names(owner_client, "gonzalez") == ["Maria"]
    assert "Marisol" not in owner_client.get(reverse("portal:inbox"), {"q": "0142"}).content.decode()
    client.force_login(rival_owner)
    html = client.get(reverse("portal:inbox"), {"q": "gonzalez"}).content.decode()
    assert f'id="lead-{theirs.pk}"' in html and "Maria " not in html


def test_the_inbox_never_reads_the_leads_json(owner_client, people):
    with CaptureQueriesContext(connection) as queries:
        owner_client.get(reverse("portal:inbox"), {"q": "maria"})
    page = [q["sql"] for q in queries if "leads_consumer" in q["sql"] and "marketplace_delivery" in q["sql"]]
    assert page, "the page's query"
    assert all('"qualification"' not in sql and '"distribution_trace"' not in sql for sql in page)


def test_the_version_moves_for_a_change_committed_after_a_later_one(people, buying_lender):
    """A sale's transaction stamps its rows a moment before it commits: a change stamped earlier than the
    latest one seen must still move the version (it is counted within the window)."""
    maria, john = people["maria"], people["john"]
    now = timezone.now()
    Delivery.objects.filter(pk=john.pk).update(touched_at=now)
    Delivery.objects.filter(pk=maria.pk).update(touched_at=now - timedelta(hours=1))
    seen = inbox_version(lender_id=buying_lender.pk)
    # Maria's change, stamped before John's, commits after the refresh above.
    Delivery.objects.filter(pk=maria.pk).update(touched_at=now - timedelta(seconds=1))
    assert inbox_version(lender_id=buying_lender.pk) != seen


def test_a_lead_reassigned_away_refreshes_the_officers_list(client, buying_lender, officer, people):
    colleague = MemberFactory(lender=buying_lender, role="officer", username="officer2")
    mine = people["maria"]
    delivery_reassign(delivery=mine, membership=officer.membership)
    client.force_login(officer)
    html = client.get(reverse("portal:inbox")).content.decode()
    version = html.split('data-version="', 1)[1].split('"', 1)[0]
    assert client.get(reverse("portal:inbox_rows"), {"since": version}).status_code == 204
    delivery_reassign(delivery=mine, membership=colleague)
    refreshed = client.get(reverse("portal:inbox_rows"), {"since": version})
    assert refreshed.status_code == 200 and "Maria" not in refreshed.content.decode()
