"""The portal a loan officer lives in (issue 15, section 5), walked as the officer assigned to a lead:
reaching the consumer moves the lead on, the response time in words, the letter in the officer's name,
messages that say what is missing, analytics of their own leads. A rival lender's officer sees and moves
nothing of ours; an officer never reaches a manager-only action."""

import pytest
from django.test import Client
from django.urls import reverse

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
