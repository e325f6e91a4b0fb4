"""The lender API: deliveries, status, activity, returns, balance and ledger, scoped to the key's lender."""

from datetime import timedelta

import pytest
from django.utils import timezone

from compliance.models import ContactAccess
from integrations.models import IdempotencyRecord, WebhookEndpoint, WebhookMessage
from integrations.services import webhook_secret_new
from marketplace.models import Activity, Delivery, MarketSettings, ReturnRequest
from marketplace.services import lead_distribute
from marketplace.tests.factories import QualifiedLeadFactory

from .test_intake import assert_problem

pytestmark = pytest.mark.django_db


def test_list_is_scoped_filtered_and_cursor_paginated(lender_api, buying_lender, delivery, rival_delivery):
    second = lead_distribute(lead_id=QualifiedLeadFactory(purpose="refinance").pk)[0]

    body = lender_api.get("/api/v1/deliveries/").json()
    assert [d["id"] for d in body["results"]] == [second.pk, delivery.pk]  # newest first, no rival's

    page = lender_api.get("/api/v1/deliveries/", {"page_size": 1}).json()
    assert [d["id"] for d in page["results"]] == [second.pk] and page["next"]
    assert [d["id"] for d in lender_api.get(page["next"]).json()["results"]] == [delivery.pk]

    assert [
        d["id"] for d in lender_api.get("/api/v1/deliveries/", {"purpose": "refinance"}).json()["results"]
    ] == [second.pk]
    assert lender_api.get("/api/v1/deliveries/", {"status": "contacted"}).json()["results"] == []
    since = (timezone.now() + timedelta(minutes=1)).isoformat()
    assert lender_api.get("/api/v1/deliveries/", {"since": since}).json()["results"] == []
    assert (
        "status" in assert_problem(lender_api.get("/api/v1/deliveries/", {"status": "nope"}), 400)["errors"]
    )


def test_detail_has_contact_and_qualification(lender_api, delivery):
    body = lender_api.get(f"/api/v1/deliveries/{delivery.pk}/").json()

    assert body["contact"]["email"] == delivery.lead.consumer.email
    assert body["contact"]["phone"] == delivery.lead.consumer.phone
    assert body["loan"]["purpose"] == "purchase" and body["price"] == "90.00"
    assert body["next_statuses"] == ["contacted", "lost"]
    from compliance.models import ContactAccess

    access = ContactAccess.objects.get()
    assert (access.channel, access.lead_id, access.lender_id) == ("api", delivery.lead_id, delivery.lender_id)


def test_another_lenders_objects_are_404(lender_api, rival_api, delivery, rival_delivery):
    for path in (f"/api/v1/deliveries/{rival_delivery.pk}/",):
        assert_problem(lender_api.get(path), 404)
    assert_problem(rival_api.get(f"/api/v1/deliveries/{delivery.pk}/"), 404)
    for suffix, body in (
        ("status/", {"status": "contacted"}),
        ("activities/", {"kind": "note", "note": "x"}),
        ("return/", {"reason": "bad_contact"}),
    ):
        assert_problem(rival_api.post(f"/api/v1/deliveries/{delivery.pk}/{suffix}", body), 404)
    assert Delivery.objects.get(pk=delivery.pk).status == "new"


def test_status_moves_follow_the_portal_rules_and_emit_delivery_updated(lender_api, buying_lender, delivery):
    endpoint = WebhookEndpoint.objects.create(
        lender=buying_lender,
        url="https://crm.example/hook",
        secret=webhook_secret_new(),
        events=["delivery.updated"],
    )

    response = lender_api.post(f"/api/v1/deliveries/{delivery.pk}/status/", {"status": "contacted"})

    assert response.status_code == 200 and response.json()["status"] == "contacted"
    message = WebhookMessage.objects.get(endpoint=endpoint)
    assert message.event_type == "delivery.updated" and message.payload["data"]["status"] == "contacted"

    body = assert_problem(
        lender_api.post(
            f"/api/v1/deliveries/{delivery.pk}/status/", {"status": "funded", "funded_amount": "350000.00"}
        ),
        409,
    )
    assert "cannot move from Contacted to Funded" in body["detail"]
    body = assert_problem(
        lender_api.post(f"/api/v1/deliveries/{delivery.pk}/status/", {"status": "lost"}), 400
    )
    assert body["errors"]["lost_reason"] == ["Required when status is lost."]
    assert WebhookMessage.objects.count() == 1  # refused moves send nothing


def test_read_keys_cannot_write(lender_read_api, delivery):
    assert lender_read_api.get(f"/api/v1/deliveries/{delivery.pk}/").status_code == 200
    assert_problem(
        lender_read_api.post(f"/api/v1/deliveries/{delivery.pk}/status/", {"status": "contacted"}), 403
    )


def test_partner_keys_cannot_read_deliveries(partner_api, delivery):
    assert_problem(partner_api.get("/api/v1/deliveries/"), 403)


def test_log_an_activity(lender_api, delivery):
    response = lender_api.post(
        f"/api/v1/deliveries/{delivery.pk}/activities/", {"kind": "call", "outcome": "reached"}
    )
    assert response.status_code == 201
    assert Activity.objects.get(delivery=delivery).outcome == "reached"
    # Reaching the consumer is contact: the lead moved from New to Contacted, as in the portal.
    assert Delivery.objects.get(pk=delivery.pk).status == "contacted"
    body = assert_problem(
        lender_api.post(f"/api/v1/deliveries/{delivery.pk}/activities/", {"kind": "call"}), 400
    )
    assert "outcome" in body["errors"]


def test_request_a_return(lender_api, delivery):
    MarketSettings.objects.update_or_create(
        pk=1, defaults={"return_rate_cap": 100}
    )  # one lead: 100% returned
    response = lender_api.post(f"/api/v1/deliveries/{delivery.pk}/return/", {"reason": "bad_contact"})
    assert response.status_code == 201 and response.json()["status"] == "requested"
    assert_problem(
        lender_api.post(f"/api/v1/deliveries/{delivery.pk}/return/", {"reason": "bad_contact"}), 409
    )


def test_balance_and_ledger(lender_api, delivery):
    account = lender_api.get("/api/v1/account/").json()
    assert account["balance"] == "910.00" and account["available"] == "910.00"
    ledger = lender_api.get("/api/v1/account/ledger/").json()["results"]
    assert [(e["kind"], e["amount"]) for e in ledger] == [("charge", "-90.00"), ("top_up", "1000.00")]


def test_a_retried_post_with_its_idempotency_key_has_one_effect(lender_api, delivery):
    """A CRM that lost the response retries: the same key and body get the first answer, not a second call
    logged, a 409 for a move already made, or a second return request."""
    MarketSettings.objects.update_or_create(pk=1, defaults={"return_rate_cap": 100})
    base = f"/api/v1/deliveries/{delivery.pk}"
    for path, body, code in (
        # A voicemail: a reached call would itself move the lead to Contacted (tested on its own below).
        (f"{base}/activities/", {"kind": "call", "outcome": "voicemail"}, 201),
        (f"{base}/status/", {"status": "contacted"}, 200),
        (f"{base}/return/", {"reason": "bad_contact"}, 201),
    ):
        key = {"Idempotency-Key": f"crm-{path}"}
        first = lender_api.post(path, body, headers=key)
        again = lender_api.post(path, {**body}, headers=key)
        assert (first.status_code, again.status_code) == (code, code), again.content
        assert again.json() == first.json() and again["Idempotent-Replayed"] == "true"
        assert "Idempotent-Replayed" not in first
    assert Activity.objects.filter(delivery=delivery, kind="call").count() == 1
    assert ReturnRequest.objects.filter(delivery=delivery).count() == 1
    assert Delivery.objects.get(pk=delivery.pk).status == "contacted"
    # Without a key a repeat is a new request: a second call is logged.
    lender_api.post(f"{base}/activities/", {"kind": "call", "outcome": "reached"})
    lender_api.post(f"{base}/activities/", {"kind": "call", "outcome": "reached"})
    assert Activity.objects.filter(delivery=delivery, kind="call").count() == 3


def test_an_idempotency_key_is_one_request_and_one_lenders(lender_api, rival_api, delivery, rival_delivery):
    path = f"/api/v1/deliveries/{delivery.pk}/activities/"
    key = {"Idempotency-Key": "shared-key-1"}
    assert lender_api.post(path, {"kind": "note", "note": "Left a message"}, headers=key).status_code == 201
    body = assert_problem(lender_api.post(path, {"kind": "note", "note": "Other"}, headers=key), 422)
    assert "different request body" in body["detail"]
    # Another lender's same key is its own: it logs on its own lead, and sees nothing of the first answer.
    rival_path = f"/api/v1/deliveries/{rival_delivery.pk}/activities/"
    response = rival_api.post(rival_path, {"kind": "note", "note": "Left a message"}, headers=key)
    assert response.status_code == 201 and "Idempotent-Replayed" not in response
    assert Activity.objects.filter(delivery=rival_delivery, kind="note").count() == 1
    assert_problem(lender_api.post(path, {"kind": "note", "note": "x"}, headers={"Idempotency-Key": ""}), 400)
    # A refusal is not stored: fixing the body under a new key works, and the refused key can be retried.
    refused = {"Idempotency-Key": "refused-1"}
    assert_problem(lender_api.post(path, {"kind": "call"}, headers=refused), 400)
    assert lender_api.post(path, {"kind": "call", "outcome": "voicemail"}, headers=refused).status_code == 201


def test_the_same_key_on_another_delivery_or_endpoint_is_another_request(lender_api, buying_lender, delivery):
    """Issue 11.12: a key is scoped by holder, method and path. The issue's sequence: the same key on
    /deliveries/43/status/ then /deliveries/40/status/ replayed 43's answer and left 40 untouched; on
    /activities/ it replayed a status answer."""
    other = lead_distribute(lead_id=QualifiedLeadFactory().pk)[0]
    key = {"Idempotency-Key": "crm-sync-1"}

    first = lender_api.post(f"/api/v1/deliveries/{delivery.pk}/status/", {"status": "contacted"}, headers=key)
    second = lender_api.post(f"/api/v1/deliveries/{other.pk}/status/", {"status": "contacted"}, headers=key)
    logged = lender_api.post(
        f"/api/v1/deliveries/{other.pk}/activities/", {"kind": "call", "outcome": "reached"}, headers=key
    )

    assert first.status_code == 200 and first.json()["id"] == delivery.pk
    assert second.status_code == 200 and "Idempotent-Replayed" not in second
    assert second.json()["id"] == other.pk and Delivery.objects.get(pk=other.pk).status == "contacted"
    assert logged.status_code == 201 and "Idempotent-Replayed" not in logged
    assert (
        logged.json()["kind"] == "call" and Activity.objects.filter(delivery=other, kind="call").count() == 1
    )
    # Only the very same request replays: same path, same body.
    again = lender_api.post(f"/api/v1/deliveries/{other.pk}/status/", {"status": "contacted"}, headers=key)
    assert again["Idempotent-Replayed"] == "true" and again.json() == second.json()
    changed = lender_api.post(f"/api/v1/deliveries/{other.pk}/status/", {"status": "lost"}, headers=key)
    assert_problem(changed, 422)


def test_a_status_answer_shows_contact_details_and_records_the_read_first_and_replayed(lender_api, delivery):
    """Issue 11.5: the status answer carries the full contact, as a GET does; a replay of it wrote no
    contact-access row."""
    path, key = f"/api/v1/deliveries/{delivery.pk}/status/", {"Idempotency-Key": "crm-read-1"}

    first = lender_api.post(path, {"status": "contacted"}, headers=key)
    again = lender_api.post(path, {"status": "contacted"}, headers=key)

    assert first.json()["contact"]["email"] and again["Idempotent-Replayed"] == "true"
    reads = ContactAccess.objects.filter(lead_id=delivery.lead_id, channel="api", lender=delivery.lender)
    assert reads.count() == 2 and {r.path for r in reads} == {path}


def test_an_answer_expires_after_the_ttl_and_the_key_is_a_new_request(lender_api, delivery, settings):
    """Issue 11.5: stored answers (which may carry contact details) expire, 72 hours by default."""
    assert settings.IDEMPOTENCY_KEY_TTL_HOURS == 72
    path, key = f"/api/v1/deliveries/{delivery.pk}/activities/", {"Idempotency-Key": "crm-old-1"}
    note = {"kind": "call", "outcome": "reached"}
    assert lender_api.post(path, note, headers=key).status_code == 201
    IdempotencyRecord.objects.update(created_at=timezone.now() - timedelta(hours=73))

    again = lender_api.post(path, note, headers=key)

    assert again.status_code == 201 and "Idempotent-Replayed" not in again
    assert Activity.objects.filter(delivery=delivery, kind="call").count() == 2
    assert IdempotencyRecord.objects.get().created_at > timezone.now() - timedelta(minutes=1)


def test_the_lead_page_shows_an_activity_logged_through_the_api(lender_api, owner, client, delivery):
    """The portal's lead page failed (VariableDoesNotExist, a 500) once the API had logged an activity,
    which has no member."""
    lender_api.post(f"/api/v1/deliveries/{delivery.pk}/activities/", {"kind": "note", "note": "From the CRM"})
    client.force_login(owner)

    page = client.get(f"/portal/leads/{delivery.pk}/")

    assert page.status_code == 200 and "From the CRM" in page.content.decode()
    assert "API or former member" in page.content.decode()
