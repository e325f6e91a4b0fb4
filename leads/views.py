"""Public pages: the consumer's request form, and the result page that follows the lead to its outcome."""

from __future__ import annotations

from datetime import timedelta
from decimal import ROUND_DOWN, ROUND_UP, Decimal, InvalidOperation
from typing import Any
from uuid import UUID

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods

from core import ratelimit, staffconfig
from core.clientip import client_ip

from .choices import LeadStatus
from .consent import CONSENT_TEXT
from .forms import LeadForm, money
from .links import result_link_read
from .models import Lead
from .selectors import lead_buyers_at_most, lead_contacts, lead_get_public
from .services import LeadInputError, lead_submit

# The worker is still deciding: the page polls. `qualified` already has an estimate to show but is still
# being offered to lenders, so it polls too until sold or unsold.
PENDING = frozenset({LeadStatus.RECEIVED, LeadStatus.QUALIFIED})
# Past this the worker is clearly stuck (the sweeper will push it on); stop polling and say so kindly
# rather than spin in an open tab for hours.
POLL_FOR = timedelta(minutes=10)

PRODUCT_NAMES = {
    "conventional": "Conventional",
    "fha": "FHA",
    "va": "VA",
    "jumbo": "Jumbo",
    "home_equity": "Home equity line of credit",
}

# What tends to help, by what held the request back (Qualification.binding_constraint).
HELP_BY_CONSTRAINT = {
    "dti": "Paying down monthly debts, or adding a co-borrower's income, lowers your debt-to-income ratio.",
    "front_end_dti": "A smaller loan, or a co-borrower's income, brings the monthly payment within reach.",
    "ltv": "A larger down payment (or more equity in your home) lowers the loan-to-value ratio.",
    "cltv": "A smaller line, or paying down your mortgage first, leaves more equity to borrow against.",
    "credit": "Raising your credit score opens more loans: FHA loans accept scores from 580 with 3.5% down.",
    "loan_limit": "A larger down payment can bring the loan under your county's limit.",
}
GENERAL_HELP = "A free HUD-approved housing counselor can go through your options with you (1-800-569-4287)."


class HttpResponseSeeOther(HttpResponseRedirect):
    # 303: after a POST the browser must GET the result page, and a refresh there never re-submits.
    status_code = 303


@require_http_methods(["GET", "POST"])
def lead_form(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return _render_form(request, LeadForm(), status=200)
    # Per-IP limit against floods; counted before validation so bad requests count too. Behind our proxy
    # the client's address, not the proxy's: else every consumer would share one bucket.
    ip = client_ip(request)
    wait = ratelimit.hit(
        scope="lead_form",
        key=ip or "unknown",
        limit=settings.LEAD_FORM_RATE_LIMIT,
        window_seconds=settings.LEAD_FORM_RATE_WINDOW,
    )
    if wait is not None:
        response = render(
            request, "leads/rate_limited.html", {"minutes": max(1, round(wait / 60))}, status=429
        )
        response["Retry-After"] = str(wait)
        return response
    form = LeadForm(request.POST)
    if form.is_valid():
        try:
            lead = lead_submit(
                data=form.cleaned_data,
                consent_text=CONSENT_TEXT,
                ip_address=ip,  # None rather than a 500 when the peer is no IP address (inet column)
                user_agent=request.META.get("HTTP_USER_AGENT", ""),
                page_url=request.build_absolute_uri(),
                # A bot gets the same redirect as a person: nothing tells it the trap was sprung.
                rejected_reason="honeypot" if form.honeypot_tripped else "",
            )
        except LeadInputError as exc:  # the ZIP vanished between the form's check and the service's
            for field, message in exc.errors.items():
                form.add_error(field if field in form.fields else None, message)
        else:
            return HttpResponseSeeOther(reverse("leads:result", args=[lead.public_id]))
    return _render_form(request, form, status=400)


@never_cache
@require_GET
def lead_result(request: HttpRequest, public_id: UUID) -> HttpResponse:
    lead = _get_lead(public_id)
    return render(request, "leads/result.html", _result_context(lead))


@never_cache
@require_GET
def lead_result_signed(request: HttpRequest, token: str) -> HttpResponse:
    """The result page again, from the signed link in the consumer's confirmation e-mail."""
    public_id = result_link_read(token)
    if public_id is None:
        raise Http404("This link is not valid.")
    return render(request, "leads/result.html", _result_context(_get_lead(public_id)))


@never_cache
@require_GET
def lead_result_status(request: HttpRequest, public_id: UUID) -> HttpResponse:
    """The htmx partial the result page polls. 204 (htmx swaps nothing) while nothing has changed, so the
    page does not flicker and screen readers do not hear the same words every second."""
    lead = _get_lead(public_id)
    context = _result_context(lead)
    if request.GET.get("shown") == lead.status and context["polling"]:
        return HttpResponse(status=204)
    return render(request, "leads/_status.html", context)


# --- helpers ----------------------------------------------------------------------------------------------


def _render_form(request: HttpRequest, form: LeadForm, *, status: int) -> HttpResponse:
    return render(request, "leads/form.html", {"form": form, "consent_text": CONSENT_TEXT}, status=status)


def _get_lead(public_id: UUID) -> Lead:
    lead = lead_get_public(public_id=public_id)
    if lead is None:
        raise Http404("No such request")
    return lead


def _decimal(value: Any) -> Decimal | None:
    # Qualification JSON keeps money as strings; a hand-edited or older row must not break the page.
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError, TypeError):
        return None
    return amount if amount.is_finite() else None


def _whole_dollars(value: Decimal | None) -> str | None:
    # Rounded down: an estimate must never read as more than the engine found.
    return None if value is None else money(value.to_integral_value(rounding=ROUND_DOWN))


def _result_context(lead: Lead) -> dict[str, Any]:
    """What the result page shows for a lead. Only the first name of the consumer: no other PII."""
    qualification = lead.qualification if isinstance(lead.qualification, dict) else {}
    polling = lead.status in PENDING and timezone.now() - lead.created_at < POLL_FOR
    context: dict[str, Any] = {
        "lead": lead,
        "status": lead.status,
        "first_name": lead.consumer.first_name,
        "polling": polling,
        "stalled": lead.status in PENDING and not polling,
        "status_url": f"{reverse('leads:result_status', args=[lead.public_id])}?shown={lead.status}",
    }
    if lead.status in (LeadStatus.QUALIFIED, LeadStatus.SOLD, LeadStatus.UNSOLD):
        products = [p for p in (lead.products or qualification.get("products") or []) if isinstance(p, str)]
        results = [r for r in qualification.get("results") or [] if isinstance(r, dict)]
        # Guidelines before 2026.2 qualified a lead only when the whole request fitted.
        fits = qualification.get("fits_request", True) is not False
        requested = lead.requested_loan or _decimal(qualification.get("requested_loan"))
        loan = lead.qualified_loan or _decimal(qualification.get("qualified_loan")) or requested
        best = _best_result(qualification, results, products)
        context.update(
            estimate=_whole_dollars(lead.estimate or _decimal(qualification.get("estimate"))),
            requested=_whole_dollars(requested),
            fits=fits,
            qualified_loan=_whole_dollars(loan),
            products=[_product_name(p) for p in products],
            monthly_payment=_monthly_payment(best),
            loan_limit=_whole_dollars(lead.loan_limit),
            loan_limit_source=lead.loan_limit_source,
            fha_limit=_whole_dollars(lead.fha_limit) if "fha" in products else None,
            fha_limit_source=lead.fha_limit_source,
            jumbo="jumbo" in products,
            purchase=_purchase_sentences(qualification.get("purchase"), best),
            refinance=_refinance_sentences(lead, best),
            gap=_texts(qualification.get("gap")),
            reasons=[] if fits else _strings(qualification.get("reasons")),
            notes=_strings(qualification.get("notes")),
        )
    if lead.status in (LeadStatus.QUALIFIED, LeadStatus.SOLD, LeadStatus.UNSOLD, LeadStatus.NOT_QUALIFIED):
        context["credit_note"] = _credit_note(lead)
    if lead.status == LeadStatus.SOLD:
        contacts = lead_contacts(lead=lead)
        context.update(
            buyers=len(contacts),
            contacts=contacts,
            at_most=lead_buyers_at_most(lead=lead, sold=len(contacts)),
        )
    if lead.status == LeadStatus.NOT_QUALIFIED:
        reasons = _strings(qualification.get("reasons"))
        constraint = lead.binding_constraint or qualification.get("binding_constraint") or ""
        helps = [HELP_BY_CONSTRAINT[constraint]] if constraint in HELP_BY_CONSTRAINT else []
        context.update(
            reasons=reasons,
            helps=[*_texts(qualification.get("gap")), *helps, GENERAL_HELP],
            notes=_strings(qualification.get("notes")),
        )
    if lead.status == LeadStatus.DUPLICATE:
        context["duplicate_days"] = _duplicate_window_days()
    return context


def _credit_note(lead: Lead) -> str:
    # Issue 12.5: say which score the loans were judged by, so a range's lowest score is no surprise.
    if lead.credit_score is not None:
        return f"We judged your credit by your score of {lead.credit_score}."
    return (
        f"We judged your credit at {lead.credit_score_low}, the lowest score in the range you chose "
        f"({lead.get_credit_range_display()}); a lender will check the real one."
    )


def _product_name(product: str) -> str:
    return PRODUCT_NAMES.get(product, product.replace("_", " ").capitalize())


def _strings(items: Any) -> list[str]:
    return [x for x in items if isinstance(x, str)] if isinstance(items, list) else []


def _texts(steps: Any) -> list[str]:
    """The sentences of the engine's gap steps (what would close the gap to the request)."""
    if not isinstance(steps, list):
        return []
    return [s["text"] for s in steps if isinstance(s, dict) and isinstance(s.get("text"), str)]


def _best_result(
    qualification: dict[str, Any], results: list[dict[str, Any]], products: list[str]
) -> dict[str, Any]:
    """The best offering product's result: the one the estimate and the payment are about."""
    best = qualification.get("best_product") or (products[0] if products else "")
    offering = [r for r in results if r.get("eligible")]
    return next((r for r in offering if r.get("product") == best), offering[0] if offering else {})


def _monthly_payment(best: dict[str, Any]) -> str | None:
    """The best product's housing payment, for the loan it lends toward the request."""
    payment = _decimal(best.get("monthly_payment"))
    return money(payment.quantize(Decimal("1"))) if payment and payment > 0 else None


def _purchase_sentences(deal: Any, best: dict[str, Any]) -> list[str]:
    """Issue 12.8: the home as the consumer described it, beside the most they may borrow for it."""
    if not isinstance(deal, dict):
        return []
    price, down, loan = (_decimal(deal.get(k)) for k in ("price", "down_payment", "loan"))
    most, most_down = _decimal(deal.get("max_loan")), _decimal(deal.get("down_payment_at_max"))
    ratio = _decimal(deal.get("max_ltv"))
    if price is None or down is None or loan is None or most is None:
        return []
    home = f"For this home ({_whole_dollars(price)} with {_whole_dollars(down)} down) your loan would be "
    if deal.get("within"):
        sentences = [f"{home}{_whole_dollars(loan)}, within what you qualify for."]
    else:
        sentences = [
            f"{home}{_whole_dollars(loan)}, more than the {_whole_dollars(most)} you may qualify for."
        ]
    if most_down is not None and ratio is not None:
        shown = ratio.quantize(Decimal("0.1"), rounding=ROUND_DOWN)
        shown = shown.quantize(Decimal("1")) if shown == shown.to_integral_value() else shown
        up = money(most_down.to_integral_value(rounding=ROUND_UP))
        most_text = _whole_dollars(most)
        sentences.append(
            f"The most you may borrow for it is {most_text} ({shown}% of the price), with {up} down."
        )
    return sentences


def _refinance_sentences(lead: Lead, best: dict[str, Any]) -> list[str]:
    """Issue 12.3: refinancing what is owed (rate and term) and, when cash was asked, the cash-out figure."""
    if lead.purpose != "refinance":
        return []
    sentences = []
    rate_term, cash_out = _decimal(best.get("rate_term_max")), _decimal(best.get("cash_out_max"))
    if rate_term is not None:
        sentences.append(
            f"Refinancing what you owe (rate and term): up to {_whole_dollars(rate_term)}, your balance plus "
            "estimated closing costs."
        )
    if cash_out is not None and lead.cash_out:
        balance = lead.mortgage_balance or Decimal("0")
        cash = max(cash_out - balance, Decimal("0"))
        if cash > 0:
            sentences.append(
                f"With cash out: up to {_whole_dollars(cash_out)}, which is {_whole_dollars(cash)} in cash "
                f"(you asked for {_whole_dollars(lead.cash_out)})."
            )
        else:
            sentences.append(
                f"With cash out: up to {_whole_dollars(cash_out)}, less than you owe, so no cash out for now."
            )
    return sentences


def _duplicate_window_days() -> int:
    # The market owns the window (staff change it in its settings) and provides it (marketplace.apps).
    return staffconfig.value("duplicate_window_days")
