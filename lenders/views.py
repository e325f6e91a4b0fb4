"""The lender portal: an inbox of delivered leads and a page to work each one. Views stay thin: reads go
through marketplace.selectors (scoped to the member's lender), writes through marketplace.services."""

from datetime import datetime

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Page, Paginator
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.shortcuts import redirect, render
from django.utils import timezone

from leads.choices import Product
from marketplace.models import Delivery
from marketplace.selectors import delivery_get_for_member, inbox_for_member
from marketplace.services import delivery_next_statuses, delivery_set_status

from .forms import DeliveryStatusForm, InboxFilterForm
from .permissions import member_required

INBOX_PAGE_SIZE = 25


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


def _inbox_page(request: HttpRequest) -> dict:
    form = InboxFilterForm(request.GET or None)
    status = q = ""
    if form.is_valid():
        status, q = form.cleaned_data["status"], form.cleaned_data["q"].strip()
    qs = inbox_for_member(membership=request.membership, status=status, q=q)
    page: Page = Paginator(qs, INBOX_PAGE_SIZE).get_page(request.GET.get("page"))
    now = timezone.now()
    rows = list(page.object_list)
    for d in rows:
        d.age = ago(d.created_at, now)
    # Page links keep the filters; the htmx refresh keeps filters and the page the lender is on.
    filters = request.GET.copy()
    filters.pop("page", None)
    return {
        "membership": request.membership,
        "nav": "inbox",
        "filter_form": form,
        "page_obj": page,
        "deliveries": rows,
        "filter_query": filters.urlencode(),
        "refresh_query": request.GET.urlencode(),
        "filtered": bool(status or q),
    }


@member_required
def inbox(request: HttpRequest) -> HttpResponse:
    return render(request, "portal/inbox.html", _inbox_page(request))


@member_required
def inbox_rows(request: HttpRequest) -> HttpResponse:
    """The list alone, for htmx to swap in every few seconds so new deliveries appear without a reload."""
    return render(request, "portal/_inbox_rows.html", _inbox_page(request))


def _delivery_or_404(request: HttpRequest, delivery_id: int) -> Delivery:
    delivery = delivery_get_for_member(membership=request.membership, delivery_id=delivery_id)
    if delivery is None:
        # Another lender's lead, or an officer's colleague's: indistinguishable from a lead that never was.
        raise Http404("No such lead.")
    return delivery


def _status_form(data=None, *, status: str) -> DeliveryStatusForm:
    # Each move is its own small form on the page, so each needs its own element ids.
    prefix = status if status in Delivery.Status.values else "move"
    return DeliveryStatusForm(data, initial={"status": status}, auto_id=f"id_{prefix}_%s")


def _detail_context(
    request: HttpRequest, delivery: Delivery, posted: DeliveryStatusForm | None = None
) -> dict:
    lead = delivery.lead
    posted_status = posted.data.get("status") if posted is not None else None
    moves = []
    for status in delivery_next_statuses(delivery):
        form = posted if posted_status == status else _status_form(status=status)
        moves.append({"status": status, "label": Delivery.Status(status).label, "form": form})
    qualification = lead.qualification or {}
    product_labels = dict(Product.choices)
    results = [
        {**r, "label": product_labels.get(r.get("product", ""), r.get("product", ""))}
        for r in qualification.get("results", [])
        if isinstance(r, dict)
    ]
    return {
        "membership": request.membership,
        "nav": "inbox",
        "delivery": delivery,
        "lead": lead,
        "consumer": lead.consumer,
        # A lead bought before consent was recorded has none; show that plainly instead of failing.
        "consent": getattr(lead, "consent", None),
        "products": [product_labels.get(p, p) for p in lead.products or []],
        "results": results,
        "reasons": qualification.get("reasons", []),
        "moves": moves,
        # Errors of a posted move that is no longer offered (e.g. someone else moved the lead meanwhile).
        "stray_form": (
            posted if posted is not None and posted_status not in {m["status"] for m in moves} else None
        ),
    }


@member_required
def delivery_detail(request: HttpRequest, delivery_id: int) -> HttpResponse:
    delivery = _delivery_or_404(request, delivery_id)
    return render(request, "portal/delivery_detail.html", _detail_context(request, delivery))


@member_required
def delivery_status(request: HttpRequest, delivery_id: int) -> HttpResponse:
    # Look the lead up before checking the method, so another lender's id is a 404 whatever the method.
    delivery = _delivery_or_404(request, delivery_id)
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    form = _status_form(request.POST, status=request.POST.get("status", ""))
    if form.is_valid():
        try:
            delivery_set_status(
                delivery=delivery,
                status=form.cleaned_data["status"],
                funded_amount=form.cleaned_data["funded_amount"],
                lost_reason=form.cleaned_data["lost_reason"],
            )
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            messages.success(request, f"Lead moved to {delivery.get_status_display()}.")
            return redirect("portal:delivery_detail", delivery_id=delivery.pk)
    context = _detail_context(request, delivery, form)
    return render(request, "portal/delivery_detail.html", context, status=400)
