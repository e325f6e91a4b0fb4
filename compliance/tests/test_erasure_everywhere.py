"""Issue 11.5: an erased consumer's name, e-mail and phone are nowhere in the database afterwards.

The consumer's data is made through the real paths (partner API with an Idempotency-Key, the public form, a
sale with its signed webhooks, the lender API's status, activity and return with keys, a portal follow-up),
then erased; every text, varchar and json column of every table is searched for what identified them.
"""

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse

from compliance.models import Erasure
from compliance.services import consumer_erase
from integrations.channels.services import text_send
from integrations.channels.twilio import twilio_signature
from integrations.models import IdempotencyRecord, LeadSource, WebhookEndpoint, WebhookMessage
from integrations.services import api_key_create, webhook_secret_new
from integrations.tests.conftest import LEAD, Api
from integrations.tests.receiver import Receiver
from leads.models import Lead
from marketplace.models import Delivery, MarketSettings
from marketplace.tests.factories import FORM_DATA, make_subscription

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

FIRST, LAST, EMAIL, PHONE = "Zebulon", "Quackenbush", "zeb.quackenbush@example.net", "512-555-0187"
# Every form the details could take: as typed, cleaned (digits only), shown "(512) 555-0187", any case.
NEEDLES = [FIRST, LAST, EMAIL, "zeb.quackenbush", "5125550187", "555-0187", "5550187"]
PERSON = {"first_name": FIRST, "last_name": LAST, "email": EMAIL, "phone": PHONE}


def text_columns() -> list[tuple[str, str]]:
    """Every text, varchar, char, json and jsonb column of every table of the database."""
    with connection.cursor() as cur:
        cur.execute(
            """
            SELECT c.table_name, c.column_name FROM information_schema.columns c
            JOIN information_schema.tables t USING (table_schema, table_name)
            WHERE c.table_schema = current_schema() AND t.table_type = 'BASE TABLE'
              AND c.data_type IN ('text', 'character varying', 'character', 'json', 'jsonb')
            ORDER BY 1, 2
            """
        )
        return cur.fetchall()


def where_found(needles: list[str]) -> dict[str, list[str]]:
    """{"table.column": [the values holding any needle]}, searched case-insensitively as text."""
    patterns = [f"%{n}%" for n in needles]
    found: dict[str, list[str]] = {}
    q = connection.ops.quote_name
    with connection.cursor() as cur:
        for table, column in text_columns():
            cur.execute(
                # Names from information_schema, quoted: nothing here comes from outside the test.
                f"SELECT {q(column)}::text FROM {q(table)} WHERE {q(column)}::text ILIKE ANY(%s)",  # noqa: S608
                [patterns],
            )
            rows = [r[0][:200] for r in cur.fetchall()]
            if rows:
                found[f"{table}.{column}"] = rows
    return found


@pytest.fixture
def receiver(settings):
    settings.WEBHOOK_ALLOW_LOOPBACK = True
    with Receiver() as r:
        yield r


def test_after_erasure_no_column_of_any_table_holds_the_name_email_or_phone(
    buying_lender, owner, staff, receiver, django_capture_on_commit_callbacks, settings
):
    MarketSettings.objects.update_or_create(pk=1, defaults={"return_rate_cap": 100})
    make_subscription(buying_lender, exclusive=True, price="90.00")
    endpoint = WebhookEndpoint.objects.create(
        lender=buying_lender,
        url=receiver.url,
        secret=webhook_secret_new(),
        events=["delivery.created", "delivery.updated", "return.decided"],
    )
    # The lender's receiver echoes what it got: its answer is logged (first 1 KB) with the attempt.
    receiver.reply(200, body=f'{{"got": "{EMAIL}", "name": "{FIRST} {LAST}"}}'.encode())

    # A partner posts the consumer with an Idempotency-Key, and retries; the lead is sold at once.
    partner = Api(
        api_key_create(
            source=LeadSource.objects.create(name="Quote Partner"), name="intake", scope="write"
        ).key
    )
    key = {"Idempotency-Key": "partner-order-77"}
    with django_capture_on_commit_callbacks(execute=True):
        posted = partner.post("/api/v1/leads/", {**LEAD, **PERSON}, headers=key)
    assert posted.status_code == 202, posted.content
    assert partner.post("/api/v1/leads/", {**LEAD, **PERSON}, headers=key)["Idempotent-Replayed"] == "true"
    lead = Lead.objects.get(public_id=posted.json()["id"])
    delivery = Delivery.objects.get(lead=lead)

    # The same person fills the public form too (a duplicate lead of the same consumer).
    with django_capture_on_commit_callbacks(execute=True):
        form = Client().post("/", {**FORM_DATA, **PERSON}, HTTP_USER_AGENT="Mozilla/5.0 (test)")
    assert form.status_code == 303, form.content[:500]

    # The lender works the lead through its API, every POST with a key, and in the portal.
    lender = Api(api_key_create(lender=buying_lender, name="CRM", scope="write").key)
    base = f"/api/v1/deliveries/{delivery.pk}"
    assert lender.get(f"{base}/").json()["contact"]["email"] == EMAIL
    with django_capture_on_commit_callbacks(execute=True):
        moved = lender.post(f"{base}/status/", {"status": "contacted"}, headers={"Idempotency-Key": "crm-1"})
    assert moved.status_code == 200 and moved.json()["contact"]["email"] == EMAIL
    note = {"kind": "note", "note": f"{FIRST} asked us to call {PHONE} after five"}
    assert lender.post(f"{base}/activities/", note, headers={"Idempotency-Key": "crm-2"}).status_code == 201
    lost = {"status": "lost", "lost_reason": f"{LAST} went with another lender"}
    with django_capture_on_commit_callbacks(execute=True):
        assert lender.post(f"{base}/status/", lost, headers={"Idempotency-Key": "crm-3"}).status_code == 200
    back = {"reason": "other", "note": f"{EMAIL} bounces"}
    assert lender.post(f"{base}/return/", back, headers={"Idempotency-Key": "crm-4"}).status_code == 201
    portal = Client()
    portal.force_login(owner)
    assert portal.get(reverse("portal:delivery_detail", args=[delivery.pk])).status_code == 200
    followup = {"due_at": "2030-01-01T10:00", "note": f"Call {FIRST} back on {PHONE}"}
    assert portal.post(reverse("portal:delivery_followup", args=[delivery.pk]), followup).status_code == 302

    # Texts: one sent on the delivery, naming the consumer, and their answer through Twilio's signed webhook.
    text_send(delivery_id=delivery.pk, body=f"Hi {FIRST}, this is Lone Star Lending")
    settings.TWILIO_AUTH_TOKEN = "twilio-token"
    inbound = {
        "From": "+15125550187",
        "Body": f"This is {FIRST} {LAST}, call {PHONE}",
        "MessageSid": "SM" + "9" * 32,
    }
    signature = twilio_signature(
        "twilio-token", settings.SITE_URL + "/hooks/twilio/sms", {k: [v] for k, v in inbound.items()}
    )
    assert Client().post("/hooks/twilio/sms", inbound, HTTP_X_TWILIO_SIGNATURE=signature).status_code == 200

    before = where_found(NEEDLES)
    # The search finds what it looks for, in every kind of place the details were copied to.
    assert {
        "leads_consumer.first_name",
        "leads_consumer.email",
        "leads_consumer.phone",
        "integrations_idempotencyrecord.response_body",
        "integrations_webhookmessage.payload",
        "integrations_webhookattempt.response_excerpt",
        "marketplace_activity.note",
        "marketplace_followup.note",
        "marketplace_delivery.lost_reason",
        "billing_returnrequest.note",
        "integrations_textmessage.body",
        "integrations_textmessage.phone",
    } <= set(before), before

    consumer_erase(consumer_id=lead.consumer_id, requested_by=staff, note="ticket 7")

    assert where_found(NEEDLES) == {}
    # Both of the person's requests were erased (one consumer row each), and logged; the facts stay.
    assert Erasure.objects.filter(reason="request").count() == 2
    assert Lead.objects.filter(consumer__erased_at__isnull=False).count() == 2
    assert Delivery.objects.get(pk=delivery.pk).status == "lost"
    assert WebhookMessage.objects.filter(endpoint=endpoint, payload__isnull=True).count() == 3
    assert not IdempotencyRecord.objects.filter(lead=lead).exists()
    # The lender's retry of a stored answer is a new request now, and carries the erased contact only.
    again = lender.post(f"{base}/status/", {"status": "contacted"}, headers={"Idempotency-Key": "crm-1"})
    assert "Idempotent-Replayed" not in again and EMAIL not in again.content.decode()
