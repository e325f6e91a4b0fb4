"""The SMS provider interface: `send_sms(to, body)` through the backend SMS_BACKEND names, which refuses a
number that has opted out before any provider is asked. Two backends: ConsoleBackend (the default: prints
each text as Django's console e-mail backend prints e-mail, and keeps it in `outbox` for tests, as
mail.outbox) and integrations.channels.twilio.TwilioBackend (Twilio's REST API)."""

from __future__ import annotations

import itertools
import sys
import threading
from dataclasses import dataclass
from typing import TextIO

from django.conf import settings
from django.utils.module_loading import import_string

from compliance.models import OptOut
from compliance.selectors import optout_active
from compliance.services import address_normalise

# Twilio's limit for one message's body (it splits it into segments of 153 or 67 characters itself).
MAX_BODY = 1600


@dataclass(frozen=True)
class SmsResult:
    """What the provider said about one text it took."""

    provider: str
    provider_id: str
    status: str


class SmsError(Exception):
    """The provider (or we, before asking it) refused a text. `code` is the provider's error code when it
    gave one (Twilio's 21211: not a valid number); `transient` says a retry later may succeed (the provider
    unreachable, answering 5xx or 429). The message may quote the number: log `code`, never `str(exc)`."""

    def __init__(
        self, message: str, *, code: str = "", http_status: int | None = None, transient: bool = False
    ):
        super().__init__(message)
        self.message = message
        self.code = code
        self.http_status = http_status
        self.transient = transient


class SmsOptedOut(SmsError):
    """The number has stopped texts (STOP): nothing is sent until it texts START."""

    def __init__(self, message: str = "This number has opted out of texts (STOP).", **kwargs):
        super().__init__(message, code=kwargs.pop("code", "opted_out"), **kwargs)


@dataclass(frozen=True)
class OutboxText:
    to: str
    body: str
    status_callback: str
    provider_id: str


# The console backend's record of what it sent, like django.core.mail.outbox: tests read and clear it.
outbox: list[OutboxText] = []
_ids = itertools.count(1)
_lock = threading.Lock()


class BaseSmsBackend:
    name = ""

    def send(self, *, to: str, body: str, status_callback: str = "") -> SmsResult:
        """Send one text to `to` (E.164, +1 and ten digits); raise SmsError when the provider refuses."""
        raise NotImplementedError


class ConsoleBackend(BaseSmsBackend):
    """Prints each text to stdout (the embedded `make run` shows it in the terminal) and keeps it in
    `outbox`. Like Django's console e-mail backend, what it prints is the message, number included: it is
    the stand-in for the consumer's phone, not a log."""

    name = "console"

    def __init__(self, stream: TextIO | None = None):
        self.stream = stream

    def send(self, *, to: str, body: str, status_callback: str = "") -> SmsResult:
        with _lock:
            provider_id = f"console-{next(_ids)}"
            outbox.append(
                OutboxText(to=to, body=body, status_callback=status_callback, provider_id=provider_id)
            )
        stream = self.stream or sys.stdout
        stream.write(f"SMS to: {to}\nId: {provider_id}\n\n{body}\n{'-' * 79}\n")
        stream.flush()
        return SmsResult(provider=self.name, provider_id=provider_id, status="sent")


def get_backend() -> BaseSmsBackend:
    """The backend SMS_BACKEND names (a dotted path; config.channels maps `console` and `twilio`)."""
    return import_string(settings.SMS_BACKEND)()


def e164(number: str) -> str:
    """A US number as E.164 (+15125550142); SmsError for anything that is not ten digits."""
    digits = address_normalise(channel=OptOut.Channel.SMS, address=number)
    if len(digits) != 10:
        raise SmsError("Not a US phone number of ten digits.", code="invalid_number")
    return f"+1{digits}"


def send_sms(
    to: str, body: str, *, status_callback: str = "", backend: BaseSmsBackend | None = None
) -> SmsResult:
    """Send one text through the configured backend. Every send passes here, so a number that has opted out
    is refused (SmsOptedOut) whichever backend is in use, and an empty text or a number that is not one
    never reaches a provider."""
    number = e164(to)
    body = body.strip()
    if not body:
        raise SmsError("A text needs words.", code="empty_body")
    if len(body) > MAX_BODY:
        raise SmsError(f"A text is at most {MAX_BODY} characters; this one has {len(body)}.", code="too_long")
    if optout_active(channel=OptOut.Channel.SMS, address=number):
        raise SmsOptedOut()
    return (backend or get_backend()).send(to=number, body=body, status_callback=status_callback)


def phone_masked(number: str) -> str:
    """For logs: the last two digits only (•••••••42)."""
    digits = "".join(ch for ch in number if ch.isdigit())
    return "•" * max(len(digits) - 2, 0) + digits[-2:]
