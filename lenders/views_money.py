"""Portal pages for subscriptions, billing, returns and analytics. Views stay thin: reads go through
selectors (billing.selectors, marketplace.analytics), writes through services, all scoped to the member's
lender. Subscriptions and billing are for owners and managers; returns and analytics are for every member,
officers seeing only the leads assigned to them."""

import csv
from collections.abc import Callable, Iterable, Iterator
from decimal import Decimal
from functools import wraps
from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db.models import Count
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone

from billing.models import Account, LedgerEntry, ReturnRequest
from billing.selectors import ledger_for_account, return_rate_for_month, returns_for_member
from billing.services import (
    account_set_low_balance_threshold,
    return_deadline,
)
from billing.services import (
    return_request as return_request_service,
)
from marketplace.analytics import (
    BREAKDOWNS,
    MIN_LEADS_FOR_WIN_ESTIMATE,
    PRICE_STEP,
    Row,
    analytics_report,
    subscription_forecast,
)
from marketplace.formfields import form_problems
from marketplace.models import MarketSettings
from marketplace.selectors import delivery_get_for_member

from .forms_money import (
    NEW_SUBSCRIPTION_INITIAL,
    ZIP_SPLIT,
    AnalyticsFilterForm,
    LowBalanceThresholdForm,
    ReturnRequestForm,
    SubscriptionForm,
)
from .models import Subscription
from .permissions import member_required
from .services import SUBSCRIPTION_FIELDS, subscription_save, subscription_set_active, subscription_validate

LEDGER_PAGE_SIZE = 50
RETURNS_PAGE_SIZE = 25


def manager_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """member_required, and the member must be an owner or a manager: officers get a 403 page."""

    @member_required
    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not request.membership.sees_all_leads:
            context = {"membership": request.membership}
            return render(request, "portal/money/forbidden.html", context, status=403)
        return view(request, *args, **kwargs)

    return wrapper


def _csv_safe(value: Any) -> Any:
    """Neutralise spreadsheet formulas in text cells (CSV injection): a leading = + - @ tab or CR is quoted.
    Numbers stay numbers, so a negative amount is still a number in the spreadsheet."""
    if isinstance(value, str) and value and value[0] in "=+-@\t\r":
        return "'" + value
    return value


class _Echo:
    def write(self, value: str) -> str:
        return value


def _csv_response(filename: str, header: list[str], rows: Iterable[Iterable[Any]]) -> StreamingHttpResponse:
    writer = csv.writer(_Echo())

    def lines() -> Iterator[str]:
        yield writer.writerow(header)
        for row in rows:
            yield writer.writerow([_csv_safe(v) for v in row])

    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


# --- subscriptions ------------------------------------------------------------------------------------


@manager_required
def subscriptions(request: HttpRequest) -> HttpResponse:
    subs = (
        Subscription.objects.for_lender(request.membership.lender)
        .annotate(zip_count=Count("zip_rows"))
        .prefetch_related("state_rows")
        .order_by("-is_active", "name", "id")
    )
    return render(
        request,
        "portal/money/subscriptions.html",
        {
            "membership": request.membership,
            "nav": "subscriptions",
            "subscriptions": subs,
        },
    )


def _subscription_or_404(request: HttpRequest, subscription_id: int) -> Subscription:
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
        data.update(
            {f"purpose_{p}": p in (v.get("purposes") or []) for p in ("purchase", "refinance", "home_equity")}
        )
        data["schedule_days"] = "".join(v.get("schedule_days") or "0123456")
        try:
            subscription_validate(lender=form.lender, data=data, states=v["states"], zips=v["zip_codes"])
            errors = set()
        except ValidationError as exc:
            errors = set(exc.error_dict) if hasattr(exc, "error_dict") else {"__all__"}
    context: dict[str, Any] = {
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
    request: HttpRequest, form: SubscriptionForm, sub: Subscription | None, status: int = 200
) -> HttpResponse:
    return render(
        request,
        "portal/money/subscription_form.html",
        {
            "membership": request.membership,
            "nav": "subscriptions",
            "form": form,
            "subscription": sub,
            **_forecast(form),
        },
        status=status,
    )


def _subscription_save(request: HttpRequest, sub: Subscription | None) -> HttpResponse:
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
def subscription_create(request: HttpRequest) -> HttpResponse:
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
def subscription_edit(request: HttpRequest, subscription_id: int) -> HttpResponse:
    sub = _subscription_or_404(request, subscription_id)
    if request.method == "POST":
        return _subscription_save(request, sub)
    form = SubscriptionForm(lender=request.membership.lender, subscription=sub)
    return _subscription_form_page(request, form, sub)


@manager_required
def subscription_forecast_partial(request: HttpRequest) -> HttpResponse:
    """The forecast alone, for htmx to swap in beside the form as it changes."""
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    form = SubscriptionForm(request.POST, lender=request.membership.lender)
    return render(request, "portal/money/_forecast.html", _forecast(form))


def _set_active(request: HttpRequest, subscription_id: int, active: bool) -> HttpResponse:
    sub = _subscription_or_404(request, subscription_id)
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    subscription_set_active(subscription=sub, active=active)
    messages.success(request, f"Subscription “{sub.name}” {'resumed' if active else 'paused'}.")
    return redirect("portal:subscriptions")


@manager_required
def subscription_pause(request: HttpRequest, subscription_id: int) -> HttpResponse:
    return _set_active(request, subscription_id, False)


@manager_required
def subscription_resume(request: HttpRequest, subscription_id: int) -> HttpResponse:
    return _set_active(request, subscription_id, True)


# --- billing ------------------------------------------------------------------------------------------


def _account(request: HttpRequest) -> Account:
    account = Account.objects.filter(lender=request.membership.lender).first()
    if account is None:
        raise Http404("No account yet.")
    return account


@manager_required
def billing(request: HttpRequest) -> HttpResponse:
    account = _account(request)
    form = LowBalanceThresholdForm(initial={"low_balance_threshold": account.low_balance_threshold})
    if request.method == "POST":
        form = LowBalanceThresholdForm(request.POST)
        if form.is_valid():
            try:
                account_set_low_balance_threshold(
                    account_id=account.pk, threshold=form.cleaned_data["low_balance_threshold"]
                )
            except ValidationError as exc:
                form.add_error("low_balance_threshold", exc.messages)
            else:
                messages.success(request, "Low-balance threshold saved.")
                return redirect("portal:billing")
    page = Paginator(ledger_for_account(account=account), LEDGER_PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "portal/money/billing.html",
        {
            "membership": request.membership,
            "nav": "billing",
            "account": account,
            "page_obj": page,
            "entries": page.object_list,
            "threshold_form": form,
            "low": account.balance < account.low_balance_threshold,
        },
        status=400 if form.is_bound and form.errors else 200,
    )


@manager_required
def billing_csv(request: HttpRequest) -> StreamingHttpResponse:
    account = _account(request)
    entries = ledger_for_account(account=account).values_list(
        "created_at", "kind", "amount", "balance_after", "memo"
    )
    kinds = dict(LedgerEntry.Kind.choices)
    tz = timezone.get_current_timezone()

    def rows() -> Iterator[list[Any]]:
        for created, kind, amount, balance_after, memo in entries.iterator(chunk_size=2000):
            yield [
                created.astimezone(tz).isoformat(timespec="seconds"),
                kinds.get(kind, kind),
                amount,
                balance_after,
                memo,
            ]

    today = timezone.localdate().isoformat()
    return _csv_response(f"ledger-{today}.csv", ["time", "entry", "amount", "balance after", "memo"], rows())


# --- returns ------------------------------------------------------------------------------------------


@member_required
def returns(request: HttpRequest) -> HttpResponse:
    page = Paginator(returns_for_member(membership=request.membership), RETURNS_PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    context: dict[str, Any] = {
        "membership": request.membership,
        "nav": "returns",
        "page_obj": page,
        "returns": page.object_list,
    }
    if request.membership.sees_all_leads:
        market = MarketSettings.load()
        context["rate"] = return_rate_for_month(lender_id=request.membership.lender_id, when=timezone.now())
        context["market"] = market
    return render(request, "portal/money/returns.html", context)


@member_required
def return_request(request: HttpRequest, delivery_id: int) -> HttpResponse:
    delivery = delivery_get_for_member(membership=request.membership, delivery_id=delivery_id)
    if delivery is None:
        raise Http404("No such lead.")
    existing = ReturnRequest.objects.filter(delivery=delivery).first()
    market = MarketSettings.load()
    deadline = return_deadline(delivery=delivery, window_days=market.return_window_days)
    form = ReturnRequestForm(request.POST or None)
    status = 200
    if request.method == "POST" and existing is None:
        if form.is_valid():
            try:
                return_request_service(
                    delivery=delivery,
                    user=request.user,
                    reason=form.cleaned_data["reason"],
                    note=form.cleaned_data["note"],
                )
            except ValidationError as exc:
                if hasattr(exc, "error_dict"):
                    for field, errors in exc.error_dict.items():
                        form.add_error(field if field in form.fields else None, errors)
                else:
                    form.add_error(None, exc)
            else:
                messages.success(request, "Return requested. Staff decide it, usually within a business day.")
                return redirect("portal:return_request", delivery_id=delivery.pk)
        status = 400
    return render(
        request,
        "portal/money/return_request.html",
        {
            "membership": request.membership,
            "nav": "returns",
            "delivery": delivery,
            "lead": delivery.lead,
            "existing": existing,
            "form": form,
            "deadline": deadline,
            "window_open": timezone.now() <= deadline,
            "market": market,
        },
        status=status,
    )


# --- analytics ----------------------------------------------------------------------------------------


def _bars(rows: list[Row], attr: str) -> list[dict[str, Any]]:
    values = [getattr(r, attr) or 0 for r in rows]
    top = max(values, default=0) or 1
    return [
        {"label": r.label, "value": getattr(r, attr), "width": f"{(Decimal(v) * 100 / Decimal(top)):.1f}"}
        for r, v in zip(rows, values, strict=True)
    ]


def _range_form(request: HttpRequest) -> AnalyticsFilterForm:
    return AnalyticsFilterForm(request.GET or None, initial=AnalyticsFilterForm.defaults())


def _report(request: HttpRequest, form: AnalyticsFilterForm) -> Any:
    v = form.values()
    return analytics_report(
        membership=request.membership, start=v["start"], end=v["end"], revenue_per_funded=v["revenue"]
    )


@member_required
def analytics(request: HttpRequest) -> HttpResponse:
    form = _range_form(request)
    report = _report(request, form)
    titles = dict(BREAKDOWNS)
    sections = [
        {"key": kind, "title": titles[kind], "rows": rows, "bars": _bars(rows, "application_rate")}
        for kind, rows in report.breakdowns.items()
    ]
    return render(
        request,
        "portal/money/analytics.html",
        {
            "membership": request.membership,
            "nav": "analytics",
            "form": form,
            "report": report,
            "total": report.total,
            "sections": sections,
            "bucket_bars": _bars(report.buckets, "application_rate"),
            "query": request.GET.urlencode(),
        },
        # A range given but refused: the default range is shown with the reason beside the field, and the
        # 400 keeps anything from taking it for the answer.
        status=400 if form.refused() else 200,
    )


@member_required
def analytics_csv(request: HttpRequest) -> HttpResponse:
    form = _range_form(request)
    if form.refused():
        # A file of another range than asked would be worse than none.
        return HttpResponse(form_problems(form), status=400, content_type="text/plain; charset=utf-8")
    report = _report(request, form)
    titles = dict(BREAKDOWNS)
    bucket_title = "Response time"
    header = [
        "breakdown",
        "group",
        "leads",
        "spend",
        "cost per lead",
        "contact rate %",
        "median first contact (s)",
        "application rate %",
        "funded rate %",
        "cost per funded",
        "average funded loan",
        "ROI %",
        "break-even conversion %",
    ]

    def line(title: str, r: Row) -> list[Any]:
        median = "" if r.median_contact_seconds is None else round(r.median_contact_seconds)
        return [
            title,
            r.label,
            r.leads,
            r.spend,
            r.cost_per_lead,
            r.contact_rate,
            median,
            r.application_rate,
            r.funded_rate,
            r.cost_per_funded,
            r.average_funded_amount,
            r.roi,
            r.break_even,
        ]

    rows = [line("Total", report.total)]
    for kind, group in report.breakdowns.items():
        rows += [line(titles[kind], r) for r in group]
    rows += [line(bucket_title, r) for r in report.buckets]
    rows = [["" if v is None else v for v in r] for r in rows]
    return _csv_response(f"lead-analytics-{report.start}-to-{report.end}.csv", header, rows)
