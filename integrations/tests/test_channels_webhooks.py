"""Issue 15.1: what comes back from Twilio, on signed webhooks. Signatures are computed here by Twilio's
documented algorithm (and checked against its published example), over the public URL (SITE_URL), never
the Host the request arrived with. STOP and its synonyms stop every text to the number, HELP answers, START
resumes; any other reply is logged on each buyer's delivery of the consumer's newest lead, e-mails the
officers and announces consumer_replied; status callbacks move a text's status forward only."""

import base64
import hashlib
import hmac

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse

from compliance.models import OptOut
from compliance.selectors import optout_active
from compliance.services import optout_address_hash
from compliance.signals import consumer_opted_out
from integrations.channels import sms
from integrations.channels.services import START_REPLY, STOP_REPLY, text_send
from integrations.channels.sms import SmsOptedOut
from integrations.channels.twilio import twilio_signature, twilio_signature_valid
from integrations.models import TextMessage
from integrations.signals import consumer_replied
from marketplace.models import Activity, Delivery
from marketplace.services import lead_distribute
from marketplace.tests.factories import (
    ConsumerFactory,
    MemberFactory,
    QualifiedLeadFactory,
    make_subscription,
)

pytestmark = pytest.mark.django_db

TOKEN = "twilio-test-token"
PUBLIC = "https://leads.example.com"
INBOUND = "/hooks/twilio/sms"


def signed(url: str, params: dict[str, str], token: str = TOKEN) -> str:
    """Twilio's scheme as its security page documents it, written out independently of our code."""
    data = url + "".join(k + params[k] for k in sorted(params))
    return base64.b64encode(hmac.new(token.encode(), data.encode(), hashlib.sha1).digest()).decode()


@pytest.fixture(autouse=True)
def twilio_settings(settings):
    settings.TWILIO_AUTH_TOKEN = TOKEN
    settings.SITE_URL = PUBLIC
    settings.ALLOWED_HOSTS = ["testserver", "leads.example.com", "internal-web"]


def post(
    client: Client, path: str, params: dict[str, str], *, signature: str | None = None, host="testserver"
):
    sig = signed(PUBLIC + path, params) if signature is None else signature
    return client.post(path, params, HTTP_X_TWILIO_SIGNATURE=sig, HTTP_HOST=host)


def text_in(client, phone: str, body: str, sid: str = "SM" + "1" * 32):
    params = {
        "AccountSid": "AC" + "0" * 32,
        "ApiVersion": "2010-04-01",
        "Body": body,
        "From": "+1" + phone,
        "MessageSid": sid,
        "NumMedia": "0",
        "SmsStatus": "received",
        "To": "+15005550006",
    }
    return post(client, INBOUND, params)


@pytest.fixture
def shared_lead(buying_lender, rival_lender, owner, rival_owner):
    """A lead shared by both lenders (each subscribes shared), with the buyer's officer assigned."""
    make_subscription(buying_lender, states=["TX"], price="40.00", exclusive=False)
    make_subscription(rival_lender, states=["TX"], price="40.00", exclusive=False)
    lead = QualifiedLeadFactory(consumer__first_name="Maria", consumer__phone="5125550142")
    deliveries = lead_distribute(lead_id=lead.pk)
    assert {d.lender_id for d in deliveries} == {buying_lender.pk, rival_lender.pk}
    return lead


# --- the signature -----------------------------------------------------------------------------------


def test_our_signature_matches_twilios_published_example():
    # Twilio's security documentation (and its libraries' tests): token 12345, this URL and these params.
    params = {
        "CallSid": ["CA1234567890ABCDE"],
        "Caller": ["+14158675309"],
        "Digits": ["1234"],
        "From": ["+14158675309"],
        "To": ["+18005551212"],
    }
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    assert twilio_signature("12345", url, params) == "RSOYDt4T1cUTdK1PDd93/VVr8B8="
    assert twilio_signature_valid(
        auth_token="12345", url=url, params=params, signature="RSOYDt4T1cUTdK1PDd93/VVr8B8="
    )
    # Behind a proxy the default port may or may not be in the URL Twilio signed: both are accepted.
    assert twilio_signature_valid(
        auth_token="12345",
        url="https://mycompany.com:443/myapp.php?foo=1&bar=2",
        params=params,
        signature="RSOYDt4T1cUTdK1PDd93/VVr8B8=",
    )
    # Any change to the URL, a value or the token breaks it.
    assert not twilio_signature_valid(
        auth_token="12345", url=url + "&x=1", params=params, signature="RSOYDt4T1cUTdK1PDd93/VVr8B8="
    )
    assert not twilio_signature_valid(
        auth_token="12345",
        url=url,
        params={**params, "Digits": ["9999"]},
        signature="RSOYDt4T1cUTdK1PDd93/VVr8B8=",
    )
    assert not twilio_signature_valid(
        auth_token="54321", url=url, params=params, signature="RSOYDt4T1cUTdK1PDd93/VVr8B8="
    )


def test_repeated_parameters_sign_as_twilios_libraries_sign_them():
    # The twilio-python library's vector for a parameter given several times.
    params = {"Sid": ["CA123"], "SidAccount": ["AC123"], "Digits": ["5678", "1234", "1234"]}
    assert (
        twilio_signature("12345", "https://mycompany.com/myapp.php?foo=1&bar=2", params)
        == "IK+Dwps556ElfBT0I3Rgjkr1wJU="
    )


def test_an_inbound_text_with_a_wrong_or_missing_signature_is_403_and_changes_nothing(client, shared_lead):
    params = {"From": "+15125550142", "Body": "STOP", "MessageSid": "SM" + "2" * 32}
    assert post(client, INBOUND, params, signature="bm90IGEgc2lnbmF0dXJl").status_code == 403
    assert client.post(INBOUND, params).status_code == 403
    assert (
        post(client, INBOUND, params, signature=signed(PUBLIC + INBOUND, params, token="other")).status_code
        == 403
    )
    assert not OptOut.objects.exists() and not TextMessage.objects.exists()


def test_without_an_auth_token_configured_every_webhook_is_refused(client, settings, shared_lead):
    settings.TWILIO_AUTH_TOKEN = ""
    params = {"From": "+15125550142", "Body": "STOP", "MessageSid": "SM" + "2" * 32}
    assert (
        post(client, INBOUND, params, signature=signed(PUBLIC + INBOUND, params, token="")).status_code == 403
    )


def test_the_public_url_is_what_is_checked_never_the_host_header(client, shared_lead):
    """Behind a proxy the request reaches us as http://internal-web/...: Twilio signed the public URL."""
    params = {"From": "+15125550142", "Body": "HELP", "MessageSid": "SM" + "3" * 32}
    assert post(client, INBOUND, params, host="internal-web").status_code == 200
    as_host = signed("http://internal-web" + INBOUND, params)
    assert post(client, INBOUND, params, signature=as_host, host="internal-web").status_code == 403


def test_a_signed_request_without_the_fields_twilio_always_sends_is_400(client):
    assert post(client, INBOUND, {"Body": "hi"}).status_code == 400
    assert post(client, INBOUND, {"Body": "hi", "From": "whatsapp:", "MessageSid": "SM1"}).status_code == 400


def test_get_is_not_allowed(client):
    assert client.get(INBOUND).status_code == 405


# --- STOP, HELP, START -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "word", ["STOP", " stop ", "Stop\n", "STOPALL", "unsubscribe", "Cancel", "END", "quit"]
)
def test_stop_and_its_synonyms_stop_every_text_to_the_number(client, shared_lead, word):
    delivery = shared_lead.deliveries.first()
    text_send(delivery_id=delivery.pk, body="First touch")
    assert len(sms.outbox) == 1

    answer = text_in(client, "5125550142", word)

    assert answer.status_code == 200 and answer["Content-Type"].startswith("text/xml")
    assert f"<Message>{STOP_REPLY}</Message>" in answer.content.decode()
    assert optout_active(channel="sms", address="5125550142")
    stop = OptOut.objects.get()
    assert (stop.source, stop.keyword, stop.lead_id) == ("sms_keyword", word.strip().upper(), shared_lead.pk)
    # No further text, from either buyer, by any path.
    for d in shared_lead.deliveries.all():
        with pytest.raises(SmsOptedOut):
            text_send(delivery_id=d.pk, body="Are you there?")
    assert len(sms.outbox) == 1
    # Each buyer's lead page says so in its activity.
    assert sorted(
        Activity.objects.filter(outcome=Activity.Outcome.OPTED_OUT).values_list(
            "delivery__lender_id", flat=True
        )
    ) == sorted(shared_lead.deliveries.values_list("lender_id", flat=True))


def test_every_buyer_sees_the_stop_on_its_lead_page_until_start(client, shared_lead, owner, rival_owner):
    def badge(user) -> bool:
        page = Client()
        page.force_login(user)
        delivery = shared_lead.deliveries.get(lender=user.membership.lender)
        return (
            "Texts: opted out"
            in page.get(reverse("portal:delivery_detail", args=[delivery.pk])).content.decode()
        )

    assert not badge(owner)
    text_in(client, "5125550142", "STOP", sid="SM" + "a" * 32)
    assert badge(owner) and badge(rival_owner)
    text_in(client, "5125550142", "START", sid="SM" + "b" * 32)
    assert not badge(owner) and not badge(rival_owner)


def test_a_stop_is_announced_for_the_sequences_to_end(
    client, shared_lead, django_capture_on_commit_callbacks
):
    heard = []
    consumer_opted_out.connect(lambda **kw: heard.append(kw), dispatch_uid="test-opted-out", weak=False)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            text_in(client, "5125550142", "quit")
    finally:
        consumer_opted_out.disconnect(dispatch_uid="test-opted-out")
    assert [(h["channel"], h["address_sha256"], h["lead_id"]) for h in heard] == [
        ("sms", optout_address_hash(channel="sms", address="+1 512 555 0142"), shared_lead.pk)
    ]


def test_a_sentence_that_begins_with_stop_is_a_reply_not_a_keyword(client, shared_lead):
    text_in(client, "5125550142", "stop calling after 6pm please")
    assert not OptOut.objects.exists()
    assert Activity.objects.filter(outcome=Activity.Outcome.REPLIED).count() == 2


def test_help_answers_with_the_help_text_and_stops_nothing(client, shared_lead, settings):
    answer = text_in(client, "5125550142", "help")
    assert f"<Message>{settings.SMS_HELP_TEXT.replace('&', '&amp;')}</Message>" in answer.content.decode()
    assert not OptOut.objects.exists() and not Activity.objects.exists()


def test_start_resumes_texts_after_a_stop(client, shared_lead):
    delivery = shared_lead.deliveries.first()
    text_in(client, "5125550142", "STOP", sid="SM" + "a" * 32)
    answer = text_in(client, "5125550142", "start", sid="SM" + "b" * 32)

    assert f"<Message>{START_REPLY}</Message>" in answer.content.decode()
    assert not optout_active(channel="sms", address="5125550142")
    stop = OptOut.objects.get()  # the history stays: stopped, then resumed
    assert stop.revoked_at is not None and stop.revoked_keyword == "START"
    text_send(delivery_id=delivery.pk, body="Welcome back")
    assert [t.body for t in sms.outbox] == ["Welcome back"]
    # A second STOP opens a new stop beside the closed one.
    text_in(client, "5125550142", "UNSUBSCRIBE", sid="SM" + "c" * 32)
    assert OptOut.objects.count() == 2 and optout_active(channel="sms", address="5125550142")


def test_stop_from_a_number_we_do_not_know_is_kept_without_the_number(client):
    text_in(client, "2125550199", "STOP")
    assert optout_active(channel="sms", address="+12125550199")
    row = TextMessage.objects.get()
    assert row.lead_id is None and "2125550199" not in row.phone


# --- replies -----------------------------------------------------------------------------------------------


def test_a_reply_is_logged_on_each_buyers_delivery_of_the_newest_lead_and_officers_are_told(
    client, shared_lead, buying_lender, rival_lender, owner, rival_owner, django_capture_on_commit_callbacks
):
    officer = MemberFactory(lender=buying_lender, role="officer", username="ann").user
    Delivery.objects.filter(lead=shared_lead, lender=buying_lender).update(assigned_to=officer)
    # An older lead of the same person, sold to the rival alone, is not where the reply goes.
    QualifiedLeadFactory(
        consumer=ConsumerFactory(phone="5125550142"), created_at=shared_lead.created_at.replace(year=2025)
    )
    heard = []

    def receiver(**kwargs):
        heard.append(kwargs)

    consumer_replied.connect(receiver, dispatch_uid="test-consumer-replied")
    try:
        with django_capture_on_commit_callbacks(execute=True):
            answer = text_in(client, "5125550142", "Yes, evenings are best. Call me at 7")
    finally:
        consumer_replied.disconnect(dispatch_uid="test-consumer-replied")

    assert answer.status_code == 200 and "<Message>" not in answer.content.decode()  # no automatic answer
    replies = Activity.objects.filter(outcome=Activity.Outcome.REPLIED).select_related("delivery")
    assert sorted(a.delivery.lender_id for a in replies) == sorted([buying_lender.pk, rival_lender.pk])
    assert {a.delivery.lead_id for a in replies} == {shared_lead.pk}
    assert all(a.note == "Yes, evenings are best. Call me at 7" and a.automated for a in replies)
    assert all(d.replied_at is not None for d in shared_lead.deliveries.all())
    # The assigned officer is e-mailed (not the owner); the rival's owners, who assigned nobody.
    recipients = sorted(m.to[0] for m in mail.outbox)
    assert recipients == sorted([officer.email, rival_owner.email])
    for message in mail.outbox:
        assert shared_lead.reference in message.subject
        # The e-mail names the lead, not the consumer, and does not quote them.
        assert "Maria" not in message.body and "evenings" not in message.body
    text = TextMessage.objects.get()
    assert heard == [
        {
            "signal": consumer_replied,
            "sender": TextMessage,
            "lead_id": shared_lead.pk,
            "delivery_ids": sorted(shared_lead.deliveries.values_list("pk", flat=True)),
            "text_message_id": text.pk,
        }
    ]


def test_a_reply_twilio_sends_twice_is_logged_once(client, shared_lead, django_capture_on_commit_callbacks):
    for _ in range(2):
        with django_capture_on_commit_callbacks(execute=True):
            assert text_in(client, "5125550142", "Call me", sid="SM" + "d" * 32).status_code == 200
    assert TextMessage.objects.count() == 1
    assert Activity.objects.filter(outcome=Activity.Outcome.REPLIED).count() == 2  # one per buyer, once
    assert len(mail.outbox) == 2


def test_the_officers_e_mail_task_sends_once_when_run_twice(client, shared_lead):
    from integrations.tasks import text_reply_notify

    text_in(client, "5125550142", "Call me")  # on_commit not run here: the task is run by hand below
    text = TextMessage.objects.get()
    assert text_reply_notify.delay(text.pk).get() == 2
    assert text_reply_notify.delay(text.pk).get() == 0
    assert len(mail.outbox) == 2


def test_a_reply_from_an_unknown_number_keeps_neither_the_number_nor_the_words(client, shared_lead):
    assert text_in(client, "3055550100", "Who is this? My SSN is 123").status_code == 200
    row = TextMessage.objects.get()
    assert (row.lead_id, row.body) == (None, "") and "3055550100" not in row.phone
    assert not Activity.objects.exists() and not mail.outbox


def test_the_reply_is_visible_to_each_buyer_on_its_own_lead_page_only(
    client, shared_lead, owner, rival_owner
):
    text_in(client, "5125550142", "Yes please call")
    mine = shared_lead.deliveries.get(lender=owner.membership.lender)
    theirs = shared_lead.deliveries.get(lender=rival_owner.membership.lender)
    client.force_login(owner)
    page = client.get(reverse("portal:delivery_detail", args=[mine.pk])).content.decode()
    assert "Yes please call" in page and "Consumer replied" in page and "Replied by text" in page
    assert client.get(reverse("portal:delivery_detail", args=[theirs.pk])).status_code == 404


# --- status callbacks ------------------------------------------------------------------------------------


def status(client, text: TextMessage, message_status: str, sid: str | None = None, **extra):
    path = reverse("channels:twilio_status", args=[text.pk])
    params = {
        "MessageSid": sid or text.provider_id,
        "MessageStatus": message_status,
        "AccountSid": "AC1",
        **extra,
    }
    return post(client, path, params)


def test_status_callbacks_move_a_text_forward_only(client, shared_lead):
    text = text_send(delivery_id=shared_lead.deliveries.first().pk, body="Hello")
    for s in ("sending", "sent", "delivered"):
        assert status(client, text, s).status_code == 204
    assert status(client, text, "sent").status_code == 204  # late, out of order: ignored
    text.refresh_from_db()
    assert text.status == "delivered"


def test_an_undelivered_text_keeps_its_error_code_as_evidence(client, shared_lead):
    text = text_send(delivery_id=shared_lead.deliveries.first().pk, body="Hello")
    status(client, text, "sent")
    status(client, text, "undelivered", ErrorCode="30003")
    text.refresh_from_db()
    assert (text.status, text.error_code) == ("undelivered", "30003")
    assert TextMessage.objects.filter(status__in=TextMessage.BOUNCED, lead=shared_lead).count() == 1


def test_a_callback_for_another_message_sid_changes_nothing(client, shared_lead):
    text = text_send(delivery_id=shared_lead.deliveries.first().pk, body="Hello")
    status(client, text, "failed", sid="SM" + "f" * 32)
    text.refresh_from_db()
    assert text.status == "sent"


def test_status_callbacks_are_signed_and_checked(client, shared_lead):
    text = text_send(delivery_id=shared_lead.deliveries.first().pk, body="Hello")
    path = reverse("channels:twilio_status", args=[text.pk])
    params = {"MessageSid": text.provider_id, "MessageStatus": "failed"}
    assert post(client, path, params, signature="forged=").status_code == 403
    assert status(client, text, "exploded").status_code == 400
    text.refresh_from_db()
    assert text.status == "sent"
