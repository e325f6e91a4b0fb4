"""The channels' actions: send a text on a delivery, take in what Twilio tells us (a consumer's text, a
status callback), unsubscribe an address from the e-mail link. Each leaves its record (TextMessage, OptOut,
an activity on the deliveries it concerns) and announces what the sequences will need (consumer_replied,
compliance's consumer_opted_out)."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

from compliance.models import OptOut
from compliance.selectors import optout_active
from compliance.services import address_normalise, optout_record, optout_revoke
from core.tasking import enqueue_on_commit
from leads.models import Lead
from marketplace.models import Activity, Delivery
from marketplace.services import activities_log_automated

from ..models import TextMessage
from ..signals import consumer_replied
from ..tasks import text_reply_notify
from .mail import unsubscribe_token_read
from .sms import BaseSmsBackend, SmsError, SmsOptedOut, e164, get_backend, phone_masked, send_sms
from .twilio import UNSUBSCRIBED_RECIPIENT

logger = logging.getLogger(__name__)

# The keywords carriers and the CTIA expect a sender to honour, compared trimmed and case-insensitively.
STOP_WORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"})
START_WORDS = frozenset({"START", "UNSTOP"})
HELP_WORDS = frozenset({"HELP", "INFO"})

STOP_REPLY = "Lead Market: you are unsubscribed and will get no more texts from us. Reply START to resume."
START_REPLY = "Lead Market: you are subscribed to texts again. Reply STOP to stop, HELP for help."


# --- Sending -------------------------------------------------------------------------------------------


def text_send(
    *, delivery_id: int, body: str, key: str = "", backend: BaseSmsBackend | None = None
) -> TextMessage:
    """Text the consumer of a delivery, on its lender's behalf. Refused (SmsOptedOut, nothing recorded) for
    a number that texted STOP; any other refusal is an SmsError, recorded on the row as failed.

    With `key` (e.g. "sequence-step:41") the send happens once per delivery and key: a second call, or a
    concurrent one, returns the first call's row without texting again, even when the first died after
    the provider took the text (its row stays `queued` until the status callback fills it in).

    Not one transaction, on purpose: the row is committed before the provider is called and completed
    after, so a text the provider took is on record even if this process dies in between (its status
    callback names the row) and no transaction stays open across the provider's HTTP round trip."""
    delivery = Delivery.objects.select_related("lead__consumer").get(pk=delivery_id)
    if key and (done := TextMessage.objects.filter(delivery=delivery, send_key=key).first()):
        return done
    number = e164(delivery.lead.consumer.phone)
    if optout_active(channel=OptOut.Channel.SMS, address=number):
        raise SmsOptedOut()
    backend = backend or get_backend()
    try:
        with transaction.atomic():
            text = TextMessage.objects.create(
                direction=TextMessage.Direction.OUTBOUND,
                status=TextMessage.Status.QUEUED,
                lead_id=delivery.lead_id,
                delivery_id=delivery.pk,
                phone=number[2:],
                body=body.strip()[:1600],
                provider=backend.name,
                send_key=key[:80],
            )
    except IntegrityError:
        # A concurrent call with the same key took it first: that one sends.
        return TextMessage.objects.get(delivery=delivery, send_key=key[:80])
    callback = settings.SITE_URL + reverse("channels:twilio_status", args=[text.pk])
    try:
        result = send_sms(number, body, status_callback=callback, backend=backend)
    except SmsError as exc:
        TextMessage.objects.filter(pk=text.pk).update(
            status=TextMessage.Status.FAILED,
            error_code=exc.code[:16],
            error_message=exc.message[:300],
            status_changed_at=timezone.now(),
        )
        if exc.code == UNSUBSCRIBED_RECIPIENT:
            # Twilio knows of a STOP we never heard (sent before this number was ours, or lost): keep it.
            optout_record(
                channel=OptOut.Channel.SMS,
                address=number,
                source=OptOut.Source.PROVIDER,
                lead_id=delivery.lead_id,
                lender_id=delivery.lender_id,
            )
        logger.warning(
            "text %s to %s refused: %s", text.pk, phone_masked(number), exc.code or type(exc).__name__
        )
        raise
    with transaction.atomic():
        TextMessage.objects.filter(pk=text.pk).update(
            provider_id=result.provider_id[:64],
            status=result.status if result.status in TextMessage.Status.values else TextMessage.Status.SENT,
            status_changed_at=timezone.now(),
        )
        activities_log_automated(
            delivery_ids=[delivery.pk], kind=Activity.Kind.TEXT, outcome=Activity.Outcome.SENT, note=body
        )
    text.refresh_from_db()
    logger.info("text %s sent on delivery %s via %s", text.pk, delivery.pk, backend.name)
    return text


def text_status_update(*, text_message_id: int, provider_id: str, status: str, error_code: str = "") -> bool:
    """A provider's status callback for one of our texts. Moves the status forward only (callbacks may come
    late, twice or out of order); keeps the error code of an undelivered or failed text, the evidence a
    return for a bad number cites. True if the row changed. ValueError for a status that is not one."""
    if status not in TextMessage.STAGE:
        raise ValueError(f"unknown message status {status!r}")
    stage = TextMessage.STAGE[TextMessage.Status(status)]
    earlier = [s for s, st in TextMessage.STAGE.items() if st < stage]
    changed = (
        TextMessage.objects.filter(
            pk=text_message_id, direction=TextMessage.Direction.OUTBOUND, status__in=earlier
        )
        .filter(Q(provider_id=provider_id) | Q(provider_id=""))
        .update(
            status=status,
            provider_id=provider_id[:64],
            error_code=error_code[:16],
            status_changed_at=timezone.now(),
        )
    )
    if changed and status in TextMessage.BOUNCED:
        # The evidence a return for bad contact data is decided by (marketplace.evidence).
        delivery_id = (
            TextMessage.objects.filter(pk=text_message_id).values_list("delivery_id", flat=True).first()
        )
        if delivery_id:
            activities_log_automated(
                delivery_ids=[delivery_id],
                kind=Activity.Kind.TEXT,
                outcome=Activity.Outcome.BOUNCED,
                note=f"Text {status}" + (f" (error {error_code[:16]})" if error_code else ""),
            )
    if changed and error_code == UNSUBSCRIBED_RECIPIENT:
        row = TextMessage.objects.filter(pk=text_message_id).values("phone", "lead_id").first()
        if row and row["phone"]:
            optout_record(
                channel=OptOut.Channel.SMS,
                address=row["phone"],
                source=OptOut.Source.PROVIDER,
                lead_id=row["lead_id"],
            )
    return bool(changed)


# --- Inbound -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Inbound:
    """What a consumer's text was (`stop`, `start`, `help`, `reply`) and what we answer them ("" for none).
    `duplicate` when the provider sent this message before (its retry): nothing was recorded again."""

    kind: str
    reply: str
    duplicate: bool = False
    text_message_id: int | None = None


def _keyword(body: str) -> str:
    word = body.strip().upper()
    if word in STOP_WORDS:
        return "stop"
    if word in START_WORDS:
        return "start"
    if word in HELP_WORDS:
        return "help"
    return "reply"


def _reply_for(kind: str) -> str:
    return {"stop": STOP_REPLY, "start": START_REPLY, "help": settings.SMS_HELP_TEXT}.get(kind, "")


def consumer_latest_lead(*, phone: str) -> Lead | None:
    """The newest lead of a consumer with this number (ten digits), erased consumers aside."""
    return (
        Lead.objects.filter(consumer__phone=phone, consumer__erased_at__isnull=True)
        .order_by("-created_at", "-id")
        .first()
    )


def text_inbound_receive(*, provider: str, provider_id: str, from_number: str, body: str) -> Inbound:
    """A text from a consumer. STOP (STOPALL, UNSUBSCRIBE, CANCEL, END, QUIT) stops every text to the number;
    START (UNSTOP) resumes; HELP (INFO) is answered with the help text. Anything else is a reply: logged as
    an activity on each buyer's delivery of the consumer's newest lead (so each officer sees it), the
    deliveries stamped `replied_at`, the officers e-mailed, and consumer_replied announced on commit.

    Idempotent per provider message: a webhook the provider retries gets the same answer, recorded once.
    ValueError when `from_number` holds no digits."""
    number = address_normalise(channel=OptOut.Channel.SMS, address=from_number)
    if not number:
        raise ValueError("The sender's number holds no digits.")
    kind = _keyword(body)
    reply = _reply_for(kind)
    if TextMessage.objects.filter(provider=provider, provider_id=provider_id).exists():
        return Inbound(kind=kind, reply=reply, duplicate=True)
    lead = consumer_latest_lead(phone=number)
    delivery_ids = (
        list(Delivery.objects.filter(lead=lead).order_by("pk").values_list("pk", flat=True)) if lead else []
    )
    try:
        with transaction.atomic():
            text = TextMessage.objects.create(
                direction=TextMessage.Direction.INBOUND,
                status=TextMessage.Status.RECEIVED,
                lead=lead,
                # From a number that is no lead's we keep neither the number nor what it said.
                phone=number if lead else phone_masked(number),
                body=body.strip()[:1600] if lead or kind != "reply" else "",
                provider=provider,
                provider_id=provider_id[:64],
            )
            _inbound_act(
                kind=kind,
                word=body.strip().upper()[:16],
                number=number,
                lead=lead,
                delivery_ids=delivery_ids,
                text=text,
            )
    except IntegrityError:
        # The same message, taken by a concurrent request (the provider retried while we worked).
        return Inbound(kind=kind, reply=reply, duplicate=True)
    logger.info(
        "text %s from %s: %s (lead %s, %d delivery(ies))",
        text.pk,
        phone_masked(number),
        kind,
        lead.pk if lead else None,
        len(delivery_ids),
    )
    return Inbound(kind=kind, reply=reply, text_message_id=text.pk)


def _inbound_act(
    *, kind: str, word: str, number: str, lead: Lead | None, delivery_ids: list[int], text: TextMessage
) -> None:
    lead_id = lead.pk if lead else None
    if kind == "stop":
        optout_record(
            channel=OptOut.Channel.SMS,
            address=number,
            source=OptOut.Source.SMS_KEYWORD,
            keyword=word,
            lead_id=lead_id,
        )
        activities_log_automated(
            delivery_ids=delivery_ids,
            kind=Activity.Kind.TEXT,
            outcome=Activity.Outcome.OPTED_OUT,
            note=f"Texted {word}: no more texts are sent to this number.",
        )
    elif kind == "start":
        if optout_revoke(
            channel=OptOut.Channel.SMS, address=number, source=OptOut.Source.SMS_KEYWORD, keyword=word
        ):
            activities_log_automated(
                delivery_ids=delivery_ids,
                kind=Activity.Kind.NOTE,
                outcome="",
                note=f"Texted {word}: texts to this number are allowed again.",
            )
    elif kind == "reply" and lead is not None:
        activities_log_automated(
            delivery_ids=delivery_ids,
            kind=Activity.Kind.TEXT,
            outcome=Activity.Outcome.REPLIED,
            note=text.body,
            replied=True,
        )
        enqueue_on_commit(text_reply_notify, text.pk)
        transaction.on_commit(
            lambda: consumer_replied.send(
                sender=TextMessage, lead_id=lead.pk, delivery_ids=delivery_ids, text_message_id=text.pk
            )
        )


# --- E-mail unsubscribe ----------------------------------------------------------------------------------

# What consumer_email_build puts in the mailto's subject: "unsubscribe <token>".
MAILTO_SUBJECT = re.compile(r"\bunsubscribe\s+(\S+)", re.IGNORECASE)


@dataclass(frozen=True)
class Unsubscribe:
    lender_name: str
    address_masked: str


def email_address_masked(address: str) -> str:
    """m•••@example.com: enough for the consumer to recognise their address on the confirm page."""
    local, _, domain = address.partition("@")
    return f"{local[:1]}•••@{domain}" if domain else ""


def email_unsubscribe_preview(*, token: str) -> Unsubscribe | None:
    """What the confirm page names (the sender and the masked address); None for a token we never signed."""
    found = _unsubscribe_target(token)
    if found is None:
        return None
    lead, _, lender_name = found
    email = "" if lead is None or lead.consumer.erased_at else lead.consumer.email
    return Unsubscribe(lender_name=lender_name, address_masked=email_address_masked(email))


@transaction.atomic
def email_unsubscribe(*, token: str, source: str) -> Unsubscribe | None:
    """Unsubscribe the address a marketing e-mail went to: by the mail client's one-click POST, the page's
    button, or an e-mail to the mailto (`source`, an OptOut.Source). Idempotent; an address already erased
    has nothing left to stop. None for a token we never signed."""
    found = _unsubscribe_target(token)
    if found is None:
        return None
    lead, lender_id, lender_name = found
    if lead is None or lead.consumer.erased_at is not None:
        return Unsubscribe(lender_name=lender_name, address_masked="")
    if optout_record(
        channel=OptOut.Channel.EMAIL,
        address=lead.consumer.email,
        source=source,
        lead_id=lead.pk,
        lender_id=lender_id,
    ):
        activities_log_automated(
            delivery_ids=list(Delivery.objects.filter(lead=lead).values_list("pk", flat=True)),
            kind=Activity.Kind.EMAIL,
            outcome=Activity.Outcome.OPTED_OUT,
            note=f"Unsubscribed from marketing e-mail ({OptOut.Source(source).label}).",
        )
    return Unsubscribe(lender_name=lender_name, address_masked=email_address_masked(lead.consumer.email))


def _unsubscribe_target(token: str) -> tuple[Lead | None, int, str] | None:
    """The lead and lender a token names, and the lender's name (ours when it bought no such lead)."""
    read = unsubscribe_token_read(token)
    if read is None:
        return None
    public_id, lender_id = read
    lead = Lead.objects.select_related("consumer").filter(public_id=public_id).first()
    delivery = (
        Delivery.objects.select_related("lender").filter(lead=lead, lender_id=lender_id).first()
        if lead
        else None
    )
    return lead, lender_id, delivery.lender.name if delivery else "Lead Market"


def email_unsubscribe_by_mail(*, subject: str) -> bool:
    """An e-mail to the List-Unsubscribe mailto (a provider's inbound webhook): the token in its subject
    unsubscribes, as the link would. True if it named a token we signed; anything else is ignored."""
    found = MAILTO_SUBJECT.search(subject or "")
    if found is None:
        return False
    return email_unsubscribe(token=found.group(1), source=OptOut.Source.EMAIL_MAILTO) is not None
