"""The pre-qualification engine: applicant, guidelines and county limits in; what each product lends out."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, ROUND_UP, Decimal, localcontext
from typing import Any

from .guidelines import (
    CREDIT_BANDS,
    OCCUPANCIES,
    PROPERTY_TYPES,
    PURPOSES,
    Guidelines,
    LoanLimits,
    ProductRules,
    _to_jsonable,
)
from .money import HUNDRED, TWELVE, ZERO, cents, cents_down, monthly_payment, payment_factor, to_decimal

RATIO = Decimal("0.01")

PRODUCT_NAMES = {
    "conventional": "Conventional loans",
    "fha": "FHA loans",
    "va": "VA loans",
    "jumbo": "Jumbo loans",
    "home_equity": "Home equity lines",
}

# binding_constraint values, also the order in which ties are reported.
BINDING_CONSTRAINTS = (
    "eligibility",
    "credit",
    "loan_limit",
    "ltv",
    "cltv",
    "front_end_dti",
    "dti",
    "request",
)


@dataclass(frozen=True, kw_only=True)
class Applicant:
    """What the consumer told us. Money is Decimal (ints and numeric strings are accepted; floats are not)."""

    purpose: str
    credit_band: str
    annual_income: Decimal
    monthly_debts: Decimal  # monthly payments on other debts (cards, cars, student loans), not housing
    property_value: Decimal
    property_type: str = "single_family"
    occupancy: str = "primary"
    purchase_price: Decimal | None = None
    down_payment: Decimal | None = None
    mortgage_balance: Decimal | None = None
    cash_out: Decimal = Decimal("0")
    desired_loan_amount: Decimal = Decimal("0")
    military_service: bool = False
    first_time_buyer: bool = False
    state: str = ""

    def __post_init__(self) -> None:
        for name, allowed in (
            ("purpose", PURPOSES),
            ("credit_band", tuple(CREDIT_BANDS)),
            ("property_type", PROPERTY_TYPES),
            ("occupancy", OCCUPANCIES),
        ):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {', '.join(allowed)}; got {getattr(self, name)!r}")
        money = ("annual_income", "monthly_debts", "property_value", "cash_out", "desired_loan_amount")
        optional = ("purchase_price", "down_payment", "mortgage_balance")
        for name in money + optional:
            value = getattr(self, name)
            if value is None:
                if name in money:
                    raise ValueError(f"{name} is required")
                continue
            value = to_decimal(value, field=name)
            if value < 0:
                raise ValueError(f"{name} must not be negative")
            object.__setattr__(self, name, value)
        if self.property_value <= 0:
            raise ValueError("property_value must be positive")
        object.__setattr__(self, "state", (self.state or "").strip().upper())


@dataclass(frozen=True)
class ProductResult:
    product: str
    eligible: bool  # the product fits the requested loan
    max_loan: Decimal  # the most this product lends the applicant (base loan, before financed fees)
    binding_constraint: str  # what limits max_loan: dti, front_end_dti, ltv, cltv, loan_limit, credit, ...
    ltv: Decimal | None  # % at the requested loan (CLTV for home equity)
    dti: Decimal | None  # back-end %, at the requested loan
    monthly_payment: Decimal  # housing payment at the requested loan: P&I + tax + insurance + MI
    reasons: list[str] = field(default_factory=list)  # why it does not fit, for the consumer
    notes: list[str] = field(default_factory=list)  # assumptions worth telling the consumer
    front_end_dti: Decimal | None = None
    rate: Decimal | None = None

    def to_dict(self) -> dict[str, Any]:
        return _to_jsonable(self)


@dataclass(frozen=True)
class Qualification:
    qualified: bool
    products: list[str]  # the products that fit
    estimate: Decimal  # the most a fitting product lends; 0 when none fits
    requested_loan: Decimal
    ltv: Decimal | None
    dti: Decimal | None
    binding_constraint: str
    reasons: list[str]
    results: list[ProductResult]
    guidelines_version: str
    best_product: str = ""

    def to_dict(self) -> dict[str, Any]:
        return _to_jsonable(self)


def requested_loan(applicant: Applicant) -> Decimal:
    """The loan the applicant asks for, by purpose."""
    a = applicant
    if a.purpose == "purchase":
        if a.desired_loan_amount > 0:
            return cents(a.desired_loan_amount)
        if a.purchase_price is not None:
            return cents(max(a.purchase_price - (a.down_payment or ZERO), ZERO))
        return ZERO
    if a.purpose == "refinance":
        if a.mortgage_balance is None:
            return cents(a.desired_loan_amount)
        return cents(a.mortgage_balance + a.cash_out)
    return cents(a.desired_loan_amount)


def evaluate(applicant: Applicant, *, guidelines: Guidelines, limits: LoanLimits) -> Qualification:
    """Pre-qualify an applicant: per product, the most it lends and whether it fits the requested loan."""
    requested = requested_loan(applicant)
    results = [
        _evaluate_product(name, rules, applicant, guidelines, limits, requested)
        for name, rules in guidelines.products.items()
    ]
    fitting = [r for r in results if r.eligible]
    if fitting:
        # The largest estimate; ties go to the product listed first (conventional before FHA, ...).
        best = max(fitting, key=lambda r: (r.max_loan, -results.index(r)))
        return Qualification(
            qualified=True,
            products=[r.product for r in fitting],
            estimate=best.max_loan,
            requested_loan=requested,
            ltv=best.ltv,
            dti=best.dti,
            binding_constraint=best.binding_constraint,
            reasons=[],
            results=results,
            guidelines_version=guidelines.version,
            best_product=best.product,
        )
    # Nothing fits. We do not show what some product could lend (it would read as an offer); we explain what
    # stands in the way on the product that came closest.
    closest = _closest(results, requested)
    reasons = _dedupe(closest.reasons) if closest else []
    if not reasons:
        reasons = ["We could not match this request to a loan product."]
    return Qualification(
        qualified=False,
        products=[],
        estimate=ZERO,
        requested_loan=requested,
        ltv=closest.ltv if closest else None,
        dti=closest.dti if closest else None,
        binding_constraint=closest.binding_constraint if closest else "eligibility",
        reasons=reasons,
        results=results,
        guidelines_version=guidelines.version,
        best_product=closest.product if closest else "",
    )


# --- one product -------------------------------------------------------------------------------------------


def _evaluate_product(
    product: str,
    rules: ProductRules,
    a: Applicant,
    g: Guidelines,
    limits: LoanLimits,
    requested: Decimal,
) -> ProductResult:
    name = PRODUCT_NAMES.get(product, product)
    income = a.annual_income / TWELVE
    is_home_equity = a.purpose == "home_equity"
    is_cash_out = a.purpose == "refinance" and a.cash_out > 0
    value = a.property_value
    basis = min(a.purchase_price, value) if a.purpose == "purchase" and a.purchase_price else value
    score = _assumed_score(product, rules, a.credit_band)
    notes: list[str] = []
    if a.credit_band == "poor" and rules.poor_band_assumed_score is not None and product == "fha":
        notes.append(_FHA_POOR_NOTE)

    eligibility = _eligibility_reasons(product, rules, a)
    credit_ok = score >= rules.min_credit_score
    credit_reasons = [] if credit_ok else [_credit_reason(name, rules, a.credit_band)]

    # Caps on the base loan.
    caps: list[tuple[Decimal, str]] = []
    max_ratio = _max_ltv(rules, a, score, is_cash_out)
    ltv_kind = "cltv" if is_home_equity else "ltv"
    if is_home_equity and rules.max_cltv is not None:
        caps.append(
            (max(cents_down(value * rules.max_cltv / HUNDRED - (a.mortgage_balance or ZERO)), ZERO), "cltv")
        )
    elif max_ratio is not None:
        caps.append((cents_down(basis * max_ratio / HUNDRED), "ltv"))
    limit = _loan_limit(rules, limits)
    if limit is not None:
        caps.append((limit, "loan_limit"))

    # Affordability: the most housing payment the DTI ratios allow, less tax and insurance (and, for a
    # home equity line, the existing first mortgage), turned into a loan.
    tax = cents(value * g.property_tax_rate / HUNDRED / TWELVE)
    insurance = cents(value * g.insurance_rate / HUNDRED / TWELVE)
    first_mortgage = _first_mortgage_payment(a, g) if is_home_equity else ZERO
    back_end_room = income * rules.max_back_end_dti / HUNDRED - a.monthly_debts
    dti_kind = "dti"
    max_housing = back_end_room
    if rules.max_front_end_dti is not None:
        front_end_room = income * rules.max_front_end_dti / HUNDRED
        if front_end_room < back_end_room:
            max_housing, dti_kind = front_end_room, "front_end_dti"
    available = max_housing - tax - insurance - first_mortgage
    factor = payment_factor(rules.rate, rules.term_years)
    cost = _cost_function(rules, g, a, basis)
    caps.append((_solve_max_base(available, factor, cost), dti_kind))

    order = {c: i for i, c in enumerate(BINDING_CONSTRAINTS)}
    max_loan, binding = min(caps, key=lambda c: (c[0], order[c[1]]))
    min_loan = limits.conforming_limit + 1 if rules.above_conforming_only else None
    if min_loan is not None and max_loan < min_loan:
        max_loan = ZERO  # a jumbo this small is no jumbo: the product cannot lend to this applicant
    if eligibility:
        max_loan, binding = ZERO, "eligibility"
    elif not credit_ok:
        max_loan, binding = ZERO, "credit"

    # The requested loan under this product.
    fee_rate, mi_rate = cost(requested)
    total = requested + cents(requested * fee_rate)
    housing = (
        monthly_payment(total, rules.rate, rules.term_years)
        + cents(total * mi_rate / TWELVE)
        + tax
        + insurance
        + first_mortgage
    )
    # Unrounded ratios decide; the rounded ones are for display.
    dti_raw = _raw_ratio(housing + a.monthly_debts, income)
    front_raw = _raw_ratio(housing, income)
    if is_home_equity:
        ltv_raw = _raw_ratio((a.mortgage_balance or ZERO) + requested, value)
    else:
        ltv_raw = _raw_ratio(requested, basis)
    dti, front, ltv = _round_ratio(dti_raw), _round_ratio(front_raw), _round_ratio(ltv_raw)

    fits = not eligibility and credit_ok and requested > 0 and requested <= max_loan
    if min_loan is not None and requested < min_loan:
        fits = False
    reasons: list[str] = []
    if not fits:
        reasons = eligibility + credit_reasons
        if requested <= 0:
            reasons.append("Tell us how much you would like to borrow and we can check this loan for you.")
        elif not reasons:
            reasons = _fit_reasons(
                name=name,
                rules=rules,
                a=a,
                requested=requested,
                dti=dti_raw,
                front=front_raw,
                ltv=ltv_raw,
                ltv_kind=ltv_kind,
                max_ratio=rules.max_cltv if is_home_equity else max_ratio,
                score=score,
                limit=limit,
                min_loan=min_loan,
                limits=limits,
                income=income,
            )
            if not reasons:  # within a cent or two of the limit: rounding decides
                reasons.append(
                    f"{name} can lend you up to about {_money(max_loan)}; "
                    "this request is a little above that."
                )
        if product == "fha" and notes:
            reasons.append(_FHA_POOR_NOTE)

    return ProductResult(
        product=product,
        eligible=fits,
        max_loan=max_loan,
        binding_constraint=binding,
        ltv=ltv,
        dti=dti,
        monthly_payment=cents(housing),
        reasons=_dedupe(reasons),
        notes=notes,
        front_end_dti=front,
        rate=rules.rate,
    )


_FHA_POOR_NOTE = (
    "We assumed a score of at least 500 for FHA: FHA needs a score of at least 500; "
    "at 580+ the down payment can be 3.5%."
)


def _assumed_score(product: str, rules: ProductRules, band: str) -> int:
    # A band counts as its lowest score, except that 'poor' (300-619) counts as the product's assumed score
    # where it sets one (FHA: 500), so a 'poor' applicant still sees FHA at 90% LTV.
    if band == "poor" and rules.poor_band_assumed_score is not None:
        return rules.poor_band_assumed_score
    return CREDIT_BANDS[band].min_score


def _max_ltv(rules: ProductRules, a: Applicant, score: int, is_cash_out: bool) -> Decimal | None:
    if a.purpose == "purchase":
        ratio = rules.max_ltv_purchase
        if ratio is not None and not a.first_time_buyer and rules.max_ltv_purchase_repeat_buyer is not None:
            ratio = min(ratio, rules.max_ltv_purchase_repeat_buyer)
    elif a.purpose == "refinance":
        ratio = rules.max_ltv_cash_out if is_cash_out else rules.max_ltv_rate_term
    else:
        return None
    if ratio is None:
        return None
    caps = [ratio]
    below = rules.reduced_ltv_below_score
    if not is_cash_out and below is not None and score < below and rules.reduced_max_ltv is not None:
        caps.append(rules.reduced_max_ltv)
    if a.occupancy in rules.max_ltv_by_occupancy:
        caps.append(rules.max_ltv_by_occupancy[a.occupancy])
    if a.property_type in rules.max_ltv_by_property_type:
        caps.append(rules.max_ltv_by_property_type[a.property_type])
    return min(caps)


def _loan_limit(rules: ProductRules, limits: LoanLimits) -> Decimal | None:
    # One-unit limits even for multi-family: we do not ask the number of units, and the one-unit limit is
    # the lowest (conservative).
    caps = []
    if rules.limit == "conforming":
        caps.append(limits.conforming_limit)
    elif rules.limit == "fha":
        caps.append(limits.fha_limit)
    if rules.max_loan_amount is not None:
        caps.append(rules.max_loan_amount)
    return cents_down(min(caps)) if caps else None


def _first_mortgage_payment(a: Applicant, g: Guidelines) -> Decimal:
    # We do not ask for the existing mortgage payment; estimate it from the balance at the sheet's rate.
    balance = a.mortgage_balance or ZERO
    rules = g.products.get(g.first_mortgage_estimate_product)
    if balance <= 0 or rules is None:
        return ZERO
    return monthly_payment(balance, rules.rate, rules.term_years)


@dataclass(frozen=True)
class _Cost:
    """Financed fee and annual mortgage insurance, as fractions, for a base loan; piecewise constant."""

    fee_and_mi: Callable[[Decimal], tuple[Decimal, Decimal]]
    breakpoints: tuple[Decimal, ...]

    def __call__(self, base: Decimal) -> tuple[Decimal, Decimal]:
        return self.fee_and_mi(base)


def _cost_function(rules: ProductRules, g: Guidelines, a: Applicant, basis: Decimal) -> _Cost:
    pct = Decimal("0.01")
    if rules.mortgage_insurance == "pmi":
        threshold = basis * g.pmi_above_ltv / HUNDRED
        return _Cost(lambda b: (ZERO, g.pmi_rate * pct if b > threshold else ZERO), (threshold,))
    if rules.mortgage_insurance == "fha":
        ltv_point = basis * g.fha_mip_ltv_threshold / HUNDRED
        loan_point = g.fha_mip_loan_threshold

        def fha(b: Decimal) -> tuple[Decimal, Decimal]:
            high_ltv = b > ltv_point
            if b > loan_point:
                mip = g.fha_mip_rate_large_high_ltv if high_ltv else g.fha_mip_rate_large_low_ltv
            else:
                mip = g.fha_mip_rate_high_ltv if high_ltv else g.fha_mip_rate_low_ltv
            return g.fha_ufmip_rate * pct, mip * pct

        return _Cost(fha, (ltv_point, loan_point))
    if rules.mortgage_insurance == "va":
        if a.purpose != "purchase":
            return _Cost(lambda b: (g.va_fee_refinance * pct, ZERO), ())
        # Down payment under 5% is LTV above 95%; 5-10% down is LTV above 90%.
        p95, p90 = basis * Decimal("0.95"), basis * Decimal("0.90")

        def va(b: Decimal) -> tuple[Decimal, Decimal]:
            if b > p95:
                return g.va_fee_under_5_down * pct, ZERO
            if b > p90:
                return g.va_fee_5_to_10_down * pct, ZERO
            return g.va_fee_10_plus_down * pct, ZERO

        return _Cost(va, (p90, p95))
    return _Cost(lambda b: (ZERO, ZERO), ())


def _solve_max_base(available: Decimal, factor: Decimal, cost: _Cost) -> Decimal:
    """The largest base loan whose payment (P&I on base + financed fee, plus MI) fits in `available`.

    Fee and MI rates are constant between breakpoints and rise with the loan, so on each interval the loan
    is available / ((1 + fee) x (factor + MI/12)), clipped to the interval; the answer is the largest.
    Rounded down to cents so the estimate never promises more than the ratios allow.
    """
    if available <= 0:
        return ZERO
    with localcontext() as ctx:
        ctx.prec = 34
        points = sorted({p for p in cost.breakpoints if p > 0})
        bounds: list[Decimal | None] = [ZERO, *points, None]
        best = ZERO
        for lo, hi in zip(bounds, bounds[1:], strict=False):
            assert lo is not None
            probe = hi if hi is not None else lo + 1  # a loan inside (lo, hi]
            fee, mi = cost(probe)
            loan = available / ((1 + fee) * (factor + mi / TWELVE))
            if hi is not None:
                loan = min(loan, hi)
            if loan > lo or lo == 0:
                best = max(best, loan)
        return cents_down(best)


# --- reasons ------------------------------------------------------------------------------------------------


def _eligibility_reasons(product: str, rules: ProductRules, a: Applicant) -> list[str]:
    name = PRODUCT_NAMES.get(product, product)
    reasons = []
    if a.purpose not in rules.purposes:
        if rules.purposes == ("home_equity",):
            reasons.append(f"{name} are for borrowing against a home you own, not for buying or refinancing.")
        else:
            reasons.append(
                f"{name} are for buying or refinancing a home; for cash from your equity, "
                "see a home equity line."
            )
    if rules.requires_military_service and not a.military_service:
        reasons.append(f"{name} are for veterans, service members and eligible surviving spouses.")
    if a.occupancy not in rules.occupancies:
        if rules.occupancies == ("primary",):
            reasons.append(
                f"{name} are for the home you live in, not a second home or an investment property."
            )
        else:
            reasons.append(f"{name} are not available for this kind of occupancy.")
    if a.property_type not in rules.property_types:
        kind = a.property_type.replace("_", " ")
        reasons.append(f"{name} are not available for a {kind} home.")
    return reasons


def _credit_reason(name: str, rules: ProductRules, band: str) -> str:
    low, high, _ = CREDIT_BANDS[band]
    if high >= rules.min_credit_score:
        # The band straddles the minimum: we judged it by its lowest score, so a lender may still say yes.
        minimum = rules.min_credit_score
        return (
            f"{name} need a credit score of at least {minimum}. Your band ({low}-{high}) starts below "
            f"that, so we did not count on it; with {minimum} or more a lender may still offer one."
        )
    return (
        f"{name} need a credit score of at least {rules.min_credit_score}; yours is in the "
        f"{low}-{high} range. Raising your score would open this option."
    )


def _fit_reasons(
    *,
    name: str,
    rules: ProductRules,
    a: Applicant,
    requested: Decimal,
    dti: Decimal | None,
    front: Decimal | None,
    ltv: Decimal | None,
    ltv_kind: str,
    max_ratio: Decimal | None,
    score: int,
    limit: Decimal | None,
    min_loan: Decimal | None,
    limits: LoanLimits,
    income: Decimal,
) -> list[str]:
    reasons = []
    if min_loan is not None and requested < min_loan:
        reasons.append(
            f"{name} start above {_money(limits.conforming_limit)} in your county; "
            "your loan is small enough for a conforming loan."
        )
    if limit is not None and requested > limit:
        if rules.limit == "none":
            reasons.append(f"{name} go up to {_money(limit)}; you asked for {_money(requested)}.")
        else:
            kind = "FHA" if rules.limit == "fha" else "conforming"
            hint = (
                " a jumbo loan may fit instead."
                if rules.limit == "conforming"
                else " a larger down payment or another loan may fit."
            )
            reasons.append(f"This loan is above the {_money(limit)} {kind} limit for your county;{hint}")
    if income <= 0:
        reasons.append("We need your income to estimate what you can borrow.")
    else:
        if rules.max_front_end_dti is not None and front is not None and front > rules.max_front_end_dti:
            reasons.append(
                f"The housing payment is high for your income: {name} need it to be "
                f"{_pct(rules.max_front_end_dti)} of your income or less; "
                f"yours would be {_pct(front, up=True)}."
            )
        if dti is not None and dti > rules.max_back_end_dti:
            reasons.append(
                "Your monthly debts are high for your income: this loan needs a debt-to-income ratio of "
                f"{_pct(rules.max_back_end_dti)} or less; yours would be {_pct(dti, up=True)}."
            )
    if max_ratio is not None and ltv is not None and ltv > max_ratio:
        if ltv_kind == "cltv":
            reasons.append(
                f"Together with your mortgage, this line would be {_pct(ltv, up=True)} of your home's value; "
                f"{name.lower()} go up to {_pct(max_ratio)}."
            )
        elif a.purpose == "refinance":
            kind = "cash-out refinance" if a.cash_out > 0 else "refinance"
            reasons.append(
                f"This {kind} would be {_pct(ltv, up=True)} of your home's value; "
                f"{name} go up to {_pct(max_ratio)} for a {kind}."
            )
        else:
            reasons.append(
                f"This loan would be {_pct(ltv, up=True)} of the home's price; {name} go up to "
                f"{_pct(max_ratio)}. A larger down payment would help."
            )
    return reasons


def _closest(results: list[ProductResult], requested: Decimal) -> ProductResult | None:
    # Most useful first: a product the applicant can have at all (right purpose, service, occupancy),
    # then one their credit reaches, then the one that lends the most against what they asked.
    if not results:
        return None

    def rank(r: ProductResult) -> tuple[int, int, Decimal]:
        share = r.max_loan / requested if requested > 0 else ZERO
        return (
            r.binding_constraint == "eligibility",
            r.binding_constraint == "credit",
            -share,
        )

    return min(results, key=rank)


def _raw_ratio(part: Decimal, whole: Decimal) -> Decimal | None:
    if whole <= 0:
        return None
    return part / whole * HUNDRED


def _round_ratio(value: Decimal | None) -> Decimal | None:
    return None if value is None else value.quantize(RATIO, rounding=ROUND_HALF_UP)


def _pct(value: Decimal, *, up: bool = False) -> str:
    # The applicant's own figure is rounded up, so 50.04% never reads as "50%" next to a 50% maximum.
    shown = value.quantize(Decimal("0.1"), rounding=ROUND_UP if up else ROUND_HALF_UP)
    if shown == shown.to_integral_value():
        shown = shown.quantize(Decimal(1))
    return f"{shown}%"


def _money(value: Decimal) -> str:
    if value == value.to_integral_value():
        return f"${value:,.0f}"
    return f"${value:,.2f}"


def _dedupe(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))
