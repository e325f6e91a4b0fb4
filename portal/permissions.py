"""Access to the lender portal: every portal view runs as one active Membership, in its lender's time zone."""

from collections.abc import Callable
from functools import wraps
from typing import Concatenate, ParamSpec, cast
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.contrib.auth.models import User
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest
from django.http.response import HttpResponseBase
from django.shortcuts import render
from django.utils import timezone

from lenders.models import Membership

P = ParamSpec("P")


class PortalRequest(HttpRequest):
    """The request a portal view gets from member_required: a signed-in user and their active membership
    (with its lender). Annotate a view's `request` with it and mypy checks `request.membership.lender`."""

    user: User
    membership: Membership


PortalView = Callable[Concatenate[PortalRequest, P], HttpResponseBase]


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


def member_required(view: PortalView[P]) -> Callable[Concatenate[HttpRequest, P], HttpResponseBase]:
    """Run `view` with `request.membership` set, or send the visitor away.

    Anonymous visitors go to the login page. A signed-in user without an active membership (staff, or a
    deactivated loan officer) gets a 403 page saying so rather than a bare error or a login loop.
    Views render inside the lender's time zone so every time on the page is the lender's local time.
    """

    @wraps(view)
    def wrapper(request: HttpRequest, *args: P.args, **kwargs: P.kwargs) -> HttpResponseBase:
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        membership = membership_for_user(request.user)
        if membership is None:
            return render(request, "portal/no_membership.html", status=403)
        portal_request = cast(PortalRequest, request)  # the same object, from here on with its membership
        portal_request.membership = membership
        with timezone.override(lender_zone(membership)):
            return view(portal_request, *args, **kwargs)

    return wrapper


def manager_required(view: PortalView[P]) -> Callable[Concatenate[HttpRequest, P], HttpResponseBase]:
    """member_required, and the member must be an owner or a manager: officers get a 403 page.

    The team, invitations, assignment rules, subscriptions, billing and integrations are for the people who
    run the desk. The one decorator for every such page (one 403 page, portal/forbidden.html)."""

    @member_required
    @wraps(view)
    def wrapper(request: PortalRequest, *args: P.args, **kwargs: P.kwargs) -> HttpResponseBase:
        if not request.membership.sees_all_leads:
            return render(
                request,
                "portal/forbidden.html",
                {"membership": request.membership, "need": "an owner or a manager"},
                status=403,
            )
        return view(request, *args, **kwargs)

    return wrapper
