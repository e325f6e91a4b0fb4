"""Partner lead intake: POST a lead (validated by the public form's LeadForm), then read its status."""

from __future__ import annotations

import functools
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound, PermissionDenied, ValidationError
from rest_framework.response import Response

from leads.choices import CreditRange, LeadStatus, LoanPurpose, Occupancy, Product, PropertyType, Timeline
from leads.forms import LeadForm
from leads.models import Lead
from leads.qualification import (
    BINDING_CONSTRAINTS,
    MAX_CREDIT_SCORE,
    MIN_CREDIT_SCORE,
    credit_range_for_score,
)
from leads.services import LeadInputError

from .. import services
from ..auth import IsPartner
from ..models import SourcePaused
from .common import ERROR_HEADERS, PROBLEM_EXAMPLE, ApiView, ok, problems, replayed_header
from .idempotency import IDEMPOTENCY_HEADER, idempotent

CONSENT_FUTURE_SLACK = timedelta(minutes=5)  # partners' clocks drift; a consent from tomorrow is not evidence
# A partner sends a lead as the consumer asks; consent older than this is stale evidence (and 0001-01-01 or
# 1900 none at all), so the lead is refused rather than sold on it.
CONSENT_MAX_AGE = timedelta(days=30)

LEAD_EXAMPLE = {
    "purpose": "purchase",
    "zip_code": "78701",
    "property_type": "single_family",
    "occupancy": "primary",
    "property_value": "400000",
    "purchase_price": "400000",
    "down_payment": "40000",
    "credit_score": 702,
    "annual_income": "120000",
    "monthly_debts": "500",
    "military_service": False,
    "first_time_buyer": True,
    "timeline": "3_months",
    "first_name": "Maria",
    "last_name": "Gonzalez",
    "email": "maria@example.com",
    "phone": "512-555-0142",
    "consent": {
        "text": "By checking this box I agree that Lead Market and up to 3 lenders ... may contact me.",
        "given_at": "2026-01-15T14:03:00Z",  # a real lead's consent is from the last CONSENT_MAX_AGE
        "ip_address": "203.0.113.7",
        "user_agent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X)",
        "page_url": "https://partner.example/mortgage-quote",
    },
    "attribution": {
        "sub_id": "aff-991",
        "campaign": "spring",
        "utm_source": "google",
        "utm_medium": "cpc",
        "utm_campaign": "first-time-buyers",
    },
}


@extend_schema_field(
    {
        "oneOf": [
            {"type": "string", "example": "250,000"},
            {"type": "number", "minimum": 0, "example": 250000},
        ],
        "nullable": True,
        "description": 'Dollars, never negative: a number, or a string like "250000", "250,000.50".',
    }
)
class MoneyInput(serializers.Field):
    """Passes the amount through to LeadForm, which owns its rules; only the JSON type is checked here."""

    default_error_messages = {"invalid": 'Enter an amount in dollars, as a number or a string like "250000".'}

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, bool) or not isinstance(data, (str, int, float)):
            self.fail("invalid")
        return data

    def to_representation(self, value: Any) -> Any:
        return value


def _money(**kwargs: Any) -> MoneyInput:
    return MoneyInput(required=False, allow_null=True, **kwargs)


# The formats of the contact and place fields, for the schema; LeadForm checks the rest (that the ZIP exists,
# the phone number is a real US one, the e-mail's domain takes mail).
@extend_schema_field({"type": "string", "pattern": r"^\s*[0-9]{5}([- ]?[0-9]{4})?\s*$", "example": "78701"})
class ZipCodeInput(serializers.CharField):
    pass


@extend_schema_field({"type": "string", "format": "email", "maxLength": 254, "example": "maria@example.com"})
class EmailInput(serializers.CharField):
    pass


@extend_schema_field({"type": "string", "pattern": r"^\s*[0-9()+.\- ]{7,25}\s*$", "example": "512-555-0142"})
class PhoneInput(serializers.CharField):
    pass


@extend_schema_field(
    {"type": "string", "oneOf": [{"format": "ipv4"}, {"format": "ipv6"}], "example": "203.0.113.7"}
)
class IPAddressInput(serializers.IPAddressField):
    pass


class AwareDateTimeField(serializers.DateTimeField):
    """An ISO 8601 time that must carry its offset: DRF would read a bare "2026-01-15T14:03:00" in the
    server's time zone, which is a guess about when the consumer agreed."""

    default_error_messages = {
        "naive": "Give the time with its offset, like 2026-01-15T14:03:00Z or 2026-01-15T09:03:00-05:00."
    }

    def to_internal_value(self, value: Any):
        if isinstance(value, str):
            try:
                parsed = parse_datetime(value.strip())
            except ValueError:
                parsed = None  # out of range: DRF's own message below
            if parsed is not None and timezone.is_naive(parsed):
                self.fail("naive")
        return super().to_internal_value(value)


class ConsentInput(serializers.Serializer):
    text = serializers.CharField(
        max_length=5000, help_text="The disclosure the consumer agreed to, verbatim."
    )
    given_at = AwareDateTimeField(
        help_text="When the consumer agreed: ISO 8601 with its offset (`Z` or `±hh:mm`), within the last "
        f"{CONSENT_MAX_AGE.days} days and not in the future (a few minutes of clock skew are allowed)."
    )
    ip_address = IPAddressInput(help_text="The consumer's IP address (IPv4 or IPv6).")
    user_agent = serializers.CharField(max_length=500, help_text="The consumer's browser user agent.")
    page_url = serializers.URLField(max_length=500, help_text="The page the consumer agreed on.")

    def validate_given_at(self, value):
        now = timezone.now()
        if value > now + CONSENT_FUTURE_SLACK:
            raise serializers.ValidationError("The consent time is in the future.")
        if value < now - CONSENT_MAX_AGE:
            raise serializers.ValidationError(
                f"The consent is more than {CONSENT_MAX_AGE.days} days old; send leads with fresh consent."
            )
        return value


class AttributionInput(serializers.Serializer):
    sub_id = serializers.CharField(max_length=100, required=False, allow_blank=True)
    campaign = serializers.CharField(max_length=100, required=False, allow_blank=True)
    utm_source = serializers.CharField(max_length=100, required=False, allow_blank=True)
    utm_medium = serializers.CharField(max_length=100, required=False, allow_blank=True)
    utm_campaign = serializers.CharField(max_length=100, required=False, allow_blank=True)


class LeadInput(serializers.Serializer):
    """The public form's fields (validated by the same LeadForm), plus consent evidence and attribution."""

    purpose = serializers.ChoiceField(choices=LoanPurpose.choices)
    zip_code = ZipCodeInput(max_length=10, help_text="5-digit ZIP of the home (ZIP+4 accepted).")
    property_type = serializers.ChoiceField(choices=PropertyType.choices)
    units = serializers.IntegerField(
        min_value=1,
        max_value=4,
        required=False,
        help_text="Living units, 1-4 (2-4 only for multi_family). Left out: 2 for multi_family, else 1. "
        "2-4 unit homes have loan limits of their own.",
    )
    occupancy = serializers.ChoiceField(choices=Occupancy.choices)
    property_value = _money(help_text="The home's value. Purchase: may be left out, the price is used.")
    purchase_price = _money(help_text="Purchase only.")
    down_payment = _money(help_text="Purchase only: the down payment, or give desired_loan_amount.")
    mortgage_balance = _money(help_text="Refinance and home equity: what is still owed (0 if nothing).")
    cash_out = _money(help_text="Refinance only: cash to take out.")
    desired_loan_amount = _money(help_text="Purchase: the loan (optional); home equity: the line's size.")
    credit_range = serializers.ChoiceField(
        choices=CreditRange.choices,
        required=False,
        help_text="The consumer's credit range, judged by its lowest score. Give this or `credit_score`.",
    )
    credit_score = serializers.IntegerField(
        min_value=MIN_CREDIT_SCORE,
        max_value=MAX_CREDIT_SCORE,
        required=False,
        help_text="The consumer's exact score, when known: the lead is judged by it and its range is "
        "derived from it. Give this or `credit_range` (both: they must agree).",
    )
    annual_income = MoneyInput(help_text="Household income per year before tax (0 if none).")
    monthly_debts = MoneyInput(help_text="Monthly debt payments, not housing (0 if none).")
    military_service = serializers.BooleanField(required=False, default=False)
    first_time_buyer = serializers.BooleanField(required=False, default=False)
    timeline = serializers.ChoiceField(choices=Timeline.choices)
    first_name = serializers.CharField(max_length=80)
    last_name = serializers.CharField(max_length=80)
    email = EmailInput(max_length=254)
    phone = PhoneInput(max_length=25, help_text="US number, e.g. 512-555-0142.")
    consent = ConsentInput()
    attribution = AttributionInput(required=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        score, given = attrs.get("credit_score"), attrs.get("credit_range")
        if score is None and not given:
            if "credit_band" in self.initial_data:
                raise serializers.ValidationError(
                    {
                        "credit_range": [
                            "credit_band was replaced by credit_range (e.g. 680_699) or credit_score."
                        ]
                    }
                )
            raise serializers.ValidationError({"credit_range": ["Give credit_range or credit_score."]})
        if score is not None:
            derived = credit_range_for_score(score)
            if given and given != derived:
                raise serializers.ValidationError(
                    {"credit_score": [f"A score of {score} is in the {derived} range, not {given}."]}
                )
            attrs["credit_range"] = derived
        return attrs


def _amount(help_text: str, **kwargs: Any) -> serializers.DecimalField:
    return serializers.DecimalField(
        max_digits=14, decimal_places=2, min_value=Decimal("0"), help_text=help_text, **kwargs
    )


class ProductOutput(serializers.Serializer):
    product = serializers.ChoiceField(choices=Product.choices)
    eligible = serializers.BooleanField(
        help_text="The product offers the consumer a loan: the whole request, or at least `minimum_loan` "
        "toward it."
    )
    fits_request = serializers.BooleanField(help_text="The product lends the whole requested loan.")
    max_loan = _amount("The most this product lends the consumer, whatever they asked.", allow_null=True)
    loan = _amount(
        "What this product lends toward the request: the request, or `max_loan` when that is less; 0 when "
        "it offers nothing.",
        allow_null=True,
    )
    binding_constraint = serializers.ChoiceField(
        choices=[(c, c) for c in BINDING_CONSTRAINTS],
        allow_blank=True,
        help_text="What limits `max_loan`.",
    )
    obstacle = serializers.CharField(
        allow_blank=True, help_text="What limits `max_loan`, in a sentence with its figures."
    )
    rate_term_max = _amount(
        "Refinance: the most without cash out (the payoff plus estimated closing costs).", allow_null=True
    )
    cash_out_max = _amount(
        "Refinance with cash out asked: the most as a cash-out refinance, at its own LTV.", allow_null=True
    )
    reasons = serializers.ListField(
        child=serializers.CharField(), help_text="Why it does not lend the whole request, its obstacle first."
    )


class GapStepOutput(serializers.Serializer):
    kind = serializers.ChoiceField(
        choices=[
            (k, k) for k in ("down_payment", "debts", "income", "cash_out", "no_cash_out", "balance", "line")
        ]
    )
    amount = _amount(
        "down_payment: how much more down; debts: monthly payments to pay off; income: the yearly household "
        "income needed; cash_out: the cash that fits; balance: what to pay off at closing; line: its size."
    )
    loan = _amount("What the consumer could borrow after this step.")
    text = serializers.CharField(help_text="The step as the consumer reads it.")


class PurchaseOutput(serializers.Serializer):
    price = _amount("The purchase price.")
    down_payment = _amount("The down payment the consumer described.")
    loan = _amount("The loan that makes: the price less the down payment (or the loan asked).")
    within = serializers.BooleanField(help_text="Some product lends all of it.")
    max_loan = _amount("The most the best product lends on this home.")
    max_ltv = serializers.DecimalField(
        max_digits=9, decimal_places=2, help_text="`max_loan` as a % of the price."
    )
    down_payment_at_max = _amount("The down payment that borrows `max_loan` on this home.")
    product = serializers.ChoiceField(choices=Product.choices)


class LoanLimitsOutput(serializers.Serializer):
    units = serializers.IntegerField(help_text="The property's living units (1-4) the limits are for.")
    conforming_limit = _amount(
        "The county's conforming limit (FHFA) for this many units: conventional and VA loans.",
        allow_null=True,
    )
    conforming_source = serializers.CharField(
        allow_blank=True, help_text='Where it came from, e.g. "FHFA 2026 Travis County, TX".'
    )
    fha_limit = _amount("The county's FHA limit for this many units.", allow_null=True)
    fha_source = serializers.CharField(
        allow_blank=True,
        help_text="HUD's imported figure, or how it was derived from FHFA's, or the FHA floor (where the "
        "conforming limit is statutory: Alaska, Hawaii, Guam, the U.S. Virgin Islands).",
    )


class QualificationOutput(serializers.Serializer):
    qualified = serializers.BooleanField(
        help_text="Some product lends the whole request, or at least `minimum_loan` toward it."
    )
    products = serializers.ListField(
        child=serializers.CharField(), help_text="The products that offer the consumer a loan."
    )
    max_per_product = ProductOutput(many=True)
    estimate = _amount(
        'The most an offering product lends: "may qualify for up to". 0 when not qualified.', allow_null=True
    )
    requested_loan = _amount("The loan the consumer asked about.", allow_null=True)
    qualified_loan = _amount(
        "What the best product lends toward the request: the request when `fits_request`, else the "
        "estimate. Subscriptions' loan-amount filters match on this.",
        allow_null=True,
    )
    fits_request = serializers.BooleanField(help_text="Some product lends the whole request.")
    minimum_loan = _amount("The staff-set minimum a partial offer must reach to qualify.", allow_null=True)
    best_product = serializers.CharField(
        allow_blank=True,
        help_text="Qualified: the product lending the most toward the request. Not qualified: the one the "
        "consumer came closest to on their own terms.",
    )
    dti = serializers.DecimalField(
        max_digits=9,
        decimal_places=2,
        allow_null=True,
        help_text="Debt-to-income, %, of the best product at `qualified_loan` (at the request when not "
        "qualified); at most 999.99.",
    )
    ltv = serializers.DecimalField(
        max_digits=9,
        decimal_places=2,
        allow_null=True,
        help_text="Loan-to-value, %, as `dti`; at most 999.99.",
    )
    binding_constraint = serializers.CharField(allow_blank=True)
    reasons = serializers.ListField(
        child=serializers.CharField(), help_text="Why the request is not lent in full (empty when it is)."
    )
    gap = GapStepOutput(many=True, help_text="What would close the gap to the request.")
    purchase = PurchaseOutput(
        allow_null=True, help_text="A purchase: the deal as described, beside the most for the home."
    )
    notes = serializers.ListField(
        child=serializers.CharField(), help_text="Assumptions behind the figures (e.g. VA household size)."
    )
    loan_limits = LoanLimitsOutput(help_text="The county loan limits the products were held to.")
    credit_range = serializers.ChoiceField(choices=CreditRange.choices, help_text="The consumer's range.")
    credit_score = serializers.IntegerField(
        allow_null=True, help_text="The exact score, when the partner gave one; null otherwise."
    )
    credit_score_judged = serializers.IntegerField(
        help_text="The score the products were judged by: the exact score, else the lowest of the range."
    )
    guidelines_version = serializers.CharField(allow_blank=True)


class LeadLinks(serializers.Serializer):
    self = serializers.URLField()


class LeadOutput(serializers.Serializer):
    id = serializers.UUIDField(source="public_id")
    status = serializers.ChoiceField(choices=LeadStatus.choices)
    created_at = serializers.DateTimeField()
    qualified_at = serializers.DateTimeField(allow_null=True)
    qualification = serializers.SerializerMethodField()
    attribution = serializers.SerializerMethodField()
    links = serializers.SerializerMethodField()

    @extend_schema_field(QualificationOutput(allow_null=True))
    def get_qualification(self, lead: Lead) -> dict | None:
        return qualification_data(lead)

    @extend_schema_field(AttributionInput)
    def get_attribution(self, lead: Lead) -> dict:
        return {f: getattr(lead, f) for f in services.ATTRIBUTION_FIELDS}

    @extend_schema_field(LeadLinks)
    def get_links(self, lead: Lead) -> dict:
        request = self.context.get("request")
        path = reverse("api:lead_detail", args=[lead.public_id])
        return {"self": request.build_absolute_uri(path) if request else path}


def _decimal(value: Any) -> Decimal | None:
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError, TypeError):
        return None
    return amount if amount.is_finite() else None


@functools.cache
def _qualification_output() -> QualificationOutput:
    # One instance for every call: DRF copies a serializer's fields each time one is built, which costs
    # more than filling it (a webhook batch builds dozens). to_representation keeps no state.
    return QualificationOutput()


def qualification_data(lead: Lead) -> dict | None:
    """The engine's result as partners and lenders read it; None until the lead has been qualified. Leads
    qualified under guidelines before 2026.2 lack the newer keys: they read as what those rules meant."""
    q = lead.qualification if isinstance(lead.qualification, dict) else {}
    if not q or lead.qualified_at is None:
        return None
    results = [r for r in q.get("results") or [] if isinstance(r, dict)]
    qualified = bool(q.get("qualified"))
    fits = q.get("fits_request", qualified) is not False
    gap = q.get("gap")
    purchase = q.get("purchase")
    return _qualification_output().to_representation(
        {
            "qualified": qualified,
            "products": [p for p in lead.products or [] if isinstance(p, str)],
            "max_per_product": [_product_data(r) for r in results],
            "estimate": lead.estimate,
            "requested_loan": lead.requested_loan,
            "qualified_loan": lead.qualified_loan,
            "fits_request": fits,
            "minimum_loan": _decimal(q.get("minimum_loan")),
            "best_product": str(q.get("best_product") or ""),
            "dti": lead.dti,
            "ltv": lead.ltv,
            "binding_constraint": lead.binding_constraint,
            "reasons": [str(x) for x in q.get("reasons") or []],
            "gap": [_gap_data(g) for g in gap if isinstance(g, dict)] if isinstance(gap, list) else [],
            "purchase": _purchase_data(purchase) if isinstance(purchase, dict) else None,
            "notes": [str(x) for x in q.get("notes") or []],
            "loan_limits": {
                "units": lead.units,
                "conforming_limit": lead.loan_limit,
                "conforming_source": lead.loan_limit_source,
                "fha_limit": lead.fha_limit,
                "fha_source": lead.fha_limit_source,
            },
            "credit_range": lead.credit_range,
            "credit_score": lead.credit_score,
            "credit_score_judged": lead.credit_score_low,
            "guidelines_version": lead.guideline_version,
        }
    )


def _product_data(r: dict) -> dict:
    eligible = bool(r.get("eligible"))
    return {
        "product": str(r.get("product", "")),
        "eligible": eligible,
        "fits_request": bool(r.get("fits_request", eligible)),
        "max_loan": _decimal(r.get("max_loan")),
        "loan": _decimal(r.get("loan")),
        "binding_constraint": str(r.get("binding_constraint") or ""),
        "obstacle": str(r.get("obstacle") or ""),
        "rate_term_max": _decimal(r.get("rate_term_max")),
        "cash_out_max": _decimal(r.get("cash_out_max")),
        "reasons": [str(x) for x in r.get("reasons") or []],
    }


def _gap_data(g: dict) -> dict:
    return {
        "kind": str(g.get("kind", "")),
        "amount": _decimal(g.get("amount")),
        "loan": _decimal(g.get("loan")),
        "text": str(g.get("text", "")),
    }


def _purchase_data(p: dict) -> dict:
    names = ("price", "down_payment", "loan", "max_loan", "max_ltv", "down_payment_at_max")
    return {
        **{k: _decimal(p.get(k)) for k in names},
        "within": bool(p.get("within")),
        "product": str(p.get("product", "")),
    }


def _form_data(data: dict[str, Any]) -> dict[str, Any]:
    form_data = {k: v for k, v in data.items() if k not in ("consent", "attribution") and v is not None}
    form_data["consent"] = True  # the evidence object is the consumer's consent; LeadForm requires it
    return form_data


class LeadCreateApi(ApiView):
    permission_classes = [IsPartner]

    @extend_schema(
        operation_id="leads_create",
        summary="Submit a lead",
        description="Validates exactly as the public form does. 202: the lead is stored, to be qualified "
        "and offered to lenders; poll the `self` link for its status.",
        tags=["Partner intake"],
        parameters=[
            IDEMPOTENCY_HEADER,
            OpenApiParameter(
                "Location",
                OpenApiTypes.URI,
                OpenApiParameter.HEADER,
                response=[202],
                required=True,
                description="The lead's URL (its `links.self`), to poll for its status.",
            ),
            replayed_header(202),
            *ERROR_HEADERS,
        ],
        request=LeadInput,
        responses={**ok(202, LeadOutput), **problems(400, 401, 403, 413, 415, 422, 429)},
        examples=[OpenApiExample("A purchase lead", value=LEAD_EXAMPLE, request_only=True), PROBLEM_EXAMPLE],
    )
    def post(self, request):
        # No lead_id: the answer holds the lead's id, status and qualification, no contact details, so it
        # may outlive an erasure (until it expires) and a retry still never makes a second lead.
        return idempotent(request, lambda: self._submit(request), headers=_location)

    def _submit(self, request) -> Response:
        serializer = LeadInput(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        form = LeadForm(data=_form_data(data))
        if not form.is_valid():
            raise ValidationError(
                {name: [str(m) for m in messages] for name, messages in form.errors.items()}
            )
        try:
            lead = services.lead_submit_from_partner(
                api_key=request.auth,
                data={**form.cleaned_data, "credit_score": data.get("credit_score")},
                consent=data["consent"],
                attribution=data.get("attribution", {}),
            )
        except SourcePaused as exc:
            raise PermissionDenied(str(exc)) from None
        except LeadInputError as exc:
            raise ValidationError({k: [v] for k, v in exc.errors.items()}) from None
        body = LeadOutput(lead, context={"request": request}).data
        return Response(body, status=status.HTTP_202_ACCEPTED, headers=_location(body))


def _location(body: dict) -> dict:
    return {"Location": body["links"]["self"]}


class LeadDetailApi(ApiView):
    permission_classes = [IsPartner]

    @extend_schema(
        operation_id="leads_retrieve",
        summary="Read a lead's status and qualification",
        tags=["Partner intake"],
        parameters=ERROR_HEADERS,
        responses={**ok(200, LeadOutput), **problems(401, 403, 404, 429)},
    )
    def get(self, request, lead_id):
        lead = Lead.objects.filter(public_id=lead_id, source_id=request.auth.source_id).first()
        if lead is None:
            raise NotFound("No lead with this id was submitted by you.")
        return Response(LeadOutput(lead, context={"request": request}).data)
