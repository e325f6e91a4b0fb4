"""Small helpers the portal's pages share: how a person, an age and a response time are shown, the team as
choices, a service's ValidationError put on a form."""

from datetime import datetime

from django.core.exceptions import ValidationError

from lenders.models import Membership


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


def duration(seconds: float) -> str:
    """An elapsed time in words an officer reads at a glance: "40 s", "3 min 20 s", "34 min", "2 h 5 min",
    "3 d 4 h". Seconds are kept while they matter (speed to lead is judged in the first minutes)."""
    s = max(int(seconds), 0)
    if s < 60:
        return f"{s} s"
    if s < 600:
        return f"{s // 60} min {s % 60} s" if s % 60 else f"{s // 60} min"
    if s < 3600:
        return f"{s // 60} min"
    if s < 86400:
        return f"{s // 3600} h {s % 3600 // 60} min" if s % 3600 // 60 else f"{s // 3600} h"
    return f"{s // 86400} d {s % 86400 // 3600} h" if s % 86400 // 3600 else f"{s // 86400} d"


def response_time(*, delivered: datetime, first_contact: datetime | None) -> str | None:
    """How long the lead waited for its first call, e-mail or text, in words; None while it still waits."""
    if first_contact is None:
        return None
    return duration((first_contact - delivered).total_seconds())


def member_label(user) -> str:
    return user.get_full_name() or user.get_username()


def team_choices(membership: Membership) -> list[tuple[str, str]]:
    members = Membership.objects.filter(lender=membership.lender, is_active=True).select_related("user")
    return [
        (str(m.pk), f"{member_label(m.user)} ({m.get_role_display()})")
        for m in members.order_by("user__first_name", "user__username")
    ]


def add_errors(form, exc: ValidationError) -> None:
    if hasattr(exc, "error_dict"):
        for field, errors in exc.error_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, exc)
