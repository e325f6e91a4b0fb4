"""The channels' public endpoints: Twilio's signed webhooks (a consumer's text, a text's status) and the
unsubscribe link of marketing e-mail. Thin: they check the request and call integrations.channels.services."""

from __future__ import annotations

import logging
from xml.sax.saxutils import escape

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST

from compliance.models import OptOut

from . import services
from .twilio import twilio_signature_valid

logger = logging.getLogger(__name__)


def _plain(text: str, status: int) -> HttpResponse:
    return HttpResponse(text, status=status, content_type="text/plain; charset=utf-8")


def _from_twilio(request: HttpRequest) -> bool:
    """Twilio signed this request. The URL it signed is the public one it was told to call: SITE_URL and the
    path, never the Host header, which behind a proxy is the proxy's idea of us (and anyone can set it)."""
    url = settings.SITE_URL + request.get_full_path()
    return twilio_signature_valid(
        auth_token=settings.TWILIO_AUTH_TOKEN,
        url=url,
        params=dict(request.POST.lists()),
        signature=request.headers.get("X-Twilio-Signature", ""),
    )


def _twiml(message: str) -> HttpResponse:
    inner = f"<Message>{escape(message)}</Message>" if message else ""
    return HttpResponse(
        f'<?xml version="1.0" encoding="UTF-8"?><Response>{inner}</Response>',
        content_type="text/xml; charset=utf-8",
    )


@csrf_exempt  # Twilio's server posts here; its signature is the check
@require_POST
def twilio_inbound(request: HttpRequest) -> HttpResponse:
    """A text to our number. Answered with TwiML: the reply to STOP, START or HELP, else nothing."""
    if not _from_twilio(request):
        logger.warning("inbound text webhook refused: bad or missing signature")
        return _plain("Invalid signature.", 403)
    sid, sender = request.POST.get("MessageSid", ""), request.POST.get("From", "")
    if not sid or not sender:
        return _plain("MessageSid and From are required.", 400)
    try:
        inbound = services.text_inbound_receive(
            provider="twilio", provider_id=sid, from_number=sender, body=request.POST.get("Body", "")
        )
    except ValueError as exc:
        return _plain(str(exc), 400)
    return _twiml(inbound.reply)


@csrf_exempt  # Twilio's server posts here; its signature is the check
@require_POST
def twilio_status(request: HttpRequest, text_id: int) -> HttpResponse:
    """A status callback for one of our texts (the URL names the row; MessageSid must agree with it)."""
    if not _from_twilio(request):
        logger.warning("text status webhook refused: bad or missing signature")
        return _plain("Invalid signature.", 403)
    sid, status = request.POST.get("MessageSid", ""), request.POST.get("MessageStatus", "")
    if not sid or not status:
        return _plain("MessageSid and MessageStatus are required.", 400)
    try:
        services.text_status_update(
            text_message_id=text_id,
            provider_id=sid,
            status=status,
            error_code=request.POST.get("ErrorCode", ""),
        )
    except ValueError as exc:
        return _plain(str(exc), 400)
    return HttpResponse(status=204)


# RFC 8058: a mail client's one-click POST carries no cookie and no CSRF token; the signed token in the URL
# is the authority, and the page's own form posts the same way.
@csrf_exempt
@require_http_methods(["GET", "POST"])
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    """GET asks (a link scanner that follows it stops nothing); POST unsubscribes."""
    if request.method == "GET":
        target = services.email_unsubscribe_preview(token=token)
        if target is None:
            return render(request, "channels/unsubscribe_invalid.html", status=400)
        return render(request, "channels/unsubscribe.html", {"target": target})
    one_click = request.POST.get("List-Unsubscribe") == "One-Click"
    source = OptOut.Source.EMAIL_ONE_CLICK if one_click else OptOut.Source.EMAIL_LINK
    target = services.email_unsubscribe(token=token, source=source)
    if target is None:
        if one_click:
            return _plain("This unsubscribe link is not valid.", 400)
        return render(request, "channels/unsubscribe_invalid.html", status=400)
    if one_click:
        return _plain("Unsubscribed.", 200)
    return render(request, "channels/unsubscribe_done.html", {"target": target})
