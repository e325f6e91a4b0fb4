"""Actions on a lender's team: invitations, roles, deactivation, and the lead assignment rules.

Who may do what is decided here, not only in views: an officer manages nothing, a manager manages officers
and managers but never owners, and nobody can lock their lender out by deactivating or demoting the last
active owner (or themselves)."""

import hashlib
import secrets
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from core.tasking import enqueue_on_commit
from leads.choices import LoanPurpose

from .models import AssignmentRule, Invitation, Lender, Membership

INVITATION_TTL = timedelta(hours=72)
Role = Membership.Role


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def roles_assignable_by(membership: Membership) -> list[str]:
    """The roles this member may give: owners any, managers manager or officer, officers none."""
    if membership.role == Role.OWNER:
        return [Role.OWNER, Role.MANAGER, Role.OFFICER]
    if membership.role == Role.MANAGER:
        return [Role.MANAGER, Role.OFFICER]
    return []


def _require_manager(actor: Membership) -> None:
    if not actor.is_active or not actor.sees_all_leads:
        raise PermissionDenied("Only owners and managers manage the team.")


def _username_for(email: str) -> str:
    return email.strip().lower()


# --- invitations --------------------------------------------------------------------------------------


@transaction.atomic
def invitation_create(*, actor: Membership, email: str, role: str) -> Invitation:
    """Invite someone by e-mail; the e-mail (with its single-use link) is sent after commit by a task.

    The inviting lender is answered the same way whether or not the address already has a portal account
    (at any lender): saying so would tell every lender who works for its rivals. Only the address's owner
    learns it, from the e-mail (invitation_send)."""
    _require_manager(actor)
    email = email.strip().lower()
    if role not in roles_assignable_by(actor):
        message = "Only an owner can invite an owner." if role == Role.OWNER else "Choose a role."
        raise ValidationError({"role": message})
    now = timezone.now()
    # A new invitation replaces any still pending for the same address at this lender.
    Invitation.objects.filter(
        lender=actor.lender, email__iexact=email, accepted_at__isnull=True, revoked_at__isnull=True
    ).update(revoked_at=now)
    invitation = Invitation.objects.create(
        lender=actor.lender, email=email, role=role, invited_by=actor.user, expires_at=now + INVITATION_TTL
    )
    from . import tasks

    enqueue_on_commit(tasks.invitation_send, invitation.pk)
    return invitation


def invitation_send(*, invitation_id: int) -> bool:
    """Mint the invitation's token and e-mail the link, once. The token exists only in the e-mail: the row
    keeps its hash, so the task needs nothing but the id. Under the row lock a second run sees sent_at and
    stops; a run whose commit fails leaves no hash, so a link from a lost attempt never works."""
    with transaction.atomic():
        inv = (
            Invitation.objects.select_for_update(of=("self",))
            .select_related("lender", "invited_by")
            .filter(pk=invitation_id)
            .first()
        )
        if inv is None or inv.sent_at is not None or not inv.is_pending:
            return False
        inviter = inv.invited_by
        context = {
            "invitation": inv,
            "inviter": (inviter.get_full_name() or inviter.get_username()) if inviter else "",
            "login_url": settings.SITE_URL + reverse("portal:login"),
        }
        # An address that already has an account cannot accept (a user belongs to one lender): no link is
        # minted, and its owner is told why instead. The invitation looks the same to the inviter.
        has_account = get_user_model().objects.filter(username__iexact=_username_for(inv.email)).exists()
        template = "email/invitation_has_account" if has_account else "email/invitation"
        if not has_account:
            token = secrets.token_urlsafe(32)
            inv.token_hash = token_hash(token)
            context["url"] = settings.SITE_URL + reverse("portal:invitation_accept", args=[token])
        inv.sent_at = timezone.now()
        inv.save(update_fields=["token_hash", "sent_at"])
        message = EmailMultiAlternatives(
            subject=f"Join {inv.lender.name} on Lead Market",
            body=render_to_string(f"{template}.txt", context),
            to=[inv.email],
        )
        message.attach_alternative(render_to_string(f"{template}.html", context), "text/html")
        message.send()
    return True


def invitation_resend(*, actor: Membership, invitation: Invitation) -> Invitation:
    """A fresh link and a fresh 72 hours (the old link stops working)."""
    _require_manager(actor)
    if invitation.lender_id != actor.lender_id or invitation.accepted_at or invitation.revoked_at:
        raise ValidationError("This invitation can no longer be sent.")
    if invitation.role not in roles_assignable_by(actor):
        raise PermissionDenied("Only an owner can invite an owner.")
    with transaction.atomic():
        Invitation.objects.filter(pk=invitation.pk).update(
            sent_at=None, token_hash="", expires_at=timezone.now() + INVITATION_TTL
        )
        from . import tasks

        enqueue_on_commit(tasks.invitation_send, invitation.pk)
    return invitation


def invitation_revoke(*, actor: Membership, invitation: Invitation) -> None:
    _require_manager(actor)
    if invitation.role not in roles_assignable_by(actor):
        raise PermissionDenied("Only an owner can withdraw an owner's invitation.")
    Invitation.objects.filter(pk=invitation.pk, lender=actor.lender, accepted_at__isnull=True).update(
        revoked_at=timezone.now()
    )


def invitation_for_token(token: str) -> Invitation | None:
    """The pending invitation this link belongs to; None when it is unknown, used, withdrawn or expired."""
    if not token or len(token) > 100:
        return None
    inv = Invitation.objects.select_related("lender").filter(token_hash=token_hash(token)).first()
    return inv if inv is not None and inv.is_pending else None


@transaction.atomic
def invitation_accept(*, token: str, first_name: str, last_name: str, password: str):
    """Create the member's user and membership; the link works once. Returns the new user.

    The password has already passed Django's validators (SetPasswordForm) in the view."""
    inv = invitation_for_token(token)
    if inv is None:
        raise ValidationError("This invitation link has expired or was already used.")
    now = timezone.now()
    # The conditional update is the single-use guard: of two submissions only one changes the row.
    if not Invitation.objects.filter(pk=inv.pk, accepted_at__isnull=True, revoked_at__isnull=True).update(
        accepted_at=now
    ):
        raise ValidationError("This invitation link has expired or was already used.")
    User = get_user_model()
    if User.objects.filter(username__iexact=_username_for(inv.email)).exists():
        raise ValidationError("This person already has a portal account.")
    user = User.objects.create_user(
        username=_username_for(inv.email),
        email=inv.email,
        password=password,
        first_name=first_name.strip()[:150],
        last_name=last_name.strip()[:150],
    )
    Membership.objects.create(user=user, lender=inv.lender, role=inv.role)
    Invitation.objects.filter(pk=inv.pk).update(user=user)
    return user


# --- members ------------------------------------------------------------------------------------------


def _guard_change(actor: Membership, member: Membership) -> None:
    _require_manager(actor)
    if member.lender_id != actor.lender_id:
        raise PermissionDenied("Not a member of your team.")
    if member.pk == actor.pk:
        raise ValidationError("You cannot change your own role or access; ask another owner.")
    if member.role == Role.OWNER and actor.role != Role.OWNER:
        raise PermissionDenied("Only an owner can change an owner.")


@transaction.atomic
def membership_set_role(*, actor: Membership, member: Membership, role: str) -> Membership:
    _guard_change(actor, member)
    if role not in roles_assignable_by(actor):
        raise ValidationError({"role": "You cannot give that role."})
    Membership.objects.filter(pk=member.pk).update(role=role)
    member.role = role
    return member


@transaction.atomic
def membership_set_active(*, actor: Membership, member: Membership, active: bool) -> Membership:
    """Deactivate or reactivate a member. A deactivated member keeps their history (activity, leads) but
    the portal refuses them at once (member_required checks the membership on every request), and the
    assignment rotation skips them."""
    _guard_change(actor, member)
    Membership.objects.filter(pk=member.pk).update(is_active=active)
    member.is_active = active
    return member


@transaction.atomic
def membership_profile_update(
    *,
    actor: Membership,
    member: Membership,
    first_name: str,
    last_name: str,
    nmls_id: str,
    phone: str,
    booking_url: str,
) -> Membership:
    """Set a member's name and the details the letter and messages sign with (NMLS id, phone, booking link).

    A member edits their own; an owner or manager edits their team's, as they change roles (a manager never
    an owner's). The phone arrives as 10 digits (the form normalises it) and the NMLS id as its digits."""
    if member.pk != actor.pk:
        _require_manager(actor)
        if member.lender_id != actor.lender_id:
            raise PermissionDenied("Not a member of your team.")
        if member.role == Role.OWNER and actor.role != Role.OWNER:
            raise PermissionDenied("Only an owner can change an owner.")
    elif not actor.is_active:
        raise PermissionDenied("Your membership is not active.")
    if nmls_id and not (nmls_id.isdigit() and len(nmls_id) <= 12):
        raise ValidationError({"nmls_id": "An NMLS id is up to 12 digits, like 1234567."})
    if phone and not (phone.isdigit() and len(phone) == 10):
        raise ValidationError({"phone": "Enter a 10-digit US phone number, like (512) 555-0142."})
    user = member.user
    user.first_name, user.last_name = first_name.strip()[:150], last_name.strip()[:150]
    user.save(update_fields=["first_name", "last_name"])
    member.nmls_id, member.phone, member.booking_url = nmls_id, phone, booking_url.strip()
    member.save(update_fields=["nmls_id", "phone", "booking_url"])
    return member


# --- assignment rules ---------------------------------------------------------------------------------


def _clean_rule(lender: Lender, member: Membership, states: list[str], purposes: list[str]):
    if member.lender_id != lender.pk:
        raise ValidationError({"membership": "Choose a member of your team."})
    states = sorted({s.strip().upper() for s in states if s.strip()})
    bad = [s for s in states if len(s) != 2 or not s.isalpha()]
    if bad:
        raise ValidationError({"states": f"Use two-letter state codes (not {', '.join(bad)})."})
    licensed = set(lender.licenses.values_list("state", flat=True))
    unlicensed = sorted(set(states) - licensed)
    if unlicensed:
        raise ValidationError({"states": f"You are not licensed in {', '.join(unlicensed)}."})
    purposes = [p for p in LoanPurpose.values if p in set(purposes)]
    return states, purposes


@transaction.atomic
def assignment_rule_save(
    *,
    actor: Membership,
    member: Membership,
    states: list[str],
    purposes: list[str],
    is_active: bool = True,
    rule: AssignmentRule | None = None,
) -> AssignmentRule:
    """Put an officer in the rotation (or change their filters). One rule per member."""
    _require_manager(actor)
    states, purposes = _clean_rule(actor.lender, member, states, purposes)
    if rule is None:
        if AssignmentRule.objects.filter(membership=member).exists():
            raise ValidationError({"membership": "This member is already in the rotation; edit their rule."})
        last = AssignmentRule.objects.filter(lender=actor.lender).order_by("-position").first()
        position = last.position + 1 if last else 0
        rule = AssignmentRule(lender=actor.lender, membership=member, position=position)
    elif rule.lender_id != actor.lender_id:
        raise PermissionDenied("Not your lender's rule.")
    rule.states, rule.purposes, rule.is_active = states, purposes, is_active
    rule.save()
    return rule


def assignment_rule_delete(*, actor: Membership, rule: AssignmentRule) -> None:
    _require_manager(actor)
    AssignmentRule.objects.filter(pk=rule.pk, lender=actor.lender).delete()
