"""Recording access to personal data, erasing it, and consumers' opt-outs."""

import hashlib
import logging
from collections import defaultdict
from datetime import timedelta

from django.db import IntegrityError, connection, transaction
from django.db.models import CharField, Q, QuerySet, Value
from django.db.models.functions import Cast, Concat
from django.utils import timezone

from leads.choices import LeadStatus
from leads.models import Consumer, Lead
from marketplace.models import Activity, Delivery, FollowUp, ReturnRequest

from .models import ContactAccess, Erasure, OptOut
from .signals import consumer_erased, consumer_opted_out

logger = logging.getLogger(__name__)

ERASED = "erased"
# Leads whose consumer was never sold to anyone: their PII is kept only for the retention period.
UNSOLD_STATUSES = (LeadStatus.REJECTED, LeadStatus.DUPLICATE, LeadStatus.UNSOLD, LeadStatus.NOT_QUALIFIED)


def contact_access_record(
    *,
    lead_id: int,
    channel: str,
    user=None,
    lender_id: int | None = None,
    path: str = "",
    ip_address: str | None = None,
) -> None:
    ContactAccess.objects.create(
        lead_id=lead_id,
        channel=channel,
        user=user if user and user.pk else None,
        lender_id=lender_id,
        path=path[:300],
        ip_address=ip_address,
    )


def contact_access_record_many(
    *,
    lead_ids: list[int],
    channel: str,
    user=None,
    lender_id: int | None = None,
    path: str = "",
    ip_address: str | None = None,
) -> None:
    """One insert for a page or export that shows many consumers' contact details."""
    ContactAccess.objects.bulk_create(
        [
            ContactAccess(
                lead_id=i,
                channel=channel,
                user=user if user and user.pk else None,
                lender_id=lender_id,
                path=path[:300],
                ip_address=ip_address,
            )
            for i in lead_ids
        ]
    )


def contact_access_record_query(
    *,
    lead_ids: QuerySet,
    channel: str,
    user=None,
    lender_id: int | None = None,
    path: str = "",
    ip_address: str | None = None,
) -> int:
    """One INSERT … SELECT logging an access to the contact details of every lead in `lead_ids` (a
    queryset of lead ids, e.g. an export's filtered deliveries' `values("lead_id")`): the log keeps one row
    per consumer, as every other access does, without a row passing through Python. Returns rows logged."""
    inner, inner_params = lead_ids.query.sql_with_params()
    table = ContactAccess._meta.db_table
    with connection.cursor() as cur:
        # Only the model's own table name and the ORM's compiled SELECT are formatted in; values are params.
        cur.execute(
            f"INSERT INTO {table} (lead_id, channel, user_id, lender_id, path, ip_address, at) "  # noqa: S608
            f"SELECT q.lead_id, %s, %s, %s, %s, %s, %s FROM ({inner}) AS q",
            [
                channel,
                user.pk if user is not None and user.pk else None,
                lender_id,
                path[:300],
                ip_address,
                connection.ops.adapt_datetimefield_value(timezone.now()),
                *inner_params,
            ],
        )
        return cur.rowcount


def _scrub(consumer_ids: list[int], lead_ids: list[int], now) -> None:
    # One UPDATE however many consumers; each keeps a unique, undeliverable address.
    Consumer.objects.filter(pk__in=consumer_ids).update(
        first_name=ERASED,
        last_name="",
        phone="",
        erased_at=now,
        email=Concat(Value("erased-"), Cast("pk", CharField()), Value("@invalid")),
    )
    # The consent record is legal proof of what was agreed (kept for the TCPA's four-year limit) and is never
    # changed; it holds no name, e-mail or phone.
    # What lenders and staff wrote about the consumer is free text that may name them or quote their number
    # or address: it goes too. The facts stay (what was done and when, statuses, reasons chosen from lists).
    Activity.objects.filter(delivery__lead_id__in=lead_ids).exclude(note="").update(note="")
    FollowUp.objects.filter(delivery__lead_id__in=lead_ids).exclude(note="").update(note="")
    Delivery.objects.filter(lead_id__in=lead_ids).exclude(lost_reason="").update(lost_reason=ERASED)
    # A return's note is required for the reason "other" (a check constraint): it keeps a word, not the text.
    returns = ReturnRequest.objects.filter(delivery__lead_id__in=lead_ids)
    returns.exclude(note="").update(note=ERASED)
    returns.exclude(decision_note="").update(decision_note="")
    # Apps above this one (integrations: stored API answers, webhook payloads) scrub their own copies.
    consumer_erased.send(sender=Erasure, consumer_ids=consumer_ids, lead_ids=lead_ids)


@transaction.atomic
def consumer_erase(*, consumer_id: int, requested_by=None, note: str = "") -> Erasure:
    """Erase a consumer's personal data on request, with the same person's other requests: every lead
    stores its own consumer row, and the person who asks means all of them (the duplicate rule's "same
    person": the same e-mail, in any case, or phone). Statistics (the leads, their figures) stay. Returns
    the erasure of `consumer_id`; each consumer erased gets its own, logged."""
    consumer = Consumer.objects.get(pk=consumer_id)
    same_person = Q(pk=consumer.pk)
    if consumer.erased_at is None:
        same_person |= Q(email__iexact=consumer.email) | (Q(phone=consumer.phone) if consumer.phone else Q())
    # Locked in id order, as every writer of several consumers does, so two erasures cannot deadlock.
    ids = list(
        Consumer.objects.select_for_update()
        .filter(same_person)
        .filter(Q(pk=consumer.pk) | Q(erased_at__isnull=True))
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    lead_ids: dict[int, list[int]] = defaultdict(list)
    for owner_id, lead_id in (
        Lead.objects.filter(consumer_id__in=ids).order_by("pk").values_list("consumer_id", "id")
    ):
        lead_ids[owner_id].append(lead_id)
    _scrub(ids, [i for found in lead_ids.values() for i in found], timezone.now())
    erasures = Erasure.objects.bulk_create(
        [
            Erasure(
                consumer_id=i,
                lead_ids=lead_ids[i],
                reason=Erasure.Reason.REQUEST,
                requested_by=requested_by,
                note=note[:200],
            )
            for i in ids
        ]
    )
    logger.info("consumer %s erased on request, with %d other record(s)", consumer.pk, len(ids) - 1)
    return next(e for e in erasures if e.consumer_id == consumer.pk)


def consumers_erase_expired(*, retention_days: int, limit: int = 500) -> int:
    """Erase PII of consumers whose leads were never sold (rejected, duplicate, unsold, not qualified)
    and are older than the retention period. Idempotent: erased consumers are skipped."""
    cutoff = timezone.now() - timedelta(days=retention_days)
    candidates = (
        Consumer.objects.filter(
            erased_at__isnull=True, leads__created_at__lt=cutoff, leads__status__in=UNSOLD_STATUSES
        )
        .exclude(leads__status=LeadStatus.SOLD)
        .exclude(leads__created_at__gte=cutoff)
        .distinct()
    )
    with transaction.atomic():
        # Lock the batch so a concurrent run skips it instead of erasing (and logging) it twice.
        ids = list(
            Consumer.objects.select_for_update(skip_locked=True)
            .filter(pk__in=list(candidates.values_list("pk", flat=True)[:limit]), erased_at__isnull=True)
            .values_list("pk", flat=True)
        )
        if not ids:
            return 0
        lead_ids: dict[int, list[int]] = defaultdict(list)
        for consumer_id, lead_id in Lead.objects.filter(consumer_id__in=ids).values_list("consumer_id", "id"):
            lead_ids[consumer_id].append(lead_id)
        _scrub(ids, [i for found in lead_ids.values() for i in found], timezone.now())
        Erasure.objects.bulk_create(
            [Erasure(consumer_id=i, reason=Erasure.Reason.RETENTION, lead_ids=lead_ids[i]) for i in ids]
        )
    count = len(ids)
    if count:
        logger.info("retention: erased %d consumer(s)", count)
    return count


# --- Opt-outs -----------------------------------------------------------------------------------------


def address_normalise(*, channel: str, address: str) -> str:
    """The form an address is stopped under: a US number as its ten digits (+1 512-555-0142, 15125550142
    and (512) 555-0142 are one number), an e-mail address trimmed and lower-cased. Empty when there is
    nothing to stop (an erased consumer's blank phone)."""
    address = (address or "").strip()
    if channel == OptOut.Channel.SMS:
        digits = "".join(ch for ch in address if ch.isdigit())
        if len(digits) == 11 and digits.startswith("1"):
            digits = digits[1:]
        return digits
    return address.lower()


def optout_address_hash(*, channel: str, address: str) -> str:
    """SHA-256 of the normalised address, prefixed by the channel so a number never matches an e-mail."""
    normal = address_normalise(channel=channel, address=address)
    return hashlib.sha256(f"{channel}:{normal}".encode()).hexdigest() if normal else ""


def optout_record(
    *,
    channel: str,
    address: str,
    source: str,
    keyword: str = "",
    lead_id: int | None = None,
    lender_id: int | None = None,
) -> bool:
    """Stop `channel` to `address`. True when this opened the stop, False when one was already standing (a
    repeated STOP, a second click): idempotent, and two at once record one (the partial unique index).
    Announces consumer_opted_out on commit either way, so whatever was still scheduled is stopped."""
    if channel not in OptOut.Channel.values:
        raise ValueError(f"unknown channel {channel!r}")
    digest = optout_address_hash(channel=channel, address=address)
    if not digest:
        return False
    created = False
    try:
        with transaction.atomic():
            _, created = OptOut.objects.get_or_create(
                channel=channel,
                address_sha256=digest,
                revoked_at=None,
                defaults={
                    "source": source,
                    "keyword": keyword[:16],
                    "lead_id": lead_id,
                    "lender_id": lender_id,
                },
            )
    except IntegrityError:
        created = False  # a concurrent stop of the same address won: it stands, which is what was asked
    transaction.on_commit(
        lambda: consumer_opted_out.send(
            sender=OptOut, channel=channel, address_sha256=digest, lead_id=lead_id
        )
    )
    logger.info("opt-out of %s recorded (%s, new=%s, lead %s)", channel, source, created, lead_id)
    return created


def optout_revoke(*, channel: str, address: str, source: str, keyword: str = "") -> bool:
    """Resume `channel` to `address` (START): close the standing stop. True if one was standing."""
    digest = optout_address_hash(channel=channel, address=address)
    if not digest:
        return False
    closed = OptOut.objects.filter(channel=channel, address_sha256=digest, revoked_at__isnull=True).update(
        revoked_at=timezone.now(), revoked_source=source, revoked_keyword=keyword[:16]
    )
    logger.info("opt-out of %s revoked (%s, closed=%d)", channel, source, closed)
    return bool(closed)
