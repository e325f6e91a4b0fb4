"""Access to the lender portal: every portal view runs as one active Membership, in its lender's time zone."""

from collections.abc import Callable
from functools import wraps
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from lenders.models import Membership


def membership_for_user(user) -> Membership | None:
    """The user's active membership with its lender, in one query; None when they have none."""
    if not user.is_authenticated:
        return None
    return Membership.objects.select_related("lender").filter(user=user, is_active=True).first()


def lender_zone(membership: Membership) -> ZoneInfo:
    try:
        return ZoneInfo(membership.lender.time_zone)
    except (ZoneInfoNotFoundError, ValueError):
        # A mistyped zone must not take the portal down; UTC is at least unambiguous.
        return ZoneInfo("UTC")


def member_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Run `view` with `request.membership` set, or send the visitor away.

    Anonymous visitors go to the login page. A signed-in user without an active membership (staff, or a
    deactivated loan officer) gets a 403 page saying so rather than a bare error or a login loop.
    Views render inside the lender's time zone so every time on the page is the lender's local time.
    """

    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        membership = membership_for_user(request.user)
        if membership is None:
            return render(request, "portal/no_membership.html", status=403)
        request.membership = membership  # type: ignore[attr-defined]
        with timezone.override(lender_zone(membership)):
            return view(request, *args, **kwargs)

    return wrapper


def manager_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """member_required, and the member must be an owner or a manager: officers get a 403 page.

    The team, invitations, assignment rules, subscriptions, billing and integrations are for the people who
    run the desk. The one decorator for every such page (one 403 page, portal/forbidden.html)."""

    @member_required
    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if not request.membership.sees_all_leads:  # type: ignore[attr-defined]
            return render(
                request,
                "portal/forbidden.html",
                {"membership": request.membership, "need": "an owner or a manager"},  # type: ignore[attr-defined]
                status=403,
            )
        return view(request, *args, **kwargs)

    return wrapper
