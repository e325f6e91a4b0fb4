"""Issue 11.5: copies of contact details kept by integrations expire (stored API answers, webhook payloads)
or go with an erasure, and a message whose payload is gone cannot be resent."""

from datetime import timedelta

import pytest
from django.conf import settings
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone

from compliance.services import consumer_erase
from integrations.models import IdempotencyRecord, WebhookAttempt, WebhookEndpoint, WebhookMessage
from integrations.services import webhook_message_resend, webhook_secret_new
from integrations.tasks import records_expired_purge, webhook_endpoints_schedule_due

pytestmark = pytest.mark.django_db


@pytest.fixture
def endpoint(buying_lender):
    return WebhookEndpoint.objects.create(
        lender=buying_lender,
        url="https://crm.example/h",
        secret=webhook_secret_new(),
        events=["delivery.created"],
    )


def message(endpoint, status, finished_days_ago=None, lead_id="00000000-0000-0000-0000-000000000000"):
    finished = timezone.now() - timedelta(days=finished_days_ago) if finished_days_ago is not None else None
    m = WebhookMessage.objects.create(
        endpoint=endpoint,
        event_id=f"msg_{WebhookMessage.objects.count()}",
        event_type="delivery.created",
        payload={
            "type": "delivery.created",
            "data": {"lead_id": lead_id, "contact": {"email": "m@example.com"}},
        },
        status=status,
        attempt_count=1,
        finished_at=finished,
        next_attempt_at=timezone.now() if status == "pending" else None,
    )
    m.attempts.create(
        status_code=200 if status == "succeeded" else 500, response_excerpt="echo m@example.com"
    )
    return m


def test_retention_clears_old_payloads_and_deletes_expired_answers(endpoint):
    """Delivered payloads go after WEBHOOK_PAYLOAD_RETENTION_DAYS (3), failed ones after 14; pending and
    recent ones stay. Answers older than IDEMPOTENCY_KEY_TTL_HOURS (72) are deleted."""
    assert (settings.WEBHOOK_PAYLOAD_RETENTION_DAYS, settings.WEBHOOK_FAILED_PAYLOAD_RETENTION_DAYS) == (
        3,
        14,
    )
    old_delivered = message(endpoint, "succeeded", finished_days_ago=4)
    new_delivered = message(endpoint, "succeeded", finished_days_ago=2)
    failed_week = message(endpoint, "failed", finished_days_ago=7)
    failed_old = message(endpoint, "failed", finished_days_ago=15)
    pending = message(endpoint, "pending")
    answer = dict(holder="lender:1", method="POST", request_sha256="x", response_status=200, response_body={})
    IdempotencyRecord.objects.create(
        **answer, key="a", path="/p/", created_at=timezone.now() - timedelta(hours=73)
    )
    fresh = IdempotencyRecord.objects.create(
        **answer, key="b", path="/p/", created_at=timezone.now() - timedelta(hours=71)
    )

    assert tuple(records_expired_purge.delay().get()) == (1, 2)
    assert tuple(records_expired_purge.delay().get()) == (0, 0)  # idempotent

    cleared = set(WebhookMessage.objects.filter(payload__isnull=True).values_list("pk", flat=True))
    assert cleared == {old_delivered.pk, failed_old.pk}
    assert not WebhookAttempt.objects.filter(message_id__in=cleared).exclude(response_excerpt="").exists()
    assert all(
        m.payload and m.payload_cleared_at is None
        for m in WebhookMessage.objects.filter(pk__in=[new_delivered.pk, failed_week.pk, pending.pk])
    )
    assert list(IdempotencyRecord.objects.values_list("pk", flat=True)) == [fresh.pk]
    assert "purge-expired-records" in settings.CELERY_BEAT_SCHEDULE


def test_a_cleared_message_cannot_be_resent_and_the_portal_says_so(
    endpoint, owner, client, monkeypatch, django_capture_on_commit_callbacks
):
    sent = []
    monkeypatch.setattr("integrations.tasks.webhook_endpoint_send_due.delay", sent.append)
    cleared = message(endpoint, "succeeded", finished_days_ago=4)
    records_expired_purge()
    client.force_login(owner)

    page = client.get(reverse("portal:webhook_detail", args=[endpoint.pk])).content.decode()
    assert "cannot be resent" in page
    with django_capture_on_commit_callbacks(execute=True):
        answer = client.post(reverse("portal:webhook_resend", args=[endpoint.pk, cleared.pk]), follow=True)

    assert answer.status_code == 200 and "cannot be resent" in answer.content.decode()
    assert [str(m) for m in answer.context["messages"]] == [
        "This message's content was deleted (we keep delivered messages for a few days, and none about a "
        "consumer whose data was erased), so it cannot be resent."
    ]
    cleared.refresh_from_db()
    assert cleared.status == "succeeded" and sent == []
    with pytest.raises(ValidationError):
        webhook_message_resend(message=cleared)


def test_erasure_clears_the_consumers_messages_and_a_pending_one_is_never_sent(
    endpoint, delivery, monkeypatch
):
    """A message about an erased consumer kept their contact for days of retries (and Resend)."""
    sent = []
    monkeypatch.setattr("integrations.tasks.webhook_endpoint_send_due.delay", sent.append)
    lead_id = str(delivery.lead.public_id)
    pending = message(endpoint, "pending", lead_id=lead_id)
    delivered = message(endpoint, "succeeded", finished_days_ago=0, lead_id=lead_id)
    someone_else = message(endpoint, "succeeded", finished_days_ago=0)

    consumer_erase(consumer_id=delivery.lead.consumer_id)

    pending.refresh_from_db()
    assert pending.payload is None and pending.status == "failed" and pending.next_attempt_at is None
    assert WebhookMessage.objects.get(pk=delivered.pk).payload is None
    assert WebhookMessage.objects.get(pk=someone_else.pk).payload is not None
    assert webhook_endpoints_schedule_due() == 0 and sent == []
    with pytest.raises(ValidationError):
        webhook_message_resend(message=pending)
