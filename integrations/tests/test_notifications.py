"""E-mail (plain text and HTML, sent from tasks) and the events other apps trigger: low balance, returns."""

from decimal import Decimal

import pytest
from django.core import mail
from django.utils.html import escape

from billing.models import Account
from integrations.models import WebhookEndpoint, WebhookMessage
from integrations.services import webhook_secret_new
from leads.models import Lead
from marketplace.models import MarketSettings
from marketplace.returns import return_approve, return_request_create
from marketplace.services import lead_distribute
from marketplace.tests.factories import QualifiedLeadFactory, lender_mail, make_subscription

pytestmark = pytest.mark.django_db


@pytest.fixture
def endpoint(buying_lender):
    return WebhookEndpoint.objects.create(
        lender=buying_lender,
        url="https://crm.example/hook",
        secret=webhook_secret_new(),
        events=["delivery.created", "return.decided", "account.low_balance"],
    )


def test_a_sale_under_the_threshold_alerts_once_by_webhook_and_email(
    owner, buying_lender, endpoint, django_capture_on_commit_callbacks, monkeypatch
):
    monkeypatch.setattr(
        "integrations.tasks.webhook_endpoint_send_due.apply_async", lambda *a, **k: None
    )  # no network here
    Account.objects.filter(lender=buying_lender).update(low_balance_threshold=Decimal("950.00"))
    make_subscription(buying_lender, price="40.00")

    with django_capture_on_commit_callbacks(execute=True):
        lead_distribute(lead_id=QualifiedLeadFactory().pk)  # 1000 -> 960: above the line
        lead_distribute(
            lead_id=QualifiedLeadFactory(consumer__email="b@example.com").pk
        )  # 960 -> 920: crosses
        lead_distribute(lead_id=QualifiedLeadFactory(consumer__email="c@example.com").pk)  # 920 -> 880: below

    types = list(WebhookMessage.objects.order_by("id").values_list("event_type", flat=True))
    assert types.count("delivery.created") == 3
    assert types.count("account.low_balance") == 1
    low = WebhookMessage.objects.get(event_type="account.low_balance")
    assert low.payload["data"] == {"balance": "920.00", "threshold": "950.00", "available": "920.00"}
    alerts = [m for m in mail.outbox if m.subject.startswith("Low balance")]
    assert len(alerts) == 1 and alerts[0].to == [owner.email]
    assert "$920.00" in alerts[0].body and alerts[0].alternatives[0][1] == "text/html"
    # The new-lead e-mail is plain text and HTML too.
    new_lead = [m for m in mail.outbox if m.subject.startswith("New ")]
    assert len(new_lead) == 3 and all(m.alternatives[0][1] == "text/html" for m in new_lead)


def test_a_decided_return_is_a_webhook_and_an_email(
    owner, staff, buying_lender, endpoint, django_capture_on_commit_callbacks, monkeypatch
):
    monkeypatch.setattr("integrations.tasks.webhook_endpoint_send_due.apply_async", lambda *a, **k: None)
    MarketSettings.objects.update_or_create(pk=1, defaults={"return_rate_cap": 100})
    make_subscription(buying_lender, exclusive=True, price="90.00")
    delivery = lead_distribute(lead_id=QualifiedLeadFactory().pk)[0]
    rr = return_request_create(delivery=delivery, user=owner, reason="bad_contact")
    mail.outbox.clear()

    with django_capture_on_commit_callbacks(execute=True):
        return_approve(return_request_id=rr.pk, user=staff, note="Disconnected number confirmed.")

    message = WebhookMessage.objects.get(event_type="return.decided")
    assert (
        message.payload["data"]["status"] == "approved"
        and message.payload["data"]["credit_amount"] == "90.00"
    )
    assert len(mail.outbox) == 1
    email = mail.outbox[0]
    assert email.to == [owner.email] and "approved" in email.subject
    assert "$90.00" in email.body and "Disconnected number" in email.alternatives[0][0]


def test_a_lone_leads_email_keeps_an_apostrophe_plain_in_its_text_part(
    owner, buying_lender, django_capture_on_commit_callbacks
):
    make_subscription(buying_lender, price="40.00")
    lead = QualifiedLeadFactory(city="O'Donnell")
    with django_capture_on_commit_callbacks(execute=True):
        lead_distribute(lead_id=lead.pk)
    (email,) = [m for m in mail.outbox if m.subject.startswith("New ")]
    assert "O'Donnell" in email.body and "O&#x27;Donnell" in email.alternatives[0][0]


def test_a_batch_sold_at_once_is_one_email_per_recipient(
    owner, buying_lender, django_capture_on_commit_callbacks
):
    from marketplace.services import leads_distribute

    make_subscription(buying_lender, price="40.00")
    leads = [QualifiedLeadFactory(consumer__email=f"c{i}@example.com") for i in range(3)]
    Lead.objects.filter(pk=leads[0].pk).update(city="O'Donnell")  # a real Texas town

    with django_capture_on_commit_callbacks(execute=True):
        sold = leads_distribute(lead_ids=[lead.pk for lead in leads])

    assert len(sold) == 3
    (email,) = lender_mail(mail.outbox)
    assert email.to == [owner.email] and email.subject == "3 new leads in your portal"
    html = email.alternatives[0][0]
    for delivery in (d for ds in sold.values() for d in ds):
        lead = delivery.lead
        assert f"/portal/leads/{delivery.pk}/" in email.body and f"/portal/leads/{delivery.pk}/" in html
        what = f"{lead.get_purpose_display()} in {lead.city}, {lead.state}"
        loan = f"estimated loan ${lead.requested_loan:,.0f}"
        assert f"Lead {lead.reference}, shared: {what}; {loan}; price $40.00" in email.body
        assert (
            f"Lead {lead.reference}: <strong>{escape(what)}</strong></a>\n  (shared): {loan}, price $40.00"
            in html
        )
    # Plain text is not HTML: an apostrophe stays an apostrophe there, and is escaped only in the HTML part.
    assert "O'Donnell, TX" in email.body and "O&#x27;Donnell, TX" in html
    assert not any(
        lead.consumer.email in email.body or lead.consumer.last_name in email.body for lead in leads
    )


def test_notifying_a_batch_costs_the_same_queries_for_two_leads_or_eight(owner, buying_lender, endpoint):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from integrations.deliveries import deliveries_email, deliveries_notify
    from marketplace.services import leads_distribute

    make_subscription(buying_lender, price="40.00")

    def queries_to_notify(n: int) -> tuple[int, int]:
        leads = [QualifiedLeadFactory() for _ in range(n)]
        sold = leads_distribute(lead_ids=[lead.pk for lead in leads], queue_notification=False)
        ids = [d.pk for ds in sold.values() for d in ds]
        with CaptureQueriesContext(connection) as notify:
            assert deliveries_notify(delivery_ids=ids) == n
        with CaptureQueriesContext(connection) as email:
            assert deliveries_email(delivery_ids=ids) == n
        return len(notify), len(email)

    assert queries_to_notify(2) == queries_to_notify(8)
    assert WebhookMessage.objects.filter(event_type="delivery.created").count() == 10
    assert [m.subject for m in mail.outbox] == ["2 new leads in your portal", "8 new leads in your portal"]
