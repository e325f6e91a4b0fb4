"""The inbox: the member's leads, live (htmx polls the rows), filtered, exportable as CSV."""

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.paginator import Page
from django.http import Http404, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.utils import timezone

from compliance.models import ContactAccess
from compliance.services import contact_access_record_query
from core.clientip import client_ip
from core.csvexport import csv_response
from core.formfields import form_problems
from core.paging import CappedPaginator
from integrations.exports import inbox_export_chunks, inbox_export_for_download, inbox_export_request
from lenders.models import Membership, Subscription
from marketplace.models import Delivery
from marketplace.selectors import (
    INBOX_EXPORT_HEADER,
    followups_due_for_member,
    inbox_export_rows,
    inbox_for_member,
    inbox_page,
    inbox_version,
)

from .forms import (
    InboxFilterForm,
)
from .permissions import PortalRequest, member_required
from .shared import ago, member_label, response_time

INBOX_PAGE_SIZE = 25
# The list counts this many leads at most ("more than 10,000"), and pages run to there (400 pages): the count
# then costs the same at any size. Older leads are a date filter away.
INBOX_COUNT_CAP = 10_000
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
    # The version first: a change made while the page is read shows at the next refresh.
    version = inbox_version(lender_id=request.membership.lender_id)
    qs = inbox_for_member(membership=request.membership, filters=filters)
    paginator = CappedPaginator(qs, INBOX_PAGE_SIZE, cap=INBOX_COUNT_CAP)
    page: Page = paginator.get_page(request.GET.get("page"))  # counts the filtered list (the inbox index)
    now = timezone.now()
    # Any: each row gets the display attributes set below.
    rows: list[Any] = inbox_page(qs, offset=(page.number - 1) * INBOX_PAGE_SIZE, limit=INBOX_PAGE_SIZE)
    for d in rows:
        d.age = ago(d.created_at, now)
        d.awaiting_contact = d.first_contact_at is None and d.status == Delivery.Status.NEW
        d.urgent = d.awaiting_contact and now - d.created_at >= URGENT_AFTER
        # The waiting clock stops at the first contact: the row says how long it took, and stops ticking.
        d.response_time = response_time(delivered=d.created_at, first_contact=d.first_contact_at)
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
    # The poll of every open inbox tab, every 5 s: one probe of an index, no count, unless something changed.
    if request.GET.get("since") == inbox_version(lender_id=request.membership.lender_id):
        return HttpResponse(status=204)
    return render(request, "portal/_inbox_rows.html", _inbox_rows_context(request, form))


@member_required
def inbox_export(request: PortalRequest) -> HttpResponse | StreamingHttpResponse:
    """The member's leads under the current filters as CSV. Up to INBOX_EXPORT_MAX_ROWS it streams from
    here: one INSERT … SELECT logs the contact-details access, then the rows go out as they are read (first
    byte at once, memory flat). A larger export goes to a Celery task that e-mails a link, and the page says
    so: no request depends on the web server's timeout."""
    form = _filter_form(request, with_choices=False)
    if _filters_refused(form):
        return HttpResponse(form_problems(form), status=400, content_type="text/plain; charset=utf-8")
    filters = form.filters()
    qs = inbox_for_member(membership=request.membership, filters=filters)
    rows = qs.count()
    if rows > settings.INBOX_EXPORT_MAX_ROWS:
        inbox_export_request(
            membership=request.membership, filters=filters, path=request.path, ip_address=client_ip(request)
        )
        context = {
            "membership": request.membership,
            "nav": "inbox",
            "rows": rows,
            "email": request.user.email,
        }
        return render(request, "portal/inbox_export_queued.html", context, status=202)
    contact_access_record_query(
        lead_ids=qs.values("lead_id"),
        channel=ContactAccess.Channel.EXPORT,
        user=request.user,
        lender_id=request.membership.lender_id,
        path=request.path,
        ip_address=client_ip(request),
    )
    stamp = timezone.localdate().isoformat()
    return csv_response(filename=f"leads-{stamp}.csv", header=INBOX_EXPORT_HEADER, rows=inbox_export_rows(qs))


@member_required
def inbox_export_download(request: PortalRequest, token: str) -> StreamingHttpResponse:
    """A large export, from the link its e-mail gave: to the member who asked only, until it expires."""
    export = inbox_export_for_download(token=token, membership=request.membership)
    if export is None:
        raise Http404("No such export, or its link has expired.")
    response = StreamingHttpResponse(inbox_export_chunks(export), content_type="text/csv; charset=utf-8")
    stamp = timezone.localtime(export.created_at).date().isoformat()
    response["Content-Disposition"] = f'attachment; filename="leads-{stamp}.csv"'
    response["Cache-Control"] = "no-store"
    return response
