"""Settings of the message channels, read from the environment: which e-mail backend (Django's by EMAIL_URL,
or a provider's API through django-anymail) and which SMS backend (console or Twilio), checked at start so a
half-configured provider stops the start with a clear message instead of failing on the first send."""

from __future__ import annotations

import secrets
from email.utils import parseaddr
from typing import Any

import environ
from django.core.exceptions import ImproperlyConfigured

# ANYMAIL_ESP -> (anymail's backend, the ANYMAIL setting its API key goes in). `test` is anymail's own
# recording backend (no network), for trying the provider path locally.
ANYMAIL_ESPS: dict[str, tuple[str, str]] = {
    "sendgrid": ("anymail.backends.sendgrid.EmailBackend", "SENDGRID_API_KEY"),
    "postmark": ("anymail.backends.postmark.EmailBackend", "POSTMARK_SERVER_TOKEN"),
    "mailgun": ("anymail.backends.mailgun.EmailBackend", "MAILGUN_API_KEY"),
    "test": ("anymail.backends.test.EmailBackend", ""),
}

SMS_BACKENDS = {
    "console": "integrations.channels.sms.ConsoleBackend",
    "twilio": "integrations.channels.twilio.TwilioBackend",
}

DEFAULT_SMS_HELP_TEXT = (
    "Lead Market: texts from the mortgage lenders you asked to contact you. Reply STOP to stop, START to "
    "resume. Msg & data rates may apply."
)


def email_settings(env: environ.Env) -> dict[str, Any]:
    """EMAIL_BACKEND and its settings: anymail's backend for ANYMAIL_ESP when it is set, else EMAIL_URL's
    (`consolemail://` by default; `smtp+tls://user:pass@host:587` for a mail server). ANYMAIL always has a
    WEBHOOK_SECRET (the basic-auth `user:password` the provider's inbound webhook must send): the one
    ANYMAIL_WEBHOOK_SECRET sets, else a random one, so that an unconfigured webhook refuses everyone."""
    config: dict[str, Any] = env.email_url("EMAIL_URL", default="consolemail://")
    anymail: dict[str, str] = {
        "WEBHOOK_SECRET": env.str("ANYMAIL_WEBHOOK_SECRET", default="")
        or f"unset:{secrets.token_urlsafe(32)}"
    }
    esp = env.str("ANYMAIL_ESP", default="").strip().lower()
    if not esp:
        return {**config, "ANYMAIL": anymail}
    if esp not in ANYMAIL_ESPS:
        raise ImproperlyConfigured(
            f"ANYMAIL_ESP={esp!r} is not one we configure; choose one of {', '.join(sorted(ANYMAIL_ESPS))}."
        )
    backend, key_setting = ANYMAIL_ESPS[esp]
    if key_setting:
        key = env.str("ANYMAIL_API_KEY", default="")
        if not key:
            raise ImproperlyConfigured(f"ANYMAIL_ESP={esp} needs ANYMAIL_API_KEY (the provider's API key).")
        anymail[key_setting] = key
    if esp == "mailgun":
        # A Mailgun account may send for several domains, and EU accounts have their own API host.
        for name in ("MAILGUN_SENDER_DOMAIN", "MAILGUN_API_URL"):
            if value := env.str(name, default=""):
                anymail[name] = value
    return {**config, "EMAIL_BACKEND": backend, "ANYMAIL": anymail}


def unsubscribe_mailto(from_email: str) -> str:
    """unsubscribe@ the sender's own domain."""
    _, address = parseaddr(from_email)
    domain = address.rpartition("@")[2] or "localhost"
    return f"unsubscribe@{domain}"


def sms_settings(env: environ.Env) -> dict[str, Any]:
    backend = env.str("SMS_BACKEND", default="console").strip()
    values: dict[str, Any] = {
        "SMS_BACKEND": SMS_BACKENDS.get(backend.lower(), backend),
        "SMS_HELP_TEXT": env.str("SMS_HELP_TEXT", default=DEFAULT_SMS_HELP_TEXT),
        "TWILIO_ACCOUNT_SID": env.str("TWILIO_ACCOUNT_SID", default=""),
        # Also the key Twilio signs its webhooks with: without it every webhook is refused (403).
        "TWILIO_AUTH_TOKEN": env.str("TWILIO_AUTH_TOKEN", default=""),
        "TWILIO_FROM_NUMBER": env.str("TWILIO_FROM_NUMBER", default=""),
        "TWILIO_MESSAGING_SERVICE_SID": env.str("TWILIO_MESSAGING_SERVICE_SID", default=""),
        "TWILIO_API_URL": env.str("TWILIO_API_URL", default="https://api.twilio.com").rstrip("/"),
    }
    if values["SMS_BACKEND"] == SMS_BACKENDS["twilio"]:
        missing = [n for n in ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN") if not values[n]]
        if not (values["TWILIO_FROM_NUMBER"] or values["TWILIO_MESSAGING_SERVICE_SID"]):
            missing.append("TWILIO_FROM_NUMBER or TWILIO_MESSAGING_SERVICE_SID")
        if missing:
            raise ImproperlyConfigured(f"SMS_BACKEND=twilio needs {', '.join(missing)} in the environment.")
    return values
