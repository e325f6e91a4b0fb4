"""Telling buyers about their leads. The portal shows a delivery at once; webhooks and e-mail follow: the
worker that sold a batch queues its webhooks, then the outbound worker sends the e-mails. A batch's buyers
are told together, with a fixed number of queries."""

import logging
from collections import defaultdict
from collections.abc import Callable
from decimal import ROUND_DOWN

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from core.batching import failure_summary, is_transient, one_by_one
from core.bulk import bulk_insert
from core.models import FailedTask
from core.tasking import enqueue, enqueue_on_commit
from lenders.models import Membership
from marketplace.models import Delivery

from .models import WebhookEvent, WebhookMessage
from .services import (
    account_low_balance_check,
    deliveries_payloads,
    webhook_endpoints_for,
    webhook_messages_build,
    webhooks_send_on_commit,
)

logger = logging.getLogger(__name__)


def _url(delivery: Delivery) -> str:
    return settings.SITE_URL + reverse("portal:delivery_detail", args=[delivery.pk])


def _message(deliveries: list[Delivery], to: list[str]) -> EmailMultiAlternatives:
    """One e-mail per recipient per run: a lone lead gets its own, a batch sold at once is listed in one
    (an officer should not find fifty e-mails for fifty leads of one busy second).

    No consumer name, e-mail or phone in it: the lender reads those in the portal, where each view is logged.
    """
    if len(deliveries) == 1:
        delivery = deliveries[0]
        context = {
            "delivery": delivery,
            "lead": delivery.lead,
            "loan": _loan(delivery.lead),
            "url": _url(delivery),
        }
        subject = f"New {delivery.lead.get_purpose_display().lower()} lead in {delivery.lead.state}"
        template = "email/new_lead"
    else:
        # A digest lists dozens of leads: each row is formatted here, once, rather than through template
        # lookups and filters per field, which made rendering the costliest part of a sale's notification.
        context = {
            "rows": [
                {
                    "kind": "Exclusive" if d.exclusive else "Shared",
                    "reference": d.lead.reference,
                    "what": f"{d.lead.get_purpose_display()} in {d.lead.city}, {d.lead.state}",
                    "loan": _loan(d.lead),
                    "price": f"${d.price}",
                    "url": _url(d),
                }
                for d in deliveries
            ],
            "inbox_url": settings.SITE_URL + reverse("portal:inbox"),
        }
        subject = f"{len(deliveries)} new leads in your portal"
        template = "email/new_leads"
    message = EmailMultiAlternatives(
        subject=subject, body=render_to_string(f"{template}.txt", context), to=to
    )
    message.attach_alternative(render_to_string(f"{template}.html", context), "text/html")
    return message


def _isolated(run: Callable[[list[int]], int], delivery_ids: list[int], *, task_name: str, stage: str) -> int:
    """Run a notification batch; should it raise (not transiently), notify its deliveries one by one and set
    aside each that raises alone (delivery_set_aside), so one delivery never stops the others' webhooks or
    e-mail. Returns how many were done."""
    try:
        return run(delivery_ids)
    except Exception as exc:
        if is_transient(exc) or not delivery_ids:
            raise
        logger.warning(
            "%s %d delivery(ies) raised %s; one by one", stage, len(delivery_ids), failure_summary(exc)
        )
    return sum(
        one_by_one(
            sorted(set(delivery_ids)),
            run=lambda pk: run([pk]),
            set_aside=lambda pk, exc: delivery_set_aside(
                delivery_id=pk, task_name=task_name, reason=f"{failure_summary(exc)} while {stage}"
            ),
        )
    )


def delivery_set_aside(*, delivery_id: int, task_name: str, reason: str) -> None:
    """A delivery whose notification raised alone: say so on the delivery (the sweeper then leaves it alone,
    staff see it in admin) and record a FailedTask naming it, which staff replay once the cause is fixed.
    The sale stands and the lead is in the buyer's portal; only the webhook or e-mail waits."""
    reason = reason[:200]
    with transaction.atomic():
        Delivery.objects.filter(pk=delivery_id).update(notify_error=reason)
        FailedTask.objects.update_or_create(
            task_id=f"set-aside:{task_name.rsplit('.', 1)[-1]}:{delivery_id}",
            defaults={
                "task_name": task_name,
                "args": [[delivery_id]],
                "kwargs": {},
                "exception": reason,
                "retries": 0,
                "failed_at": timezone.now(),
                "replayed_at": None,
            },
        )
    logger.error("delivery %s notification set aside: %s", delivery_id, reason)


def deliveries_notify(*, delivery_ids: list[int]) -> int:
    """Queue each new delivery's signed delivery.created webhooks and any low-balance alert, once per
    delivery, then (on commit) its e-mail. Returns how many were notified.

    The rows stay locked until the work is committed, so a concurrent run waits and then finds nothing to do.
    A transient failure rolls everything back and the task retries: at-least-once, never silently dropped;
    any other is isolated to the delivery that raises (_isolated). The e-mail is its own task on the outbound
    worker, as webhooks are: a slow mail server never holds a sales worker.
    """
    return _isolated(
        _deliveries_notify, delivery_ids, task_name="integrations.tasks.deliveries_notify", stage="notifying"
    )


def _deliveries_notify(delivery_ids: list[int]) -> int:
    with transaction.atomic():
        deliveries = list(
            Delivery.objects.select_for_update(of=("self",))
            .select_related("charge__account")
            # Only what the balance check reads; webhook payloads load their own rows below.
            .only(
                "lender_id",
                "notified_at",
                "charge__amount",
                "charge__balance_after",
                "charge__account__low_balance_threshold",
            )
            .filter(pk__in=delivery_ids, notified_at__isnull=True)
            .order_by("pk")
        )
        if not deliveries:
            return 0
        endpoints = webhook_endpoints_for(
            lender_ids={d.lender_id for d in deliveries}, event_type=WebhookEvent.DELIVERY_CREATED
        )
        hooked_ids = [d.pk for d in deliveries if d.lender_id in endpoints]
        hooked = (
            list(
                Delivery.objects.select_related("lead__consumer", "lead__consent")
                .defer("lead__distribution_trace")
                .filter(pk__in=hooked_ids)
                .order_by("pk")
            )
            if hooked_ids
            else []
        )
        payloads = dict(zip((d.pk for d in hooked), deliveries_payloads(hooked), strict=True))
        hooks: list[WebhookMessage] = []
        for d in deliveries:
            if d.lender_id in endpoints:
                hooks += webhook_messages_build(
                    endpoints=endpoints[d.lender_id],
                    event_type=WebhookEvent.DELIVERY_CREATED,
                    data=payloads[d.pk],
                )
            # The charge row knows the balance before and after the sale: alert only when it crossed the line.
            charge, account = d.charge, d.charge.account
            before = charge.balance_after - charge.amount
            if before >= account.low_balance_threshold > charge.balance_after:
                account_low_balance_check(
                    account_id=account.pk, previous_balance=before, balance=charge.balance_after
                )
        bulk_insert(hooks)
        webhooks_send_on_commit(hooks)
        notified = [d.pk for d in deliveries]
        # A delivery set aside earlier and replayed by staff is clear again (same statement).
        Delivery.objects.filter(pk__in=notified).update(notified_at=timezone.now(), notify_error="")
        from . import tasks

        enqueue_on_commit(tasks.deliveries_email, notified)
    logger.info("notified %d delivery(ies), %d webhook(s)", len(deliveries), len(hooks))
    return len(deliveries)


def deliveries_email(*, delivery_ids: list[int]) -> int:
    """E-mail each buyer about its new leads (the assigned officer, else the owners and managers), once per
    delivery: one e-mail per recipient, listing the leads when several arrived together. Returns how many
    deliveries were e-mailed (a lender nobody can be e-mailed at counts too: there is nothing left to do).

    As deliveries_notify: rows locked until commit, a transient failure (the mail server down or refusing)
    rolls back and the task retries, so a buyer is e-mailed at least once and a concurrent run sends nothing;
    any other is isolated to the delivery that raises.
    """
    return _isolated(
        _deliveries_email, delivery_ids, task_name="integrations.tasks.deliveries_email", stage="e-mailing"
    )


def _deliveries_email(delivery_ids: list[int]) -> int:
    with transaction.atomic():
        deliveries = list(
            Delivery.objects.select_for_update(of=("self",))
            .select_related("lead", "assigned_to")
            # Only what the e-mail reads (a lead has some forty columns, with JSON).
            .only(
                "lender_id",
                "exclusive",
                "price",
                "emailed_at",
                "lead__public_id",  # the lead's reference
                "lead__purpose",
                "lead__city",
                "lead__state",
                "lead__requested_loan",
                "lead__qualified_loan",
                "lead__estimate",
                "assigned_to__email",
                "assigned_to__is_active",
            )
            .filter(pk__in=delivery_ids, emailed_at__isnull=True)
            .order_by("pk")
        )
        if not deliveries:
            return 0
        managers: dict[int, list[str]] = defaultdict(list)
        for lender_id, email in (
            Membership.objects.filter(
                lender_id__in={d.lender_id for d in deliveries},
                is_active=True,
                role__in=[Membership.Role.OWNER, Membership.Role.MANAGER],
            )
            .exclude(user__email="")
            .values_list("lender_id", "user__email")
        ):
            managers[lender_id].append(email)
        by_recipients: dict[tuple[str, ...], list[Delivery]] = defaultdict(list)
        for d in deliveries:
            officer = d.assigned_to
            to = [officer.email] if officer and officer.email and officer.is_active else managers[d.lender_id]
            if to:
                by_recipients[tuple(to)].append(d)
        messages = [_message(group, list(to)) for to, group in by_recipients.items()]
        if messages:
            get_connection().send_messages(messages)
        Delivery.objects.filter(pk__in=[d.pk for d in deliveries]).update(
            emailed_at=timezone.now(), notify_error=""
        )
    logger.info("e-mailed %d delivery(ies) in %d e-mail(s)", len(deliveries), len(messages))
    return len(deliveries)


def deliveries_notify_now(*, delivery_ids: list[int]) -> None:
    """Notify from the worker that just sold the leads: one broker hop, and a queue's wait, less between the
    sale and the lender's webhook and e-mail. Any failure queues the notification task instead, which retries;
    the sweeper remains the backstop should this worker die first."""
    from . import tasks

    try:
        deliveries_notify(delivery_ids=delivery_ids)
    except Exception as exc:  # noqa: BLE001 - whatever went wrong, the task's retries take over
        logger.warning(
            "notifying %d delivery(ies) inline failed (%s); queued", len(delivery_ids), type(exc).__name__
        )
        enqueue(tasks.deliveries_notify, delivery_ids)


def _loan(lead) -> str:
    """The loan the consumer qualifies for, and the request when that was more (whole dollars, down)."""
    loan = lead.requested_loan if lead.qualified_loan is None else lead.qualified_loan
    if loan is None:
        return ""
    shown = f"${loan.to_integral_value(rounding=ROUND_DOWN):,}"
    if lead.requested_loan is not None and lead.requested_loan > loan:
        return f"{shown} (asked about ${lead.requested_loan.to_integral_value(rounding=ROUND_DOWN):,})"
    return shown
