"""A lead's page: contact details (each view logged), activity, follow-ups, the pipeline, reassignment and
the pre-qualification letter. Reads through marketplace.selectors (scoped to the member's lender and, for
officers, to their own leads), writes through marketplace.services."""

from datetime import timedelta
from decimal import Decimal, InvalidOperation

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseNotAllowed,
)
from django.shortcuts import redirect, render
from django.utils import timezone

from compliance.models import ContactAccess
from compliance.selectors import optouts_for_contact
from compliance.services import contact_access_record
from core.clientip import client_ip
from integrations.outreach.selectors import delivery_outreach
from integrations.outreach.services import call_tasks_complete
from integrations.services import activity_log_and_notify, delivery_set_status_and_notify
from leads.choices import LoanPurpose, Product
from lenders.models import Membership
from lenders.selectors import membership_of
from marketplace.models import Delivery
from marketplace.selectors import (
    activities_for_delivery,
    delivery_get_for_member,
    followup_get_for_member,
    followups_for_delivery,
)
from marketplace.services import (
    delivery_next_statuses,
    delivery_reassign,
    followup_complete,
    followup_create,
)

from .forms import (
    ActivityForm,
    DeliveryStatusForm,
    FollowUpForm,
    ReassignForm,
)
from .letters import prequalification_letter
from .permissions import PortalRequest, member_required
from .shared import add_errors, member_label, response_time, team_choices


def _delivery_or_404(request: PortalRequest, delivery_id: int) -> Delivery:
    delivery = delivery_get_for_member(membership=request.membership, delivery_id=delivery_id)
    if delivery is None:
        # Another lender's lead, or an officer's colleague's: indistinguishable from a lead that never was.
        raise Http404("No such lead.")
    return delivery


def _status_form(data=None, *, status: str) -> DeliveryStatusForm:
    # Each move is its own small form on the page, so each needs its own element ids.
    prefix = status if status in Delivery.Status.values else "move"
    return DeliveryStatusForm(data, initial={"status": status}, auto_id=f"id_{prefix}_%s")


def _detail_context(
    request: PortalRequest,
    delivery: Delivery,
    posted: DeliveryStatusForm | None = None,
    *,
    activity_form: ActivityForm | None = None,
    followup_form: FollowUpForm | None = None,
) -> dict:
    lead = delivery.lead
    membership = request.membership
    posted_status = posted.data.get("status") if posted is not None else None
    moves = []
    for status in delivery_next_statuses(delivery):
        form = posted if posted_status == status else _status_form(status=status)
        moves.append({"status": status, "label": Delivery.Status(status).label, "form": form})
    qualification = lead.qualification if isinstance(lead.qualification, dict) else {}
    product_labels = dict(Product.choices)
    results = [
        {
            **r,
            # A product the borrower cannot have lends nothing and quotes no rate: its row shows dashes, never
            # "$0" (which reads as an offer of nothing) or a rate they cannot get. Rows before 2026.2 have no
            # "eligible" and are judged by their amounts.
            **{
                k: _amount(r.get(k)) if r.get("eligible") is not False else None
                for k in ("max_loan", "loan", "rate_term_max", "cash_out_max")
            },
            "rate": r.get("rate") if r.get("eligible") is not False else None,
            "label": product_labels.get(r.get("product", ""), r.get("product", "")),
        }
        for r in qualification.get("results", [])
        if isinstance(r, dict)
    ]
    gap = qualification.get("gap")
    purchase = qualification.get("purchase")
    if isinstance(purchase, dict) and not (_amount(purchase.get("max_loan")) or 0) > 0:
        purchase = None  # no product lends toward this home: "Most for this home: $0" says nothing
    reassign_form = None
    if membership.sees_all_leads:
        assignee_id = delivery.assigned_to_id
        current = (
            Membership.objects.filter(user_id=assignee_id).values_list("pk", flat=True) if assignee_id else []
        )
        reassign_form = ReassignForm(
            initial={"assignee": str(next(iter(current), ""))}, members=team_choices(membership)
        )
    default_due = (timezone.localtime() + timedelta(days=1)).replace(
        hour=10, minute=0, second=0, microsecond=0
    )
    return {
        "membership": membership,
        "nav": "inbox",
        "delivery": delivery,
        "lead": lead,
        "consumer": lead.consumer,
        # The channels the consumer stopped (STOP, unsubscribe): badges, so nobody texts or mails them.
        "optouts": optouts_for_contact(phone=lead.consumer.phone, email=lead.consumer.email),
        # A lead bought before consent was recorded has none; show that plainly instead of failing.
        "consent": getattr(lead, "consent", None),
        "products": [product_labels.get(p, p) for p in lead.products or []],
        "results": results,
        "reasons": qualification.get("reasons", []),
        # Guidelines before 2026.2 qualified a lead only when the whole request fitted.
        "fits_request": qualification.get("fits_request", lead.status != "not_qualified") is not False,
        "gap": [g["text"] for g in gap if isinstance(g, dict) and "text" in g]
        if isinstance(gap, list)
        else [],
        "purchase": purchase if isinstance(purchase, dict) else None,
        "notes": [n for n in qualification.get("notes") or [] if isinstance(n, str)],
        "refinance": lead.purpose == LoanPurpose.REFINANCE,
        "moves": moves,
        # Errors of a posted move that is no longer offered (e.g. someone else moved the lead meanwhile).
        "stray_form": (
            posted if posted is not None and posted_status not in {m["status"] for m in moves} else None
        ),
        "activities": list(activities_for_delivery(delivery=delivery)),
        # The automated routine (first touch, sequence steps) and where it stands.
        "outreach": dict(zip(("enrolment", "runs"), delivery_outreach(delivery=delivery), strict=True)),
        "followups": list(followups_for_delivery(delivery=delivery)),
        "activity_form": activity_form or ActivityForm(),
        "followup_form": followup_form or FollowUpForm(initial={"due_at": default_due}),
        "reassign_form": reassign_form,
        "now": timezone.now(),
        "response_time": response_time(
            delivered=delivery.created_at, first_contact=delivery.first_contact_at
        ),
        "can_letter": lead.estimate is not None and lead.estimate > 0,
        # The letter signs with the requester's details when the lead is theirs (or nobody's): say what it
        # would lack before they send it to a borrower.
        "letter_lacks": [
            label
            for label, value in (("NMLS id", membership.nmls_id), ("phone", membership.phone))
            if not value
        ]
        if delivery.assigned_to_id in (None, membership.user_id)
        else [],
    }


def _amount(value: object) -> Decimal | None:
    # Qualification JSON keeps money as strings ("0.00" is truthy); the page wants numbers, and a hand-edited
    # or older row must not break it.
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError, TypeError):
        return None
    return amount if amount.is_finite() else None


def _record_contact_view(request: HttpRequest, delivery: Delivery, channel: str) -> None:
    """Every view of a consumer's full contact details is logged for staff (compliance.ContactAccess)."""
    contact_access_record(
        lead_id=delivery.lead_id,
        channel=channel,
        user=request.user,
        lender_id=delivery.lender_id,
        path=request.path,
        ip_address=client_ip(request),
    )


@member_required
def delivery_detail(request: PortalRequest, delivery_id: int) -> HttpResponse:
    delivery = _delivery_or_404(request, delivery_id)
    _record_contact_view(request, delivery, ContactAccess.Channel.PORTAL)
    return render(request, "portal/delivery_detail.html", _detail_context(request, delivery))


@member_required
def delivery_status(request: PortalRequest, delivery_id: int) -> HttpResponse:
    # Look the lead up before checking the method, so another lender's id is a 404 whatever the method.
    delivery = _delivery_or_404(request, delivery_id)
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    form = _status_form(request.POST, status=request.POST.get("status", ""))
    if form.is_valid():
        try:
            # Same rules as the API, and the delivery.updated webhook goes out with the change.
            delivery_set_status_and_notify(
                delivery=delivery,
                status=form.cleaned_data["status"],
                funded_amount=form.cleaned_data["funded_amount"],
                lost_reason=form.cleaned_data["lost_reason"],
            )
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            messages.success(request, f"Lead moved to {delivery.get_status_display()}.")
            return redirect("portal:delivery_detail", delivery_id=delivery.pk)
    context = _detail_context(request, delivery, form)
    return render(request, "portal/delivery_detail.html", context, status=400)


@member_required
def delivery_activity(request: PortalRequest, delivery_id: int) -> HttpResponse:
    delivery = _delivery_or_404(request, delivery_id)
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    form = ActivityForm(request.POST)
    if form.is_valid():
        before = delivery.status
        try:
            activity = activity_log_and_notify(delivery=delivery, user=request.user, **form.cleaned_data)
        except ValidationError as exc:
            add_errors(form, exc)
        else:
            if activity.kind == activity.Kind.CALL:
                call_tasks_complete(delivery=delivery, user=request.user)  # My day's task for it is done
            moved = f" Lead moved to {delivery.get_status_display()}." if delivery.status != before else ""
            messages.success(request, f"{activity.get_kind_display()} logged.{moved}")
            return redirect(f"{request.path.rsplit('activity/', 1)[0]}#activity-title")
    context = _detail_context(request, delivery, activity_form=form)
    return render(request, "portal/delivery_detail.html", context, status=400)


@member_required
def delivery_followup(request: PortalRequest, delivery_id: int) -> HttpResponse:
    delivery = _delivery_or_404(request, delivery_id)
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    form = FollowUpForm(request.POST)
    if form.is_valid():
        followup_create(delivery=delivery, user=request.user, **form.cleaned_data)
        due = timezone.localtime(form.cleaned_data["due_at"])
        year = f", {due.year}" if due.year != timezone.localdate().year else ""  # a reminder for next year
        messages.success(request, f"Follow-up set for {due:%b %-d}{year}, {due:%-I:%M %p}.")
        return redirect("portal:delivery_detail", delivery_id=delivery.pk)
    context = _detail_context(request, delivery, followup_form=form)
    return render(request, "portal/delivery_detail.html", context, status=400)


@member_required
def followup_done(request: PortalRequest, followup_id: int) -> HttpResponse:
    followup = followup_get_for_member(membership=request.membership, followup_id=followup_id)
    if followup is None:
        raise Http404("No such follow-up.")
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    if followup_complete(followup=followup):
        messages.success(request, "Follow-up marked done.")
    back = request.POST.get("next", "")
    if back == "inbox":
        return redirect("portal:inbox")
    return redirect("portal:delivery_detail", delivery_id=followup.delivery_id)


@member_required
def delivery_assign(request: PortalRequest, delivery_id: int) -> HttpResponse:
    delivery = _delivery_or_404(request, delivery_id)
    if not request.membership.sees_all_leads:
        raise PermissionDenied("Only owners and managers reassign leads.")
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    form = ReassignForm(request.POST, members=team_choices(request.membership))
    if not form.is_valid():
        messages.error(request, "Choose an active member of your team.")
        return redirect("portal:delivery_detail", delivery_id=delivery.pk)
    chosen = form.cleaned_data["assignee"]
    member = None
    if chosen:
        member = (
            Membership.objects.select_related("user")
            .filter(pk=chosen, lender=request.membership.lender, is_active=True)
            .first()
        )
    delivery_reassign(delivery=delivery, membership=member)
    messages.success(
        request, f"Lead assigned to {member_label(member.user)}." if member else "Lead unassigned."
    )
    return redirect("portal:delivery_detail", delivery_id=delivery.pk)


def _letter_officer(request: PortalRequest, delivery: Delivery) -> Membership:
    """Who signs the letter: the officer the lead is assigned to (the borrower's contact), else the member
    making it (an owner or manager sending one for an unassigned lead)."""
    if delivery.assigned_to_id and delivery.assigned_to_id != request.membership.user_id:
        assigned = membership_of(lender_id=delivery.lender_id, user_id=delivery.assigned_to_id)
        if assigned is not None:
            return assigned
    return request.membership


@member_required
def delivery_letter(request: PortalRequest, delivery_id: int) -> HttpResponse:
    """The pre-qualification letter as a PDF download."""
    delivery = _delivery_or_404(request, delivery_id)
    if not delivery.lead.estimate:
        raise Http404("This lead has no estimate to put in a letter.")
    _record_contact_view(request, delivery, ContactAccess.Channel.LETTER)
    pdf = prequalification_letter(
        delivery=delivery, lender=request.membership.lender, officer=_letter_officer(request, delivery)
    )
    response = HttpResponse(pdf, content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="prequalification-{delivery.lead.reference}.pdf"'
    response["Cache-Control"] = "no-store"
    return response
