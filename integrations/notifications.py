"""E-mail to lenders about their account, integrations and consumers' replies: plain text and HTML, sent
from Celery tasks."""

from __future__ import annotations

import logging
from decimal import Decimal

from django.conf import settings
from django.core.cache import cache
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.urls import reverse

from billing.models import Account
from lenders.models import Membership
from marketplace.models import Delivery, ReturnRequest

from .models import TextMessage, WebhookEndpoint

logger = logging.getLogger(__name__)

# How long a sent e-mail's key is kept: far longer than a redelivery (visibility timeout) or a retry takes.
ONCE_TTL = 24 * 3600


def owner_emails(lender_id: int) -> list[str]:
    """The lender's active owners and managers: the people who run its account and integrations."""
    return list(
        Membership.objects.filter(
            lender_id=lender_id, is_active=True, role__in=[Membership.Role.OWNER, Membership.Role.MANAGER]
        )
        .exclude(user__email="")
        .order_by("pk")
        .values_list("user__email", flat=True)
    )


def send(*, template: str, subject: str, to: list[str], context: dict, once_key: str = "") -> int:
    """Send one e-mail. With `once_key`, an e-mail already sent under that key is not sent again: the tasks
    that call this are retried and redelivered (acks_late), and a lender must not get the same alert twice.
    The key is taken before sending (a concurrent run skips) and given back if sending fails (a retry sends).
    """
    if not to:
        return 0
    key = f"email-once:{once_key}" if once_key else ""
    if key and not cache.add(key, 1, timeout=ONCE_TTL):
        logger.info("e-mail %s already sent; skipped", template)
        return 0
    context = {**context, "site_url": settings.SITE_URL}
    message = EmailMultiAlternatives(
        subject=subject, body=render_to_string(f"email/{template}.txt", context), to=to
    )
    message.attach_alternative(render_to_string(f"email/{template}.html", context), "text/html")
    try:
        message.send()
    except Exception:
        if key:
            cache.delete(key)
        raise
    logger.info("e-mail %s sent to %d recipient(s)", template, len(to))
    return len(to)


def endpoint_disabled_notify(*, endpoint_id: int) -> int:
    endpoint = WebhookEndpoint.objects.select_related("lender").filter(pk=endpoint_id).first()
    if endpoint is None or endpoint.is_active:
        return 0
    url = settings.SITE_URL + reverse("portal:webhook_detail", args=[endpoint.pk])
    disabled = endpoint.disabled_at.timestamp() if endpoint.disabled_at else 0
    return send(
        template="webhook_disabled",
        subject="Webhook endpoint disabled",
        to=owner_emails(endpoint.lender_id),
        context={"endpoint": endpoint, "url": url},
        once_key=f"endpoint_disabled:{endpoint.pk}:{disabled}",  # once each time it is disabled
    )


def low_balance_notify(*, account_id: int, balance: Decimal) -> int:
    account = Account.objects.select_related("lender").filter(pk=account_id).first()
    if account is None:
        return 0
    return send(
        template="low_balance",
        subject=f"Low balance: ${balance:,.2f} left",
        to=owner_emails(account.lender_id),
        context={"account": account, "balance": balance, "url": settings.SITE_URL + reverse("portal:inbox")},
        once_key=f"low_balance:{account.pk}:{balance}",  # the task's arguments name one crossing
    )


def return_decided_email(*, return_request_id: int) -> int:
    rr = (
        ReturnRequest.objects.select_related("delivery", "delivery__lead", "credit", "requested_by")
        .filter(pk=return_request_id)
        .first()
    )
    if rr is None or rr.status == ReturnRequest.Status.REQUESTED:
        return 0
    to = owner_emails(rr.lender_id)
    requester = rr.requested_by if rr.requested_by_id else None
    if requester and requester.email and requester.email not in to:
        to.append(requester.email)
    return send(
        template="return_decided",
        subject=f"Return {rr.get_status_display().lower()}: lead {rr.delivery.lead.reference}",
        to=to,
        context={
            "rr": rr,
            "url": settings.SITE_URL + reverse("portal:delivery_detail", args=[rr.delivery_id]),
        },
        once_key=f"return_decided:{rr.pk}",  # a return is decided once
    )


def text_reply_notify(*, text_message_id: int) -> int:
    """Tell each buyer of the lead that the consumer answered a text: the assigned officer, else the owners
    and managers. Once per reply and delivery. Like every e-mail to lenders it names the lead, not the
    consumer, and does not quote the reply: both are read in the portal, where each view is logged."""
    text = (
        TextMessage.objects.filter(pk=text_message_id, direction=TextMessage.Direction.INBOUND)
        .only("lead_id")
        .first()
    )
    if text is None or text.lead_id is None:
        return 0
    sent = 0
    # A lead has at most the market's N shared buyers (3 by default): a query per buyer is bounded.
    for delivery in Delivery.objects.select_related("lead", "assigned_to").filter(lead_id=text.lead_id):
        officer = delivery.assigned_to
        to = (
            [officer.email]
            if officer and officer.email and officer.is_active
            else owner_emails(delivery.lender_id)
        )
        sent += send(
            template="text_reply",
            subject=f"A reply by text on lead {delivery.lead.reference}",
            to=to,
            context={
                "lead": delivery.lead,
                "url": settings.SITE_URL + reverse("portal:delivery_detail", args=[delivery.pk]),
            },
            once_key=f"text_reply:{text.pk}:{delivery.pk}",
        )
    return sent
