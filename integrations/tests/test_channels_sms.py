"""Issue 15.1: texts out, through a provider interface with two backends. The console backend prints and keeps
an outbox; the Twilio backend is driven over HTTP against a local server speaking Twilio's Messages API
(request form, basic auth, JSON answers and errors). Every text is recorded and leaves an activity; a number
that texted STOP is refused before any provider is asked."""

import base64
import logging

import environ
import pytest
from django.core.exceptions import ImproperlyConfigured

from compliance.models import OptOut
from compliance.services import optout_record
from config.channels import sms_settings
from integrations.channels import sms
from integrations.channels.services import text_send
from integrations.channels.sms import SmsError, SmsOptedOut, send_sms
from integrations.models import TextMessage
from marketplace.models import Activity
from marketplace.tests.factories import make_subscription
from portal.tests.test_portal import sell

from .fakeprovider import Answer, FakeProvider, twilio_error, twilio_message

pytestmark = pytest.mark.django_db

SID, TOKEN = "AC00000000000000000000000000000000", "test-auth-token"


@pytest.fixture
def delivery(buying_lender):
    make_subscription(buying_lender, states=["TX"], price="40.00")
    return sell(buying_lender, first_name="Maria")


@pytest.fixture
def twilio(settings):
    with FakeProvider(answer=Answer(201, twilio_message())) as fake:
        settings.SMS_BACKEND = "integrations.channels.twilio.TwilioBackend"
        settings.TWILIO_API_URL = fake.url
        settings.TWILIO_ACCOUNT_SID = SID
        settings.TWILIO_AUTH_TOKEN = TOKEN
        settings.TWILIO_FROM_NUMBER = "+15005550006"
        settings.TWILIO_MESSAGING_SERVICE_SID = ""
        yield fake


def number_of(delivery) -> str:
    return "+1" + delivery.lead.consumer.phone


# --- console -------------------------------------------------------------------------------------------


def test_console_is_the_default_and_prints_keeps_and_records_each_text(delivery, capsys, settings):
    assert settings.SMS_BACKEND == "integrations.channels.sms.ConsoleBackend"
    text = text_send(delivery_id=delivery.pk, body="Hi Maria, this is Ann from Lone Star Lending.")

    assert [(t.to, t.body) for t in sms.outbox] == [
        (number_of(delivery), "Hi Maria, this is Ann from Lone Star Lending.")
    ]
    printed = capsys.readouterr().out
    assert f"SMS to: {number_of(delivery)}" in printed and "this is Ann" in printed
    # The record: the delivery, the number, the words, the provider's id and status.
    assert (text.direction, text.delivery_id, text.lead_id, text.phone, text.provider, text.status) == (
        "out",
        delivery.pk,
        delivery.lead_id,
        delivery.lead.consumer.phone,
        "console",
        "sent",
    )
    assert text.provider_id == sms.outbox[0].provider_id
    assert sms.outbox[0].status_callback.endswith(f"/hooks/twilio/status/{text.pk}")
    activity = delivery.activities.get()
    assert (activity.kind, activity.outcome, activity.automated, activity.user) == (
        "text",
        "sent",
        True,
        None,
    )
    assert activity.note == "Hi Maria, this is Ann from Lone Star Lending."
    # An automated text is not the officer's first contact: response time measures people.
    delivery.refresh_from_db()
    assert delivery.first_contact_at is None


def test_a_number_that_texted_stop_is_refused_before_any_provider_is_asked(delivery, twilio):
    optout_record(channel=OptOut.Channel.SMS, address=delivery.lead.consumer.phone, source="sms_keyword")

    with pytest.raises(SmsOptedOut):
        text_send(delivery_id=delivery.pk, body="Still there?")
    # The low-level path refuses too, in any spelling of the number.
    with pytest.raises(SmsOptedOut):
        send_sms("1 (" + delivery.lead.consumer.phone[:3] + ") " + delivery.lead.consumer.phone[3:], "Hello")
    assert twilio.requests == [] and not TextMessage.objects.exists() and not Activity.objects.exists()


def test_the_console_backend_refuses_opted_out_numbers_too(delivery):
    optout_record(channel=OptOut.Channel.SMS, address=number_of(delivery), source="sms_keyword")
    with pytest.raises(SmsOptedOut):
        send_sms(number_of(delivery), "Hello")
    assert sms.outbox == []


@pytest.mark.parametrize("to", ["555-0142", "+44 20 7946 0958", ""])
def test_a_number_that_is_not_a_us_number_is_a_clear_error(to):
    with pytest.raises(SmsError) as raised:
        send_sms(to, "Hello")
    assert raised.value.code == "invalid_number" and sms.outbox == []


def test_an_empty_or_overlong_text_is_refused():
    with pytest.raises(SmsError) as raised:
        send_sms("5125550142", "   ")
    assert raised.value.code == "empty_body"
    with pytest.raises(SmsError) as raised:
        send_sms("5125550142", "x" * 1601)
    assert raised.value.code == "too_long" and "1601" in str(raised.value)
    assert sms.outbox == []


# --- Twilio ----------------------------------------------------------------------------------------------


def test_twilio_gets_the_form_fields_and_basic_auth_it_documents(delivery, twilio, settings):
    twilio.answer = Answer(201, twilio_message(sid="SMaaaabbbbccccddddeeeeffff00001111", status="queued"))
    text = text_send(delivery_id=delivery.pk, body="Are you looking at homes around $350,000?")

    [seen] = twilio.requests
    assert seen.path == f"/2010-04-01/Accounts/{SID}/Messages.json"
    assert seen.headers["content-type"] == "application/x-www-form-urlencoded"
    assert seen.headers["authorization"] == "Basic " + base64.b64encode(f"{SID}:{TOKEN}".encode()).decode()
    assert seen.form == {
        "To": [number_of(delivery)],
        "From": ["+15005550006"],
        "Body": ["Are you looking at homes around $350,000?"],
        "StatusCallback": [f"{settings.SITE_URL}/hooks/twilio/status/{text.pk}"],
    }
    assert (text.provider, text.provider_id, text.status) == (
        "twilio",
        "SMaaaabbbbccccddddeeeeffff00001111",
        "queued",
    )
    assert delivery.activities.get().outcome == "sent"


def test_a_messaging_service_sends_instead_of_a_number(delivery, twilio, settings):
    settings.TWILIO_MESSAGING_SERVICE_SID = "MG00000000000000000000000000000000"
    text_send(delivery_id=delivery.pk, body="Hello")
    form = twilio.requests[0].form
    assert form["MessagingServiceSid"] == ["MG00000000000000000000000000000000"] and "From" not in form


def test_twilios_error_json_is_a_clear_error_recorded_on_the_text(delivery, twilio):
    twilio.answer = Answer(400, twilio_error(21211, "The 'To' number is not a valid phone number."))
    with pytest.raises(SmsError) as raised:
        text_send(delivery_id=delivery.pk, body="Hello")

    error = raised.value
    assert (error.code, error.http_status, error.transient) == ("21211", 400, False)
    assert str(error) == "Twilio error 21211: The 'To' number is not a valid phone number."
    text = TextMessage.objects.get()
    assert (text.status, text.error_code) == ("failed", "21211")
    assert not delivery.activities.exists()  # nothing was sent


def test_twilio_saying_the_recipient_unsubscribed_records_the_opt_out(delivery, twilio):
    twilio.answer = Answer(400, twilio_error(21610, "Attempt to send to unsubscribed recipient"))
    with pytest.raises(SmsOptedOut):
        text_send(delivery_id=delivery.pk, body="Hello")
    stop = OptOut.objects.get()
    assert (stop.channel, stop.source, stop.lead_id, stop.lender_id) == (
        "sms",
        "provider",
        delivery.lead_id,
        delivery.lender_id,
    )
    with pytest.raises(SmsOptedOut):  # and the next text never reaches Twilio
        text_send(delivery_id=delivery.pk, body="Hello again")
    assert len(twilio.requests) == 1


@pytest.mark.parametrize("status", [500, 503, 429])
def test_twilio_down_or_throttling_is_a_transient_error(delivery, twilio, status):
    twilio.answer = Answer(status, twilio_error(20429 if status == 429 else 20500, "Try later", status))
    with pytest.raises(SmsError) as raised:
        text_send(delivery_id=delivery.pk, body="Hello")
    assert raised.value.transient


def test_twilio_unreachable_is_a_transient_error(delivery, twilio, settings):
    settings.TWILIO_API_URL = "http://127.0.0.1:9"  # discard port: nothing listens
    with pytest.raises(SmsError) as raised:
        text_send(delivery_id=delivery.pk, body="Hello")
    assert raised.value.transient and "could not be reached" in str(raised.value)


def test_a_body_that_is_not_json_is_an_error_not_a_crash(delivery, twilio):
    twilio.answer = Answer(502, None)
    with pytest.raises(SmsError) as raised:
        text_send(delivery_id=delivery.pk, body="Hello")
    assert raised.value.transient and raised.value.http_status == 502


def test_logs_never_carry_the_number_or_the_words(delivery, twilio, caplog):
    caplog.set_level(logging.DEBUG)
    text_send(delivery_id=delivery.pk, body="Secret words for Maria")
    twilio.answer = Answer(400, twilio_error(21211, f"The 'To' number {number_of(delivery)} is not valid."))
    with pytest.raises(SmsError):
        text_send(delivery_id=delivery.pk, body="Secret words for Maria")
    phone = delivery.lead.consumer.phone
    assert caplog.records and not [
        r.getMessage() for r in caplog.records if phone in r.getMessage() or "Secret words" in r.getMessage()
    ]


# --- configuration ----------------------------------------------------------------------------------------


def test_twilio_without_its_credentials_stops_the_start(monkeypatch):
    monkeypatch.setenv("SMS_BACKEND", "twilio")
    for name in (
        "TWILIO_ACCOUNT_SID",
        "TWILIO_AUTH_TOKEN",
        "TWILIO_FROM_NUMBER",
        "TWILIO_MESSAGING_SERVICE_SID",
    ):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ImproperlyConfigured, match="TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN"):
        sms_settings(environ.Env())
    monkeypatch.setenv("TWILIO_ACCOUNT_SID", SID)
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", TOKEN)
    monkeypatch.setenv("TWILIO_MESSAGING_SERVICE_SID", "MG1")
    assert sms_settings(environ.Env())["SMS_BACKEND"] == "integrations.channels.twilio.TwilioBackend"


def test_a_keyed_send_texts_once_however_often_it_runs(delivery, twilio):
    """What a sequence step needs: its task may run twice (redelivery) and must text once."""
    first = text_send(delivery_id=delivery.pk, body="Step 1", key="sequence-step:1")
    again = text_send(delivery_id=delivery.pk, body="Step 1", key="sequence-step:1")
    assert again.pk == first.pk and len(twilio.requests) == 1
    twilio.answer = Answer(201, twilio_message(sid="SM" + "2" * 32))
    text_send(delivery_id=delivery.pk, body="Step 2", key="sequence-step:2")
    assert len(twilio.requests) == 2 and delivery.activities.count() == 2
