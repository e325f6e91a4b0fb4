"""Subscriptions (owners and managers): the lender's standing orders, with a live forecast of what an order
would buy, paused and resumed here."""

from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import Count
from django.http import Http404, HttpResponse, HttpResponseNotAllowed
from django.shortcuts import redirect, render

from lenders.models import Subscription
from lenders.services import (
    SUBSCRIPTION_FIELDS,
    subscription_save,
    subscription_set_active,
    subscription_validate,
)
from marketplace.analytics import (
    MIN_LEADS_FOR_WIN_ESTIMATE,
    PRICE_STEP,
    subscription_forecast,
)
from marketplace.models import PriceFloor
from marketplace.services import price_floor_for_terms

from .permissions import PortalRequest, manager_required
from .subscription_form import (
    NEW_SUBSCRIPTION_INITIAL,
    ZIP_SPLIT,
    SubscriptionForm,
)


@manager_required
def subscriptions(request: PortalRequest) -> HttpResponse:
    subs = (
        Subscription.objects.for_lender(request.membership.lender)
        .annotate(zip_count=Count("zip_rows"))
        .prefetch_related("state_rows")
        .order_by("-is_active", "name", "id")
    )
    return render(
        request,
        "portal/subscriptions.html",
        {
            "membership": request.membership,
            "nav": "subscriptions",
            "subscriptions": subs,
        },
    )


def _subscription_or_404(request: PortalRequest, subscription_id: int) -> Subscription:
    sub = Subscription.objects.for_lender(request.membership.lender).filter(pk=subscription_id).first()
    if sub is None:
        raise Http404("No such subscription.")
    return sub


# Errors on these keep the forecast from running: it answers only for terms the lender could save (issue
# 11.11: unlicensed states or a 5,000-mile radius must not answer at all). A price error only withholds the
# win estimate; errors elsewhere (an empty name while typing) do not matter to it.
FORECAST_FILTERS = frozenset(
    {
        "purposes",
        "states",
        "zip_codes",
        "radius_center_zip",
        "radius_miles",
        "min_credit_score",
        "min_loan_amount",
        "max_loan_amount",
        "max_ltv",
        "max_dti",
        "exclusive",
        "schedule_days",
        "schedule_start",
        "schedule_end",
    }
)


def _forecast(form: SubscriptionForm) -> dict[str, Any]:
    """The forecast for what the form says now (its posted values, else its initial values), once they pass
    the same validation a save does."""
    if form.is_bound:
        form.is_valid()
        v = dict(getattr(form, "parsed", form.cleaned_data))
        errors = set(form.errors)
    else:
        v = dict(form.initial)
        v["zip_codes"] = [z for z in ZIP_SPLIT.split(v.get("zip_codes") or "") if z]
        v["exclusive"] = v.get("exclusive") == "exclusive"
        v.setdefault("states", form.lender.licensed_states)
        data = {f: v.get(f) for f in SUBSCRIPTION_FIELDS}
        data["purposes"] = list(v.get("purposes") or [])
        data["schedule_days"] = "".join(v.get("schedule_days") or "0123456")
        try:
            subscription_validate(lender=form.lender, data=data, states=v["states"], zips=v["zip_codes"])
            errors = set()
        except ValidationError as exc:
            errors = set(exc.error_dict) if hasattr(exc, "error_dict") else {"__all__"}
    context: dict[str, Any] = {
        # Shown beside the price before the lender types one, and kept up to date as the terms change (the
        # forecast's answer carries it out of band): the least bid these purposes and states may carry.
        "floor": price_floor_for_terms(
            floors=list(PriceFloor.objects.all()),
            purposes=list(v.get("purposes") or []),
            states=list(v.get("states") or []),
            exclusive=bool(v.get("exclusive")),
        ),
        "forecast_exclusive": bool(v.get("exclusive")),
        "forecast_price": None,
        "forecast_min_leads": MIN_LEADS_FOR_WIN_ESTIMATE,
        "forecast_price_step": PRICE_STEP,
    }
    if errors & FORECAST_FILTERS:
        return {**context, "forecast": None}
    price = None if "price" in errors else v.get("price")
    days = v.get("schedule_days")
    result = subscription_forecast(
        lender_id=form.lender.pk,
        purposes=list(v.get("purposes") or []),
        states=list(v.get("states") or []),
        min_credit_score=v["min_credit_score"],
        zips=v.get("zip_codes") or [],
        radius_center_zip=v.get("radius_center_zip") or "",
        radius_miles=v.get("radius_miles"),
        min_loan_amount=v.get("min_loan_amount"),
        max_loan_amount=v.get("max_loan_amount"),
        max_ltv=v.get("max_ltv"),
        max_dti=v.get("max_dti"),
        schedule_days="".join(days) if days is not None else "0123456",
        schedule_start=v.get("schedule_start"),
        schedule_end=v.get("schedule_end"),
        exclusive=bool(v.get("exclusive")),
        price=price,
    )
    return {
        **context,
        "forecast": result,
        "forecast_price": price,
    }


def _subscription_form_page(
    request: PortalRequest, form: SubscriptionForm, sub: Subscription | None, status: int = 200
) -> HttpResponse:
    return render(
        request,
        "portal/subscription_form.html",
        {
            "membership": request.membership,
            "nav": "subscriptions",
            "form": form,
            "subscription": sub,
            **_forecast(form),
        },
        status=status,
    )


def _subscription_save(request: PortalRequest, sub: Subscription | None) -> HttpResponse:
    lender = request.membership.lender
    form = SubscriptionForm(request.POST, lender=lender, subscription=sub)
    if form.is_valid():
        try:
            saved = subscription_save(
                lender=lender,
                data=form.service_data(),
                states=form.cleaned_data["states"],
                zips=form.cleaned_data["zip_codes"],
                subscription=sub,
            )
        except ValidationError as exc:
            form.add_service_errors(exc)
        else:
            messages.success(request, f"Subscription “{saved.name}” saved.")
            return redirect("portal:subscriptions")
    return _subscription_form_page(request, form, sub, status=400)


@manager_required
def subscription_create(request: PortalRequest) -> HttpResponse:
    if request.method == "POST":
        return _subscription_save(request, None)
    form = SubscriptionForm(
        lender=request.membership.lender,
        initial={
            **NEW_SUBSCRIPTION_INITIAL,
            "states": request.membership.lender.licensed_states,
        },
    )
    return _subscription_form_page(request, form, None)


@manager_required
def subscription_edit(request: PortalRequest, subscription_id: int) -> HttpResponse:
    sub = _subscription_or_404(request, subscription_id)
    if request.method == "POST":
        return _subscription_save(request, sub)
    form = SubscriptionForm(lender=request.membership.lender, subscription=sub)
    return _subscription_form_page(request, form, sub)


@manager_required
def subscription_forecast_partial(request: PortalRequest) -> HttpResponse:
    """The forecast alone, for htmx to swap in beside the form as it changes."""
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    form = SubscriptionForm(request.POST, lender=request.membership.lender)
    return render(request, "portal/_forecast.html", {**_forecast(form), "floor_oob": True})


def _set_active(request: PortalRequest, subscription_id: int, active: bool) -> HttpResponse:
    sub = _subscription_or_404(request, subscription_id)
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    subscription_set_active(subscription=sub, active=active)
    messages.success(request, f"Subscription “{sub.name}” {'resumed' if active else 'paused'}.")
    return redirect("portal:subscriptions")


@manager_required
def subscription_pause(request: PortalRequest, subscription_id: int) -> HttpResponse:
    return _set_active(request, subscription_id, False)


@manager_required
def subscription_resume(request: PortalRequest, subscription_id: int) -> HttpResponse:
    return _set_active(request, subscription_id, True)
