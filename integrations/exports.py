"""Inbox CSVs too large for a request: a Celery task writes the file, stores it (gzipped, in the database)
and e-mails the member a signed link that expires; the link serves it back to that member only.

A request never depends on the web server's timeout: the portal streams an export of up to
INBOX_EXPORT_MAX_ROWS rows itself and hands a larger one here (portal.inbox.inbox_export)."""

from __future__ import annotations

import csv
import gzip
import io
import logging
import zoneinfo
from collections.abc import Iterator
from datetime import timedelta

from django.conf import settings
from django.core import signing
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from compliance.models import ContactAccess
from compliance.services import contact_access_record_query
from core.csvexport import csv_cell
from core.tasking import enqueue_on_commit
from lenders.models import Membership
from marketplace.models import Delivery
from marketplace.selectors import INBOX_EXPORT_HEADER, InboxFilters, inbox_export_rows, inbox_for_member

from . import notifications
from .models import InboxExport

logger = logging.getLogger(__name__)

LINK_SALT = "integrations.inbox-export"


def inbox_export_request(
    *, membership: Membership, filters: InboxFilters, path: str = "", ip_address: str | None = None
) -> InboxExport:
    """Record the member's request and queue the task that writes it (on commit, never failing the request
    for a broker outage: the task is durable, an outbox row until the broker has it)."""
    from . import tasks  # the tasks module imports this one, as the other services' do

    with transaction.atomic():
        export = InboxExport.objects.create(
            lender_id=membership.lender_id,
            user_id=membership.user_id,
            filters=filters.to_dict(),
            path=path[:300],
            ip_address=ip_address,
        )
        enqueue_on_commit(tasks.inbox_export_build, export.pk)
    return export


def _lines(rows: Iterator[tuple]) -> Iterator[bytes]:
    class Echo:
        def write(self, value: str) -> str:
            return value

    writer = csv.writer(Echo())
    yield writer.writerow(INBOX_EXPORT_HEADER).encode()
    for row in rows:
        yield writer.writerow([csv_cell(v) for v in row]).encode()


def inbox_export_build(*, export_id: int) -> int:
    """Write the export: the member's deliveries under the stored filters, as the portal's CSV, with one
    INSERT … SELECT into the contact-access log, then e-mail the link. Idempotent: an export already
    written (or one whose member has left the lender) is not written again. Returns the rows written."""
    export = InboxExport.objects.select_related("lender", "user").filter(pk=export_id).first()
    if export is None or export.status != InboxExport.Status.PENDING:
        return 0
    membership = Membership.objects.filter(user_id=export.user_id, lender_id=export.lender_id).first()
    if membership is None or not membership.is_active:
        InboxExport.objects.filter(pk=export.pk).update(
            status=InboxExport.Status.FAILED, finished_at=timezone.now()
        )
        return 0
    qs = inbox_for_member(membership=membership, filters=InboxFilters.from_dict(export.filters))
    # Gzip into memory in chunks: a 100,000-row export is about 5 MB compressed; rows never pile up.
    buffer = io.BytesIO()
    rows = -1  # the header is not a row
    zone = zoneinfo.ZoneInfo(export.lender.time_zone)  # times as the portal shows them to this lender
    with timezone.override(zone), gzip.GzipFile(fileobj=buffer, mode="wb") as out:
        for line in _lines(inbox_export_rows(qs)):
            out.write(line)
            rows += 1
    with transaction.atomic():
        contact_access_record_query(
            lead_ids=qs.values("lead_id"),
            channel=ContactAccess.Channel.EXPORT,
            user=export.user,
            lender_id=export.lender_id,
            path=export.path,
            ip_address=export.ip_address,
        )
        done = InboxExport.objects.filter(pk=export.pk, status=InboxExport.Status.PENDING).update(
            status=InboxExport.Status.READY, rows=rows, content=buffer.getvalue(), finished_at=timezone.now()
        )
        if not done:  # a concurrent run finished first: its log and file stand, ours roll back
            transaction.set_rollback(True)
            return 0
    notifications.send(
        template="inbox_export_ready",
        subject=f"Your export of {rows:,} leads is ready",
        to=[export.user.email] if export.user.email else [],
        context={
            "rows": rows,
            "url": settings.SITE_URL
            + reverse("portal:inbox_export_download", args=[inbox_export_token(export)]),
            "hours": settings.INBOX_EXPORT_LINK_HOURS,
        },
        once_key=f"inbox_export:{export.pk}",
    )
    logger.info("inbox export %s written: %d rows", export.pk, rows)
    return rows


def inbox_export_token(export: InboxExport) -> str:
    return signing.dumps({"export": export.pk}, salt=LINK_SALT)


def inbox_export_for_download(*, token: str, membership: Membership) -> InboxExport | None:
    """The export a link names, if the link is genuine and unexpired and the export is this member's own
    (the member who asked, still at the lender it was made for); None otherwise (the page answers 404)."""
    try:
        data = signing.loads(token, salt=LINK_SALT, max_age=timedelta(hours=settings.INBOX_EXPORT_LINK_HOURS))
    except signing.BadSignature:  # SignatureExpired is one too
        return None
    export_id = data.get("export") if isinstance(data, dict) else None
    if not isinstance(export_id, int):
        return None
    return InboxExport.objects.filter(
        pk=export_id,
        lender_id=membership.lender_id,
        user_id=membership.user_id,
        status=InboxExport.Status.READY,
    ).first()


def inbox_export_chunks(export: InboxExport, *, size: int = 64 * 1024) -> Iterator[bytes]:
    """The stored CSV, decompressed a piece at a time for a streamed download."""
    with gzip.GzipFile(fileobj=io.BytesIO(bytes(export.content)), mode="rb") as f:
        while chunk := f.read(size):
            yield chunk


def inbox_exports_expired_purge() -> int:
    """Delete the exports whose links have expired (copies of contact details are kept no longer than
    needed), and those that never finished within the same time."""
    cutoff = timezone.now() - timedelta(hours=settings.INBOX_EXPORT_LINK_HOURS)
    deleted, _ = InboxExport.objects.filter(created_at__lt=cutoff).delete()
    return deleted


def inbox_exports_erased_scrub(*, lead_ids: list[int]) -> int:
    """An erased consumer's details must not outlive the erasure in a stored export: delete the exports of
    every lender that bought one of the erased leads (they can export again, without them)."""
    lenders = Delivery.objects.filter(lead_id__in=lead_ids).values("lender_id")
    deleted, _ = InboxExport.objects.filter(lender_id__in=lenders).delete()
    return deleted
