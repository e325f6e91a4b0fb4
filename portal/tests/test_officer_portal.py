"""The portal a loan officer lives in (issue 15, section 5), walked as the officer assigned to a lead:
reaching the consumer moves the lead on, the response time in words, the letter in the officer's name,
messages that say what is missing, analytics of their own leads. A rival lender's officer sees and moves
nothing of ours; an officer never reaches a manager-only action."""

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from integrations.models import ApiKey, WebhookEndpoint, WebhookMessage
from integrations.services import api_key_create, webhook_secret_new
from integrations.tests.conftest import Api
from marketplace.models import Activity, Delivery
from marketplace.services import activity_log, delivery_set_status
from marketplace.tests.factories import MemberFactory, make_subscription

from .test_portal import sell

pytestmark = pytest.mark.django_db


def url(name: str, *args) -> str:
    return reverse(f"portal:{name}", args=args)


@pytest.fixture
def our_subscription(buying_lender):
    return make_subscription(buying_lender, states=["TX"], price="40.00")


@pytest.fixture
def delivery(our_subscription, buying_lender, officer) -> Delivery:
    """Maria's lead, sold to us and assigned to our officer."""
    d = sell(buying_lender, first_name="Maria")
    Delivery.objects.filter(pk=d.pk).update(assigned_to=officer)
    d.refresh_from_db()
    return d


@pytest.fixture
def officer_client(client: Client, officer) -> Client:
    client.force_login(officer)
    return client


@pytest.fixture
def rival_officer(rival_lender):
    return MemberFactory(lender=rival_lender, role="officer", username="rival-officer").user


def inbox_row(html: str, first_name: str) -> str:
    """The inbox's <tr> of the consumer with this first name."""
    before, after = html.split(f">{first_name} ", 1)
    return "<tr" + before.rsplit("<tr", 1)[1] + after.split("</tr>", 1)[0]


def page(client: Client, d: Delivery) -> str:
    response = client.get(url("delivery_detail", d.pk))
    assert response.status_code == 200
    return response.content.decode()


# --- 1. reaching the consumer moves the lead to Contacted --------------------------------------------


def test_a_reached_call_moves_a_new_lead_to_contacted(officer_client, delivery, buying_lender):
    endpoint = WebhookEndpoint.objects.create(
        lender=buying_lender,
        url="https://crm.example/hook",
        secret=webhook_secret_new(),
        events=["delivery.updated"],
    )
    assert "Mark contacted" in page(officer_client, delivery)

    response = officer_client.post(
        url("delivery_activity", delivery.pk), {"kind": "call", "outcome": "reached", "note": "Wants a quote"}
    )

    assert response.status_code == 302
    delivery.refresh_from_db()
    assert delivery.status == "contacted" and delivery.first_contact_at is not None
    html = officer_client.get(response["Location"]).content.decode()
    assert "Call logged. Lead moved to Contacted." in html
    assert 'badge--contacted">Contacted' in html
    assert "Mark contacted" not in html  # the move is made; what is left is application or lost
    assert "Mark application" in html
    # A CRM listening for status changes hears about this one as about any other.
    message = WebhookMessage.objects.get(endpoint=endpoint)
    assert message.event_type == "delivery.updated" and message.payload["data"]["status"] == "contacted"


@pytest.mark.parametrize("outcome", ["voicemail", "no_answer", "wrong_number"])
def test_an_attempt_that_did_not_reach_them_leaves_the_lead_new(officer_client, delivery, outcome):
    officer_client.post(url("delivery_activity", delivery.pk), {"kind": "call", "outcome": outcome})

    delivery.refresh_from_db()
    assert delivery.status == "new"
    assert delivery.first_contact_at is not None  # an attempt still stops the response clock
    assert "Mark contacted" in page(officer_client, delivery)


def test_reaching_them_later_in_the_pipeline_moves_nothing(officer, delivery):
    delivery_set_status(delivery=delivery, status="contacted")
    delivery_set_status(delivery=delivery, status="application")

    activity_log(delivery=delivery, user=officer, kind="call", outcome="reached")
    delivery.refresh_from_db()
    assert delivery.status == "application"

    delivery_set_status(delivery=delivery, status="lost", lost_reason="Went elsewhere")
    activity_log(delivery=delivery, user=officer, kind="email", outcome="reached")  # no error, no move
    delivery.refresh_from_db()
    assert delivery.status == "lost" and Activity.objects.filter(delivery=delivery).count() == 2


def test_a_note_saying_reached_is_not_contact(officer, delivery):
    activity_log(delivery=delivery, user=officer, kind="note", outcome="reached", note="Reached? Not yet")
    delivery.refresh_from_db()
    assert delivery.status == "new" and delivery.first_contact_at is None


def test_a_reached_call_through_the_api_moves_it_too(delivery, buying_lender):
    key = api_key_create(lender=buying_lender, name="CRM", scope=ApiKey.Scope.WRITE).key
    response = Api(key).post(
        f"/api/v1/deliveries/{delivery.pk}/activities/", {"kind": "text", "outcome": "reached"}
    )
    assert response.status_code == 201
    delivery.refresh_from_db()
    assert delivery.status == "contacted"


def test_a_rival_officer_cannot_log_on_our_lead_or_move_it(client, rival_officer, delivery):
    client.force_login(rival_officer)
    response = client.post(url("delivery_activity", delivery.pk), {"kind": "call", "outcome": "reached"})
    assert response.status_code == 404
    delivery.refresh_from_db()
    assert delivery.status == "new" and delivery.first_contact_at is None
    assert not Activity.objects.exists()


# --- 2. the response time, in words; the inbox's clock stops at first contact --------------------------


@pytest.mark.parametrize(
    "seconds,words",
    [
        (0, "0 s"),
        (40, "40 s"),
        (60, "1 min"),
        (200, "3 min 20 s"),
        (2040, "34 min"),
        (3600, "1 h"),
        (7500, "2 h 5 min"),
        (86400 * 3 + 3600 * 4 + 59, "3 d 4 h"),
        (-5, "0 s"),  # a clock skew never shows a negative time
    ],
)
def test_duration_in_words(seconds, words):
    from portal.shared import duration

    assert duration(seconds) == words


def _contacted_after(d: Delivery, seconds: int) -> None:
    """The lead as if delivered `seconds` before its first contact, which happened two days ago."""
    first = timezone.now() - timedelta(days=2)
    Delivery.objects.filter(pk=d.pk).update(
        created_at=first - timedelta(seconds=seconds), first_contact_at=first
    )


def test_the_lead_page_says_how_long_the_first_contact_took(officer_client, delivery):
    html = page(officer_client, delivery)
    assert "None yet: waiting" in html and "data-timer" in html  # still waiting: the clock ticks

    _contacted_after(delivery, 40)
    html = page(officer_client, delivery)
    assert "<strong>after 40 s</strong>" in html
    assert "None yet" not in html


def test_the_inbox_clock_stops_at_first_contact(officer_client, buying_lender, officer, delivery):
    waiting = sell(buying_lender, first_name="Waiting")
    lost = sell(buying_lender, first_name="Dropped")
    Delivery.objects.filter(pk__in=[waiting.pk, lost.pk]).update(assigned_to=officer)
    delivery_set_status(delivery=lost, status="lost", lost_reason="Not interested")
    _contacted_after(delivery, 200)

    html = officer_client.get(url("inbox")).content.decode()
    rows = {n: inbox_row(html, n) for n in ("Maria", "Waiting", "Dropped")}
    # Reached after 3 min 20 s two days ago: it says so, and does not count "2 d" of waiting.
    assert "first contact after</span> 3 min 20 s" in rows["Maria"]
    assert "data-timer" not in rows["Maria"] and "2 d ago" not in rows["Maria"]
    assert "data-timer" in rows["Waiting"] and 'data-urgent-after="300"' in rows["Waiting"]
    assert "data-timer" not in rows["Dropped"] and "no contact logged" in rows["Dropped"]
