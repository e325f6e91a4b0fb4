"""Issue 15.1: e-mail to consumers. Django's backends as before, or a provider through django-anymail chosen
by ANYMAIL_ESP (the setting is tested in a fresh process, and anymail's Postmark backend is driven against a
local server speaking its API). Marketing and nurture mail carries RFC 8058 one-click unsubscribe and the
sender's identity; the link's GET asks, its POST (a mail client's, with no CSRF token) unsubscribes."""

import base64
import os
import re
import subprocess
import sys
from urllib.parse import unquote

import environ
import pytest
from django.core import mail
from django.core.exceptions import ImproperlyConfigured
from django.test import Client
from django.urls import reverse

from compliance.models import OptOut
from compliance.selectors import optout_active
from config.channels import email_settings
from integrations.channels.mail import (
    ConsumerUnreachable,
    MessageKind,
    consumer_email_build,
    consumer_email_send,
    unsubscribe_token,
)
from marketplace.models import Activity
from marketplace.tests.factories import make_subscription
from portal.tests.test_portal import sell

from .fakeprovider import Answer, FakeProvider

pytestmark = pytest.mark.django_db

LIST_UNSUBSCRIBE = re.compile(
    r"^<(?P<url>https?://[^>]+/u/(?P<token>[^>/]+))>, "
    r"<mailto:(?P<mailto>[^>?]+)\?subject=(?P<subject>[^>]+)>$"
)


@pytest.fixture
def delivery(buying_lender):
    buying_lender.postal_address = "100 Congress Ave, Suite 300, Austin, TX 78701"
    buying_lender.save(update_fields=["postal_address"])
    make_subscription(buying_lender, states=["TX"], price="40.00")
    return sell(buying_lender, first_name="Maria")


def nurture(delivery, **kwargs):
    return consumer_email_send(
        delivery=delivery,
        subject="Rates this month",
        text="Rates fell a quarter point this month.",
        kind=kwargs.pop("kind", MessageKind.NURTURE),
        **kwargs,
    )


def unsubscribe_link(message) -> tuple[str, str]:
    found = LIST_UNSUBSCRIBE.match(message.extra_headers["List-Unsubscribe"])
    assert found, message.extra_headers["List-Unsubscribe"]
    return found["url"], found["token"]


# --- what a marketing message carries -------------------------------------------------------------------


@pytest.mark.parametrize("kind", [MessageKind.MARKETING, MessageKind.NURTURE])
def test_marketing_and_nurture_mail_carry_one_click_unsubscribe_and_the_senders_identity(
    delivery, settings, kind
):
    nurture(delivery, kind=kind)

    [message] = mail.outbox
    assert message.to == [delivery.lead.consumer.email]
    assert message.from_email.startswith("Lone Star Lending <")
    url, token = unsubscribe_link(message)
    assert url == f"{settings.SITE_URL}/u/{token}"
    found = LIST_UNSUBSCRIBE.match(message.extra_headers["List-Unsubscribe"])
    assert (
        found["mailto"] == "unsubscribe@leadmarket.local"
        and unquote(found["subject"]) == f"unsubscribe {token}"
    )
    assert message.extra_headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    # The footer, in both parts: who sends it, their NMLS id and address, and the link.
    html = message.alternatives[0][0]
    for part in (message.body, html):
        assert "Lone Star Lending" in part and f"NMLS #{delivery.lender.nmls_id}" in part
        assert "100 Congress Ave, Suite 300, Austin, TX 78701" in part
        assert url in part
    assert "Rates fell a quarter point" in message.body
    activity = delivery.activities.get()
    assert (activity.kind, activity.outcome, activity.automated, activity.note) == (
        "email",
        "sent",
        True,
        "Rates this month",
    )


def test_transactional_mail_says_who_sent_it_without_unsubscribe(delivery):
    nurture(delivery, kind=MessageKind.TRANSACTIONAL)
    [message] = mail.outbox
    assert (
        "List-Unsubscribe" not in message.extra_headers
        and "List-Unsubscribe-Post" not in message.extra_headers
    )
    assert "Lone Star Lending" in message.body and "/u/" not in message.body


def test_the_marketplace_address_stands_in_for_a_lender_without_one(delivery, settings):
    settings.SENDER_POSTAL_ADDRESS = "Lead Market, 1 Main St, Dover, DE 19901"
    delivery.lender.postal_address = ""
    delivery.lender.save(update_fields=["postal_address"])
    delivery.refresh_from_db()
    nurture(delivery)
    assert "Lead Market, 1 Main St, Dover, DE 19901" in mail.outbox[0].body


def test_an_erased_consumer_is_never_mailed(delivery):
    from compliance.services import consumer_erase

    consumer_erase(consumer_id=delivery.lead.consumer_id)
    delivery.refresh_from_db()
    with pytest.raises(ConsumerUnreachable):
        nurture(delivery, kind=MessageKind.TRANSACTIONAL)
    assert not mail.outbox


# --- the unsubscribe link ------------------------------------------------------------------------------


def test_get_asks_and_stops_nothing(client, delivery):
    nurture(delivery)
    url, _ = unsubscribe_link(mail.outbox[0])
    page = client.get(url)
    assert page.status_code == 200
    body = page.content.decode()
    assert "Stop e-mails from Lone Star Lending?" in body and 'name="viewport"' in body
    masked = "c•••@example.com"  # the factory's consumerN@example.com
    assert masked in body and delivery.lead.consumer.email not in body
    assert not OptOut.objects.exists()


def test_a_mail_clients_one_click_post_unsubscribes_without_csrf_or_login(delivery, owner):
    nurture(delivery)
    url, _ = unsubscribe_link(mail.outbox[0])
    # RFC 8058: a POST from the mailbox provider's server, no cookie, no CSRF token.
    answer = Client(enforce_csrf_checks=True).post(
        url, data="List-Unsubscribe=One-Click", content_type="application/x-www-form-urlencoded"
    )
    assert answer.status_code == 200
    assert optout_active(channel="email", address=delivery.lead.consumer.email.upper())
    stop = OptOut.objects.get()
    assert (stop.source, stop.lead_id, stop.lender_id) == (
        "email_one_click",
        delivery.lead_id,
        delivery.lender_id,
    )
    assert delivery.activities.filter(outcome=Activity.Outcome.OPTED_OUT).exists()

    # No further marketing or nurture mail; the answer to a new request of theirs may still go.
    mail.outbox.clear()
    for kind in (MessageKind.MARKETING, MessageKind.NURTURE):
        with pytest.raises(ConsumerUnreachable):
            nurture(delivery, kind=kind)
    assert not mail.outbox
    consumer_email_build(
        delivery=delivery, subject="Your request", text="Hello", kind=MessageKind.TRANSACTIONAL
    )

    # A second click changes nothing.
    Client(enforce_csrf_checks=True).post(
        url, data="List-Unsubscribe=One-Click", content_type="application/x-www-form-urlencoded"
    )
    assert OptOut.objects.count() == 1

    # The lead page shows it.
    c = Client()
    c.force_login(owner)
    assert (
        "E-mail: unsubscribed"
        in c.get(reverse("portal:delivery_detail", args=[delivery.pk])).content.decode()
    )


def test_the_confirm_pages_button_unsubscribes_too(delivery):
    nurture(delivery)
    url, _ = unsubscribe_link(mail.outbox[0])
    done = Client(enforce_csrf_checks=True).post(url)
    assert done.status_code == 200 and "You are unsubscribed" in done.content.decode()
    assert OptOut.objects.get().source == "email_link"


@pytest.mark.parametrize("method", ["get", "post"])
def test_a_tampered_or_made_up_token_is_a_400_page(client, delivery, method):
    token = unsubscribe_token(lead_public_id=delivery.lead.public_id, lender_id=delivery.lender_id)
    for bad in (token[:-2] + "xx", "nonsense", "a" * 300):
        answer = getattr(client, method)(reverse("channels:unsubscribe", args=[bad]))
        assert answer.status_code == 400 and "not valid" in answer.content.decode()
    assert not OptOut.objects.exists()


# --- providers through django-anymail ---------------------------------------------------------------------


def test_anymail_esp_selects_the_providers_backend_in_a_fresh_process():
    env = {
        **os.environ,
        "DEBUG": "1",
        "ANYMAIL_ESP": "postmark",
        "ANYMAIL_API_KEY": "pm-test-token",
        "DJANGO_SETTINGS_MODULE": "config.settings",
    }
    script = (
        "import django; django.setup();"
        "from django.conf import settings; from django.core.mail import get_connection;"
        "c = get_connection(); print(type(c).__module__ + '.' + type(c).__name__);"
        "print(sorted(settings.ANYMAIL))"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.splitlines() == [
        "anymail.backends.postmark.EmailBackend",
        "['POSTMARK_SERVER_TOKEN', 'WEBHOOK_SECRET']",
    ]


def test_email_url_still_chooses_djangos_backends_without_an_esp(monkeypatch):
    monkeypatch.delenv("ANYMAIL_ESP", raising=False)
    monkeypatch.setenv("EMAIL_URL", "smtp+tls://user:pass@smtp.example.com:587")
    config = email_settings(environ.Env())
    assert config["EMAIL_BACKEND"] == "django.core.mail.backends.smtp.EmailBackend"
    assert (config["EMAIL_HOST"], config["EMAIL_PORT"], config["EMAIL_USE_TLS"]) == (
        "smtp.example.com",
        587,
        True,
    )


@pytest.mark.parametrize(
    "env, error",
    [
        ({"ANYMAIL_ESP": "pigeon"}, "is not one we configure"),
        ({"ANYMAIL_ESP": "postmark"}, "needs ANYMAIL_API_KEY"),
    ],
)
def test_a_half_configured_provider_stops_the_start(monkeypatch, env, error):
    monkeypatch.delenv("ANYMAIL_API_KEY", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ImproperlyConfigured, match=error):
        email_settings(environ.Env())


def test_mailgun_takes_its_sender_domain(monkeypatch):
    monkeypatch.setenv("ANYMAIL_ESP", "mailgun")
    monkeypatch.setenv("ANYMAIL_API_KEY", "key-1")
    monkeypatch.setenv("MAILGUN_SENDER_DOMAIN", "mg.example.com")
    config = email_settings(environ.Env())
    assert config["EMAIL_BACKEND"] == "anymail.backends.mailgun.EmailBackend"
    assert config["ANYMAIL"] == {
        "MAILGUN_API_KEY": "key-1",
        "MAILGUN_SENDER_DOMAIN": "mg.example.com",
        "WEBHOOK_SECRET": config["ANYMAIL"]["WEBHOOK_SECRET"],
    }


def test_the_unsubscribe_headers_reach_the_provider_through_anymail(delivery, settings):
    """anymail's real Postmark backend, its API on a local server: the headers are in what it posts."""
    accepted = {  # Postmark's answer to a send
        "To": delivery.lead.consumer.email,
        "SubmittedAt": "2026-12-07T10:00:00Z",
        "MessageID": "b7bc2f4a-e38e-4336-af7d-e6c392c2f817",
        "ErrorCode": 0,
        "Message": "OK",
    }
    with FakeProvider(answer=Answer(200, accepted)) as postmark:
        settings.EMAIL_BACKEND = "anymail.backends.postmark.EmailBackend"
        settings.ANYMAIL = {"POSTMARK_SERVER_TOKEN": "pm-test-token", "POSTMARK_API_URL": postmark.url + "/"}
        nurture(delivery)

    [seen] = postmark.requests
    assert seen.path == "/email" and seen.headers["x-postmark-server-token"] == "pm-test-token"
    payload = seen.json
    headers = {h["Name"]: h["Value"] for h in payload["Headers"]}
    assert LIST_UNSUBSCRIBE.match(headers["List-Unsubscribe"])
    assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert payload["To"] == delivery.lead.consumer.email
    assert payload["From"] == "Lone Star Lending <no-reply@leadmarket.local>"
    assert "NMLS #" in payload["TextBody"]


# --- the mailto, through the provider's inbound webhook ----------------------------------------------------


def postmark_inbound(client, subject: str, *, secret: str | None = "anymail:hook-secret"):  # noqa: S107
    """Postmark's inbound webhook as it posts an e-mail it received (JSON, basic auth in the URL's user)."""
    payload = {
        "FromFull": {"Email": "someone@example.net", "Name": "", "MailboxHash": ""},
        "ToFull": [{"Email": "unsubscribe@leadmarket.local", "Name": "", "MailboxHash": ""}],
        "Subject": subject,
        "TextBody": "",
        "Headers": [],
        "MessageID": "22c74902-a0c1-4511-804f-341342852c90",
    }
    auth = {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(secret.encode()).decode()} if secret else {}
    return client.post("/hooks/mail/postmark/inbound/", payload, content_type="application/json", **auth)


@pytest.fixture
def inbound_mail(settings):
    settings.ANYMAIL = {**settings.ANYMAIL, "WEBHOOK_SECRET": "anymail:hook-secret"}


def test_an_e_mail_to_the_mailto_unsubscribes(client, delivery, inbound_mail):
    nurture(delivery)
    found = LIST_UNSUBSCRIBE.match(mail.outbox[0].extra_headers["List-Unsubscribe"])
    # What the consumer's mail app sends: the mailto's subject, decoded.
    assert postmark_inbound(client, unquote(found["subject"])).status_code == 200
    stop = OptOut.objects.get()
    assert (stop.channel, stop.source, stop.lead_id) == ("email", "email_mailto", delivery.lead_id)


def test_the_inbound_webhook_needs_its_secret_and_ignores_other_mail(client, delivery, inbound_mail):
    nurture(delivery)
    found = LIST_UNSUBSCRIBE.match(mail.outbox[0].extra_headers["List-Unsubscribe"])
    assert postmark_inbound(client, unquote(found["subject"]), secret=None).status_code == 400
    assert postmark_inbound(client, unquote(found["subject"]), secret="anymail:wrong").status_code == 400
    assert postmark_inbound(client, "Re: your rates").status_code == 200
    assert postmark_inbound(client, "unsubscribe not-a-token").status_code == 200
    assert not OptOut.objects.exists()


def test_unconfigured_the_inbound_webhook_refuses_everyone(client, delivery, settings):
    # Without ANYMAIL_WEBHOOK_SECRET the secret is random: no request can carry it.
    assert settings.ANYMAIL["WEBHOOK_SECRET"].startswith("unset:")
    assert postmark_inbound(client, "unsubscribe x", secret="anymail:hook-secret").status_code == 400
