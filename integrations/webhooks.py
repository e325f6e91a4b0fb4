"""Sending webhooks: Standard Webhooks signatures, an SSRF-safe HTTP client, and the retry schedule.

SSRF: the host is resolved once, every address is checked, and the connection goes to the checked address
(the Host header and TLS SNI still carry the name), so a DNS answer that changes between check and connect
("rebinding") cannot point us inside. Redirects are never followed: a 3xx is a failed attempt.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import json
import logging
import random
import socket
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypedDict
from urllib.parse import urlsplit

import urllib3
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Exists, F, OuterRef, Q
from django.utils import timezone

from core.tasking import enqueue_on_commit

from .models import WebhookAttempt, WebhookEndpoint, WebhookMessage

logger = logging.getLogger(__name__)

# After attempt n fails, wait SCHEDULE[n-1] (±20% jitter): ten attempts over about three days.
SCHEDULE = [
    timedelta(seconds=5),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=5),
    timedelta(hours=10),
    timedelta(hours=14),
    timedelta(hours=20),
    timedelta(hours=24),
]
MAX_ATTEMPTS = len(SCHEDULE) + 1
# Short waits go to the broker as a countdown; longer ones wait in the database for the beat sweeper,
# because a countdown longer than the broker's visibility timeout (1 h) gets redelivered early.
MAX_COUNTDOWN = timedelta(minutes=5)
LEASE = timedelta(minutes=2)  # a claimed attempt is not claimed again for this long (covers the timeout)
TIMEOUT = urllib3.Timeout(connect=5.0, read=10.0)  # at most 15 s in all
# An endpoint that keeps failing gets less of the outbound worker's time per attempt until it answers again.
FAILING_AFTER = 3  # failed attempts in a row
FAILING_TIMEOUT = urllib3.Timeout(connect=2.0, read=3.0)
# A send task holds its lender's sending lease this long at most (its time limit is 60 s).
SENDING_LEASE = timedelta(seconds=90)
# A queued mark older than this (past its countdown) is taken for a task the broker lost.
QUEUED_STALE = timedelta(minutes=10)
MAX_RETRY_AFTER = timedelta(hours=24)
EXCERPT_BYTES = 1024
USER_AGENT = "LeadMarket-Webhooks/1.0"


class UnsafeURL(ValidationError):
    pass


# --- signing ----------------------------------------------------------------------------------------------


def sign(*, secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """`v1,<base64 HMAC-SHA256>` of "{id}.{timestamp}.{body}", keyed by the base64-decoded secret."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    mac = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def signed_headers(*, secrets: list[str], msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        # Several signatures, space-separated, while a rotated secret is still honoured.
        "webhook-signature": " ".join(
            sign(secret=s, msg_id=msg_id, timestamp=timestamp, body=body) for s in secrets
        ),
    }


# --- the address guard ---------------------------------------------------------------------------------


def address_allowed(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    if ip.is_loopback:
        return bool(getattr(settings, "WEBHOOK_ALLOW_LOOPBACK", False))
    return not (
        ip.is_private
        or ip.is_link_local
        or ip.is_reserved
        or ip.is_multicast
        or ip.is_unspecified
        or not ip.is_global
    )


def url_check(url: str) -> None:
    """Refuse a URL we would never send to (scheme, credentials); the address is checked at send time too."""
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise UnsafeURL("Use an https:// URL.")
    if parts.username or parts.password:
        raise UnsafeURL("Put no user name or password in the URL; verify our signature instead.")
    try:
        resolve(url)
    except UnsafeURL:
        raise
    except OSError:
        return  # DNS may not be set up yet; every send checks again


def resolve(url: str) -> tuple[str, int, list[str]]:
    """(host, port, [checked addresses]); UnsafeURL if any address the name resolves to is not public.

    Plain http is allowed only to loopback in development and tests: payloads carry consumers' contact data.
    """
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    # An IP socket address starts with the address as text (other families, never asked for here, do not).
    addresses = sorted({info[4][0] for info in infos if isinstance(info[4][0], str)})
    if not addresses:
        raise UnsafeURL("The host has no address.")
    for addr in addresses:
        ip = ipaddress.ip_address(addr.split("%")[0])
        if not address_allowed(ip):
            raise UnsafeURL("The URL points to a private, loopback or reserved address; use a public host.")
        if parts.scheme == "http" and not ip.is_loopback:
            raise UnsafeURL("Use an https:// URL.")
    return host, port, addresses


@dataclass
class SendResult:
    status_code: int | None
    latency_ms: int
    excerpt: str = ""
    error: str = ""
    retry_after: timedelta | None = None


def _retry_after(value: str | None) -> timedelta | None:
    if not value:
        return None
    try:
        seconds = int(value.strip())
    except ValueError:
        from email.utils import parsedate_to_datetime

        try:
            seconds = int((parsedate_to_datetime(value) - timezone.now()).total_seconds())
        except (TypeError, ValueError):
            return None
    return min(timedelta(seconds=max(seconds, 0)), MAX_RETRY_AFTER)


class _PoolOptions(TypedDict):
    """What every webhook connection pool is made with, plain or TLS."""

    timeout: urllib3.Timeout
    retries: bool
    maxsize: int


def http_post(
    url: str,
    *,
    body: bytes,
    headers: dict[str, str],
    pools: dict[tuple, urllib3.HTTPConnectionPool] | None = None,
    timeout: urllib3.Timeout = TIMEOUT,
) -> SendResult:
    """POST to the checked address of `url`, no redirects, no proxies, within `timeout`.

    With `pools` (a dict the caller owns, and closes with pools_close), the connection to the same checked
    address is kept for the next message: one TCP and TLS handshake for a batch, not one per message."""
    started = time.monotonic()
    try:
        host, port, addresses = resolve(url)
    except UnsafeURL as exc:
        return SendResult(None, 0, error=exc.messages[0][:200])
    except OSError:
        return SendResult(None, 0, error="DNS lookup failed")
    parts = urlsplit(url)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    ip = addresses[0]
    host_header = host if port in (80, 443) else f"{host}:{port}"
    key = (parts.scheme, ip, port, host)
    pool = pools.get(key) if pools is not None else None
    if pool is None:
        pool_kwargs: _PoolOptions = {"timeout": TIMEOUT, "retries": False, "maxsize": 1}
        if parts.scheme == "https":
            pool = urllib3.HTTPSConnectionPool(
                ip, port, server_hostname=host, assert_hostname=host, cert_reqs="CERT_REQUIRED", **pool_kwargs
            )
        else:
            pool = urllib3.HTTPConnectionPool(ip, port, **pool_kwargs)
        if pools is not None:
            pools[key] = pool
    try:
        response = pool.urlopen(
            "POST",
            path,
            body=body,
            redirect=False,
            timeout=timeout,
            preload_content=False,
            assert_same_host=False,
            headers={
                **headers,
                "Host": host_header,
                "Content-Type": "application/json",
                "User-Agent": USER_AGENT,
            },
        )
        try:
            excerpt = response.read(EXCERPT_BYTES, decode_content=True) or b""
        except urllib3.exceptions.HTTPError:
            excerpt = b""
        response.release_conn()
        return SendResult(
            response.status,
            int((time.monotonic() - started) * 1000),
            excerpt=excerpt[:EXCERPT_BYTES].decode("utf-8", "replace")[:EXCERPT_BYTES],
            retry_after=_retry_after(response.headers.get("Retry-After")),
        )
    except urllib3.exceptions.HTTPError as exc:
        name = type(exc).__name__
        if isinstance(exc, urllib3.exceptions.TimeoutError):
            name = "Timed out"
        return SendResult(None, int((time.monotonic() - started) * 1000), error=name[:200])
    finally:
        if pools is None:
            pool.close()


def pools_close(pools: dict[tuple, urllib3.HTTPConnectionPool]) -> None:
    for pool in pools.values():
        pool.close()
    pools.clear()


# --- one attempt -----------------------------------------------------------------------------------------


def _wait_after(attempt: int, result: SendResult) -> timedelta:
    base = SCHEDULE[min(attempt, len(SCHEDULE)) - 1]
    wait = base * random.uniform(0.8, 1.2)  # jitter: receivers coming back are not hit all at once
    if result.status_code in (429, 503) and result.retry_after is not None:
        wait = max(wait, result.retry_after)
    return wait


def _ok(result: SendResult) -> bool:
    return result.status_code is not None and 200 <= result.status_code < 300


def endpoint_down(result: SendResult) -> bool:
    """A failure that says the endpoint, not the message, is in trouble: no answer (timeout, refused), or
    an answer asking us to wait. Its other messages then wait too; after any other failure they go on."""
    return result.status_code is None or result.status_code in (429, 502, 503, 504)


def _attempt(
    message: WebhookMessage, pools: dict[tuple, urllib3.HTTPConnectionPool] | None
) -> tuple[datetime, SendResult]:
    """Sign the message with the endpoint's current secrets and POST it once; nothing is written."""
    body = json.dumps(message.payload, separators=(",", ":")).encode()
    now = timezone.now()
    headers = signed_headers(
        secrets=message.endpoint.signing_secrets(now),
        msg_id=message.event_id,
        timestamp=int(now.timestamp()),
        body=body,
    )
    endpoint = message.endpoint
    timeout = FAILING_TIMEOUT if endpoint.failure_count >= FAILING_AFTER else TIMEOUT
    return now, http_post(endpoint.url, body=body, headers=headers, pools=pools, timeout=timeout)


def _attempt_row(message: WebhookMessage, attempted_at: datetime, result: SendResult) -> WebhookAttempt:
    """The attempt log's row for one POST (unsaved)."""
    return WebhookAttempt(
        message=message,
        attempted_at=attempted_at,
        status_code=result.status_code,
        latency_ms=result.latency_ms,
        response_excerpt=result.excerpt[:EXCERPT_BYTES],
        error=result.error,
        succeeded=_ok(result),
    )


def _fail_inactive(message_ids: list[int]) -> None:
    WebhookMessage.objects.filter(pk__in=message_ids).update(
        status=WebhookMessage.Status.FAILED, next_attempt_at=None, finished_at=timezone.now()
    )


def webhook_messages_send(
    *, message_ids: list[int], pools: dict[tuple, urllib3.HTTPConnectionPool], until: float
) -> tuple[list[int], tuple[int, timedelta | None, bool] | None]:
    """Attempts at one endpoint's due messages, in order: claimed together, sent one by one over the
    pooled connection, and the deliveries recorded together (four queries for the batch, not four per
    message). Stops at the first failed attempt, which is recorded as any attempt is, or once
    time.monotonic() passes `until`.

    Returns the ids not tried and the failed (id, wait before retry, endpoint_down). When the endpoint is
    down the ones not tried wait with the failed one (the endpoint backs off as a whole, in order);
    otherwise, and after `until`, they are due now.
    """
    now = timezone.now()
    with transaction.atomic():
        messages = list(
            WebhookMessage.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("endpoint")
            .filter(pk__in=message_ids, status=WebhookMessage.Status.PENDING, next_attempt_at__lte=now)
            .order_by("pk")
        )
        WebhookMessage.objects.filter(pk__in=[m.pk for m in messages]).update(next_attempt_at=now + LEASE)
    delivered: list[tuple[WebhookMessage, datetime, SendResult]] = []
    left: list[WebhookMessage] = []
    failed: tuple[int, timedelta | None, bool] | None = None
    for i, message in enumerate(messages):
        if not message.endpoint.is_active or time.monotonic() > until:
            left = messages[i:]
            break
        attempted_at, result = _attempt(message, pools)
        if not _ok(result):
            failed = (message.pk, _record(message, attempted_at, result), endpoint_down(result))
            left = messages[i + 1 :]
            break
        delivered.append((message, attempted_at, result))
    if delivered:
        with transaction.atomic():
            WebhookAttempt.objects.bulk_create(
                [_attempt_row(message, attempted_at, result) for message, attempted_at, result in delivered]
            )
            WebhookMessage.objects.filter(pk__in=[m.pk for m, _, _ in delivered]).update(
                status=WebhookMessage.Status.SUCCEEDED,
                attempt_count=F("attempt_count") + 1,
                next_attempt_at=None,
                finished_at=timezone.now(),
            )
            endpoint = delivered[0][0].endpoint
            if endpoint.failure_count and failed is None:
                WebhookEndpoint.objects.filter(pk=endpoint.pk).update(failure_count=0)
        for message, _, result in delivered:
            logger.info(
                "webhook %s attempt %d: %s", message.event_id, message.attempt_count + 1, result.status_code
            )
    if left:
        wait = failed[1] if failed is not None and failed[2] else None
        WebhookMessage.objects.filter(
            pk__in=[m.pk for m in left], status=WebhookMessage.Status.PENDING
        ).update(next_attempt_at=now if wait is None else timezone.now() + wait)
    return [m.pk for m in left], failed


# --- scheduling ------------------------------------------------------------------------------------------
#
# Sends are scheduled per endpoint, never per message: a task sends one endpoint's due messages in order.
# Queueing marks the endpoint (`queued_at`), so an endpoint has one task in the broker however many
# messages wait and however often the sweeper looks. A task then takes its lender's sending lease: while
# one of a lender's endpoints is being sent to, a task for another of its endpoints ends at once, and the
# sender hands on to the lender's next due endpoint when it is done, through the back of the queue. So one
# lender holds one outbound process at most, however many of its endpoints hang, and other lenders' tasks
# are taken between its turns.


@dataclass
class EndpointRun:
    sent: int = 0  # attempts made
    lender_id: int | None = None  # None: the task did not send (lender busy, endpoint gone or disabled)
    retry: timedelta | None = None  # the wait of an endpoint that is down, to queue as a countdown if short


def _lease(endpoint: WebhookEndpoint) -> bool:
    """Take the lender's sending lease for `endpoint`; False while a task holds one for any of its endpoints
    (this one included: a message committed while its endpoint is being sent to queues a second task)."""
    now = timezone.now()
    with transaction.atomic():
        # The lender's endpoints, locked in id order (as every taker locks them): two takers never both win.
        leases = (
            WebhookEndpoint.objects.select_for_update()
            .filter(lender_id=endpoint.lender_id)
            .order_by("pk")
            .values_list("sending_until", flat=True)
        )
        if any(until and until > now for until in leases):
            return False
        WebhookEndpoint.objects.filter(pk=endpoint.pk).update(sending_until=now + SENDING_LEASE)
    return True


def _due_ids(endpoint_id: int, limit: int = 100) -> list[int]:
    return list(
        WebhookMessage.objects.filter(
            endpoint_id=endpoint_id, status=WebhookMessage.Status.PENDING, next_attempt_at__lte=timezone.now()
        )
        .order_by("pk")
        .values_list("pk", flat=True)[:limit]
    )


def webhook_endpoint_send_due(*, endpoint_id: int, until: float) -> EndpointRun:
    """Send the endpoint's due messages, in order, over one connection, until they are done, the endpoint
    is down (the rest back off with the failed one) or time.monotonic() passes `until`. A message that fails
    on its own waits for its retry (the sweeper's) and the rest go on. One endpoint of a lender at a time."""
    # The task has started: a message committed from now on queues a task of its own (which waits for
    # this one's lease, or finds its message sent), so none is left without one.
    WebhookEndpoint.objects.filter(pk=endpoint_id).update(queued_at=None)
    endpoint = WebhookEndpoint.objects.filter(pk=endpoint_id).only("pk", "lender_id", "is_active").first()
    if endpoint is None:
        return EndpointRun()
    if not endpoint.is_active:
        _fail_inactive(_due_ids(endpoint_id, limit=10_000))
        return EndpointRun()
    if not _lease(endpoint):
        return EndpointRun()
    run = EndpointRun(lender_id=endpoint.lender_id)
    pools: dict[tuple, urllib3.HTTPConnectionPool] = {}
    try:
        previous: list[int] = []
        while (ids := _due_ids(endpoint_id)) and ids != previous:  # the same ids again: claimed elsewhere
            previous = ids
            left, failed = webhook_messages_send(message_ids=ids, pools=pools, until=until)
            run.sent += len(ids) - len(left)
            if failed is not None and failed[2]:
                run.retry = failed[1]
                break
            if (left and failed is None) or time.monotonic() > until:
                break
    finally:
        pools_close(pools)
        WebhookEndpoint.objects.filter(pk=endpoint_id).update(sending_until=None)
    return run


def webhook_lender_next_endpoint(*, lender_id: int) -> int | None:
    """The lender's endpoint whose due message has waited longest: the next to send to."""
    return (
        WebhookMessage.objects.filter(
            endpoint__lender_id=lender_id,
            status=WebhookMessage.Status.PENDING,
            next_attempt_at__lte=timezone.now(),
        )
        .order_by("next_attempt_at", "pk")
        .values_list("endpoint_id", flat=True)
        .first()
    )


def webhook_endpoints_due(*, limit: int = 500) -> list[int]:
    """Endpoints with a due message and no send task queued (or one queued so long ago it was lost)."""
    now = timezone.now()
    due = WebhookMessage.objects.filter(
        endpoint_id=OuterRef("pk"), status=WebhookMessage.Status.PENDING, next_attempt_at__lte=now
    )
    return list(
        WebhookEndpoint.objects.filter(Exists(due))
        .filter(Q(queued_at__isnull=True) | Q(queued_at__lt=now - QUEUED_STALE))
        .order_by("pk")
        .values_list("pk", flat=True)[:limit]
    )


def _record(message: WebhookMessage, now: datetime, result: SendResult) -> timedelta | None:
    """Log one attempt and move the message on: delivered, retry later, or failed for good (410, or the
    last scheduled attempt, which disables an endpoint that has failed for three days)."""
    endpoint = message.endpoint
    ok = _ok(result)
    attempt_no = message.attempt_count + 1
    wait: timedelta | None = None
    with transaction.atomic():
        _attempt_row(message, now, result).save()
        fields: dict[str, object] = {"attempt_count": attempt_no}
        if ok:
            fields.update(
                status=WebhookMessage.Status.SUCCEEDED, next_attempt_at=None, finished_at=timezone.now()
            )
            if endpoint.failure_count:  # most sends follow a success: nothing to reset
                WebhookEndpoint.objects.filter(pk=endpoint.pk).update(failure_count=0)
        else:
            WebhookEndpoint.objects.filter(pk=endpoint.pk).update(failure_count=F("failure_count") + 1)
            if result.status_code == 410:
                # The receiver says the endpoint is gone for good: stop, and tell the owner.
                webhook_endpoint_disable(
                    endpoint_id=endpoint.pk, reason="The endpoint answered 410 Gone.", notify=True
                )
                fields.update(
                    status=WebhookMessage.Status.FAILED, next_attempt_at=None, finished_at=timezone.now()
                )
            elif attempt_no >= MAX_ATTEMPTS:
                fields.update(
                    status=WebhookMessage.Status.FAILED, next_attempt_at=None, finished_at=timezone.now()
                )
                # Three days of failures with no success since: the endpoint is down, not flaky.
                endpoint.refresh_from_db(fields=["failure_count"])
                if endpoint.failure_count >= MAX_ATTEMPTS:
                    webhook_endpoint_disable(
                        endpoint_id=endpoint.pk,
                        notify=True,
                        reason=f"{endpoint.failure_count} attempts in a row failed over three days.",
                    )
            else:
                wait = _wait_after(attempt_no, result)
                fields["next_attempt_at"] = timezone.now() + wait
        WebhookMessage.objects.filter(pk=message.pk).update(**fields)
    logger.info("webhook %s attempt %d: %s", message.event_id, attempt_no, result.status_code or result.error)
    return wait


@transaction.atomic
def webhook_endpoint_disable(*, endpoint_id: int, reason: str, notify: bool = False) -> bool:
    """Stop sending to an endpoint; with `notify` the lender's owners are e-mailed (once, on the change)."""
    updated = WebhookEndpoint.objects.filter(pk=endpoint_id, is_active=True).update(
        is_active=False, disabled_at=timezone.now(), disabled_reason=reason[:200]
    )
    if updated:
        logger.info("webhook endpoint %s disabled: %s", endpoint_id, reason)
        if notify:
            from .tasks import endpoint_disabled_notify  # the tasks module imports this one

            enqueue_on_commit(endpoint_disabled_notify, endpoint_id)
    return bool(updated)
