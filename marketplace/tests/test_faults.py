"""Faults on the real topology: workers killed mid-sale, and the broker down when leads arrive.

Both run real processes (Celery prefork workers, beat, gunicorn) on the test PostgreSQL database and a private
Redis that the test may stop. The outcome must equal a clean run: every lead sold exactly once, no duplicate
delivery, no duplicate charge, every balance equal to its ledger.
"""

import http.cookiejar
import random
import re
import shutil
import signal
import time
import urllib.parse
import urllib.request
from decimal import Decimal

import pytest
from celery import Celery
from django.db.models import Sum
from django.test import override_settings

from billing.models import Account, LedgerEntry
from leads.models import Lead
from marketplace.models import Delivery

from .factories import FORM_DATA, LenderFactory, QualifiedLeadFactory, make_subscription
from .topology import PrivateRedis, Stack, database_url_for_tests, wait_until

# Real processes: slow (left out of `make test`), and one topology at a time (one xdist worker runs them all).
pytestmark = [
    pytest.mark.slow,
    pytest.mark.xdist_group("topology"),
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
]


@pytest.fixture
def private_redis():
    if not shutil.which("redis-server"):
        pytest.fail("redis-server is required for fault tests") if __import__("os").environ.get("CI") else (
            pytest.skip("redis-server not installed")
        )
    redis = PrivateRedis()
    redis.start()
    yield redis
    redis.stop()


@pytest.fixture
def stack(transactional_db, private_redis, tmp_path):
    s = Stack(
        database_url=database_url_for_tests(),
        redis=private_redis,
        log_dir=tmp_path,
        extra_env={"SWEEPER_INTERVAL_SECONDS": "2", "SWEEPER_MIN_AGE_SECONDS": "3"},
    )
    yield s
    s.stop()


def books_balance() -> None:
    assert LedgerEntry.objects.filter(kind="charge").count() == Delivery.objects.count()
    for account in Account.objects.all():
        total = LedgerEntry.objects.filter(account=account).aggregate(t=Sum("amount"))["t"] or Decimal("0")
        assert account.balance == total


def test_workers_killed_mid_distribution_leave_the_same_result_as_a_clean_run(stack, private_redis):
    a, b, c, d = (LenderFactory(states=["TX", "CA"], balance="100000") for _ in range(4))
    # Texas: three shared bids (135) beat one exclusive (100). California: the exclusive (150) beats 95.
    for lender, price in ((a, "50.00"), (b, "45.00"), (c, "40.00")):
        make_subscription(lender, states=["TX"], price=price, name="TX shared")
    make_subscription(d, states=["TX"], exclusive=True, price="100.00", name="TX exclusive")
    make_subscription(d, states=["CA"], exclusive=True, price="150.00", name="CA exclusive")
    make_subscription(a, states=["CA"], price="50.00", name="CA shared")
    make_subscription(b, states=["CA"], price="45.00", name="CA shared")
    tx = [QualifiedLeadFactory().pk for _ in range(80)]
    ca = [
        QualifiedLeadFactory(
            state="CA", zip_code="90210", city="Beverly Hills", county="Los Angeles County"
        ).pk
        for _ in range(80)
    ]

    stack.start_worker(concurrency=2)
    sender = Celery(broker=private_redis.url, set_as_current=False)  # must not replace the app tasks use
    for lead_id in tx + ca + tx[:40]:  # some twice: a duplicate message must not sell twice
        sender.send_task("marketplace.tasks.lead_distribute", args=[lead_id])

    kills, rng = 0, random.Random(7)
    deadline = time.monotonic() + 90
    while kills < 25 and time.monotonic() < deadline:
        children = stack.children()
        if children:
            try:
                __import__("os").kill(rng.choice(children), signal.SIGKILL)
                kills += 1
            except ProcessLookupError:
                pass
        time.sleep(rng.uniform(0.08, 0.25))
    assert kills >= 20

    # Killed mid-task, a message is rejected back to the queue (acks_late + reject_on_worker_lost) and rerun.
    assert wait_until(lambda: not Lead.objects.filter(pk__in=tx + ca).exclude(status="sold").exists(), 120), (
        stack.log("worker")[-3000:]
    )
    worker_log = stack.log("worker")
    assert len(re.findall(r"signal 9|SIGKILL", worker_log)) >= 20

    for lead_id in tx:
        assert sorted(Delivery.objects.filter(lead_id=lead_id).values_list("lender_id", flat=True)) == sorted(
            [a.pk, b.pk, c.pk]
        )
    for lead_id in ca:
        assert list(Delivery.objects.filter(lead_id=lead_id).values_list("lender_id", "exclusive")) == [
            (d.pk, True)
        ]
    books_balance()
    assert Account.objects.get(lender=d).balance == Decimal("100000") - 80 * Decimal("150.00")
    assert Account.objects.get(lender=a).balance == Decimal("100000") - 80 * Decimal("50.00")


def _post_form(base: str, data: dict) -> int:
    """A consumer's browser: GET the form for the CSRF cookie and token, then POST it."""
    jar = http.cookiejar.CookieJar()

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar), NoRedirect)
    page = opener.open(base + "/", timeout=10).read().decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    body = urllib.parse.urlencode({**data, "csrfmiddlewaretoken": token}).encode()
    request = urllib.request.Request(base + "/", data=body, headers={"Referer": base + "/"})
    try:
        return opener.open(request, timeout=10).status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_broker_down_at_submission_loses_no_lead(stack, private_redis):
    lender = LenderFactory(states=["TX"], balance="10000")
    make_subscription(lender, price="40.00")
    stack.start_web()
    stack.start_worker(concurrency=1)
    stack.start_beat()

    private_redis.stop()
    statuses = [
        _post_form(stack.url, {**FORM_DATA, "email": f"down{i}@example.com", "phone": f"51255501{i:02d}"})
        for i in range(8)
    ]
    assert statuses == [303] * 8  # the form still accepts them: saved before any task
    assert Lead.objects.filter(status="received").count() == 8

    private_redis.start()  # same port: the worker and beat reconnect
    started = time.monotonic()
    assert wait_until(lambda: Lead.objects.filter(status="sold").count() == 8, 60), (
        stack.log("beat")[-2000:] + stack.log("worker")[-2000:]
    )
    assert time.monotonic() - started < 60
    assert Delivery.objects.count() == 8
    books_balance()


def test_a_slow_lender_endpoint_never_delays_a_sale(stack, private_redis):
    """Webhooks have their own queue and worker: while one lender's endpoint takes 4 s per delivery, leads
    keep selling within seconds on the sales worker, and the webhooks still arrive, signed, one by one."""
    from integrations.services import webhook_endpoint_create
    from integrations.tests.receiver import Receiver

    with Receiver() as receiver:
        receiver.delay = 4.0
        lender = LenderFactory(states=["TX"], balance="10000")
        make_subscription(lender, price="40.00")
        stack.env["WEBHOOK_ALLOW_LOOPBACK"] = "1"
        with override_settings(WEBHOOK_ALLOW_LOOPBACK=True):
            webhook_endpoint_create(lender=lender, url=receiver.url, events=["delivery.created"])
        stack.start_web()
        stack.start_worker(concurrency=1, queues="celery")
        stack.start_worker(concurrency=1, name="outbound", queues="webhooks,mail")

        started = time.monotonic()
        for i in range(6):
            form = {**FORM_DATA, "email": f"slow{i}@example.com", "phone": f"51255502{i:02d}"}
            assert _post_form(stack.url, form) == 303
            time.sleep(0.5)  # leads arrive one by one, each while earlier webhooks are still hanging
        all_sold = wait_until(lambda: Lead.objects.filter(status="sold").count() == 6, 30)
        assert all_sold, stack.log("worker")[-2000:]
        waits = [(lead.sold_at - lead.created_at).total_seconds() for lead in Lead.objects.all()]
        assert max(waits) < 2, f"sales waited on the slow endpoint: {waits}"  # one webhook takes 4 s
        assert time.monotonic() - started < 10
        assert len(receiver.requests) < 6  # the endpoint is still working through them
        assert wait_until(lambda: len(receiver.requests) == 6, 60), stack.log("outbound")[-2000:]


def test_a_slow_mail_server_never_delays_a_sale(stack, private_redis):
    """E-mail has its own queue on the outbound worker: while the mail server takes 3 s per message, leads
    keep selling within seconds, and every buyer's e-mail still goes out."""
    from .factories import MemberFactory
    from .mailserver import MailServer

    with MailServer(delay=3.0) as smtp:
        lender = LenderFactory(states=["TX"], balance="10000")
        owner = MemberFactory(lender=lender).user
        make_subscription(lender, price="40.00")
        stack.env["EMAIL_URL"] = smtp.url
        stack.start_web()
        stack.start_worker(concurrency=1, queues="celery")
        stack.start_worker(concurrency=1, name="outbound", queues="webhooks,mail")

        for i in range(5):
            form = {**FORM_DATA, "email": f"mailslow{i}@example.com", "phone": f"51255503{i:02d}"}
            assert _post_form(stack.url, form) == 303
            time.sleep(0.5)  # leads arrive one by one, each while earlier e-mails are still being accepted
        all_sold = wait_until(lambda: Lead.objects.filter(status="sold").count() == 5, 30)
        assert all_sold, stack.log("worker")[-2000:]
        waits = [(lead.sold_at - lead.created_at).total_seconds() for lead in Lead.objects.all()]
        assert max(waits) < 2, f"sales waited on the mail server: {waits}"  # one e-mail takes 3 s
        assert len(smtp.messages) < 5  # the mail server is still working through them
        assert wait_until(lambda: not Delivery.objects.filter(emailed_at__isnull=True).exists(), 60), (
            stack.log("outbound")[-2000:]
        )
        sent = b"".join(smtp.messages)
        assert owner.email.encode() in sent and sent.count(b"Subject: ") == len(smtp.messages) >= 1


def test_one_lenders_dead_endpoints_do_not_delay_anothers_webhooks(stack, private_redis):
    """Issue 11.6: 40 endpoints of one lender that time out, then 4 leads sold to it and to another lender,
    delayed the other lender's delivery.created by 3 minutes, and the sweeper re-queued what was already
    waiting (1,340 tasks). Now the healthy lender's webhooks arrive within seconds, the dead endpoints hold
    one outbound process at most, and the broker holds at most one task per endpoint however often the
    sweeper runs."""
    import redis

    from integrations.models import WebhookAttempt, WebhookEndpoint, WebhookMessage
    from integrations.services import webhook_secret_new
    from integrations.tests.receiver import Receiver

    with Receiver() as dead, Receiver() as healthy:
        dead.delay = 60.0  # accepts the connection, never answers in time: every attempt times out
        a = LenderFactory(states=["TX"], balance="10000")
        b = LenderFactory(states=["TX"], balance="10000")
        make_subscription(a, price="50.00")  # the better bid: A's deliveries and webhooks come first
        make_subscription(b, price="40.00")
        for i in range(40):  # staff raised A's cap (or it predates one): 40 endpoints, all dead
            WebhookEndpoint.objects.create(
                lender=a, url=f"{dead.url}?n={i}", secret=webhook_secret_new(), events=["delivery.created"]
            )
        b_endpoint = WebhookEndpoint.objects.create(
            lender=b, url=healthy.url, secret=webhook_secret_new(), events=["delivery.created"]
        )
        leads = [QualifiedLeadFactory(consumer__email=f"fair{i}@example.com").pk for i in range(4)]
        stack.env.update(WEBHOOK_ALLOW_LOOPBACK="1", WEBHOOK_SWEEPER_INTERVAL_SECONDS="1")
        stack.start_worker(concurrency=1, queues="celery")
        stack.start_worker(concurrency=2, name="outbound", queues="webhooks,mail")  # as the Procfile runs it
        stack.start_beat()

        sender = Celery(broker=private_redis.url, set_as_current=False)
        for lead_id in leads:
            sender.send_task("marketplace.tasks.lead_distribute", args=[lead_id])
        broker = redis.Redis.from_url(private_redis.url)
        queued: list[int] = []
        b_messages = WebhookMessage.objects.filter(endpoint=b_endpoint, status="succeeded")
        arrived = wait_until(lambda: queued.append(broker.llen("webhooks")) or b_messages.count() == 4, 30)
        assert arrived, stack.log("outbound")[-3000:]
        assert len(healthy.requests) == 4
        assert Delivery.objects.filter(lender=a).count() == Delivery.objects.filter(lender=b).count() == 4
        delays = [(m.finished_at - m.created_at).total_seconds() for m in b_messages]
        assert max(delays) < 5, f"B's webhooks waited on A's dead endpoints: {delays}"

        # A's 40 endpoints are tried one at a time (never holding both outbound processes): each attempt is
        # logged with its start and how long it waited. Meanwhile beat sweeps every second, and nothing
        # already queued is queued again.
        a_attempts = WebhookAttempt.objects.filter(message__endpoint__lender=a)
        assert wait_until(lambda: queued.append(broker.llen("webhooks")) or a_attempts.count() >= 2, 40)
        spans = sorted(
            (t.attempted_at.timestamp(), t.attempted_at.timestamp() + t.latency_ms / 1000) for t in a_attempts
        )
        assert not a_attempts.filter(succeeded=True).exists()
        assert all(b[0] >= a[1] - 0.05 for a, b in zip(spans, spans[1:], strict=False)), spans
        assert max(queued) <= 41, f"tasks waiting in the webhooks queue: {max(queued)}"
        a_messages = WebhookMessage.objects.filter(endpoint__lender=a)
        assert a_messages.count() == 160 and not a_messages.exclude(status="pending").exists()  # none lost
