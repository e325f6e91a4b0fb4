"""Outreach's actions: enrol new deliveries (first touch and sequence steps as StepRun rows), run a due step
exactly once, stop a delivery's outreach, complete call tasks, save templates and sequences, confirm a sale
to the consumer.

How a step runs once (step_run_execute): its row is unique per (enrolment, key), so it exists once however
often enrolment runs. A run claims it in a short transaction (row locked, `pending` -> `sending`, committed)
before any message goes, so a second task finds it taken; the message is sent outside any transaction (no
transaction open across an SMTP or Twilio round trip); a second transaction records the result. A worker
that dies while `sending` leaves the row claimed: step_runs_recover looks at what the channel recorded
for the claim (the text's TextMessage row, keyed by the claim, is written before the provider is called; the
e-mail's activity is committed with the step, before the mail server's connection is closed) and either
finishes the row or gives it back to `pending`. So a text is never sent twice, and an e-mail only if the
worker died in the instant between the mail server's answer and that commit.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_DOWN, Decimal

from django.conf import settings
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.core.mail import EmailMultiAlternatives, get_connection
from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from compliance.models import OptOut
from compliance.selectors import optout_active
from core.batching import failure_summary, is_transient, one_by_one
from leads.choices import Product
from leads.consent import consent_covers_texts
from leads.geo import zip_time_zones
from leads.links import result_link_token
from leads.models import Lead
from leads.selectors import lead_buyers_at_most, lead_contacts
from lenders.models import Lender, Membership, Subscription
from marketplace.models import Activity, Delivery
from marketplace.services import activities_log_automated, activity_log

from ..channels.mail import ConsumerUnreachable, MessageKind, consumer_email_build
from ..channels.services import text_send
from ..channels.sms import SmsError, SmsOptedOut
from ..models import TextMessage
from . import defaults, merge, quiet
from .models import (
    Action,
    Enrolment,
    LeadConfirmation,
    MessageTemplate,
    Sequence,
    SequenceStep,
    SequenceSubscription,
    StepRun,
)

logger = logging.getLogger(__name__)

# A delivery's pipeline past this point is a person's work now: the routine stops.
STOP_STATUSES: dict[str, str] = {
    Delivery.Status.APPLICATION: Enrolment.StopReason.APPLICATION,
    Delivery.Status.APPROVED: Enrolment.StopReason.APPLICATION,
    Delivery.Status.FUNDED: Enrolment.StopReason.APPLICATION,
    Delivery.Status.LOST: Enrolment.StopReason.LOST,
}
# A claim older than this belongs to a worker that died (a step's task is killed after 60 s).
STALE_CLAIM = timedelta(minutes=5)
# A failed send (mail server or Twilio down) is tried again after these waits, then given up.
RETRY_WAITS = (timedelta(minutes=1), timedelta(minutes=5), timedelta(minutes=30), timedelta(hours=2))
# Deliveries the sweeper still enrols when their start task was lost: a "first touch in seconds" sent a day
# late would be worse than none (and deliveries sold before outreach existed must never get one).
ENROL_WITHIN = timedelta(hours=6)
# A text is not sent within this long of the previous automated one on the delivery (two steps that waited
# for the same morning): the later is skipped, not stacked.
TEXT_GAP = timedelta(minutes=30)
# Likewise a call task falling due within this long of an open one is skipped; an older open one is missed.
CALL_OVERLAP = timedelta(hours=1)


# --- Merge values ------------------------------------------------------------------------------------------


def money_whole(amount: Decimal | None) -> str:
    """$350,000: whole dollars, rounded down (an estimate never reads as more than the engine found)."""
    return "" if amount is None else f"${amount.to_integral_value(rounding=ROUND_DOWN):,}"


def best_product(lead: Lead) -> str:
    """The best product's name (FHA, Conventional, ...), from the qualification."""
    qualification = lead.qualification if isinstance(lead.qualification, dict) else {}
    best = qualification.get("best_product") or (lead.products[0] if lead.products else "")
    return Product(best).label if best in Product.values else ""


def lead_values(lead: Lead) -> dict[str, str]:
    """The merge fields about the consumer and their request (merge.MERGE_FIELDS)."""
    return {
        "first_name": lead.consumer.first_name if lead.consumer.erased_at is None else "",
        "estimate": money_whole(lead.estimate or lead.qualified_loan),
        "best_product": best_product(lead),
        "loan_purpose": lead.get_purpose_display().lower(),
        "city": lead.city,
    }


def sender_values(*, lender: Lender, officer: User | None, member: Membership | None) -> dict[str, str]:
    """The merge fields about who writes: the lender and the officer (from their membership profile)."""
    return {
        "officer_name": (officer.get_full_name() or officer.get_username()) if officer else "",
        "officer_nmls": member.nmls_id if member else "",
        "officer_phone": member.phone_display if member else "",
        "booking_url": member.booking_url if member else "",
        "lender_name": lender.name,
        "lender_nmls": lender.nmls_id,
    }


def _officer(delivery: Delivery) -> tuple[User | None, Membership | None]:
    officer = delivery.assigned_to if delivery.assigned_to_id else None
    if officer is None or not officer.is_active:
        return None, None
    member = Membership.objects.filter(user=officer, lender_id=delivery.lender_id, is_active=True).first()
    return (officer, member) if member else (None, None)


def delivery_merge_values(delivery: Delivery) -> dict[str, str]:
    officer, member = _officer(delivery)
    return {
        **lead_values(delivery.lead),
        **sender_values(lender=delivery.lender, officer=officer, member=member),
    }


def text_with_stop(body: str) -> str:
    """Every automated text says how to stop; a template that forgot gets the line."""
    return body if "STOP" in body.upper() else f"{body} {defaults.STOP_LINE}"


# --- Templates -------------------------------------------------------------------------------------------


def message_template_default() -> MessageTemplate:
    """The marketplace's default first touch (staff edit it in admin); the shipped wording until they do."""
    row = MessageTemplate.objects.filter(is_default=True).first()
    return row or MessageTemplate(
        is_default=True,
        email_subject=defaults.FIRST_TOUCH_SUBJECT,
        email_body=defaults.FIRST_TOUCH_EMAIL,
        text_body=defaults.FIRST_TOUCH_TEXT,
    )


def message_template_for(*, lender: Lender) -> MessageTemplate:
    """The lender's own first touch, else the marketplace's default (unsaved for the lender to start from)."""
    own = MessageTemplate.objects.filter(lender=lender).first()
    return own or message_template_default()


def templates_check(fields: dict[str, str]) -> None:
    """ValidationError naming each field whose template merge cannot fill."""
    errors = {}
    for name, text in fields.items():
        try:
            merge.template_check(text)
        except merge.TemplateInvalid as exc:
            errors[name] = str(exc)
    if errors:
        raise ValidationError(errors)


@transaction.atomic
def message_template_save(
    *,
    lender: Lender,
    user: User | None,
    send_email: bool,
    email_subject: str,
    email_body: str,
    send_text: bool,
    text_body: str,
) -> MessageTemplate:
    """Save the lender's first touch: refused (ValidationError by field) when a template has fields we cannot
    fill. Applies to deliveries enrolled from now on."""
    templates_check({"email_subject": email_subject, "email_body": email_body, "text_body": text_body})
    row, _ = MessageTemplate.objects.update_or_create(
        lender=lender,
        defaults={
            "send_email": send_email,
            "email_subject": email_subject.strip(),
            "email_body": email_body.strip(),
            "send_text": send_text,
            "text_body": text_body.strip(),
            "updated_at": timezone.now(),
            "updated_by": user,
        },
    )
    return row


# --- Sequences -------------------------------------------------------------------------------------------


def _shipped_steps(sequence: Sequence) -> list[SequenceStep]:
    return [
        SequenceStep(
            sequence=sequence,
            position=i,
            action=s.action,
            timing=s.timing,
            delay_minutes=s.delay_minutes,
            skip_if_reached=s.skip_if_reached,
            subject=s.subject,
            body=s.body,
        )
        for i, s in enumerate(defaults.SHIPPED_STEPS, start=1)
    ]


def sequence_default_ensure(*, lender_id: int) -> Sequence:
    """The lender's default sequence, made from the shipped routine the first time it is needed (a lender
    starts with the first 24 hours done for them, and edits it in the portal)."""
    found = Sequence.objects.filter(lender_id=lender_id, is_default=True).first()
    if found is not None:
        return found
    with transaction.atomic():
        # The partial unique index guards two first sales at once: the loser reads the winner's row.
        Lender.objects.select_for_update().filter(pk=lender_id).first()
        found = Sequence.objects.filter(lender_id=lender_id, is_default=True).first()
        if found is not None:
            return found
        sequence = Sequence.objects.create(
            lender_id=lender_id, name=defaults.SHIPPED_SEQUENCE_NAME, is_default=True
        )
        SequenceStep.objects.bulk_create(_shipped_steps(sequence))
    return sequence


@dataclass(frozen=True)
class StepInput:
    action: str
    timing: str
    delay_minutes: int
    skip_if_reached: bool
    subject: str = ""
    body: str = ""


def sequence_save(
    *,
    lender: Lender,
    sequence: Sequence | None,
    name: str,
    is_active: bool,
    is_default: bool,
    subscription_ids: Iterable[int],
    steps: list[StepInput],
) -> Sequence:
    """Create or replace a lender's sequence with these steps in this order, and the subscriptions that use
    it. Refused (ValidationError) for a step whose templates merge cannot fill, an e-mail without a subject
    or body, a text without words, another lender's subscription, or no steps at all. A new default takes
    the place of the old one. Enrolled deliveries keep the steps they were enrolled with."""
    errors: dict[str, str] = {}
    if not name.strip():
        errors["name"] = "Name the sequence."
    if not steps:
        errors["steps"] = "Add at least one step."
    for i, step in enumerate(steps, start=1):
        if step.action not in Action.values:
            errors[f"step {i}"] = "Choose call task, e-mail or text."
        elif step.action == Action.EMAIL and not (step.subject.strip() and step.body.strip()):
            errors[f"step {i}"] = "An e-mail needs a subject and a body."
        elif step.action == Action.TEXT and not step.body.strip():
            errors[f"step {i}"] = "A text needs words."
        try:
            merge.template_check(step.subject + "\n" + step.body)
        except merge.TemplateInvalid as exc:
            errors[f"step {i}"] = str(exc)
        if step.timing not in SequenceStep.Timing.values:
            errors[f"step {i}"] = "Choose when the step runs."
        if not 0 <= step.delay_minutes <= 60 * 24 * 30:
            errors[f"step {i}"] = "A step runs within 30 days of the sale."
    wanted = set(subscription_ids)
    owned = set(Subscription.objects.for_lender(lender).filter(pk__in=wanted).values_list("pk", flat=True))
    if wanted - owned:
        errors["subscriptions"] = "Choose your own subscriptions."
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        if sequence is None:
            sequence = Sequence(lender=lender)
        elif sequence.lender_id != lender.pk:
            raise ValidationError("Choose one of your own sequences.")
        if is_default:
            Sequence.objects.filter(lender=lender, is_default=True).exclude(pk=sequence.pk).update(
                is_default=False
            )
        elif sequence.is_default:
            # There is always a default: unticking it on the default keeps it (choose another to replace it).
            is_default = True
        sequence.name, sequence.is_active, sequence.is_default = name.strip()[:80], is_active, is_default
        sequence.updated_at = timezone.now()
        sequence.save()
        SequenceStep.objects.filter(sequence=sequence).delete()
        SequenceStep.objects.bulk_create(
            [
                SequenceStep(
                    sequence=sequence,
                    position=i,
                    action=s.action,
                    timing=s.timing,
                    delay_minutes=0 if s.timing == SequenceStep.Timing.NEXT_MORNING else s.delay_minutes,
                    skip_if_reached=s.skip_if_reached,
                    subject=s.subject.strip()[:200],
                    body=s.body.strip()[:5000],
                )
                for i, s in enumerate(steps, start=1)
            ]
        )
        SequenceSubscription.objects.filter(sequence=sequence).exclude(subscription_id__in=owned).delete()
        # A subscription moves to this sequence from any other it was in.
        SequenceSubscription.objects.filter(subscription_id__in=owned).exclude(sequence=sequence).delete()
        existing = set(
            SequenceSubscription.objects.filter(sequence=sequence).values_list("subscription_id", flat=True)
        )
        SequenceSubscription.objects.bulk_create(
            [SequenceSubscription(sequence=sequence, subscription_id=pk) for pk in sorted(owned - existing)]
        )
    return sequence


# --- Enrolment -------------------------------------------------------------------------------------------


def _step_due(step: SequenceStep, *, sold_at: datetime, zones: list[str]) -> datetime:
    if step.timing == SequenceStep.Timing.NEXT_MORNING:
        due = quiet.next_morning(sold_at, zones)
    else:
        due = sold_at + timedelta(minutes=step.delay_minutes)
    if step.action in (Action.TEXT, Action.CALL):
        due = quiet.next_allowed(due, zones)
    return due


def _step_title(step: SequenceStep) -> str:
    what = Action(step.action).label
    if step.timing == SequenceStep.Timing.NEXT_MORNING:
        when = "next morning"
    elif step.delay_minutes == 0:
        when = "now"
    elif step.delay_minutes % (60 * 24) == 0:
        when = f"at {step.delay_minutes // (60 * 24)} d"
    elif step.delay_minutes % 60 == 0:
        when = f"at {step.delay_minutes // 60} h"
    else:
        when = f"at {step.delay_minutes} min"
    return f"Step {step.position}: {what.lower()} {when}"[:120]


def _runs_for(
    enrolment: Enrolment,
    *,
    delivery: Delivery,
    template: MessageTemplate,
    steps: list[SequenceStep],
    texts_allowed: bool,
) -> list[StepRun]:
    sold_at, zones = delivery.created_at, enrolment.time_zones
    runs: list[StepRun] = []
    if template.send_email:
        runs.append(
            StepRun(
                enrolment=enrolment,
                key="first_touch:email",
                title="First touch: e-mail",
                action=Action.EMAIL,
                subject=template.email_subject,
                body=template.email_body,
                transactional=True,
                due_at=sold_at,
            )
        )
    if template.send_text and texts_allowed:
        runs.append(
            StepRun(
                enrolment=enrolment,
                key="first_touch:text",
                title="First touch: text",
                action=Action.TEXT,
                body=template.text_body,
                transactional=True,
                due_at=quiet.next_allowed(sold_at, zones),
            )
        )
    for step in steps:
        if step.action == Action.TEXT and not texts_allowed:
            continue  # never scheduled: the consent does not cover texts
        runs.append(
            StepRun(
                enrolment=enrolment,
                key=f"step:{step.position}",
                title=_step_title(step),
                action=step.action,
                subject=step.subject,
                body=step.body,
                skip_if_reached=step.skip_if_reached,
                due_at=_step_due(step, sold_at=sold_at, zones=zones),
            )
        )
    return runs


def deliveries_enrol(*, delivery_ids: list[int]) -> list[int]:
    """Enrol each new delivery in its outreach: the lender's first touch (e-mail; a text too when the
    consent covers texts) and the steps of its subscription's sequence, else of the lender's default (the
    shipped routine until the lender edits it). A paused sequence enrols the first touch only. Idempotent:
    a delivery already enrolled is left as it is. Returns the ids of the enrolments with work due."""
    delivery_ids = sorted(set(delivery_ids))
    if not delivery_ids:
        return []
    lender_ids = set(Delivery.objects.filter(pk__in=delivery_ids).values_list("lender_id", flat=True))
    for lender_id in lender_ids:
        sequence_default_ensure(lender_id=lender_id)
    with transaction.atomic():
        # Locked in id order, as the notification locks them: a concurrent enrolment waits, then finds these
        # enrolled and does nothing.
        deliveries = list(
            Delivery.objects.select_for_update(of=("self",))
            .select_related("lead__consumer", "lead__consent")
            .filter(pk__in=delivery_ids)
            .order_by("pk")
        )
        done = set(
            Enrolment.objects.filter(delivery_id__in=delivery_ids).values_list("delivery_id", flat=True)
        )
        todo = [d for d in deliveries if d.pk not in done and d.lead.consumer.erased_at is None]
        if not todo:
            return []
        lenders = {d.lender_id for d in todo}
        own_templates = {t.lender_id: t for t in MessageTemplate.objects.filter(lender_id__in=lenders)}
        default_template = message_template_default()
        by_subscription = dict(
            SequenceSubscription.objects.filter(
                subscription_id__in={d.subscription_id for d in todo}
            ).values_list("subscription_id", "sequence_id")
        )
        default_by_lender = dict(
            Sequence.objects.filter(lender_id__in=lenders, is_default=True).values_list("lender_id", "id")
        )
        sequence_ids = set(by_subscription.values()) | set(default_by_lender.values())
        sequences = {s.pk: s for s in Sequence.objects.filter(pk__in=sequence_ids)}
        steps: dict[int, list[SequenceStep]] = defaultdict(list)
        for step in SequenceStep.objects.filter(sequence_id__in=sequence_ids).order_by(
            "sequence_id", "position"
        ):
            steps[step.sequence_id].append(step)
        enrolments, runs = [], []
        for d in todo:
            sequence = sequences.get(
                by_subscription.get(d.subscription_id) or default_by_lender.get(d.lender_id, 0)
            )
            consent = getattr(d.lead, "consent", None)
            texts_allowed = consent is not None and consent_covers_texts(
                text=consent.text, text_sha256=consent.text_sha256
            )
            enrolment = Enrolment(
                delivery=d,
                sequence=sequence,
                time_zones=list(zip_time_zones(d.lead.zip_code, d.lead.state)),
            )
            enrolments.append(enrolment)
            active_steps = steps[sequence.pk] if sequence is not None and sequence.is_active else []
            runs.append(
                (enrolment, d, own_templates.get(d.lender_id, default_template), active_steps, texts_allowed)
            )
        Enrolment.objects.bulk_create(enrolments)
        rows = [
            run
            for enrolment, d, template, active_steps, texts_allowed in runs
            for run in _runs_for(
                enrolment, delivery=d, template=template, steps=active_steps, texts_allowed=texts_allowed
            )
        ]
        StepRun.objects.bulk_create(rows)
    logger.info("enrolled %d delivery(ies) in outreach, %d step(s)", len(enrolments), len(rows))
    return [e.pk for e in enrolments]


# --- Running a step --------------------------------------------------------------------------------------


def _reached(delivery: Delivery) -> bool:
    return (
        delivery.status != Delivery.Status.NEW
        or Activity.objects.filter(delivery=delivery, outcome=Activity.Outcome.REACHED).exists()
    )


def _finish(run: StepRun, state: str, result: str, *, now: datetime, **extra) -> None:
    StepRun.objects.filter(pk=run.pk).update(state=state, result=result[:300], finished_at=now, **extra)
    run.state = state


def _stop_reason(delivery: Delivery) -> str:
    """Why this delivery's outreach must stop now, or ""."""
    if delivery.lead.consumer.erased_at is not None:
        return Enrolment.StopReason.ERASED
    if delivery.status in STOP_STATUSES:
        return STOP_STATUSES[delivery.status]
    if delivery.replied_at is not None:
        return Enrolment.StopReason.REPLIED
    rr = getattr(delivery, "return_request", None)
    if rr is not None and rr.status == "approved":
        return Enrolment.StopReason.RETURNED
    return ""


@dataclass(frozen=True)
class Claim:
    """What step_run_claim decided: `send` says the caller now holds the row and must send it."""

    outcome: str
    send: bool = False


def step_run_claim(*, run_id: int, now: datetime) -> Claim:
    """Take a due step for sending, or settle it without sending (a call task opens, a step is skipped, the
    outreach stops, quiet hours make it wait). One short transaction; committed before anything is sent."""
    with transaction.atomic():
        run = (
            StepRun.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("enrolment")
            .filter(pk=run_id, state=StepRun.State.PENDING)
            .first()
        )
        if run is None:
            return Claim("taken")  # done, or another worker has it
        if run.due_at > now:
            return Claim("not due")
        enrolment = run.enrolment
        delivery = (
            Delivery.objects.select_related("lead__consumer", "return_request")
            .only(
                "status",
                "replied_at",
                "lender_id",
                "lead__consumer__erased_at",
                "lead__consumer__phone",
                "lead__consumer__email",
                "return_request__status",
            )
            .get(pk=enrolment.delivery_id)
        )
        if enrolment.state != Enrolment.State.ACTIVE:
            _finish(run, StepRun.State.CANCELLED, "The outreach had stopped.", now=now)
            return Claim("cancelled")
        reason = _stop_reason(delivery)
        if reason:
            _enrolments_stop([enrolment.pk], reason=reason, now=now)
            return Claim("stopped")
        consumer = delivery.lead.consumer
        if run.action == Action.TEXT and optout_active(channel=OptOut.Channel.SMS, address=consumer.phone):
            _enrolments_stop([enrolment.pk], reason=Enrolment.StopReason.OPTED_OUT, now=now)
            return Claim("stopped")
        if run.action in (Action.TEXT, Action.CALL) and quiet.is_quiet(now, enrolment.time_zones):
            # Quiet hours where the consumer lives: the step waits for their morning.
            StepRun.objects.filter(pk=run.pk).update(
                due_at=quiet.next_allowed(now, enrolment.time_zones),
                result="Waiting for 8 am in the consumer's time zone.",
            )
            return Claim("waiting")
        if run.skip_if_reached and _reached(delivery):
            _finish(run, StepRun.State.SKIPPED, "Skipped: the consumer was already reached.", now=now)
            return Claim("skipped")
        if (
            run.action == Action.TEXT
            and StepRun.objects.filter(
                enrolment=enrolment,
                action=Action.TEXT,
                state=StepRun.State.DONE,
                finished_at__gt=now - TEXT_GAP,
            ).exists()
        ):
            _finish(run, StepRun.State.SKIPPED, "Skipped: a text went out less than 30 minutes ago.", now=now)
            return Claim("skipped")
        if run.action == Action.CALL:
            open_calls = StepRun.objects.filter(
                enrolment=enrolment, action=Action.CALL, state=StepRun.State.OPEN
            )
            if open_calls.filter(claimed_at__gt=now - CALL_OVERLAP).exists():
                # Two calls due together (both waited for the same morning): one task on My day, not two.
                _finish(
                    run, StepRun.State.SKIPPED, "Skipped: a call task for this lead is already open.", now=now
                )
                return Claim("skipped")
            # Only the newest call task stays open: one the officer let pass is counted missed.
            open_calls.update(
                state=StepRun.State.MISSED, finished_at=now, result="A later call task replaced it."
            )
            StepRun.objects.filter(pk=run.pk).update(state=StepRun.State.OPEN, claimed_at=now, result="Due")
            activities_log_automated(
                delivery_ids=[enrolment.delivery_id],
                kind=Activity.Kind.NOTE,
                outcome="",
                note=f"Call task due ({run.title}).",
            )
            return Claim("opened")
        if StepRun.objects.filter(enrolment=enrolment, state=StepRun.State.SENDING).exists():
            return Claim("busy")  # one message of an enrolment at a time (two steps due at one moment)
        StepRun.objects.filter(pk=run.pk).update(
            state=StepRun.State.SENDING, claimed_at=now, attempts=run.attempts + 1
        )
        return Claim("claimed", send=True)


def _email_send_and_record(
    message: EmailMultiAlternatives, *, run: StepRun, note: str, now: datetime
) -> None:
    """Send, and record the step done with its activity in one transaction committed before the connection
    to the mail server is closed: what the server has taken and we have not recorded is only the instant
    between its answer and our commit (the one window in which a dying worker leaves an e-mail to be sent
    again: step_runs_recover finds no activity for it)."""
    connection = get_connection()
    connection.open()
    try:
        connection.send_messages([message])
        with transaction.atomic():
            activities_log_automated(
                delivery_ids=[run.enrolment.delivery_id],
                kind=Activity.Kind.EMAIL,
                outcome=Activity.Outcome.SENT,
                note=note,
            )
            _finish(run, StepRun.State.DONE, "E-mail sent.", now=now)
    finally:
        connection.close()
    logger.info("outreach e-mail sent on delivery %s (step %s)", run.enrolment.delivery_id, run.pk)


def step_run_execute(*, run_id: int, now: datetime | None = None) -> str:
    """Run one due step once: claim it, send its message (or open its call task), record the result. Safe to
    call twice or concurrently: the second call finds the row taken. Returns what happened."""
    now = now or timezone.now()
    claim = step_run_claim(run_id=run_id, now=now)
    if not claim.send:
        return claim.outcome
    run = StepRun.objects.select_related("enrolment").get(pk=run_id)
    delivery = Delivery.objects.select_related("lead__consumer", "lender", "assigned_to").get(
        pk=run.enrolment.delivery_id
    )
    values = delivery_merge_values(delivery)
    try:
        if run.action == Action.EMAIL:
            subject = merge.render_line(run.subject, values)
            body = merge.render(run.body, values)
            officer = delivery.assigned_to if values["officer_name"] else None
            message = consumer_email_build(
                delivery=delivery,
                subject=subject,
                text=body,
                kind=MessageKind.TRANSACTIONAL if run.transactional else MessageKind.MARKETING,
                reply_to=[officer.email] if officer and officer.email else None,
            )
            _email_send_and_record(
                message, run=run, note=f"{run.title}. Subject: {subject}\n\n{body}", now=now
            )
        else:
            text = text_send(
                delivery_id=delivery.pk,
                body=text_with_stop(merge.render(run.body, values)),
                key=text_key(run),
            )
            _finish(run, StepRun.State.DONE, "Text sent.", now=now, text_message=text)
    except SmsOptedOut:
        enrolments_stop(delivery_ids=[delivery.pk], reason=Enrolment.StopReason.OPTED_OUT)
        return "stopped"
    except ConsumerUnreachable as exc:
        _finish(run, StepRun.State.SKIPPED, f"Skipped: {exc}", now=now)
        return "skipped"
    except Exception as exc:
        transient = (isinstance(exc, SmsError) and exc.transient) or (
            not isinstance(exc, SmsError) and is_transient(exc)
        )
        code = (exc.code if isinstance(exc, SmsError) else "") or type(exc).__name__
        if transient and run.attempts <= len(RETRY_WAITS):
            StepRun.objects.filter(pk=run.pk, state=StepRun.State.SENDING).update(
                state=StepRun.State.PENDING,
                due_at=now + RETRY_WAITS[run.attempts - 1],
                result=f"Not sent ({code}); trying again.",
            )
            logger.warning("outreach step %s not sent (%s); retried later", run.pk, code)
            return "retry"
        _finish(run, StepRun.State.FAILED, f"Not sent: {code}.", now=now)
        logger.warning("outreach step %s failed (%s)", run.pk, code)
        return "failed"
    return "sent"


def text_key(run: StepRun) -> str:
    """The channels' once-per-key for this claim of a text step (integrations.channels text_send `key`): a
    text with it exists from just before the provider is asked, so it is what a dead worker's claim left;
    a retry after a failed send is a new claim, so a new key."""
    return f"outreach-step:{run.pk}:{run.attempts}"


def step_runs_recover(*, now: datetime | None = None) -> int:
    """Claims whose worker died mid-send (older than STALE_CLAIM): a text whose row the claim wrote is done
    (the provider may have it); anything else is given back to `pending` (nothing left us, so sending now is
    sending once). Returns how many were settled."""
    now = now or timezone.now()
    settled = 0
    with transaction.atomic():
        stale = list(
            StepRun.objects.select_for_update(skip_locked=True)
            .select_related("enrolment")
            .filter(state=StepRun.State.SENDING, claimed_at__lt=now - STALE_CLAIM)
            .order_by("pk")[:200]
        )
        # The texts these claims made, if they got as far as their rows (written before the provider is
        # asked): then the provider may have them, and they are never sent again. One query for them all.
        # A key names its run (text_key holds the run's id), so the key alone matches a text to its claim.
        keys = {text_key(run): run.pk for run in stale if run.action == Action.TEXT}
        texts = {
            keys[t.send_key]: t
            for t in TextMessage.objects.filter(
                delivery_id__in={run.enrolment.delivery_id for run in stale}, send_key__in=keys
            )
        }
        for run in stale:
            if run.action == Action.TEXT:
                sent = texts.get(run.pk)
                if sent is not None:
                    _finish(
                        run,
                        StepRun.State.DONE,
                        "Text sent (recorded after its worker stopped).",
                        now=now,
                        text_message=sent,
                    )
                    settled += 1
                    continue
            # An e-mail claim still `sending` was never recorded: its activity and `done` commit together.
            StepRun.objects.filter(pk=run.pk).update(
                state=StepRun.State.PENDING, result="Its worker stopped before sending; sent again."
            )
            settled += 1
    if settled:
        logger.warning("outreach: %d step(s) left by a stopped worker settled", settled)
    return settled


def step_runs_due(*, now: datetime | None = None, limit: int = 200) -> list[int]:
    """Ids of steps due now, oldest first (on the partial index of waiting rows)."""
    now = now or timezone.now()
    return list(
        StepRun.objects.filter(state=StepRun.State.PENDING, due_at__lte=now)
        .order_by("due_at", "pk")
        .values_list("pk", flat=True)[:limit]
    )


def enrolments_due_runs(*, enrolment_ids: list[int], now: datetime | None = None) -> list[int]:
    now = now or timezone.now()
    return list(
        StepRun.objects.filter(enrolment_id__in=enrolment_ids, state=StepRun.State.PENDING, due_at__lte=now)
        .order_by("due_at", "pk")
        .values_list("pk", flat=True)
    )


def deliveries_unenrolled(*, older_than_seconds: int = 60, now: datetime | None = None) -> list[int]:
    """Deliveries sold a while ago (their start task lost) but not within ENROL_WITHIN, with no enrolment."""
    now = now or timezone.now()
    return list(
        Delivery.objects.filter(
            created_at__lt=now - timedelta(seconds=older_than_seconds),
            created_at__gte=now - ENROL_WITHIN,
            enrolment__isnull=True,
        )
        .order_by("pk")
        .values_list("pk", flat=True)[:500]
    )


# --- Stopping ----------------------------------------------------------------------------------------------


def _enrolments_stop(enrolment_ids: list[int], *, reason: str, now: datetime) -> list[int]:
    """Stop these enrolments (the active ones) and cancel their waiting steps and open call tasks; an
    activity on each delivery says why. Inside the caller's transaction. Returns the stopped ones' ids."""
    stopped = list(
        Enrolment.objects.select_for_update()
        .filter(pk__in=enrolment_ids, state=Enrolment.State.ACTIVE)
        .values_list("pk", "delivery_id")
    )
    if not stopped:
        return []
    ids = [pk for pk, _ in stopped]
    Enrolment.objects.filter(pk__in=ids).update(
        state=Enrolment.State.STOPPED, stop_reason=reason, stopped_at=now
    )
    StepRun.objects.filter(
        enrolment_id__in=ids, state__in=[StepRun.State.PENDING, StepRun.State.OPEN]
    ).update(
        state=StepRun.State.CANCELLED,
        finished_at=now,
        result=f"Stopped: {Enrolment.StopReason(reason).label.lower()}.",
    )
    if reason != Enrolment.StopReason.ERASED:
        activities_log_automated(
            delivery_ids=[d for _, d in stopped],
            kind=Activity.Kind.NOTE,
            outcome="",
            note=f"Automated sequence stopped: {Enrolment.StopReason(reason).label.lower()}.",
        )
    return ids


@transaction.atomic
def enrolments_stop(*, delivery_ids: list[int], reason: str, now: datetime | None = None) -> int:
    """Stop the outreach of these deliveries for good: nothing more is sent, their call tasks leave My day."""
    ids = list(Enrolment.objects.filter(delivery_id__in=delivery_ids).values_list("pk", flat=True))
    return len(_enrolments_stop(ids, reason=reason, now=now or timezone.now()))


def delivery_status_changed(*, delivery: Delivery) -> int:
    """After a pipeline move: application, approved, funded or lost stop the routine."""
    reason = STOP_STATUSES.get(delivery.status)
    return enrolments_stop(delivery_ids=[delivery.pk], reason=reason) if reason else 0


def enrolments_completed_mark() -> int:
    """Active enrolments with nothing left to run are completed (the lead page says the routine is done)."""
    left = StepRun.objects.filter(
        enrolment_id=OuterRef("pk"),
        state__in=[StepRun.State.PENDING, StepRun.State.SENDING, StepRun.State.OPEN],
    )
    return (
        Enrolment.objects.filter(state=Enrolment.State.ACTIVE)
        .exclude(Exists(left))
        .update(state=Enrolment.State.COMPLETED)
    )


# --- Call tasks -----------------------------------------------------------------------------------------


def call_tasks_complete(*, delivery: Delivery, user: User, now: datetime | None = None) -> int:
    """An officer logged a call on this delivery: its open (and already due) call tasks are done."""
    now = now or timezone.now()
    return StepRun.objects.filter(
        Q(state=StepRun.State.OPEN) | Q(state=StepRun.State.PENDING, due_at__lte=now),
        enrolment__delivery=delivery,
        action=Action.CALL,
    ).update(state=StepRun.State.DONE, finished_at=now, completed_by=user, result="Called.")


@transaction.atomic
def call_task_log(*, run: StepRun, user: User, outcome: str, note: str = "") -> Activity:
    """From My day: log the call (the lead's activity, its first contact) and close the task."""
    delivery = Delivery.objects.get(pk=run.enrolment.delivery_id)
    activity = activity_log(delivery=delivery, user=user, kind=Activity.Kind.CALL, outcome=outcome, note=note)
    call_tasks_complete(delivery=delivery, user=user)
    return activity


# --- The consumer's confirmation ---------------------------------------------------------------------------


def lead_confirmation_send(*, lead_id: int) -> bool:
    """E-mail the consumer once that their request was sold: who will contact them (each buyer and its
    officer), how many lenders at most, and a signed link back to their result page. From the marketplace,
    transactional. The row stays locked while the mail server is asked (as the buyers' e-mails do), so a
    concurrent run waits and then finds it sent. True when sent now."""
    with transaction.atomic():
        LeadConfirmation.objects.get_or_create(lead_id=lead_id)
        row = LeadConfirmation.objects.select_for_update().get(lead_id=lead_id)
        if row.sent_at is not None:
            return False
        lead = Lead.objects.select_related("consumer").get(pk=lead_id)
        if lead.consumer.erased_at is not None or not lead.consumer.email:
            row.sent_at = timezone.now()
            row.save(update_fields=["sent_at"])
            return False
        contacts = lead_contacts(lead=lead)
        if not contacts:
            return False  # not sold (yet): nothing to confirm
        token = result_link_token(public_id=lead.public_id)
        context = {
            "first_name": lead.consumer.first_name,
            "contacts": contacts,
            "at_most": lead_buyers_at_most(lead=lead, sold=len(contacts)),
            "url": settings.SITE_URL + reverse("leads:result_signed", args=[token]),
            "site_url": settings.SITE_URL,
        }
        message = EmailMultiAlternatives(
            subject="Your mortgage request: who will contact you",
            body=render_to_string("email/consumer_confirmation.txt", context),
            to=[lead.consumer.email],
        )
        message.attach_alternative(render_to_string("email/consumer_confirmation.html", context), "text/html")
        message.send()
        row.sent_at = timezone.now()
        row.save(update_fields=["sent_at"])
    logger.info("confirmation e-mailed for lead %s", lead_id)
    return True


# --- What the tasks run ----------------------------------------------------------------------------------


def _run_set_aside(run_id: int, exc: BaseException) -> None:
    """A step that raised on its own (not the mail server or the database being down): failed, named by
    class and line, so the others go on and staff see it."""
    summary = failure_summary(exc)
    StepRun.objects.filter(pk=run_id, state__in=[StepRun.State.PENDING, StepRun.State.SENDING]).update(
        state=StepRun.State.FAILED, finished_at=timezone.now(), result=f"Raised {summary}."[:300]
    )
    logger.error("outreach step %s set aside: %s", run_id, summary)


def step_runs_execute(*, run_ids: list[int], until: float | None = None, now: datetime | None = None) -> int:
    """Run these steps one by one (each isolated: one that raises is set aside, the rest go on), until the
    monotonic deadline `until` if given. Returns how many sent a message or opened a call task."""
    done = 0
    for chunk_start in range(0, len(run_ids), 20):
        if until is not None and time.monotonic() > until:
            break
        outcomes = one_by_one(
            run_ids[chunk_start : chunk_start + 20],
            run=lambda pk: step_run_execute(run_id=pk, now=now),
            set_aside=_run_set_aside,
        )
        done += sum(outcome in ("sent", "opened") for outcome in outcomes)
    return done


def deliveries_outreach_start(*, delivery_ids: list[int], now: datetime | None = None) -> int:
    """Right after a sale: enrol the deliveries, send what is due now (the first touch; the call-now task
    lands on My day), and confirm the sale to each consumer. Idempotent. Returns the steps that ran."""
    enrolment_ids = deliveries_enrol(delivery_ids=delivery_ids)
    ran = step_runs_execute(run_ids=enrolments_due_runs(enrolment_ids=enrolment_ids, now=now), now=now)
    lead_ids = sorted(set(Delivery.objects.filter(pk__in=delivery_ids).values_list("lead_id", flat=True)))
    for lead_id in lead_ids:
        lead_confirmation_send(lead_id=lead_id)
    return ran


def outreach_run_due(*, seconds: float = 20.0, now: datetime | None = None) -> int:
    """Beat: settle claims of dead workers, enrol deliveries whose start task was lost, run the due steps
    (for up to `seconds`), and mark routines with nothing left completed. Returns the steps that ran."""
    until = time.monotonic() + seconds
    step_runs_recover(now=now)
    lost = deliveries_unenrolled(now=now)
    ran = deliveries_outreach_start(delivery_ids=lost, now=now) if lost else 0
    ran += step_runs_execute(run_ids=step_runs_due(now=now), until=until, now=now)
    enrolments_completed_mark()
    return ran
