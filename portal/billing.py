"""Billing (owners and managers): the account's balance and ledger (pages and CSV), and the low-balance
warning line."""

from collections.abc import Iterator
from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone

from billing.models import Account, LedgerEntry
from billing.selectors import ledger_for_account
from billing.services import account_set_low_balance_threshold
from core.csvexport import csv_response
from core.paging import BadCursor, keyset_page

from .forms import LowBalanceThresholdForm
from .permissions import PortalRequest, manager_required

LEDGER_PAGE_SIZE = 50


def _account(request: PortalRequest) -> Account:
    account = Account.objects.filter(lender=request.membership.lender).first()
    if account is None:
        raise Http404("No account yet.")
    return account


@manager_required
def billing(request: PortalRequest) -> HttpResponse:
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
    try:
        # Keyset pages: the 1,000th page of a 100,000-entry ledger is one index range, and no page counts
        # the whole ledger.
        page = keyset_page(
            ledger_for_account(account=account),
            size=LEDGER_PAGE_SIZE,
            older_than=request.GET.get("older_than", ""),
            newer_than=request.GET.get("newer_than", ""),
        )
    except BadCursor as exc:
        messages.error(request, str(exc))
        page, bad_cursor = keyset_page(ledger_for_account(account=account), size=LEDGER_PAGE_SIZE), True
    else:
        bad_cursor = False
    return render(
        request,
        "portal/billing.html",
        {
            "membership": request.membership,
            "nav": "billing",
            "account": account,
            "page_obj": page,
            "entries": page.object_list,
            "threshold_form": form,
            "low": account.balance < account.low_balance_threshold,
        },
        status=400 if (form.is_bound and form.errors) or bad_cursor else 200,
    )


@manager_required
def billing_csv(request: PortalRequest) -> StreamingHttpResponse:
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
    header = ["time", "entry", "amount", "balance after", "memo"]
    return csv_response(filename=f"ledger-{today}.csv", header=header, rows=rows())
