"""The production topology end to end in a real browser: gunicorn, a Celery worker and beat on PostgreSQL and
Redis. A consumer submits the form and sees the estimate; the lender watching the inbox sees the lead
arrive."""

import re

import pytest
from standardwebhooks import Webhook

from integrations.models import WebhookEndpoint
from integrations.services import webhook_secret_new
from integrations.tests.receiver import Receiver
from marketplace.models import Delivery
from portal.tests.browser import login

from .factories import LenderFactory, MemberFactory, make_subscription
from .test_faults import private_redis  # noqa: F401 - fixture
from .topology import Stack, database_url_for_tests, wait_until

pytest_plugins = ["portal.tests.browser"]
# slow comes with browser (conftest.py); one topology at a time, as in test_faults.
pytestmark = [
    pytest.mark.browser,
    pytest.mark.xdist_group("topology"),
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
]


@pytest.fixture
def receiver():
    with Receiver() as r:
        yield r


@pytest.fixture
def stack(transactional_db, private_redis, tmp_path):  # noqa: F811
    # The worker may post webhooks to the receiver on loopback: allowed for tests only.
    s = Stack(
        database_url=database_url_for_tests(),
        redis=private_redis,
        log_dir=tmp_path,
        extra_env={"WEBHOOK_ALLOW_LOOPBACK": "1"},
    )
    s.start_web()
    s.start_worker(concurrency=2)
    s.start_beat()
    yield s
    s.stop()


def fill_consumer_form(page) -> None:
    page.check("input[name=purpose][value=purchase]")
    page.fill("#id_zip_code", "78701")
    page.select_option("#id_property_type", "single_family")
    page.select_option("#id_occupancy", "primary")
    page.select_option("#id_timeline", "3_months")
    page.fill("#id_property_value", "420000")
    page.fill("#id_purchase_price", "420000")
    page.fill("#id_down_payment", "42000")
    page.select_option("#id_credit_range", "660_679")
    page.fill("#id_annual_income", "125000")
    page.fill("#id_monthly_debts", "400")
    page.fill("#id_first_name", "Ana")
    page.fill("#id_last_name", "Lopez")
    page.fill("#id_email", "ana.lopez@example.com")
    page.fill("#id_phone", "5125550199")
    page.check("#id_consent")


def test_consumer_gets_an_estimate_and_the_lender_sees_the_lead_live(
    stack, browser_page, _chromium, receiver
):
    lender = LenderFactory(name="Lone Star Home Loans", states=["TX"], balance="1000")
    MemberFactory(lender=lender, role="owner", username="lender1")
    make_subscription(lender, exclusive=True, price="65.00")
    endpoint = WebhookEndpoint.objects.create(
        lender=lender, url=receiver.url, secret=webhook_secret_new(), events=["delivery.created"]
    )

    # The loan officer has the inbox open before the lead exists.
    inbox = browser_page
    login(inbox, stack, "lender1")  # Stack has .url like live_server
    inbox.goto(f"{stack.url}/portal/")
    assert inbox.locator("text=Ana Lopez").count() == 0

    context = _chromium.new_context(viewport={"width": 390, "height": 844})
    consumer = context.new_page()
    csp_errors = []
    consumer.on(
        "console", lambda m: csp_errors.append(m.text) if "Content Security Policy" in m.text else None
    )
    consumer.goto(f"{stack.url}/")
    fill_consumer_form(consumer)
    consumer.click("button[type=submit]")
    consumer.wait_for_url(re.compile(r"/result/"))
    consumer.get_by_text(re.compile(r"You may qualify for up to \$[\d,]+")).wait_for(timeout=20_000)
    context.close()
    assert not csp_errors

    # The inbox polls: the lead appears without a reload.
    inbox.get_by_text("Ana Lopez").wait_for(timeout=20_000)
    assert "Exclusive" in inbox.content()

    # The lender's receiver gets the signed delivery.created, verified by the standardwebhooks library.
    assert wait_until(lambda: receiver.requests, 20), stack.log("worker")[-3000:]
    headers, body, _ = receiver.requests[0]
    event = Webhook(endpoint.secret).verify(
        body, {k: headers[k] for k in ("webhook-id", "webhook-timestamp", "webhook-signature")}
    )
    assert event["type"] == "delivery.created"
    assert event["data"]["id"] == Delivery.objects.get(lead__consumer__last_name="Lopez").pk


def test_api_docs_render_under_the_content_security_policy(stack, browser_page):
    errors = []
    browser_page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    browser_page.goto(f"{stack.url}/api/docs/")
    browser_page.locator(".swagger-ui .opblock").first.wait_for(timeout=20_000)
    assert browser_page.locator("text=/api/v1/leads/").count() > 0
    assert not [e for e in errors if "Content Security Policy" in e]
