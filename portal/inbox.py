"""The inbox: the member's leads, live (htmx polls the rows), filtered, exportable as CSV."""

from collections.abc import Iterator
from datetime import timedelta

from django.core.paginator import Page, Paginator
from django.http import HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.utils import timezone

from compliance.models import ContactAccess
from compliance.services import contact_access_record_many
from core.clientip import client_ip
from core.csvexport import csv_response
from core.formfields import form_problems
from lenders.models import Membership, Subscription
from marketplace.models import Delivery
from marketplace.selectors import (
    followups_due_for_member,
    inbox_for_member,
    inbox_version,
)

from .forms import (
    InboxFilterForm,
)
from .permissions import PortalRequest, member_required
from .shared import ago, member_label

INBOX_PAGE_SIZE = 25
URGENT_AFTER = timedelta(minutes=5)  # leads reached within five minutes convert several times better


def _filter_form(request: PortalRequest, *, with_choices: bool) -> InboxFilterForm:
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


def _inbox_rows_context(request: PortalRequest, form: InboxFilterForm) -> dict:
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
def inbox(request: PortalRequest) -> HttpResponse:
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
def inbox_rows(request: PortalRequest) -> HttpResponse:
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


def _export_rows(deliveries) -> Iterator[tuple]:
    fmt = "%Y-%m-%d %H:%M"
    for d in deliveries:
        lead, consumer = d.lead, d.lead.consumer
        yield (
            timezone.localtime(d.created_at).strftime(fmt),
            d.pk,
            lead.reference,
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


@member_required
def inbox_export(request: PortalRequest) -> HttpResponse | StreamingHttpResponse:
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
    stamp = timezone.localdate().isoformat()
    return csv_response(
        filename=f"leads-{stamp}.csv", header=EXPORT_HEADER, rows=_export_rows(qs.iterator(chunk_size=2000))
    )
