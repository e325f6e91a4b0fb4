"""The team (owners and managers): members and their roles, invitations, joining by invitation, and the
rules that hand new leads to officers in turn."""

from dataclasses import dataclass

from django.contrib import messages
from django.contrib.auth import get_user_model, login
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
)
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from leads.choices import LoanPurpose
from lenders import team
from lenders.models import AssignmentRule, Invitation, Membership

from .forms import (
    AcceptInvitationForm,
    AssignmentRuleForm,
    InvitationForm,
    MemberRoleForm,
    ProfileForm,
)
from .permissions import PortalRequest, manager_required, member_required
from .shared import add_errors, member_label, team_choices


@dataclass(frozen=True)
class MemberRow:
    """One line of the team page: the member, the name shown, and whether (and how) the viewer may edit it."""

    member: Membership
    label: str
    editable: bool
    role_form: MemberRoleForm


@dataclass(frozen=True)
class RuleRow:
    """One line of the rotation: the rule and the name of the member it hands leads to."""

    rule: AssignmentRule
    label: str


def _team_context(request: PortalRequest, invite_form: InvitationForm | None = None) -> dict:
    membership = request.membership
    roles = team.roles_assignable_by(membership)
    members = [
        MemberRow(
            member=m,
            label=member_label(m.user),
            editable=m.pk != membership.pk
            and (m.role != Membership.Role.OWNER or membership.role == Membership.Role.OWNER),
            role_form=MemberRoleForm(initial={"role": m.role}, roles=roles, auto_id=f"id_m{m.pk}_%s"),
        )
        for m in Membership.objects.filter(lender=membership.lender)
        .select_related("user")
        .order_by("-is_active", "role", "user__first_name", "user__username")
    ]
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
def team_page(request: PortalRequest) -> HttpResponse:
    if request.method == "POST":
        form = InvitationForm(request.POST, roles=team.roles_assignable_by(request.membership))
        if form.is_valid():
            try:
                inv = team.invitation_create(actor=request.membership, **form.cleaned_data)
            except ValidationError as exc:
                add_errors(form, exc)
            else:
                messages.success(
                    request, f"Invitation sent to {inv.email}. The link works once, for 72 hours."
                )
                return redirect("portal:team")
        return render(request, "portal/team.html", _team_context(request, form), status=400)
    return render(request, "portal/team.html", _team_context(request))


def _team_member_or_404(request: PortalRequest, member_id: int) -> Membership:
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
def member_update(request: PortalRequest, member_id: int) -> HttpResponse:
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


def _profile(request: PortalRequest, member: Membership) -> HttpResponse:
    """The profile form of `member` (the requester's own, or, for owners and managers, a team member's)."""
    own = member.pk == request.membership.pk
    initial = {
        "first_name": member.user.first_name,
        "last_name": member.user.last_name,
        "nmls_id": member.nmls_id,
        "phone": member.phone_display,
        "booking_url": member.booking_url,
    }
    form = ProfileForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            team.membership_profile_update(actor=request.membership, member=member, **form.cleaned_data)
        except ValidationError as exc:
            add_errors(form, exc)
        else:
            saved = "Your profile is saved." if own else f"{member_label(member.user)}'s profile is saved."
            messages.success(request, saved)
            return redirect("portal:profile" if own else "portal:team")
    context = {
        "membership": request.membership,
        "nav": "profile" if own else "team",
        "form": form,
        "member": member,
        "own": own,
    }
    return render(request, "portal/profile.html", context, status=400 if request.method == "POST" else 200)


@member_required
def profile(request: PortalRequest) -> HttpResponse:
    """Every member's own profile: the name, NMLS id, phone and booking link their letters sign with."""
    member = Membership.objects.select_related("user").get(pk=request.membership.pk)
    return _profile(request, member)


@manager_required
def member_profile(request: PortalRequest, member_id: int) -> HttpResponse:
    """An owner or manager fills in a team member's profile (a manager never an owner's: the service says)."""
    member = _team_member_or_404(request, member_id)
    if member.role == Membership.Role.OWNER and request.membership.role != Membership.Role.OWNER:
        # Refused before the form is shown, not only when it is sent (the service refuses it too).
        context = {"membership": request.membership, "need": "an owner"}
        return render(request, "portal/forbidden.html", context, status=403)
    return _profile(request, member)


@manager_required  # first: a visitor who is not signed in is sent to log in, whatever the method
@require_POST
def invitation_update(request: PortalRequest, invitation_id: int) -> HttpResponse:
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
def assignment_rules(request: PortalRequest) -> HttpResponse:
    membership = request.membership
    rules = list(AssignmentRule.objects.filter(lender=membership.lender).select_related("membership__user"))
    in_rotation = {r.membership_id for r in rules}
    candidates = [(pk, label) for pk, label in team_choices(membership) if int(pk) not in in_rotation]
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
            add_errors(form, exc)
        else:
            messages.success(request, f"{member_label(member.user)} joined the rotation.")
            return redirect("portal:assignment_rules")
    return render(
        request,
        "portal/assignment_rules.html",
        {
            "membership": membership,
            "nav": "assignment",
            "rules": [RuleRow(rule=r, label=member_label(r.membership.user)) for r in rules],
            "form": form,
            "purposes": LoanPurpose.choices,
        },
        status=400 if request.method == "POST" else 200,
    )


@manager_required  # first: a visitor who is not signed in is sent to log in, whatever the method
@require_POST
def assignment_rule_update(request: PortalRequest, rule_id: int) -> HttpResponse:
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
