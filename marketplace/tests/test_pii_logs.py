"""No consumer PII in logs: every log record of a full pipeline run is captured and searched for the
consumers' e-mail addresses, phone numbers (in every way they are written) and names."""

import logging
import re

import pytest
from django.core import mail
from django.test import Client

from integrations.models import ApiKey, LeadSource, WebhookAttempt, WebhookEndpoint
from integrations.services import api_key_create, webhook_secret_new
from integrations.tests.conftest import LEAD, Api
from integrations.tests.receiver import Receiver
from leads.models import Lead
from marketplace.models import Delivery

from .factories import FORM_DATA, lender_mail, make_subscription

pytestmark = pytest.mark.django_db

# Two consumers: one through the public form, one through the partner API. Unusual names, so a hit is a leak.
FORM_CONSUMER = {
    "first_name": "Philomena",
    "last_name": "Ravenscroft",
    "email": "philomena.ravenscroft@example.org",
    "phone": "(512) 555-0142",
}
API_CONSUMER = {
    "first_name": "Bartholomew",
    "last_name": "Quenneville",
    "email": "bart.quenneville@example.net",
    "phone": "214-555-0177",
}


def pii_of(consumer: dict) -> list[str]:
    digits = re.sub(r"\D", "", consumer["phone"])
    area, exchange, line = digits[:3], digits[3:6], digits[6:]
    return [
        consumer["first_name"],
        consumer["last_name"],
        consumer["email"],
        consumer["email"].split("@")[0],  # the local part alone is as identifying
        digits,
        f"+1{digits}",
        f"({area}) {exchange}-{line}",
        f"{area}-{exchange}-{line}",
        f"{area}.{exchange}.{line}",
        f"{exchange}-{line}",
    ]


class Collector(logging.Handler):
    """Keeps every record, formatted in full: message with its args, and any traceback."""

    def __init__(self):
        super().__init__(level=logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))

    def emit(self, record):
        self.records.append(record)

    def texts(self) -> list[str]:
        return [self.format(r) for r in self.records]


@pytest.fixture
def all_logs(caplog):
    """The root, django and celery loggers at DEBUG, with a handler on the root (and on any logger that does
    not propagate, whose records would otherwise never reach it)."""
    collector = Collector()
    root = logging.getLogger()
    touched = [root, logging.getLogger("django"), logging.getLogger("celery")]
    saved = [(lg, lg.level) for lg in touched]
    for lg in touched:
        lg.setLevel(logging.DEBUG)
    root.addHandler(collector)
    islands = [
        lg
        for lg in logging.root.manager.loggerDict.values()
        if isinstance(lg, logging.Logger) and not lg.propagate
    ]
    for lg in islands:
        lg.addHandler(collector)
    caplog.set_level(logging.DEBUG)
    try:
        yield collector
    finally:
        for lg in islands:
            lg.removeHandler(collector)
        root.removeHandler(collector)
        for lg, level in saved:
            lg.setLevel(level)


@pytest.fixture
def receiver():
    with Receiver() as r:
        yield r


def test_a_full_pipeline_run_logs_no_consumer_pii(
    all_logs, caplog, buying_lender, owner, receiver, settings, django_capture_on_commit_callbacks
):
    settings.WEBHOOK_ALLOW_LOOPBACK = True
    make_subscription(buying_lender, price="40.00")
    WebhookEndpoint.objects.create(
        lender=buying_lender, url=receiver.url, secret=webhook_secret_new(), events=["delivery.created"]
    )

    # 1. The consumer submits the public form; qualification, distribution, e-mail and webhook run on commit.
    visitor = Client()
    with django_capture_on_commit_callbacks(execute=True):
        response = visitor.post("/", {**FORM_DATA, **FORM_CONSUMER})
    assert response.status_code == 303
    visitor.get(response["Location"])  # the result page
    lead = Lead.objects.get(consumer__email=FORM_CONSUMER["email"])
    delivery = Delivery.objects.get(lead=lead)
    assert lead.status == "sold" and delivery.notified_at is not None
    assert len(lender_mail(mail.outbox)) == 1
    # The consumer's first touch and confirmation carry their name: in the e-mails, never in the logs.
    assert len([m for m in mail.outbox if m.to == [FORM_CONSUMER["email"]]]) == 2
    assert WebhookAttempt.objects.filter(succeeded=True).count() == 1 and len(receiver.requests) == 1

    # 2. The lender works the lead in the portal and over its API.
    lender = Client()
    assert lender.post("/portal/login/", {"username": "owner", "password": "pass-12345"}).status_code == 302
    assert lender.get("/portal/").status_code == 200
    assert FORM_CONSUMER["last_name"] in lender.get(f"/portal/leads/{delivery.pk}/").content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        moved = lender.post(f"/portal/leads/{delivery.pk}/status/", {"status": "contacted"})
    assert moved.status_code == 302
    assert b"".join(lender.get("/portal/inbox/export.csv").streaming_content)
    lender_api = Api(api_key_create(lender=buying_lender, name="CRM", scope=ApiKey.Scope.WRITE).key)
    assert lender_api.get(f"/api/v1/deliveries/{delivery.pk}/").status_code == 200

    # 3. A partner posts a second lead through the API and reads its status.
    partner = Api(
        api_key_create(
            source=LeadSource.objects.create(name="Quote Partner"), name="intake", scope=ApiKey.Scope.WRITE
        ).key
    )
    with django_capture_on_commit_callbacks(execute=True):
        created = partner.post("/api/v1/leads/", {**LEAD, **API_CONSUMER})
    assert created.status_code == 202, created.content
    assert partner.get(f"/api/v1/leads/{created.json()['id']}/").status_code == 200
    # A bad submission echoes the fields back to the partner, never to the log.
    assert partner.post("/api/v1/leads/", {**LEAD, **API_CONSUMER, "zip_code": "x"}).status_code == 400

    # 4. Failed sign-ins, one with a consumer's e-mail typed as the username (consumers do that).
    anonymous = Client()
    assert anonymous.post("/portal/login/", {"username": "owner", "password": "wrong"}).status_code == 200
    anonymous.post("/portal/login/", {"username": FORM_CONSUMER["email"], "password": API_CONSUMER["phone"]})
    anonymous.post("/admin/login/", {"username": API_CONSUMER["email"], "password": "wrong"})
    # A 404 with PII in the query string: Django's request log names the path only.
    Client().get("/portal/nowhere/", {"email": API_CONSUMER["email"]})

    texts = all_logs.texts()
    assert len(texts) > 10, "the handler caught too little to prove anything"
    assert any("lead" in t for t in texts)
    needles = pii_of(FORM_CONSUMER) + pii_of(API_CONSUMER)
    leaks = [(needle, text) for text in texts for needle in needles if needle.lower() in text.lower()]
    assert not leaks, "PII in the log:\n" + "\n".join(f"{n!r} in {t!r}" for n, t in leaks)
    caplog_leaks = [
        (needle, r.getMessage())
        for r in caplog.records
        for needle in needles
        if needle.lower() in r.getMessage().lower()
    ]
    assert not caplog_leaks
