"""What the platform does for the officers, and where they set it up: My day (the call tasks of their
sequences, with click-to-call), and the settings area: the first-touch message with a live preview and the
sequences (owners and managers). The officer's own details they sign with are their profile (portal.team).

Reads through integrations.outreach.selectors (scoped to the member's lender, officers to their own leads),
writes through its services."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from compliance.models import ContactAccess
from compliance.services import contact_access_record_many
from core.clientip import client_ip
from integrations.outreach import merge, selectors
from integrations.outreach import services as outreach
from integrations.outreach.defaults import STOP_LINE
from integrations.outreach.models import Sequence, SequenceStep, StepRun
from lenders.models import Subscription

from .forms import (
    CallTaskLogForm,
    FirstTouchForm,
    SequenceForm,
    SequenceStepFormSet,
)
from .permissions import PortalRequest, manager_required, member_required
from .shared import add_errors

NEXT_MORNING_SORT = 12 * 60

# The consumer the preview writes to: a sample, never a real lead's details.
PREVIEW_SAMPLE = {
    "first_name": "Maria",
    "estimate": "$350,000",
    "best_product": "FHA",
    "loan_purpose": "purchase",
    "city": "Austin",
}


def _ctx(request: PortalRequest, section: str, **extra: Any) -> dict[str, Any]:
    return {"membership": request.membership, "nav": "settings", "section": section, **extra}


def _sender(request: PortalRequest) -> dict[str, str]:
    """The member who is looking, as the sender (their name, NMLS id, phone, link)."""
    return outreach.sender_values(
        lender=request.membership.lender, officer=request.user, member=request.membership
    )


def _preview_values(request: PortalRequest) -> dict[str, str]:
    """The sample consumer, written to by the member who is looking."""
    return {**PREVIEW_SAMPLE, **_sender(request)}


@dataclass(frozen=True)
class CallRow:
    task: StepRun
    say: str


# --- My day -----------------------------------------------------------------------------------------------


@member_required
def my_day(request: PortalRequest) -> HttpResponse:
    now = timezone.now()
    day = selectors.my_day(membership=request.membership, now=now)
    tasks = [*day.overdue, *day.due_now, *day.upcoming]
    if tasks:
        # Each row carries the consumer's number (click-to-call): a view of contact details, logged.
        contact_access_record_many(
            lead_ids=sorted({t.enrolment.delivery.lead_id for t in tasks}),
            channel=ContactAccess.Channel.PORTAL,
            user=request.user,
            lender_id=request.membership.lender_id,
            path=request.path,
            ip_address=client_ip(request),
        )
    sender = _sender(request)

    def rows(group: list[StepRun]) -> list[CallRow]:
        # What to say on the call, filled for this lead (the caller is the member looking).
        return [
            CallRow(
                task=t,
                say=merge.render(t.body, {**outreach.lead_values(t.enrolment.delivery.lead), **sender}),
            )
            for t in group
        ]

    return render(
        request,
        "portal/my_day.html",
        {
            "membership": request.membership,
            "nav": "my_day",
            "overdue": rows(day.overdue),
            "due_now": rows(day.due_now),
            "upcoming": rows(day.upcoming),
            "count": len(tasks),
            "log_form": CallTaskLogForm(),
            "now": now,
        },
    )


@member_required
@require_POST
def call_task_log(request: PortalRequest, run_id: int) -> HttpResponse:
    run = selectors.call_task_get_for_member(membership=request.membership, run_id=run_id)
    if run is None:
        raise Http404("No such call task.")
    form = CallTaskLogForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose how the call went.")
        return redirect("portal:my_day")
    try:
        outreach.call_task_log(run=run, user=request.user, **form.cleaned_data)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect("portal:my_day")
    messages.success(request, "Call logged.")
    return redirect("portal:my_day")


# --- Settings: the first touch ----------------------------------------------------------------------------


def _first_touch_initial(request: PortalRequest) -> dict[str, Any]:
    t = outreach.message_template_for(lender=request.membership.lender)
    return {
        "send_email": t.send_email,
        "email_subject": t.email_subject,
        "email_body": t.email_body,
        "send_text": t.send_text,
        "text_body": t.text_body,
    }


def _preview(request: PortalRequest, data: Mapping[str, Any]) -> dict[str, Any]:
    """What the consumer would get, or why it cannot be filled (per field)."""
    values = _preview_values(request)
    errors = {}
    for name in ("email_subject", "email_body", "text_body"):
        try:
            merge.template_check(data.get(name) or "")
        except merge.TemplateInvalid as exc:
            errors[name] = str(exc)
    text = merge.render(data.get("text_body") or "", values)
    return {
        "errors": errors,
        "subject": merge.render_line(data.get("email_subject") or "", values),
        "body": merge.render(data.get("email_body") or "", values),
        "text": text if "STOP" in text.upper() else f"{text} {STOP_LINE}",
        "from_name": request.membership.lender.name,
        "send_email": bool(data.get("send_email")),
        "send_text": bool(data.get("send_text")),
    }


@manager_required
@require_http_methods(["GET", "POST"])
def first_touch(request: PortalRequest) -> HttpResponse:
    form = FirstTouchForm(request.POST or None, initial=_first_touch_initial(request))
    if request.method == "POST" and form.is_valid():
        try:
            outreach.message_template_save(
                lender=request.membership.lender, user=request.user, **form.cleaned_data
            )
        except ValidationError as exc:
            add_errors(form, exc)
        else:
            messages.success(request, "First touch saved: new leads get it from now on.")
            return redirect("portal:first_touch")
    data = form.data if form.is_bound else form.initial
    return render(
        request,
        "portal/settings/first_touch.html",
        _ctx(
            request,
            "first_touch",
            form=form,
            preview=_preview(request, data),
            fields=merge.MERGE_FIELDS,
        ),
        status=400 if form.is_bound else 200,
    )


@manager_required
@require_POST
def first_touch_preview(request: PortalRequest) -> HttpResponse:
    """The htmx partial the editor refreshes as the lender types (nothing is saved)."""
    return render(
        request, "portal/settings/_first_touch_preview.html", {"preview": _preview(request, request.POST)}
    )


# --- Settings: sequences ----------------------------------------------------------------------------------


@manager_required
def sequences(request: PortalRequest) -> HttpResponse:
    lender = request.membership.lender
    outreach.sequence_default_ensure(lender_id=lender.pk)
    names = dict(Subscription.objects.for_lender(lender).values_list("pk", "name"))
    rows = [
        {
            "sequence": seq,
            "subscriptions": [names.get(r.subscription_id, "") for r in seq.subscription_rows.all()],
        }
        for seq in selectors.sequences_for_lender(lender_id=lender.pk)
    ]
    return render(request, "portal/settings/sequences.html", _ctx(request, "sequences", rows=rows))


def _sequence_or_404(request: PortalRequest, sequence_id: int) -> Sequence:
    sequence = Sequence.objects.filter(lender=request.membership.lender, pk=sequence_id).first()
    if sequence is None:
        raise Http404("No such sequence.")
    return sequence


def _steps_initial(sequence: Sequence | None) -> list[dict[str, Any]]:
    if sequence is None:
        return []
    return [
        {
            "action": s.action,
            "timing": s.timing,
            "delay_minutes": s.delay_minutes,
            "skip_if_reached": s.skip_if_reached,
            "subject": s.subject,
            "body": s.body,
        }
        for s in sequence.steps.order_by("position")
    ]


@manager_required
@require_http_methods(["GET", "POST"])
def sequence_edit(request: PortalRequest, sequence_id: int | None = None) -> HttpResponse:
    lender = request.membership.lender
    sequence = _sequence_or_404(request, sequence_id) if sequence_id else None
    choices = [
        (str(pk), name) for pk, name in Subscription.objects.for_lender(lender).values_list("pk", "name")
    ]
    initial = (
        {
            "name": sequence.name,
            "is_active": sequence.is_active,
            "is_default": sequence.is_default,
            "subscriptions": [str(r.subscription_id) for r in sequence.subscription_rows.all()],
        }
        if sequence
        else {"is_active": True}
    )
    form = SequenceForm(request.POST or None, initial=initial, subscriptions=choices)
    steps = SequenceStepFormSet(request.POST or None, initial=_steps_initial(sequence), prefix="steps")
    if request.method == "POST" and form.is_valid() and steps.is_valid():
        kept = [
            outreach.StepInput(
                action=f.cleaned_data["action"],
                timing=f.cleaned_data["timing"],
                delay_minutes=f.cleaned_data.get("delay_minutes") or 0,
                skip_if_reached=f.cleaned_data.get("skip_if_reached", False),
                subject=f.cleaned_data.get("subject", ""),
                body=f.cleaned_data.get("body", ""),
            )
            for f in steps.forms
            if f.cleaned_data and not f.cleaned_data.get("DELETE")
        ]
        # Steps are kept in the order of their time after the sale, whatever order they were typed in ("next
        # morning" sorts as about 12 hours on).
        kept.sort(
            key=lambda s: (
                NEXT_MORNING_SORT if s.timing == SequenceStep.Timing.NEXT_MORNING else s.delay_minutes
            )
        )
        try:
            saved = outreach.sequence_save(
                lender=lender,
                sequence=sequence,
                name=form.cleaned_data["name"],
                is_active=form.cleaned_data["is_active"],
                is_default=form.cleaned_data["is_default"],
                subscription_ids=[int(pk) for pk in form.cleaned_data["subscriptions"]],
                steps=kept,
            )
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                form.add_error(field if field in form.fields else None, errors)
        else:
            messages.success(request, f"“{saved.name}” saved: new leads follow it from now on.")
            return redirect("portal:sequence_edit", saved.pk)
    return render(
        request,
        "portal/settings/sequence_form.html",
        _ctx(request, "sequences", form=form, steps=steps, sequence=sequence, fields=merge.MERGE_FIELDS),
        status=400 if form.is_bound else 200,
    )
