"""Analytics: what the member's leads cost and earned, by breakdown and by response time (page and CSV)."""

import dataclasses
from datetime import datetime, time, timedelta
from decimal import Decimal
from typing import Any

from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.utils import timezone

from core.csvexport import csv_response
from core.formfields import form_problems
from integrations.outreach.selectors import CallTaskCounts, call_task_counts
from marketplace.analytics import (
    BREAKDOWNS,
    Row,
    analytics_report,
    analytics_team_total,
    humanize_seconds,
)
from marketplace.selectors import deliveries_for_member
from marketplace.services import market_settings_current
from marketplace.speed import lender_speed_of

from .forms import AnalyticsFilterForm
from .permissions import PortalRequest, member_required


def _bars(rows: list[Row], attr: str) -> list[dict[str, Any]]:
    values = [getattr(r, attr) or 0 for r in rows]
    top = max(values, default=0) or 1
    return [
        {"label": r.label, "value": getattr(r, attr), "width": f"{(Decimal(v) * 100 / Decimal(top)):.1f}"}
        for r, v in zip(rows, values, strict=True)
    ]


def _range_form(request: HttpRequest) -> AnalyticsFilterForm:
    return AnalyticsFilterForm(request.GET or None, initial=AnalyticsFilterForm.defaults())


def _report(request: PortalRequest, form: AnalyticsFilterForm) -> Any:
    v = form.values()
    return analytics_report(
        membership=request.membership, start=v["start"], end=v["end"], revenue_per_funded=v["revenue"]
    )


def _call_tasks(request: PortalRequest, report: Any) -> CallTaskCounts:
    """The sequences' call tasks on the leads of the range (issue 15.3): due, done, missed."""
    tz = timezone.get_current_timezone()
    lo = datetime.combine(report.start, time.min, tzinfo=tz)
    hi = datetime.combine(report.end + timedelta(days=1), time.min, tzinfo=tz)
    leads = deliveries_for_member(membership=request.membership).filter(created_at__gte=lo, created_at__lt=hi)
    return call_task_counts(deliveries=leads, now=timezone.now())


def _speed(request: PortalRequest) -> dict[str, Any] | None:
    speed = lender_speed_of(lender_id=request.membership.lender_id)
    if speed is None or speed.rank is None:
        return None
    return {"median": humanize_seconds(speed.median_seconds), "rank": speed.rank, "ranked": speed.ranked}


@member_required
def analytics(request: PortalRequest) -> HttpResponse:
    form = _range_form(request)
    report = _report(request, form)
    titles = dict(BREAKDOWNS)
    sections = [
        {"key": kind, "title": titles[kind], "rows": rows, "bars": _bars(rows, "application_rate")}
        for kind, rows in report.breakdowns.items()
    ]
    team = None
    if not request.membership.sees_all_leads:
        # The officer's view: their own leads, measured against the whole desk's speed and conversion.
        team = analytics_team_total(
            lender_id=request.membership.lender_id,
            start=report.start,
            end=report.end,
            revenue_per_funded=report.revenue_per_funded,
        )
    return render(
        request,
        "portal/analytics.html",
        {
            "call_tasks": _call_tasks(request, report),
            # The lender's 30-day median and rank among lenders: what wins it close bids (issue 16.6).
            "speed": _speed(request),
            "speed_margin": market_settings_current().speed_margin_percent,
            "membership": request.membership,
            "nav": "analytics",
            "form": form,
            "report": report,
            "total": report.total,
            "sections": sections,
            "team": team,
            "team_rows": [dataclasses.replace(report.total, label="You"), team] if team else [],
            "bucket_bars": _bars(report.buckets, "application_rate"),
            "query": request.GET.urlencode(),
        },
        # A range given but refused: the default range is shown with the reason beside the field, and the
        # 400 keeps anything from taking it for the answer.
        status=400 if form.refused() else 200,
    )


@member_required
def analytics_csv(request: PortalRequest) -> HttpResponse | StreamingHttpResponse:
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
        "median first contact (s, estimated)",
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
    filename = f"lead-analytics-{report.start}-to-{report.end}.csv"
    return csv_response(filename=filename, header=header, rows=rows)
