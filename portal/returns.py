"""Returns: asking for a bad lead's money back, and the list of returns with the month's return rate (every
member; an officer sees only the leads assigned to them)."""

from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone

from marketplace.models import MarketSettings, ReturnRequest
from marketplace.returns import (
    return_deadline,
    return_rate_rolling,
    return_request_create,
    returns_for_member,
)
from marketplace.selectors import delivery_get_for_member

from .forms import ReturnRequestForm
from .permissions import PortalRequest, member_required

RETURNS_PAGE_SIZE = 25


@member_required
def returns(request: PortalRequest) -> HttpResponse:
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
        context["rate"] = return_rate_rolling(lender_id=request.membership.lender_id)
        context["market"] = market
    return render(request, "portal/returns.html", context)


@member_required
def return_request(request: PortalRequest, delivery_id: int) -> HttpResponse:
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
                return_request_create(
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
        "portal/return_request.html",
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
