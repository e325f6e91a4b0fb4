"""Twilio: the REST API that sends texts (no SDK: one form-encoded POST over urllib3, already a dependency)
and the signature scheme of the webhooks it calls us on.

Sending: POST {TWILIO_API_URL}/2010-04-01/Accounts/{sid}/Messages.json with HTTP basic auth (account SID,
auth token) and the fields To, From or MessagingServiceSid, Body and StatusCallback; Twilio answers 201 with
the message's JSON (`sid`, `status`), or an error JSON (`code`, `message`, `more_info`, `status`).

Webhooks: X-Twilio-Signature is base64(HMAC-SHA1(auth token, URL + each POST parameter's name and value,
sorted by name)), where URL is the full URL Twilio was told to call, query string included.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
from collections.abc import Iterable, Mapping
from urllib.parse import urlencode, urlsplit, urlunsplit

import urllib3
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from .sms import BaseSmsBackend, SmsError, SmsOptedOut, SmsResult

logger = logging.getLogger(__name__)

# Twilio's error for a number that texted STOP to the sender (its own opt-out handling is on by default).
UNSUBSCRIBED_RECIPIENT = "21610"

# One pool per process: Twilio's API over kept-alive TLS connections. No retries: a POST that timed out may
# have been sent, and a second would text the consumer twice; the caller decides.
_pool = urllib3.PoolManager(
    num_pools=2,
    maxsize=4,
    timeout=urllib3.Timeout(connect=5.0, read=15.0),
    retries=False,
    headers={"User-Agent": "LeadMarket/1.0"},
)


class TwilioBackend(BaseSmsBackend):
    name = "twilio"

    def __init__(self) -> None:
        self.account_sid = settings.TWILIO_ACCOUNT_SID
        self.auth_token = settings.TWILIO_AUTH_TOKEN
        self.from_number = settings.TWILIO_FROM_NUMBER
        self.messaging_service_sid = settings.TWILIO_MESSAGING_SERVICE_SID
        if not (self.account_sid and self.auth_token and (self.from_number or self.messaging_service_sid)):
            raise ImproperlyConfigured(
                "The Twilio backend needs TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN and TWILIO_FROM_NUMBER or "
                "TWILIO_MESSAGING_SERVICE_SID."
            )
        self.url = f"{settings.TWILIO_API_URL}/2010-04-01/Accounts/{self.account_sid}/Messages.json"

    def send(self, *, to: str, body: str, status_callback: str = "") -> SmsResult:
        fields = {"To": to, "Body": body}
        # A messaging service picks the sender from its pool (and applies its own opt-out rules).
        if self.messaging_service_sid:
            fields["MessagingServiceSid"] = self.messaging_service_sid
        else:
            fields["From"] = self.from_number
        if status_callback:
            fields["StatusCallback"] = status_callback
        headers = urllib3.make_headers(basic_auth=f"{self.account_sid}:{self.auth_token}")
        headers["Content-Type"] = "application/x-www-form-urlencoded"
        headers["Accept"] = "application/json"
        try:
            response = _pool.request(
                "POST", self.url, body=urlencode(fields), headers=headers, redirect=False
            )
        except urllib3.exceptions.HTTPError as exc:
            raise SmsError(f"Twilio could not be reached ({type(exc).__name__}).", transient=True) from None
        return _result(response.status, response.data)


def _result(status: int, raw: bytes) -> SmsResult:
    try:
        data = json.loads(raw or b"{}")
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise SmsError(
            f"Twilio answered {status} with a body that is not JSON.",
            http_status=status,
            transient=status >= 500,
        )
    if 200 <= status < 300 and isinstance(data.get("sid"), str):
        return SmsResult(
            provider="twilio", provider_id=data["sid"], status=str(data.get("status") or "queued")
        )
    code = str(data.get("code") or "")
    message = str(data.get("message") or f"Twilio refused the text ({status}).")
    if code == UNSUBSCRIBED_RECIPIENT:
        raise SmsOptedOut(f"Twilio: {message}", code=code, http_status=status)
    raise SmsError(
        f"Twilio error {code or status}: {message}",
        code=code,
        http_status=status,
        transient=status >= 500 or status == 429,
    )


def twilio_signature(auth_token: str, url: str, params: Mapping[str, Iterable[str]]) -> str:
    """Twilio's X-Twilio-Signature for a form POST to `url`: each parameter name followed by its value,
    names sorted (a repeated name's distinct values sorted too, as Twilio's own libraries do), appended to
    the URL, HMAC-SHA1 with the auth token, base64."""
    signed = url
    for name in sorted(params):
        for value in sorted(set(params[name])):
            signed += name + value
    digest = hmac.new(auth_token.encode(), signed.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def _with_and_without_port(url: str) -> list[str]:
    """Twilio signs the URL as configured; behind a proxy the default port may or may not be in it, so its
    libraries accept both forms, and so do we."""
    parts = urlsplit(url)
    default = {"https": 443, "http": 80}.get(parts.scheme)
    host = parts.hostname or ""
    if parts.port is None and default:
        other = parts._replace(netloc=f"{parts.netloc}:{default}")
    elif parts.port == default:
        other = parts._replace(netloc=parts.netloc.rsplit(":", 1)[0])
    else:
        return [url]
    return [url, urlunsplit(other)] if host else [url]


def twilio_signature_valid(
    *, auth_token: str, url: str, params: Mapping[str, Iterable[str]], signature: str
) -> bool:
    """Does `signature` prove Twilio sent these parameters to `url`? Compared in constant time; an empty
    token or signature never passes."""
    if not auth_token or not signature:
        return False
    return any(
        hmac.compare_digest(twilio_signature(auth_token, candidate, params).encode(), signature.encode())
        for candidate in _with_and_without_port(url)
    )
