"""E-mail to consumers, in a lender's name: the one helper first touch, sequences and nurture send through.

Every message says who sent it (the lender's name, NMLS id and postal address in the footer). A marketing or
nurture message also carries one-click unsubscribe (RFC 8058: `List-Unsubscribe` with an https link and a
mailto, and `List-Unsubscribe-Post: List-Unsubscribe=One-Click`) and an unsubscribe link in the footer, and
is refused for an address that has unsubscribed. A transactional message (the first touch: the answer to the
consumer's own request, minutes after it) carries neither the headers nor the link, and is sent even to an
address that unsubscribed from marketing earlier: answering a new request is not marketing.
"""

from __future__ import annotations

import logging
import uuid
from email.utils import formataddr, parseaddr
from urllib.parse import quote

from django.conf import settings
from django.core import signing
from django.core.mail import EmailMultiAlternatives
from django.db import models
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.safestring import mark_safe

from compliance.models import OptOut
from compliance.selectors import optout_active
from marketplace.models import Activity, Delivery
from marketplace.services import activities_log_automated

logger = logging.getLogger(__name__)

UNSUBSCRIBE_SALT = "integrations.channels.unsubscribe"


class MessageKind(models.TextChoices):
    TRANSACTIONAL = "transactional", "Transactional (the answer to the consumer's request)"
    MARKETING = "marketing", "Marketing"
    NURTURE = "nurture", "Nurture"


class ConsumerUnreachable(Exception):
    """This consumer may not be e-mailed: erased, no address, or unsubscribed from this kind of mail."""


def unsubscribe_token(*, lead_public_id: uuid.UUID, lender_id: int) -> str:
    """A signed token naming the lead and the sending lender, for the unsubscribe link: no login needed, and
    no address in the URL. It never expires (an unsubscribe link must keep working for as long as the
    message may be read); the signature is SECRET_KEY's."""
    return signing.dumps({"l": lead_public_id.hex, "s": lender_id}, salt=UNSUBSCRIBE_SALT, compress=True)


def unsubscribe_token_read(token: str) -> tuple[uuid.UUID, int] | None:
    """(lead public id, lender id) of a token we signed; None for anything else."""
    try:
        data = signing.loads(token, salt=UNSUBSCRIBE_SALT)
        return uuid.UUID(hex=str(data["l"])), int(data["s"])
    except (signing.BadSignature, KeyError, TypeError, ValueError):
        return None


def unsubscribe_url(token: str) -> str:
    return settings.SITE_URL + reverse("channels:unsubscribe", args=[token])


def consumer_email_build(
    *,
    delivery: Delivery,
    subject: str,
    text: str,
    html: str = "",
    kind: str,
    reply_to: list[str] | None = None,
) -> EmailMultiAlternatives:
    """The message to the consumer of `delivery`, from its lender. `text` (and `html`, already rendered and
    escaped by the caller's template) is the body; the footer and, for marketing and nurture, the
    unsubscribe headers are added here. Raises ConsumerUnreachable when this consumer may not get it."""
    if kind not in MessageKind.values:
        raise ValueError(f"unknown message kind {kind!r}")
    consumer, lender = delivery.lead.consumer, delivery.lender
    if consumer.erased_at is not None or not consumer.email:
        raise ConsumerUnreachable("This consumer's details were erased.")
    marketing = kind != MessageKind.TRANSACTIONAL
    if marketing and optout_active(channel=OptOut.Channel.EMAIL, address=consumer.email):
        raise ConsumerUnreachable("This address has unsubscribed from marketing e-mail.")
    headers: dict[str, str] = {}
    link = ""
    if marketing:
        token = unsubscribe_token(lead_public_id=delivery.lead.public_id, lender_id=lender.pk)
        link = unsubscribe_url(token)
        mailto = f"mailto:{settings.UNSUBSCRIBE_MAILTO}?subject={quote('unsubscribe ' + token)}"
        headers["List-Unsubscribe"] = f"<{link}>, <{mailto}>"
        headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    context = {
        "text": text,
        "html": mark_safe(html),  # noqa: S308 - rendered by the caller's own (autoescaping) template
        "lender": lender,
        "sender_address": lender.postal_address or settings.SENDER_POSTAL_ADDRESS,
        "unsubscribe_url": link,
        "site_url": settings.SITE_URL,
    }
    _, address = parseaddr(settings.DEFAULT_FROM_EMAIL)
    message = EmailMultiAlternatives(
        subject=subject,
        body=render_to_string("email/consumer.txt", context),
        from_email=formataddr((lender.name, address)),
        to=[consumer.email],
        reply_to=reply_to,
        headers=headers,
    )
    message.attach_alternative(render_to_string("email/consumer.html", context), "text/html")
    return message


def consumer_email_send(
    *,
    delivery: Delivery,
    subject: str,
    text: str,
    html: str = "",
    kind: str,
    reply_to: list[str] | None = None,
) -> None:
    """Build (consumer_email_build), send, and leave an activity on the delivery saying what was sent."""
    message = consumer_email_build(
        delivery=delivery, subject=subject, text=text, html=html, kind=kind, reply_to=reply_to
    )
    message.send()
    activities_log_automated(
        delivery_ids=[delivery.pk], kind=Activity.Kind.EMAIL, outcome=Activity.Outcome.SENT, note=subject
    )
    logger.info("%s e-mail sent on delivery %s", kind, delivery.pk)
