"""Webhooks: Standard Webhooks signatures verified by the `standardwebhooks` library against real POSTs to a
receiver on 127.0.0.1; retries with the same id, Retry-After, 410, disabling, the SSRF guard."""

import ipaddress
import socket
from datetime import timedelta
from unittest import mock

import pytest
from django.core import mail
from django.utils import timezone
from standardwebhooks import Webhook

from integrations import webhooks as wh
from integrations.models import WebhookAttempt, WebhookEndpoint, WebhookMessage
from integrations.services import webhook_endpoint_rotate_secret, webhook_secret_new, webhooks_emit
from integrations.tasks import (
    webhook_endpoint_send_due as webhook_endpoint_send_due_task,
)
from integrations.tasks import (
    webhook_endpoints_schedule_due,
)
from marketplace.services import lead_distribute
from marketplace.tests.factories import QualifiedLeadFactory, make_subscription

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _allow_loopback(settings):
    settings.WEBHOOK_ALLOW_LOOPBACK = True


@pytest.fixture
def endpoint(buying_lender, receiver):
    return WebhookEndpoint.objects.create(
        lender=buying_lender,
        url=receiver.url,
        secret=webhook_secret_new(),
        events=["delivery.created", "delivery.updated", "return.decided", "account.low_balance"],
    )


def verify(endpoint_or_secret, headers, body):
    secret = endpoint_or_secret if isinstance(endpoint_or_secret, str) else endpoint_or_secret.secret
    return Webhook(secret).verify(
        body, {k: headers[k] for k in ("webhook-id", "webhook-timestamp", "webhook-signature")}
    )


def emit(endpoint, django_capture_on_commit_callbacks, data=None):
    with django_capture_on_commit_callbacks(execute=True):
        webhooks_emit(lender_id=endpoint.lender_id, event_type="delivery.updated", data=data or {"id": 1})
    return WebhookMessage.objects.filter(endpoint=endpoint).latest("id")


def make_due(message):
    WebhookMessage.objects.filter(pk=message.pk).update(next_attempt_at=timezone.now() - timedelta(seconds=1))


def test_secret_format():
    secret = webhook_secret_new()
    assert secret.startswith("whsec_")
    import base64

    assert len(base64.b64decode(secret.removeprefix("whsec_"))) >= 24


def test_a_sale_posts_a_signed_delivery_created_that_standardwebhooks_verifies(
    buying_lender, endpoint, receiver, django_capture_on_commit_callbacks
):
    make_subscription(buying_lender, exclusive=True, price="90.00")
    with django_capture_on_commit_callbacks(execute=True):
        delivery = lead_distribute(lead_id=QualifiedLeadFactory().pk)[0]

    assert len(receiver.requests) == 1
    headers, body, _ = receiver.requests[0]
    payload = verify(endpoint, headers, body)
    assert payload["type"] == "delivery.created"
    assert payload["data"]["id"] == delivery.pk and payload["data"]["contact"]["email"]
    message = WebhookMessage.objects.get(endpoint=endpoint)
    assert headers["webhook-id"] == message.event_id and message.status == "succeeded"
    attempt = WebhookAttempt.objects.get(message=message)
    assert attempt.succeeded and attempt.status_code == 200 and attempt.response_excerpt == "ok"


def test_the_delivery_created_payload_carries_the_qualification_of_issue_12(
    buying_lender, endpoint, receiver, django_capture_on_commit_callbacks
):
    """Issue 12: the webhook payload (the delivery serializer) has the loan qualified for beside the request,
    each product's offer, obstacle and refinance maxima, and what would close the gap."""
    from decimal import Decimal

    from leads.tests.test_pipeline import submit

    make_subscription(buying_lender, exclusive=True, price="90.00", purposes=["refinance"])
    with django_capture_on_commit_callbacks(execute=True):
        submit(
            purpose="refinance",
            purchase_price=None,
            down_payment=None,
            property_value=Decimal("500000"),
            mortgage_balance=Decimal("300000"),
            cash_out=Decimal("150000"),
            desired_loan_amount=Decimal("450000"),
            annual_income=Decimal("200000"),
            monthly_debts=Decimal("300"),
        )

    headers, body, _ = receiver.requests[0]
    q = verify(endpoint, headers, body)["data"]["qualification"]
    assert q["qualified"] and not q["fits_request"]
    assert (q["requested_loan"], q["qualified_loan"]) == ("450000.00", "400000.00")
    conv = next(p for p in q["max_per_product"] if p["product"] == "conventional")
    assert (conv["rate_term_max"], conv["cash_out_max"]) == ("309000.00", "400000.00")
    assert "cash-out refinance" in conv["obstacle"] and conv["loan"] == "400000.00"
    assert q["gap"] == [
        {
            "kind": "cash_out",
            "amount": "100000.00",
            "loan": "400000.00",
            "text": "Taking $100,000 in cash instead of $150,000 would fit.",
        }
    ]
    assert q["purchase"] is None
    # Issues 12.4 / 12.7: the county's limits and their sources.
    assert q["loan_limits"]["conforming_source"] == "FHFA 2026 Travis County, TX"
    assert (q["loan_limits"]["fha_limit"], q["loan_limits"]["fha_source"]) == (
        "541287.00",
        "HUD FHA floor (FHFA 2026 Travis County, TX is the baseline)",
    )
    # Issue 12.5: the credit range, no exact score (the form gives none), and the score judged by.
    assert (q["credit_range"], q["credit_score"], q["credit_score_judged"]) == ("660_679", None, 660)
    assert verify(endpoint, headers, body)["data"]["loan"]["credit_range"] == "660_679"


def test_a_failure_is_retried_with_the_same_id_after_the_schedule(
    endpoint, receiver, django_capture_on_commit_callbacks
):
    receiver.reply(500, body=b"boom")
    message = emit(endpoint, django_capture_on_commit_callbacks)

    message.refresh_from_db()
    assert message.status == "pending" and message.attempt_count == 1
    wait = message.next_attempt_at - timezone.now()
    assert timedelta(seconds=3) < wait < timedelta(seconds=7)  # 5 s with jitter
    webhook_endpoints_schedule_due()  # not due yet: nothing is sent
    assert len(receiver.requests) == 1

    make_due(message)
    webhook_endpoints_schedule_due()

    assert len(receiver.requests) == 2
    (h1, b1, _), (h2, b2, _) = receiver.requests
    assert h1["webhook-id"] == h2["webhook-id"] == message.event_id
    assert verify(endpoint, h1, b1) == verify(endpoint, h2, b2)
    message.refresh_from_db()
    assert message.status == "succeeded" and message.attempt_count == 2
    assert [a.status_code for a in message.attempts.order_by("id")] == [500, 200]
    assert message.attempts.order_by("id")[0].response_excerpt == "boom"
    endpoint.refresh_from_db()
    assert endpoint.failure_count == 0


@pytest.mark.parametrize("status", [429, 503])
def test_429_and_503_honour_retry_after(endpoint, receiver, status, django_capture_on_commit_callbacks):
    receiver.reply(status, {"Retry-After": "7200"})
    message = emit(endpoint, django_capture_on_commit_callbacks)

    message.refresh_from_db()
    assert message.next_attempt_at - timezone.now() > timedelta(seconds=7190)


def test_410_disables_the_endpoint_and_emails_the_owner(
    owner, endpoint, receiver, django_capture_on_commit_callbacks
):
    receiver.reply(410)
    message = emit(endpoint, django_capture_on_commit_callbacks)

    endpoint.refresh_from_db()
    message.refresh_from_db()
    assert not endpoint.is_active and endpoint.disabled_at and "410" in endpoint.disabled_reason
    assert message.status == "failed"
    assert [m.to for m in mail.outbox] == [[owner.email]]
    assert "disabled" in mail.outbox[0].subject and mail.outbox[0].alternatives[0][1] == "text/html"
    # Nothing more is sent to a disabled endpoint.
    emit(endpoint, django_capture_on_commit_callbacks)
    assert len(receiver.requests) == 1


def test_after_the_last_scheduled_attempt_the_endpoint_is_disabled(
    owner, endpoint, receiver, django_capture_on_commit_callbacks
):
    receiver.reply(500)
    with mock.patch.object(webhook_endpoint_send_due_task, "apply_async"):
        message = emit(endpoint, django_capture_on_commit_callbacks)
    WebhookMessage.objects.filter(pk=message.pk).update(attempt_count=wh.MAX_ATTEMPTS - 1)
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(failure_count=wh.MAX_ATTEMPTS - 1)
    make_due(message)

    with django_capture_on_commit_callbacks(execute=True):
        webhook_endpoint_send_due_task(endpoint.pk)

    message.refresh_from_db()
    endpoint.refresh_from_db()
    assert message.status == "failed" and message.attempt_count == wh.MAX_ATTEMPTS
    assert not endpoint.is_active and len(mail.outbox) == 1


def test_the_schedule_spans_about_three_days_and_no_countdown_outlives_the_visibility_timeout(
    settings, endpoint
):
    total = sum(wh.SCHEDULE, timedelta())
    assert timedelta(days=3) < total < timedelta(days=3, hours=12)
    visibility = timedelta(seconds=settings.CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"])
    countdowns = []
    for attempt in range(1, wh.MAX_ATTEMPTS):
        wait = wh._wait_after(attempt, wh.SendResult(500, 1))
        base = wh.SCHEDULE[attempt - 1]
        assert base * 0.8 <= wait <= base * 1.2
        run = wh.EndpointRun(sent=1, lender_id=endpoint.lender_id, retry=wait)
        WebhookEndpoint.objects.filter(pk=endpoint.pk).update(queued_at=None)
        with (
            mock.patch("integrations.webhooks.webhook_endpoint_send_due", return_value=run),
            mock.patch.object(webhook_endpoint_send_due_task, "apply_async") as apply_async,
        ):
            webhook_endpoint_send_due_task(endpoint.pk)
        countdowns += [c.kwargs["countdown"] for c in apply_async.call_args_list]
    assert countdowns and max(countdowns) <= visibility.total_seconds()
    assert wh.TIMEOUT.connect_timeout + wh.TIMEOUT.read_timeout <= 15


def test_a_rotated_secret_signs_alongside_the_old_one_for_a_day(
    endpoint, receiver, django_capture_on_commit_callbacks
):
    old = endpoint.secret
    new = webhook_endpoint_rotate_secret(endpoint=endpoint)
    emit(endpoint, django_capture_on_commit_callbacks)

    headers, body, _ = receiver.requests[0]
    assert len(headers["webhook-signature"].split()) == 2
    verify(old, headers, body)
    verify(new, headers, body)


def test_a_long_response_is_logged_to_1_kb(endpoint, receiver, django_capture_on_commit_callbacks):
    receiver.reply(200, body=b"x" * 5000)
    message = emit(endpoint, django_capture_on_commit_callbacks)
    assert len(message.attempts.get().response_excerpt) == 1024


def test_redirects_are_not_followed(endpoint, receiver, django_capture_on_commit_callbacks):
    receiver.reply(302, {"Location": "http://169.254.169.254/latest/meta-data/"})
    message = emit(endpoint, django_capture_on_commit_callbacks)

    assert len(receiver.requests) == 1
    attempt = message.attempts.get()
    assert attempt.status_code == 302 and not attempt.succeeded


@pytest.mark.parametrize(
    "address",
    [
        "10.0.0.1",
        "172.16.5.4",
        "192.168.1.1",
        "169.254.169.254",
        "0.0.0.0",  # noqa: S104 - an address under test, not a bind
        "100.64.0.1",
        "224.0.0.1",
        "240.0.0.1",
        "::",
        "fe80::1",
        "fc00::1",
        "::ffff:10.0.0.1",
        "::ffff:169.254.169.254",
    ],
)
def test_private_link_local_and_reserved_addresses_are_refused(address):
    assert not wh.address_allowed(ipaddress.ip_address(address))


def test_loopback_only_when_the_setting_allows_it(settings):
    assert wh.address_allowed(ipaddress.ip_address("127.0.0.1"))
    settings.WEBHOOK_ALLOW_LOOPBACK = False
    for address in ("127.0.0.1", "::1", "::ffff:127.0.0.1"):
        assert not wh.address_allowed(ipaddress.ip_address(address))
    assert wh.address_allowed(ipaddress.ip_address("93.184.216.34"))


def fake_dns(*addresses):
    def getaddrinfo(host, port, *args, **kwargs):
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port)) for a in addresses]

    return mock.patch("integrations.webhooks.socket.getaddrinfo", side_effect=getaddrinfo)


def test_a_name_resolving_to_any_private_address_is_never_contacted(receiver):
    with fake_dns("93.184.216.34", "10.1.2.3"), mock.patch("urllib3.HTTPSConnectionPool") as pool:
        result = wh.http_post("https://hooks.example/x", body=b"{}", headers={})
    assert result.status_code is None and "private" in result.error
    pool.assert_not_called()


def test_the_connection_goes_to_the_checked_address_with_the_hosts_name(receiver, settings):
    # DNS rebinding cannot swap the address: we resolve once, check, and connect to that IP.
    with fake_dns("127.0.0.1"):
        result = wh.http_post(f"http://hooks.example:{receiver.port}/in", body=b"{}", headers={})
    assert result.status_code == 200
    headers, _, path = receiver.requests[0]
    assert headers["host"] == f"hooks.example:{receiver.port}" and path == "/in"


def test_plain_http_is_refused_for_public_hosts():
    with fake_dns("93.184.216.34"), pytest.raises(wh.UnsafeURL):
        wh.resolve("http://hooks.example/x")
    with pytest.raises(wh.UnsafeURL):
        wh.url_check("https://user:pw@hooks.example/x")


def test_a_delivery_for_a_lender_without_endpoints_queues_nothing(rival_lender, endpoint):
    assert webhooks_emit(lender_id=rival_lender.pk, event_type="delivery.created", data={}) == 0


def test_a_batch_of_sales_is_one_task_per_endpoint_and_every_message_verifies(
    buying_lender, endpoint, receiver, django_capture_on_commit_callbacks, monkeypatch
):
    """Leads sold in one batch: the endpoint gets one signed delivery.created per lead, in order, sent by one
    task over one connection instead of a task each."""
    import json

    from integrations import tasks
    from marketplace.services import leads_distribute

    queued: list[tuple] = []
    real = tasks.webhook_endpoint_send_due.apply_async
    monkeypatch.setattr(
        tasks.webhook_endpoint_send_due,
        "apply_async",
        lambda args, **kw: queued.append(args) or real(args, **kw),
    )
    make_subscription(buying_lender, price="40.00")
    leads = [QualifiedLeadFactory(consumer__email=f"c{i}@example.com") for i in range(4)]

    with django_capture_on_commit_callbacks(execute=True):
        sold = leads_distribute(lead_ids=[lead.pk for lead in leads])

    assert queued == [(endpoint.pk,)]
    assert len(receiver.requests) == 4
    for headers, body, _ in receiver.requests:
        verify(endpoint, headers, body)
    received = [json.loads(body)["data"]["id"] for _, body, _ in receiver.requests]
    assert received == sorted(d.pk for ds in sold.values() for d in ds)
    assert WebhookMessage.objects.filter(status="succeeded").count() == 4


def test_a_failure_backs_the_endpoint_off_with_the_rest_waiting_in_order(
    endpoint, receiver, django_capture_on_commit_callbacks, monkeypatch
):
    """Issue 11.6: after a failed attempt the endpoint's other messages are not each tried (and each timed
    out) at once: they wait with the failed one, which is retried first, by one countdown task."""
    with mock.patch.object(webhook_endpoint_send_due_task, "apply_async"):  # the emits' own sends: not yet
        messages = [emit(endpoint, django_capture_on_commit_callbacks, data={"n": i}) for i in range(4)]
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(queued_at=None)
    receiver.reply(200)
    receiver.reply(503, {"Retry-After": "30"})  # the second fails; 30 s is a broker countdown
    queued: list[tuple] = []
    monkeypatch.setattr(
        webhook_endpoint_send_due_task,
        "apply_async",
        lambda args, countdown=None, **kw: queued.append((args, countdown)),
    )

    assert webhook_endpoint_send_due_task(endpoint.pk) == 2

    for m in messages:
        m.refresh_from_db()
    assert [m.status for m in messages] == ["succeeded", "pending", "pending", "pending"]
    assert [m.attempt_count for m in messages] == [1, 1, 0, 0]
    assert messages[0].finished_at is not None and messages[0].next_attempt_at is None
    assert all(m.next_attempt_at >= timezone.now() + timedelta(seconds=29) for m in messages[1:])
    assert [a.succeeded for a in WebhookAttempt.objects.order_by("attempted_at")] == [True, False]
    assert len(queued) == 1 and queued[0][0] == (endpoint.pk,) and queued[0][1] >= 30
    endpoint.refresh_from_db()
    assert endpoint.failure_count == 1 and endpoint.queued_at > timezone.now() + timedelta(seconds=29)

    # Nothing due, and the endpoint's task is queued: the sweeper queues nothing.
    webhook_endpoints_schedule_due()
    assert len(queued) == 1

    WebhookMessage.objects.filter(pk__in=[m.pk for m in messages[1:]]).update(next_attempt_at=timezone.now())
    webhook_endpoints_schedule_due()  # due now, but the countdown task is still queued: not queued twice
    assert len(queued) == 1
    assert webhook_endpoint_send_due_task(endpoint.pk) == 3  # the countdown task: the rest, in order
    assert [json_n(b) for _, b, _ in receiver.requests] == [0, 1, 1, 2, 3]


def json_n(body: bytes) -> int:
    import json

    return json.loads(body)["data"]["n"]
