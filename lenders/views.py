"""The lender portal: the inbox (live, filtered, exportable), a page to work each lead (contact, activity,
follow-ups, pipeline, assignment, letter), and the team and assignment rules. Views stay thin: reads go
through marketplace.selectors (scoped to the member's lender and, for officers, to their own leads), writes
through marketplace.services and lenders.team."""

import csv
from collections.abc import Iterator
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation

from django.contrib import messages
from django.contrib.auth import get_user_model, login
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Page, Paginator
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseNotAllowed,
    StreamingHttpResponse,
)
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from compliance.models import ContactAccess
from compliance.services import contact_access_record, contact_access_record_many
from integrations.services import delivery_set_status_and_notify
from leads.choices import LoanPurpose, Product
from marketplace.clientip import client_ip
from marketplace.formfields import form_problems
from marketplace.models import Delivery
from marketplace.selectors import (
    activities_for_delivery,
    delivery_get_for_member,
    followup_get_for_member,
    followups_due_for_member,
    followups_for_delivery,
    inbox_for_member,
    inbox_version,
)
from marketplace.services import (
    activity_log,
    delivery_next_statuses,
    delivery_reassign,
    followup_complete,
    followup_create,
)

from . import team
from .forms import (
    AcceptInvitationForm,
    ActivityForm,
    AssignmentRuleForm,
    DeliveryStatusForm,
    FollowUpForm,
    InboxFilterForm,
    InvitationForm,
    MemberRoleForm,
    ReassignForm,
)
from .letters import prequalification_letter
from .models import AssignmentRule, Invitation, Membership, Subscription
from .permissions import manager_required, member_required

INBOX_PAGE_SIZE = 25
URGENT_AFTER = timedelta(minutes=5)  # leads reached within five minutes convert several times better


def ago(when: datetime, now: datetime) -> str:
    """A short age for a list a lender scans quickly: "just now", "3 min ago", "2 h ago", "5 d ago"."""
    seconds = max(int((now - when).total_seconds()), 0)
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{seconds // 60} min ago"
    if seconds < 86400:
        return f"{seconds // 3600} h ago"
    return f"{seconds // 86400} d ago"


def member_label(user) -> str:
    return user.get_full_name() or user.get_username()


# --- the inbox ----------------------------------------------------------------------------------------


def _filter_form(request: HttpRequest, *, with_choices: bool) -> InboxFilterForm:
    """The inbox filters. The full page fills the subscription and officer lists (two queries); the live
    refresh and the export only parse the values, which needs none."""
    membership = request.membership
    subscriptions: list = []
    officers: list = []
    if with_choices:
        subscriptions = list(
            Subscription.objects.for_lender(membership.lender).order_by("name").values_list("id", "name")
        )
        if membership.sees_all_leads:
            officers = [
                (str(m.user_id), member_label(m.user))
                for m in Membership.objects.filter(lender=membership.lender)
                .select_related("user")
                .order_by("user__first_name", "user__username")
            ]
    return InboxFilterForm(
        request.GET or None,
        subscriptions=subscriptions,
        officers=officers,
        show_officer=membership.sees_all_leads,
    )


def _inbox_rows_context(request: HttpRequest, form: InboxFilterForm) -> dict:
    filters = form.filters()
    qs = inbox_for_member(membership=request.membership, filters=filters)
    count, version = inbox_version(qs)
    paginator = Paginator(qs, INBOX_PAGE_SIZE)
    paginator.count = count  # already counted by inbox_version; saves a second COUNT(*)
    page: Page = paginator.get_page(request.GET.get("page"))
    now = timezone.now()
    rows = list(page.object_list)
    for d in rows:
        d.age = ago(d.created_at, now)
        d.awaiting_contact = d.first_contact_at is None and d.status == Delivery.Status.NEW
        d.urgent = d.awaiting_contact and now - d.created_at >= URGENT_AFTER
    # Page links keep the filters; the live refresh keeps the filters and the page the lender is on.
    query = request.GET.copy()
    query.pop("since", None)
    page_query = query.copy()
    page_query.pop("page", None)
    query["since"] = version
    return {
        "membership": request.membership,
        "page_obj": page,
        "deliveries": rows,
        "filter_query": page_query.urlencode(),
        "refresh_query": query.urlencode(),
        "version": version,
        "filtered": filters.active,
        "urgent_after": int(URGENT_AFTER.total_seconds()),
    }


def _filters_refused(form: InboxFilterForm) -> bool:
    """True when filters were given and some do not parse or are out of range (a date in year 9999): the
    page says why beside the field and answers 400, rather than quietly showing or exporting every lead."""
    return form.is_bound and not form.is_valid()


@member_required
def inbox(request: HttpRequest) -> HttpResponse:
    form = _filter_form(request, with_choices=True)
    context = _inbox_rows_context(request, form)
    # Follow-ups due by the end of the lender's day, overdue first.
    local_now = timezone.localtime()
    end_of_day = local_now.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
    context.update(
        nav="inbox",
        filter_form=form,
        followups=followups_due_for_member(membership=request.membership, until=end_of_day),
        now=timezone.now(),
    )
    return render(request, "portal/inbox.html", context, status=400 if _filters_refused(form) else 200)


@member_required
def inbox_rows(request: HttpRequest) -> HttpResponse:
    """The list alone, for htmx to poll every few seconds. Answers 204 (htmx swaps nothing, so focus and
    scroll stay put) when nothing in the filtered list changed since the version the page holds."""
    form = _filter_form(request, with_choices=False)
    if _filters_refused(form):
        return HttpResponse(form_problems(form), status=400, content_type="text/plain; charset=utf-8")
    if request.GET.get("since"):
        _, version = inbox_version(inbox_for_member(membership=request.membership, filters=form.filters()))
        if version == request.GET["since"]:
            return HttpResponse(status=204)
    return render(request, "portal/_inbox_rows.html", _inbox_rows_context(request, form))


class _Echo:
    def write(self, value: str) -> str:
        return value


CSV_DANGEROUS = ("=", "+", "-", "@", "\t", "\r")


def csv_safe(value) -> str:
    """A cell a spreadsheet will not run as a formula (CSV injection): text starting with = + - @ (or a
    tab or carriage return) gets a leading apostrophe."""
    text = "" if value is None else str(value)
    return f"'{text}" if text.startswith(CSV_DANGEROUS) else text


EXPORT_HEADER = [
    "Delivered",
    "Delivery",
    "Lead",
    "Status",
    "First name",
    "Last name",
    "E-mail",
    "Phone",
    "Purpose",
    "City",
    "State",
    "ZIP",
    "Requested loan",
    "Estimated maximum",
    "Products",
    "Price",
    "Sale",
    "Subscription",
    "Assigned to",
    "First contact",
    "Funded amount",
    "Lost reason",
    # Last, so that readers of the earlier columns by position are not thrown (added with guidelines 2026.2).
    "Qualified loan",
]


def _export_rows(deliveries) -> Iterator[list[str]]:
    yield EXPORT_HEADER
    fmt = "%Y-%m-%d %H:%M"
    for d in deliveries:
        lead, consumer = d.lead, d.lead.consumer
        yield [
            csv_safe(v)
            for v in (
                timezone.localtime(d.created_at).strftime(fmt),
                d.pk,
                lead.pk,
                d.get_status_display(),
                consumer.first_name,
                consumer.last_name,
                consumer.email,
                consumer.phone,
                lead.get_purpose_display(),
                lead.city,
                lead.state,
                lead.zip_code,
                lead.requested_loan,
                lead.estimate,
                " ".join(lead.products or []),
                d.price,
                "exclusive" if d.exclusive else "shared",
                d.subscription.name,
                member_label(d.assigned_to) if d.assigned_to else "",
                timezone.localtime(d.first_contact_at).strftime(fmt) if d.first_contact_at else "",
                d.funded_amount or "",
                d.lost_reason,
                "" if lead.qualified_loan is None else lead.qualified_loan,
            )
        ]


@member_required
def inbox_export(request: HttpRequest) -> HttpResponse:
    """The member's leads under the current filters as CSV, streamed: one query however many rows."""
    form = _filter_form(request, with_choices=False)
    if _filters_refused(form):
        return HttpResponse(form_problems(form), status=400, content_type="text/plain; charset=utf-8")
    qs = inbox_for_member(membership=request.membership, filters=form.filters())
    contact_access_record_many(
        lead_ids=list(qs.values_list("lead_id", flat=True)),
        channel=ContactAccess.Channel.EXPORT,
        user=request.user,
        lender_id=request.membership.lender_id,
        path=request.path,
        ip_address=client_ip(request),
    )
    writer = csv.writer(_Echo())
    # The iterator is consumed inside the lender's time zone; the generator runs after the view returns.
    zone = timezone.get_current_timezone()

    def stream() -> Iterator[str]:
        with timezone.override(zone):
            for row in _export_rows(qs.iterator(chunk_size=2000)):
                yield writer.writerow(row)

    stamp = timezone.localdate().isoformat()
    response = StreamingHttpResponse(stream(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="leads-{stamp}.csv"'
    response["Cache-Control"] = "no-store"  # personal data: never kept by a shared cache
    return response


# --- a lead's page ------------------------------------------------------------------------------------


def _delivery_or_404(request: HttpRequest, delivery_id: int) -> Delivery:
    delivery = delivery_get_for_member(membership=request.membership, delivery_id=delivery_id)
    if delivery is None:
        # Another lender's lead, or an officer's colleague's: indistinguishable from a lead that never was.
        raise Http404("No such lead.")
    return delivery


def _status_form(data=None, *, status: str) -> DeliveryStatusForm:
    # Each move is its own small form on the page, so each needs its own element ids.
    prefix = status if status in Delivery.Status.values else "move"
    return DeliveryStatusForm(data, initial={"status": status}, auto_id=f"id_{prefix}_%s")


def _team_choices(membership: Membership) -> list[tuple[str, str]]:
    members = Membership.objects.filter(lender=membership.lender, is_active=True).select_related("user")
    return [
        (str(m.pk), f"{member_label(m.user)} ({m.get_role_display()})")
        for m in members.order_by("user__first_name", "user__username")
    ]


def _detail_context(
    request: HttpRequest,
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
            **{k: _amount(r.get(k)) for k in ("max_loan", "loan", "rate_term_max", "cash_out_max")},
            "label": product_labels.get(r.get("product", ""), r.get("product", "")),
        }
        for r in qualification.get("results", [])
        if isinstance(r, dict)
    ]
    gap = qualification.get("gap")
    purchase = qualification.get("purchase")
    reassign_form = None
    if membership.sees_all_leads:
        current = Membership.objects.filter(user_id=delivery.assigned_to_id).values_list("pk", flat=True)
        reassign_form = ReassignForm(
            initial={"assignee": str(next(iter(current), ""))}, members=_team_choices(membership)
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
        "followups": list(followups_for_delivery(delivery=delivery)),
        "activity_form": activity_form or ActivityForm(),
        "followup_form": followup_form or FollowUpForm(initial={"due_at": default_due}),
        "reassign_form": reassign_form,
        "now": timezone.now(),
        "can_letter": lead.estimate is not None and lead.estimate > 0,
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
def delivery_detail(request: HttpRequest, delivery_id: int) -> HttpResponse:
    delivery = _delivery_or_404(request, delivery_id)
    _record_contact_view(request, delivery, ContactAccess.Channel.PORTAL)
    return render(request, "portal/delivery_detail.html", _detail_context(request, delivery))


@member_required
def delivery_status(request: HttpRequest, delivery_id: int) -> HttpResponse:
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


def _add_errors(form, exc: ValidationError) -> None:
    if hasattr(exc, "error_dict"):
        for field, errors in exc.error_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, exc)


@member_required
def delivery_activity(request: HttpRequest, delivery_id: int) -> HttpResponse:
    delivery = _delivery_or_404(request, delivery_id)
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    form = ActivityForm(request.POST)
    if form.is_valid():
        try:
            activity = activity_log(delivery=delivery, user=request.user, **form.cleaned_data)
        except ValidationError as exc:
            _add_errors(form, exc)
        else:
            messages.success(request, f"{activity.get_kind_display()} logged.")
            return redirect(f"{request.path.rsplit('activity/', 1)[0]}#activity-title")
    context = _detail_context(request, delivery, activity_form=form)
    return render(request, "portal/delivery_detail.html", context, status=400)


@member_required
def delivery_followup(request: HttpRequest, delivery_id: int) -> HttpResponse:
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
def followup_done(request: HttpRequest, followup_id: int) -> HttpResponse:
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
def delivery_assign(request: HttpRequest, delivery_id: int) -> HttpResponse:
    delivery = _delivery_or_404(request, delivery_id)
    if not request.membership.sees_all_leads:
        raise PermissionDenied("Only owners and managers reassign leads.")
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    form = ReassignForm(request.POST, members=_team_choices(request.membership))
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


@member_required
def delivery_letter(request: HttpRequest, delivery_id: int) -> HttpResponse:
    """The pre-qualification letter as a PDF download."""
    delivery = _delivery_or_404(request, delivery_id)
    if not delivery.lead.estimate:
        raise Http404("This lead has no estimate to put in a letter.")
    _record_contact_view(request, delivery, ContactAccess.Channel.LETTER)
    pdf = prequalification_letter(delivery=delivery, lender=request.membership.lender)
    response = HttpResponse(pdf, content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="prequalification-{delivery.lead_id}.pdf"'
    response["Cache-Control"] = "no-store"
    return response


# --- the team -----------------------------------------------------------------------------------------


def _team_context(request: HttpRequest, invite_form: InvitationForm | None = None) -> dict:
    membership = request.membership
    roles = team.roles_assignable_by(membership)
    members = list(
        Membership.objects.filter(lender=membership.lender)
        .select_related("user")
        .order_by("-is_active", "role", "user__first_name", "user__username")
    )
    for m in members:
        m.label = member_label(m.user)
        m.editable = m.pk != membership.pk and (m.role != Membership.Role.OWNER or membership.role == "owner")
        m.role_form = MemberRoleForm(initial={"role": m.role}, roles=roles, auto_id=f"id_m{m.pk}_%s")
    now = timezone.now()
    invitations = list(
        Invitation.objects.filter(
            lender=membership.lender, accepted_at__isnull=True, revoked_at__isnull=True
        ).order_by("-created_at")
    )
    return {
        "membership": membership,
        "nav": "team",
        "members": members,
        "invitations": invitations,
        "invite_form": invite_form or InvitationForm(roles=roles),
        "now": now,
    }


@manager_required
def team_page(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        form = InvitationForm(request.POST, roles=team.roles_assignable_by(request.membership))
        if form.is_valid():
            try:
                inv = team.invitation_create(actor=request.membership, **form.cleaned_data)
            except ValidationError as exc:
                _add_errors(form, exc)
            else:
                messages.success(
                    request, f"Invitation sent to {inv.email}. The link works once, for 72 hours."
                )
                return redirect("portal:team")
        return render(request, "portal/team.html", _team_context(request, form), status=400)
    return render(request, "portal/team.html", _team_context(request))


def _team_member_or_404(request: HttpRequest, member_id: int) -> Membership:
    member = (
        Membership.objects.select_related("user")
        .filter(pk=member_id, lender=request.membership.lender)
        .first()
    )
    if member is None:
        raise Http404("No such member.")
    return member


@manager_required  # first: a visitor who is not signed in is sent to log in, whatever the method
@require_POST
def member_update(request: HttpRequest, member_id: int) -> HttpResponse:
    member = _team_member_or_404(request, member_id)
    action = request.POST.get("action")
    try:
        if action == "role":
            form = MemberRoleForm(request.POST, roles=team.roles_assignable_by(request.membership))
            if not form.is_valid():
                raise ValidationError("Choose a role you may give.")
            team.membership_set_role(actor=request.membership, member=member, role=form.cleaned_data["role"])
            messages.success(
                request, f"{member_label(member.user)} is now {member.get_role_display().lower()}."
            )
        elif action in ("deactivate", "reactivate"):
            team.membership_set_active(actor=request.membership, member=member, active=action == "reactivate")
            messages.success(request, f"{member_label(member.user)} {action}d.")
        else:
            raise ValidationError("Unknown action.")
    except PermissionDenied as exc:
        messages.error(request, str(exc))
        return redirect("portal:team")
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    return redirect("portal:team")


@manager_required  # first: a visitor who is not signed in is sent to log in, whatever the method
@require_POST
def invitation_update(request: HttpRequest, invitation_id: int) -> HttpResponse:
    inv = Invitation.objects.filter(pk=invitation_id, lender=request.membership.lender).first()
    if inv is None:
        raise Http404("No such invitation.")
    try:
        if request.POST.get("action") == "resend":
            team.invitation_resend(actor=request.membership, invitation=inv)
            messages.success(request, f"A new link was sent to {inv.email}.")
        else:
            team.invitation_revoke(actor=request.membership, invitation=inv)
            messages.success(request, f"The invitation to {inv.email} was withdrawn.")
    except (PermissionDenied, ValidationError) as exc:
        messages.error(request, " ".join(getattr(exc, "messages", [str(exc)])))
    return redirect("portal:team")


def invitation_accept(request: HttpRequest, token: str) -> HttpResponse:
    """The link from the invitation e-mail: choose a name and password, and land in the portal signed in."""
    invitation = team.invitation_for_token(token)
    if invitation is None:
        return render(request, "portal/invitation_invalid.html", status=404)
    User = get_user_model()
    user = User(username=invitation.email, email=invitation.email)
    form = AcceptInvitationForm(user, request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            new_user = team.invitation_accept(
                token=token,
                first_name=form.cleaned_data["first_name"],
                last_name=form.cleaned_data["last_name"],
                password=form.cleaned_data["new_password1"],
            )
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            login(request, new_user, backend="django.contrib.auth.backends.ModelBackend")
            messages.success(request, f"Welcome to {invitation.lender.name}.")
            return redirect("portal:inbox")
    response = render(
        request,
        "portal/invitation_accept.html",
        {"form": form, "invitation": invitation},
        status=400 if request.method == "POST" else 200,
    )
    # The token is in the URL: it must never reach another site, whatever the site-wide policy becomes.
    # Not "no-referrer": with it browsers post the form with `Origin: null`, which Django's CSRF check
    # refuses (issue 11.14). Our own pages may see the URL; our server has it already.
    response["Referrer-Policy"] = "same-origin"
    return response


# --- assignment rules ---------------------------------------------------------------------------------


@manager_required
def assignment_rules(request: HttpRequest) -> HttpResponse:
    membership = request.membership
    rules = list(AssignmentRule.objects.filter(lender=membership.lender).select_related("membership__user"))
    in_rotation = {r.membership_id for r in rules}
    candidates = [(pk, label) for pk, label in _team_choices(membership) if int(pk) not in in_rotation]
    form = AssignmentRuleForm(request.POST or None, members=candidates)
    if request.method == "POST" and form.is_valid():
        member = Membership.objects.filter(
            pk=form.cleaned_data["membership"], lender=membership.lender
        ).first()
        try:
            if member is None:
                raise ValidationError({"membership": "Choose a member of your team."})
            team.assignment_rule_save(
                actor=membership,
                member=member,
                states=form.state_list(),
                purposes=form.cleaned_data["purposes"],
                is_active=form.cleaned_data["is_active"],
            )
        except ValidationError as exc:
            _add_errors(form, exc)
        else:
            messages.success(request, f"{member_label(member.user)} joined the rotation.")
            return redirect("portal:assignment_rules")
    purpose_labels = dict(LoanPurpose.choices)
    for r in rules:
        r.label = member_label(r.membership.user)
        r.purpose_labels = [purpose_labels.get(p, p) for p in r.purposes]
    return render(
        request,
        "portal/assignment_rules.html",
        {
            "membership": membership,
            "nav": "assignment",
            "rules": rules,
            "form": form,
            "purposes": LoanPurpose.choices,
        },
        status=400 if request.method == "POST" else 200,
    )


@manager_required  # first: a visitor who is not signed in is sent to log in, whatever the method
@require_POST
def assignment_rule_update(request: HttpRequest, rule_id: int) -> HttpResponse:
    rule = (
        AssignmentRule.objects.select_related("membership")
        .filter(pk=rule_id, lender=request.membership.lender)
        .first()
    )
    if rule is None:
        raise Http404("No such rule.")
    if request.POST.get("action") == "delete":
        team.assignment_rule_delete(actor=request.membership, rule=rule)
        messages.success(request, "Removed from the rotation.")
        return redirect("portal:assignment_rules")
    states = [s for s in request.POST.get("states", "").replace(";", ",").replace(" ", ",").split(",") if s]
    try:
        team.assignment_rule_save(
            actor=request.membership,
            member=rule.membership,
            rule=rule,
            states=states,
            purposes=request.POST.getlist("purposes"),
            is_active=bool(request.POST.get("is_active")),
        )
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, "Rule saved.")
    return redirect("portal:assignment_rules")
