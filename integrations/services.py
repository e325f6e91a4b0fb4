"""Actions of the integrations app: keys, partner intake, webhook endpoints and events, notifications.

Keyword-only arguments, one transaction each. No app below calls these: they reach them through the events
this app subscribes to (integrations.apps, integrations.receivers):
  webhooks_emit(...), delivery_payload(...)     integrations.deliveries.deliveries_notify (deliveries_created)
  webhooks_emit_delivery_updated(delivery=...)   after marketplace.services.delivery_set_status (portal, API)
  return_decided_notify(return_request=...)      return_decided, once marketplace.returns decides a return
  account_low_balance_check(account_id=..., previous_balance=...)  balance_lowered, after a debit
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import secrets
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Q, QuerySet
from django.db.models.fields.json import KT
from django.utils import timezone

from billing.models import Account
from core.bulk import bulk_insert
from core.tasking import enqueue, enqueue_on_commit
from leads.models import Lead
from leads.services import lead_submit
from lenders.models import Lender
from marketplace.services import activity_log, delivery_set_status
from marketplace.services import market_settings_current as market_settings

from .exports import inbox_exports_erased_scrub
from .models import (
    ApiKey,
    IdempotencyRecord,
    LeadIntake,
    LeadSource,
    SourcePaused,
    TextMessage,
    WebhookAttempt,
    WebhookEndpoint,
    WebhookEvent,
    WebhookMessage,
)
from .webhooks import url_check

logger = logging.getLogger(__name__)

ATTRIBUTION_FIELDS = ("sub_id", "campaign", "utm_source", "utm_medium", "utm_campaign")
ROTATION_OVERLAP = timedelta(hours=24)


# --- API keys -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NewKey:
    api_key: ApiKey
    key: str  # shown once, never stored


def api_key_create(
    *, name: str, scope: str, source: LeadSource | None = None, lender=None, user=None
) -> NewKey:
    """A new key for a partner or a lender. Several may be active at once: that is how keys rotate."""
    if (source is None) == (lender is None):
        raise ValueError("A key belongs to a partner or to a lender.")
    kind = "pk" if source is not None else "lk"
    raw = f"lm_{kind}_{secrets.token_urlsafe(32)}"
    api_key = ApiKey.objects.create(
        source=source,
        lender=lender,
        name=name.strip()[:80] or "API key",
        scope=scope,
        prefix=raw[:12],
        key_sha256=ApiKey.hash(raw),
        created_by=user,
    )
    logger.info(
        "api key %s created for %s", api_key.pk, f"source {source.pk}" if source else f"lender {lender.pk}"
    )
    return NewKey(api_key=api_key, key=raw)


def api_key_revoke(*, api_key: ApiKey) -> ApiKey:
    ApiKey.objects.filter(pk=api_key.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
    api_key.refresh_from_db(fields=["revoked_at"])
    return api_key


# --- Partner intake -----------------------------------------------------------------------------------


def request_fingerprint(data: Any) -> str:
    """The same JSON in any key order or spacing gives the same fingerprint."""
    return hashlib.sha256(
        json.dumps(data, sort_keys=True, separators=(",", ":"), default=str).encode()
    ).hexdigest()


def idempotency_cutoff() -> datetime:
    """Records older than this have expired: never replayed, and purged by records_expired_purge."""
    return timezone.now() - timedelta(hours=settings.IDEMPOTENCY_KEY_TTL_HOURS)


def idempotency_find(*, holder: str, method: str, path: str, key: str) -> IdempotencyRecord | None:
    """The stored answer to this holder's key on this method and path, unless it has expired. An expired
    record not yet purged is deleted here, so the key's new request can store its own answer."""
    record = IdempotencyRecord.objects.filter(holder=holder, method=method, path=path, key=key).first()
    if record is not None and record.created_at < idempotency_cutoff():
        IdempotencyRecord.objects.filter(pk=record.pk).delete()
        return None
    return record


# --- Erasure and retention of the contact details kept here --------------------------------------------
# Stored API answers and webhook payloads are copies of a consumer's contact details. They go when the
# consumer is erased (compliance.signals.consumer_erased, connected in IntegrationsConfig.ready) and once
# they are no longer needed (records_expired_purge, hourly).

CLEAR_BATCH = 1000


def consumer_erased_scrub(*, lead_ids: list[int], **_: Any) -> None:
    """Receiver of compliance.signals.consumer_erased, in the erasing transaction: delete the stored answers
    about these leads (a retry of one of those requests is a new request) and clear the webhook messages
    about them (a pending one is not sent: it is failed, and cannot be resent), and the stored inbox
    exports that may hold them."""
    if not lead_ids:
        return
    IdempotencyRecord.objects.filter(lead_id__in=lead_ids).delete()
    # Texts to and from the consumer: the facts stay (when, status, error code), the number and words go.
    TextMessage.objects.filter(lead_id__in=lead_ids).update(phone="", body="", error_message="")
    inbox_exports_erased_scrub(lead_ids=lead_ids)
    public_ids = [str(u) for u in Lead.objects.filter(pk__in=lead_ids).values_list("public_id", flat=True)]
    # Every event about a lead carries its id as data.lead_id (indexed on PostgreSQL: webhook_message_lead).
    about: QuerySet[WebhookMessage]
    if connection.vendor == "postgresql":
        about = WebhookMessage.objects.alias(lead_ref=KT("payload__data__lead_id")).filter(
            lead_ref__in=public_ids
        )
    else:
        # SQLite (`make run`): Django passes each value of a key-text `__in` through JSON_EXTRACT, which
        # fails on a bare UUID ("malformed JSON") and took erasure down; the JSON key lookup compares
        # JSON-encoded values instead. PostgreSQL keeps the text form, which its index serves.
        about = WebhookMessage.objects.filter(payload__data__lead_id__in=public_ids)
    webhook_messages_clear(message_ids=list(about.values_list("pk", flat=True)))


def webhook_messages_clear(*, message_ids: list[int]) -> int:
    """Clear these messages' payloads and the receivers' answers logged for them (an answer may echo the
    payload). The attempt log keeps times, status codes and latencies. A pending message is failed: there
    is nothing left to send."""
    if not message_ids:
        return 0
    now = timezone.now()
    WebhookAttempt.objects.filter(message_id__in=message_ids).exclude(response_excerpt="").update(
        response_excerpt=""
    )
    WebhookMessage.objects.filter(pk__in=message_ids, status=WebhookMessage.Status.PENDING).update(
        status=WebhookMessage.Status.FAILED, next_attempt_at=None, finished_at=now
    )
    return WebhookMessage.objects.filter(pk__in=message_ids).update(payload=None, payload_cleared_at=now)


def records_expired_purge() -> tuple[int, int]:
    """Delete Idempotency-Key answers older than IDEMPOTENCY_KEY_TTL_HOURS; clear the payloads of webhook
    messages delivered more than WEBHOOK_PAYLOAD_RETENTION_DAYS ago (failed ones after
    WEBHOOK_FAILED_PAYLOAD_RETENTION_DAYS). Returns (answers deleted, payloads cleared). Idempotent; runs
    in batches so a first run over a large table holds no long transaction."""
    deleted, _ = IdempotencyRecord.objects.filter(created_at__lt=idempotency_cutoff()).delete()
    now = timezone.now()
    due = WebhookMessage.objects.filter(payload_cleared_at__isnull=True).filter(
        Q(
            status=WebhookMessage.Status.SUCCEEDED,
            finished_at__lt=now - timedelta(days=settings.WEBHOOK_PAYLOAD_RETENTION_DAYS),
        )
        | Q(
            status=WebhookMessage.Status.FAILED,
            finished_at__lt=now - timedelta(days=settings.WEBHOOK_FAILED_PAYLOAD_RETENTION_DAYS),
        )
    )
    cleared = 0
    while ids := list(due.values_list("pk", flat=True)[:CLEAR_BATCH]):
        with transaction.atomic():
            cleared += webhook_messages_clear(message_ids=ids)
    if deleted or cleared:
        logger.info(
            "retention: %d idempotency answer(s) deleted, %d webhook payload(s) cleared", deleted, cleared
        )
    return deleted, cleared


@transaction.atomic
def lead_source_set_paused(*, source: LeadSource, paused: bool) -> None:
    """Pause (new leads refused) or resume a source; pausing twice keeps the first time."""
    if paused:
        LeadSource.objects.filter(pk=source.pk, paused_at__isnull=True).update(paused_at=timezone.now())
    else:
        LeadSource.objects.filter(pk=source.pk).update(paused_at=None)


def lead_submit_from_partner(
    *, api_key: ApiKey, data: dict[str, Any], consent: dict[str, Any], attribution: dict[str, str]
) -> Lead:
    """A partner's lead, validated already by LeadForm, stored through the same lead_submit as the form, with
    its source, attribution and intake record in the same transaction (the API's Idempotency-Key record
    joins it: integrations.api.idempotency)."""
    source = api_key.source
    if source is None:
        # The API lets only partner keys in (IsPartner); a lender's key has no source to credit the lead to.
        raise ValueError("Only a partner's API key submits leads.")
    if source.is_paused:
        # Refused rather than accepted and never sold: the partner learns at once, and is owed nothing.
        raise SourcePaused("This lead source is paused by the marketplace; new leads are not accepted.")
    lead = lead_submit(
        data=data,
        consent_text=consent["text"],
        ip_address=consent.get("ip_address"),
        user_agent=consent.get("user_agent") or "",
        page_url=consent.get("page_url") or "",
    )
    # lead_submit knows only the form's fields; the source is set in the same transaction, before any
    # task can read the lead (qualification is queued on commit).
    fields = {f: (attribution.get(f) or "")[:100] for f in ATTRIBUTION_FIELDS}
    Lead.objects.filter(pk=lead.pk).update(source=source, **fields)
    lead.source = source
    for name, value in fields.items():
        setattr(lead, name, value)
    LeadIntake.objects.create(lead=lead, source=source, api_key=api_key, consent_given_at=consent["given_at"])
    return lead


# --- Webhook endpoints ----------------------------------------------------------------------------------


def webhook_secret_new() -> str:
    """`whsec_` + base64 of 32 random bytes, the Standard Webhooks secret format."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def webhook_endpoint_create(*, lender, url: str, events: list[str], description: str = "") -> WebhookEndpoint:
    """A new endpoint, within the staff-set cap per lender (market settings): ValidationError beyond it."""
    url_check(url)  # DNS: before the transaction, so no lock waits on it
    with transaction.atomic():
        # The lender's row lock makes the count and the insert one step: two requests cannot both pass.
        Lender.objects.select_for_update().filter(pk=lender.pk).exists()
        cap = market_settings().webhook_endpoints_per_lender
        if WebhookEndpoint.objects.for_lender(lender).count() >= cap:
            raise ValidationError(
                f"You have {cap} webhook endpoint{'s' if cap != 1 else ''}, the most a lender may have. "
                "Change the URL or events of one you have, or ask us to raise the limit.",
                code="endpoint_cap",
            )
        return WebhookEndpoint.objects.create(
            lender=lender,
            url=url,
            events=sorted(set(events)),
            description=description[:120],
            secret=webhook_secret_new(),
        )


def webhook_endpoint_update(
    *, endpoint: WebhookEndpoint, url: str, events: list[str], description: str = ""
) -> WebhookEndpoint:
    url_check(url)
    endpoint.url, endpoint.events, endpoint.description = url, sorted(set(events)), description[:120]
    endpoint.save(update_fields=["url", "events", "description"])
    return endpoint


@transaction.atomic
def webhook_endpoint_rotate_secret(*, endpoint: WebhookEndpoint) -> str:
    """A new secret; the old one keeps signing (as a second signature) for a day so receivers can switch."""
    ep = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
    ep.previous_secret, ep.previous_secret_expires_at = ep.secret, timezone.now() + ROTATION_OVERLAP
    ep.secret = webhook_secret_new()
    ep.save(update_fields=["secret", "previous_secret", "previous_secret_expires_at"])
    endpoint.__dict__.update(ep.__dict__)
    return ep.secret


def webhook_endpoint_enable(*, endpoint: WebhookEndpoint) -> WebhookEndpoint:
    endpoint.is_active, endpoint.disabled_at, endpoint.disabled_reason, endpoint.failure_count = (
        True,
        None,
        "",
        0,
    )
    endpoint.save(update_fields=["is_active", "disabled_at", "disabled_reason", "failure_count"])
    return endpoint


PAYLOAD_CLEARED = (
    "This message's content was deleted (we keep delivered messages for a few days, and none about a "
    "consumer whose data was erased), so it cannot be resent."
)


@transaction.atomic
def webhook_message_resend(*, message: WebhookMessage) -> WebhookMessage:
    """Send a message again from the portal: a fresh schedule, the same webhook-id. A ValidationError when
    its payload was cleared (retention or erasure): there is nothing to send."""
    resent = WebhookMessage.objects.filter(pk=message.pk, payload_cleared_at__isnull=True).update(
        status=WebhookMessage.Status.PENDING,
        attempt_count=0,
        next_attempt_at=timezone.now(),
        finished_at=None,
    )
    if not resent:
        raise ValidationError(PAYLOAD_CLEARED)
    endpoint_id = message.endpoint_id
    transaction.on_commit(lambda: webhook_endpoints_schedule(endpoint_ids=[endpoint_id]))
    message.refresh_from_db()
    return message


# --- Events -------------------------------------------------------------------------------------------


def _event_id() -> str:
    return "msg_" + secrets.token_urlsafe(18)


def webhooks_emit(
    *,
    lender_id: int,
    event_type: str,
    data: dict[str, Any] | Callable[[], dict[str, Any]],
    at: datetime | None = None,
) -> int:
    """Queue `event_type` for each of the lender's active endpoints subscribed to it. Returns how many.

    Rows first, sends on commit: an event emitted in a transaction that rolls back is never sent.
    `data` may be a callable, so the payload is only built for a lender that has endpoints (most have none,
    and serializing a delivery is the costliest part of the new-lead notification).
    """
    endpoints = webhook_endpoints_for(lender_ids=[lender_id], event_type=event_type).get(lender_id, [])
    if not endpoints:
        return 0
    messages = webhook_messages_build(
        endpoints=endpoints, event_type=event_type, data=data() if callable(data) else data, at=at
    )
    bulk_insert(messages)
    webhooks_send_on_commit(messages)
    return len(messages)


def webhook_endpoints_for(*, lender_ids: Iterable[int], event_type: str) -> dict[int, list[WebhookEndpoint]]:
    """The active endpoints subscribed to `event_type`, by lender: one query for any number of lenders."""
    if event_type not in WebhookEvent.values:
        raise ValueError(f"Unknown webhook event {event_type!r}")
    found: dict[int, list[WebhookEndpoint]] = defaultdict(list)
    for ep in WebhookEndpoint.objects.filter(lender_id__in=lender_ids, is_active=True).order_by("pk"):
        if event_type in ep.events:
            found[ep.lender_id].append(ep)
    return found


def webhook_messages_build(
    *, endpoints: list[WebhookEndpoint], event_type: str, data: dict[str, Any], at: datetime | None = None
) -> list[WebhookMessage]:
    """Unsaved messages of one event, one per endpoint (bulk_create them, then webhooks_send_on_commit)."""
    now = timezone.now()
    envelope = {"type": event_type, "timestamp": (at or now).isoformat(), "data": data}
    return [
        WebhookMessage(
            endpoint=ep,
            event_id=_event_id(),
            event_type=event_type,
            payload=envelope,
            next_attempt_at=now,
            created_at=now,
        )
        for ep in endpoints
    ]


def webhooks_send_on_commit(messages: list[WebhookMessage]) -> None:
    """Once the rows are committed, queue their first attempts: a task per endpoint that has none queued,
    which sends that endpoint's due messages in order over one connection (a batch of leads sold at once is
    many messages)."""
    endpoint_ids = sorted({m.endpoint_id for m in messages})
    if endpoint_ids:
        transaction.on_commit(lambda: webhook_endpoints_schedule(endpoint_ids=endpoint_ids))


def webhook_endpoints_schedule(*, endpoint_ids: list[int], countdown: float | None = None) -> int:
    """Queue a send task for each endpoint that has none queued (integrations.webhooks, "Scheduling").
    The mark comes first, under row locks, so two schedulers queue one task; a send the broker refuses is
    unmarked for the sweeper. Never raises for a broker outage. Returns how many tasks were queued.

    Publishes at once, through tasking.enqueue (whose answer unmarks a refused send): call it after the
    messages are committed, from an on_commit hook (webhooks_send_on_commit) or a task."""
    from .tasks import webhook_endpoint_send_due
    from .webhooks import QUEUED_STALE

    if not endpoint_ids:
        return 0
    now = timezone.now()
    runs_at = now + timedelta(seconds=countdown or 0)
    with transaction.atomic():
        # Locks wait (briefly: no lock on an endpoint is held across a send), then the row is checked again:
        # of two schedulers the second finds the mark and queues nothing; neither skips an endpoint that a
        # transaction merely touched (a failure count, a secret rotation).
        free = list(
            WebhookEndpoint.objects.select_for_update()
            .filter(pk__in=endpoint_ids)
            .filter(Q(queued_at__isnull=True) | Q(queued_at__lt=now - QUEUED_STALE))
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        if free:
            WebhookEndpoint.objects.filter(pk__in=free).update(queued_at=runs_at)
    lost = [pk for pk in free if not enqueue(webhook_endpoint_send_due, pk, countdown=countdown)]
    if lost:
        WebhookEndpoint.objects.filter(pk__in=lost, queued_at=runs_at).update(queued_at=None)
    return len(free) - len(lost)


def _money(value: Decimal | None) -> str | None:
    return None if value is None else f"{value:.2f}"


def delivery_payload(delivery) -> dict[str, Any]:
    """The delivery as the lender API shows it (same serializer), so a webhook and a GET agree."""
    return deliveries_payloads([delivery])[0]


def deliveries_payloads(deliveries: list) -> list[dict[str, Any]]:
    """delivery_payload for many: one serializer for the lot (building a DRF serializer costs more than
    filling it), one JSON round trip."""
    from .api.lender import DeliveryDetailOutput

    return json.loads(json.dumps(DeliveryDetailOutput(deliveries, many=True).data, default=str))


def webhooks_emit_delivery_updated(*, delivery) -> int:
    """delivery.updated: call after marketplace.services.delivery_set_status succeeds (API and portal)."""
    return webhooks_emit(
        lender_id=delivery.lender_id,
        event_type=WebhookEvent.DELIVERY_UPDATED,
        data=lambda: delivery_payload(delivery),
    )


def return_payload(return_request) -> dict[str, Any]:
    return {
        "id": return_request.pk,
        "delivery_id": return_request.delivery_id,
        "lead_id": str(return_request.delivery.lead.public_id),
        "lead_reference": return_request.delivery.lead.reference,
        "reason": return_request.reason,
        "status": return_request.status,
        "decided_at": return_request.decided_at.isoformat() if return_request.decided_at else None,
        "decision_note": return_request.decision_note,
        "credit_amount": _money(return_request.credit.amount) if return_request.credit_id else None,
    }


def return_decided_notify(*, return_request) -> int:
    """return.decided webhook and e-mail to the lender: call once a ReturnRequest is approved or denied,
    inside the deciding transaction (both are queued on commit)."""
    from .tasks import return_decided_email

    count = webhooks_emit(
        lender_id=return_request.lender_id,
        event_type=WebhookEvent.RETURN_DECIDED,
        data=return_payload(return_request),
    )
    enqueue_on_commit(return_decided_email, return_request.pk)
    return count


def account_low_balance_check(
    *, account_id: int, previous_balance: Decimal, balance: Decimal | None = None
) -> bool:
    """account.low_balance webhook and e-mail when a debit takes the balance from at or above the account's
    threshold to below it. Call after any charge with the balance before it; crossing once alerts once."""
    from .tasks import low_balance_notify

    account = Account.objects.filter(pk=account_id).first()
    if account is None:
        return False
    balance = account.balance if balance is None else balance
    threshold = account.low_balance_threshold
    if not (previous_balance >= threshold > balance):
        return False
    webhooks_emit(
        lender_id=account.lender_id,
        event_type=WebhookEvent.ACCOUNT_LOW_BALANCE,
        data={
            "balance": _money(balance),
            "threshold": _money(threshold),
            "available": _money(balance + account.credit_limit),
        },
    )
    enqueue_on_commit(low_balance_notify, account_id, str(balance))
    return True


@transaction.atomic
def delivery_set_status_and_notify(
    *, delivery, status: str, funded_amount: Decimal | None = None, lost_reason: str = ""
):
    """marketplace.services.delivery_set_status (same rules as the portal) plus the delivery.updated webhook,
    in one transaction: a refused move sends nothing."""
    delivery = delivery_set_status(
        delivery=delivery, status=status, funded_amount=funded_amount, lost_reason=lost_reason
    )
    webhooks_emit_delivery_updated(delivery=delivery)
    return delivery


@transaction.atomic
def activity_log_and_notify(*, delivery, user, kind: str, outcome: str = "", note: str = ""):
    """marketplace.services.activity_log (portal and API alike), and when reaching the consumer moved the
    lead from New to Contacted, the delivery.updated webhook a status change always sends."""
    before = delivery.status
    activity = activity_log(delivery=delivery, user=user, kind=kind, outcome=outcome, note=note)
    if delivery.status != before:
        webhooks_emit_delivery_updated(delivery=delivery)
    return activity
