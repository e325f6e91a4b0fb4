"""Webhook scheduling (issue 11.6): a task per endpoint that is never queued twice, one endpoint of a lender
sending at a time with hand-on to the next, short timeouts for an endpoint that keeps failing, and the
staff-set cap of endpoints per lender in the portal."""

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone

from integrations import webhooks as wh
from integrations.models import WebhookEndpoint, WebhookMessage
from integrations.services import webhook_endpoint_create, webhook_secret_new, webhooks_emit
from integrations.tasks import webhook_endpoint_send_due, webhook_endpoints_schedule_due
from marketplace.models import MarketSettings

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _allow_loopback(settings):
    settings.WEBHOOK_ALLOW_LOOPBACK = True


@pytest.fixture
def queued(monkeypatch) -> list[tuple]:
    """The send tasks handed to the broker (endpoint id, countdown), not run."""
    sent: list[tuple] = []
    monkeypatch.setattr(
        webhook_endpoint_send_due,
        "apply_async",
        lambda args, countdown=None, **kw: sent.append((args[0], countdown)),
    )
    return sent


def endpoint_for(lender, url: str) -> WebhookEndpoint:
    return WebhookEndpoint.objects.create(
        lender=lender, url=url, secret=webhook_secret_new(), events=["delivery.updated"]
    )


def due(endpoint: WebhookEndpoint, n: int = 1) -> list[WebhookMessage]:
    first = WebhookMessage.objects.count()
    return [
        WebhookMessage.objects.create(
            endpoint=endpoint,
            event_id=f"msg_sched_{first + i}",
            event_type="delivery.updated",
            payload={"type": "delivery.updated", "data": {"n": first + i}},
            next_attempt_at=timezone.now(),
        )
        for i in range(n)
    ]


def test_the_sweeper_never_queues_again_what_is_already_queued(buying_lender, receiver, queued):
    """Issue 11.6: webhook_endpoints_schedule_due queued a task per due message on every run, on top of those
    waiting in the broker (1,340 tasks). Now an endpoint with a task queued gets no other, however many
    messages wait and however often the sweeper runs."""
    endpoint = endpoint_for(buying_lender, receiver.url)
    due(endpoint, 3)
    for _ in range(5):
        webhook_endpoints_schedule_due()
    assert queued == [(endpoint.pk, None)]


def test_a_queued_mark_the_broker_lost_is_queued_again_by_the_sweeper(buying_lender, receiver, queued):
    endpoint = endpoint_for(buying_lender, receiver.url)
    due(endpoint)
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
        queued_at=timezone.now() - wh.QUEUED_STALE - timedelta(seconds=1)
    )
    webhook_endpoints_schedule_due()
    assert queued == [(endpoint.pk, None)]


def test_an_emit_in_a_batch_queues_one_task_per_endpoint(
    buying_lender, receiver, queued, django_capture_on_commit_callbacks
):
    one, two = endpoint_for(buying_lender, receiver.url), endpoint_for(buying_lender, receiver.url + "2")
    with django_capture_on_commit_callbacks(execute=True):
        for n in range(3):
            webhooks_emit(lender_id=buying_lender.pk, event_type="delivery.updated", data={"n": n})
    assert sorted(queued) == [(one.pk, None), (two.pk, None)]


def test_one_endpoint_of_a_lender_sends_at_a_time_and_hands_on_to_the_next(buying_lender, receiver, queued):
    """Issue 11.6: a lender's endpoints hold one outbound process at most. A task for a second endpoint while
    the first is sending ends at once; the first, when done, queues the lender's next due endpoint."""
    first, second = endpoint_for(buying_lender, receiver.url), endpoint_for(buying_lender, receiver.url + "2")
    due(first, 2)
    due(second, 2)
    WebhookEndpoint.objects.filter(pk=first.pk).update(sending_until=timezone.now() + timedelta(seconds=30))

    assert webhook_endpoint_send_due(second.pk) == 0
    assert receiver.requests == [] and queued == []

    WebhookEndpoint.objects.filter(pk=first.pk).update(sending_until=None)
    assert webhook_endpoint_send_due(first.pk) == 2
    assert queued == [(second.pk, None)]  # handed on, through the back of the queue
    assert webhook_endpoint_send_due(second.pk) == 2
    assert (
        len(receiver.requests) == 4
        and WebhookEndpoint.objects.filter(sending_until__isnull=False).count() == 0
    )


def test_another_lender_is_not_held_by_a_busy_one(buying_lender, rival_lender, receiver, queued):
    busy = endpoint_for(buying_lender, receiver.url)
    WebhookEndpoint.objects.filter(pk=busy.pk).update(sending_until=timezone.now() + timedelta(seconds=30))
    other = endpoint_for(rival_lender, receiver.url + "2")
    due(other)
    assert webhook_endpoint_send_due(other.pk) == 1


def test_a_message_refused_on_its_own_does_not_hold_the_ones_after_it(buying_lender, receiver, queued):
    """A 400 for one payload says nothing about the endpoint: that message waits for its retry, the next ones
    go out in the same run (only an endpoint that is down, no answer or 429/502/503/504, holds them)."""
    receiver.reply(400, body=b"bad payload")
    endpoint = endpoint_for(buying_lender, receiver.url)
    messages = due(endpoint, 3)

    assert webhook_endpoint_send_due(endpoint.pk) == 3

    statuses = [WebhookMessage.objects.get(pk=m.pk).status for m in messages]
    assert statuses == ["pending", "succeeded", "succeeded"]
    assert WebhookMessage.objects.get(pk=messages[0].pk).next_attempt_at > timezone.now()
    assert queued == []  # the retry is the sweeper's: no countdown task holds the endpoint


def test_an_endpoint_that_keeps_failing_gets_a_short_timeout(buying_lender, receiver, queued):
    """Issue 11.6: a dead endpoint cost the full 15 s on every attempt. After three failures in a row an
    attempt waits 5 s at most, until the endpoint answers again."""
    receiver.delay = 6.0
    endpoint = endpoint_for(buying_lender, receiver.url)
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(failure_count=3)
    (message,) = due(endpoint)

    webhook_endpoint_send_due(endpoint.pk)

    attempt = message.attempts.get()
    assert attempt.error == "Timed out" and attempt.latency_ms < 5000
    assert wh.FAILING_TIMEOUT.connect_timeout + wh.FAILING_TIMEOUT.read_timeout <= 5


# --- the cap of endpoints per lender ---------------------------------------------------------------------


def test_a_lender_cannot_add_more_endpoints_than_staff_allow(buying_lender, receiver):
    MarketSettings.objects.update_or_create(pk=1, defaults={"webhook_endpoints_per_lender": 2})
    for n in range(2):
        webhook_endpoint_create(lender=buying_lender, url=f"{receiver.url}{n}", events=["delivery.created"])
    with pytest.raises(ValidationError, match="You have 2 webhook endpoints, the most a lender may have"):
        webhook_endpoint_create(lender=buying_lender, url=receiver.url, events=["delivery.created"])
    assert WebhookEndpoint.objects.count() == 2


def test_the_default_cap_is_five(buying_lender, rival_lender, receiver):
    for n in range(5):
        webhook_endpoint_create(lender=buying_lender, url=f"{receiver.url}{n}", events=["delivery.created"])
    with pytest.raises(ValidationError):
        webhook_endpoint_create(lender=buying_lender, url=receiver.url, events=["delivery.created"])
    webhook_endpoint_create(lender=rival_lender, url=receiver.url, events=["delivery.created"])  # per lender


def test_the_portal_says_why_an_endpoint_over_the_cap_is_refused(client, owner, buying_lender, receiver):
    MarketSettings.objects.update_or_create(pk=1, defaults={"webhook_endpoints_per_lender": 1})
    webhook_endpoint_create(lender=buying_lender, url=receiver.url, events=["delivery.created"])

    client.force_login(owner)
    response = client.post(
        reverse("portal:webhooks"), {"url": receiver.url + "2", "events": ["delivery.created"]}
    )

    assert response.status_code == 400
    page = response.content.decode()
    assert "You have 1 webhook endpoint, the most a lender may have." in page and 'role="alert"' in page
    assert WebhookEndpoint.objects.count() == 1
