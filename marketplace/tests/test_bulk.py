"""The hot path's bulk writes send rows as JSON: every kind of column must read back exactly as written."""

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from core.bulk import bulk_insert, bulk_set
from integrations.models import WebhookEndpoint, WebhookMessage
from integrations.services import webhook_secret_new
from leads.models import Lead
from lenders.models import Subscription

from .factories import LenderFactory, QualifiedLeadFactory, make_subscription

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


def test_bulk_set_writes_dates_money_counts_json_and_times_exactly():
    lender = LenderFactory(states=["TX"], balance="100")
    subs = [make_subscription(lender, price="40.00", name=f"s{i}") for i in range(2)]
    for i, sub in enumerate(subs):
        sub.day_key, sub.day_count = date(2026, 11, 28 - i), 7 + i
        sub.month_key, sub.month_count, sub.month_spend = date(2026, 11, 1), 30 + i, Decimal("1234.56") + i
    bulk_set(subs, ["day_key", "day_count", "month_key", "month_count", "month_spend"])
    counters = ["day_key", "day_count", "month_key", "month_count", "month_spend"]
    for sub in subs:
        stored = Subscription.objects.get(pk=sub.pk)
        assert [getattr(stored, f) for f in counters] == [getattr(sub, f) for f in counters]

    lead = QualifiedLeadFactory()
    at = timezone.now() - timedelta(microseconds=123457)
    lead.distribution_trace = [{"attempt": 1, "mode": "shared", "note": 'O\'Brien "quoted" ü'}]
    lead.retry_until, lead.sold_at, lead.status_reason = at, None, "Tab\there, newline\nthere"
    bulk_set([lead], ["distribution_trace", "retry_until", "sold_at", "status_reason"])
    stored = Lead.objects.get(pk=lead.pk)
    assert stored.distribution_trace == lead.distribution_trace
    assert (stored.retry_until, stored.sold_at, stored.status_reason) == (at, None, lead.status_reason)


def test_bulk_insert_sets_each_rows_own_key_in_order():
    endpoint = WebhookEndpoint.objects.create(
        lender=LenderFactory(), url="https://crm.example/hook", secret=webhook_secret_new(), events=["x"]
    )
    messages = [
        WebhookMessage(
            endpoint=endpoint,
            event_id=f"msg_{i}",
            event_type="delivery.created",
            payload={"type": "delivery.created", "data": {"n": i, "money": "40.00", "list": [i, None]}},
        )
        for i in range(30)
    ]
    assert bulk_insert(messages) == messages
    for message in messages:
        stored = WebhookMessage.objects.get(pk=message.pk)
        assert (stored.event_id, stored.payload, stored.created_at) == (
            message.event_id,
            message.payload,
            message.created_at,
        )
