"""The pre-qualification engine: applicant, guidelines and county limits in; what each product lends out."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, ROUND_UP, Decimal, localcontext
from typing import Any

from .guidelines import (
    CREDIT_RANGES,
    OCCUPANCIES,
    PROPERTY_TYPES,
    PURPOSES,
    Guidelines,
    HousingCosts,
    LoanLimits,
    ProductRules,
    _to_jsonable,
    credit_range_for_score,
)
from .money import CENT, HUNDRED, TWELVE, ZERO, cents, cents_down, monthly_payment, payment_factor, to_decimal

RATIO = Decimal("0.01")
# Stored and shown ratios stop here: a DTI of 3,490,536% is "over any limit", and Lead.ltv / Lead.dti
# (numeric(7,2)) must hold whatever the inputs produce. Decisions use the unrounded, uncapped ratios.
RATIO_CAP = Decimal("999.99")

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
    "payoff",
    "ltv",
    "cltv",
    "front_end_dti",
    "dti",
    "residual_income",
    "request",
)
_ORDER = {c: i for i, c in enumerate(BINDING_CONSTRAINTS)}
_AFFORDABILITY = frozenset({"front_end_dti", "dti", "residual_income"})


@dataclass(frozen=True, kw_only=True)
class Applicant:
    """What the consumer told us. Money is Decimal (ints and numeric strings are accepted; floats are not)."""

    purpose: str
    credit_range: str  # a key of CREDIT_RANGES; derived from credit_score when that is given
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
    credit_score: int | None = None  # an exact score (300-850), when a partner knows it

    def __post_init__(self) -> None:
        if self.credit_score is not None:
            derived = credit_range_for_score(self.credit_score)
            if self.credit_range and self.credit_range != derived:
                raise ValueError(
                    f"credit_score {self.credit_score} is not in credit_range {self.credit_range!r}"
                )
            object.__setattr__(self, "credit_range", derived)
        for name, allowed in (
            ("purpose", PURPOSES),
            ("credit_range", tuple(CREDIT_RANGES)),
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
    """One product's answer. `max_loan` is the most it lends this applicant whatever they asked; `loan` is
    what it would lend toward the request (the request, or max_loan when that is less). The ratios and the
    payment are at `loan`, or at the request when the product offers nothing."""

    product: str
    eligible: bool  # the product offers a loan: the whole request, or at least the staff-set minimum
    max_loan: Decimal  # the most this product lends the applicant (base loan, before financed fees)
    binding_constraint: str  # what limits max_loan: dti, front_end_dti, ltv, payoff, loan_limit, credit, ...
    ltv: Decimal | None  # % (CLTV for home equity), at most RATIO_CAP
    dti: Decimal | None  # back-end %, at most RATIO_CAP
    monthly_payment: Decimal  # housing payment: P&I + tax + insurance + MI (+ the first mortgage for a line)
    reasons: list[str] = field(default_factory=list)  # why it does not lend the whole request, binding first
    notes: list[str] = field(default_factory=list)  # assumptions worth telling the consumer
    front_end_dti: Decimal | None = None
    rate: Decimal | None = None
    fits_request: bool = False  # it lends the whole request
    loan: Decimal = ZERO  # what it lends toward the request; 0 when it offers nothing
    obstacle: str = ""  # what limits max_loan, in a sentence with its figures
    rate_term_max: Decimal | None = None  # refinance: the most without cash out (payoff plus costs)
    cash_out_max: Decimal | None = None  # refinance with cash out asked: the most as a cash-out refinance

    def to_dict(self) -> dict[str, Any]:
        return _to_jsonable(self)


@dataclass(frozen=True)
class GapStep:
    """One change that would let the consumer borrow more: `loan` is what they could borrow after it."""

    kind: str  # down_payment, debts, income, cash_out, no_cash_out, balance, line
    amount: Decimal
    loan: Decimal
    text: str


@dataclass(frozen=True)
class PurchaseDeal:
    """A purchase as the consumer described it, beside the most the chosen product lends on that home."""

    price: Decimal
    down_payment: Decimal
    loan: Decimal  # price less the down payment (or the loan asked)
    within: bool  # some product lends all of it
    max_loan: Decimal  # the most the chosen product lends on this home
    max_ltv: Decimal  # max_loan as a % of the price
    down_payment_at_max: Decimal  # the down payment that borrows max_loan on this home
    product: str


@dataclass(frozen=True)
class Qualification:
    qualified: bool  # some product offers a loan (the whole request, or at least minimum_loan)
    products: list[str]  # the products that offer a loan
    estimate: Decimal  # the most an offering product lends ("you may qualify for up to"); 0 when none
    requested_loan: Decimal
    ltv: Decimal | None  # the chosen product's, at qualified_loan (at the request when not qualified)
    dti: Decimal | None
    binding_constraint: str
    reasons: list[str]  # why the request is not lent in full (empty when it is)
    results: list[ProductResult]
    guidelines_version: str
    best_product: str = ""  # qualified: the product lending the most toward the request; else the closest
    qualified_loan: Decimal = ZERO  # what the best product lends toward the request; 0 when not qualified
    fits_request: bool = False  # some product lends the whole request
    minimum_loan: Decimal = ZERO  # the staff-set minimum a partial offer must reach
    gap: list[GapStep] = field(default_factory=list)  # what would close the gap to the request
    purchase: PurchaseDeal | None = None
    notes: list[str] = field(default_factory=list)  # assumptions behind the chosen product's figures
    # The score credit was judged by: the exact score given, else the lowest of the consumer's range.
    credit_score_judged: int = 0

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


def evaluate(
    applicant: Applicant,
    *,
    guidelines: Guidelines,
    limits: LoanLimits,
    costs: HousingCosts | None = None,
) -> Qualification:
    """Pre-qualify an applicant: per product, the most it lends and what it lends toward the request.

    The lead qualifies when some product lends the whole request, or at least the staff-set minimum toward
    it. The estimate is the most an offering product lends, whether or not it covers the request.
    `costs` are the state's property tax and insurance rates; without them, the guideline set's national
    figures.
    """
    requested = requested_loan(applicant)
    minimum = guidelines.min_qualifying_loan
    if costs is None:
        costs = HousingCosts(guidelines.property_tax_rate, guidelines.insurance_rate, "national")
    evaluated = [
        _evaluate_product(name, rules, applicant, guidelines, limits, requested, costs)
        for name, rules in guidelines.products.items()
    ]
    results = [r for r, _ in evaluated]
    offering = [i for i, r in enumerate(results) if r.eligible]
    index: int | None
    if offering:
        # The most toward the request, then the most at all; ties go to the product listed first.
        index = max(offering, key=lambda i: (results[i].loan, results[i].max_loan, -i))
    else:
        index = _closest(evaluated, requested)
    chosen, work = evaluated[index] if index is not None else (None, None)
    qualified = bool(offering)
    fits = any(r.fits_request for r in results)
    gap: list[GapStep] = []
    if chosen is not None and work is not None and not fits:
        gap = _gap_steps(chosen, work, applicant, guidelines, requested, minimum)
    if qualified:
        assert chosen is not None
        reasons = [] if fits else list(chosen.reasons)
    else:
        # Nothing offered. We do not show what some product could lend (it would read as an offer); we
        # explain what stands in the way on the product that came closest.
        reasons = list(chosen.reasons) if chosen else []
        if not reasons:
            reasons = ["We could not match this request to a loan product."]
    return Qualification(
        qualified=qualified,
        products=[results[i].product for i in offering],
        estimate=chosen.max_loan if qualified and chosen else ZERO,
        requested_loan=requested,
        ltv=chosen.ltv if chosen else None,
        dti=chosen.dti if chosen else None,
        binding_constraint=chosen.binding_constraint if chosen else "eligibility",
        reasons=reasons,
        results=results,
        guidelines_version=guidelines.version,
        best_product=chosen.product if chosen else "",
        qualified_loan=chosen.loan if qualified and chosen else ZERO,
        fits_request=fits,
        minimum_loan=minimum,
        gap=gap,
        purchase=_purchase_deal(applicant, chosen, requested, fits) if qualified and chosen else None,
        notes=list(chosen.notes) if chosen else [],
        credit_score_judged=judged_score(applicant),
    )


def _closest(evaluated: list[tuple[ProductResult, _Work | None]], requested: Decimal) -> int | None:
    """The product the applicant is closest to on their own terms: one they can have at all (purpose,
    service, occupancy, property), then one their credit reaches, then one that takes the deal as they
    described it (its LTV, the loan limit), then the one lending the largest share of the request. So a
    veteran asking 100% financing who fails VA only on DTI hears about VA's DTI, not conventional's LTV."""
    if not evaluated:
        return None

    def rank(i: int) -> tuple[bool, bool, bool, Decimal, int]:
        r, work = evaluated[i]
        share = r.max_loan / requested if requested > 0 else ZERO
        return (
            r.binding_constraint == "eligibility",
            r.binding_constraint == "credit",
            work is None or not work.terms_ok,
            -share,
            i,
        )

    return min(range(len(evaluated)), key=rank)


def _purchase_deal(
    a: Applicant, chosen: ProductResult, requested: Decimal, fits: bool
) -> PurchaseDeal | None:
    if a.purpose != "purchase" or a.purchase_price is None:
        return None
    price = a.purchase_price
    basis = min(price, a.property_value)
    down = a.down_payment if a.down_payment is not None else max(price - requested, ZERO)
    return PurchaseDeal(
        price=cents(price),
        down_payment=cents(down),
        loan=requested,
        within=fits,
        max_loan=chosen.max_loan,
        max_ltv=_round_ratio(_raw_ratio(chosen.max_loan, basis)) or ZERO,
        down_payment_at_max=cents(max(price - chosen.max_loan, ZERO)),
        product=chosen.product,
    )


# --- one product -------------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Work:
    """What a product's evaluation knows beyond its result, to say what would close the gap."""

    rules: ProductRules
    name: str
    cost: _Cost
    factor: Decimal
    fixed: Decimal  # tax, insurance and (home equity) the first mortgage, a month
    income: Decimal  # a month
    back_room: Decimal  # income x back-end DTI - debts: the most for housing by the back-end ratio
    front_room: Decimal | None  # income x front-end DTI
    residual_base: Decimal | None  # VA: income after tax, less upkeep and debts (before housing)
    terms_cap: Decimal  # the lowest cap on the request's own kind of loan that is not affordability
    terms_ok: bool  # the request is within terms_cap
    afford: Decimal  # the most the ratios (and residual income) allow
    min_loan: Decimal | None  # a jumbo lends only above this


def _evaluate_product(
    product: str,
    rules: ProductRules,
    a: Applicant,
    g: Guidelines,
    limits: LoanLimits,
    requested: Decimal,
    costs: HousingCosts,
) -> tuple[ProductResult, _Work | None]:
    name = PRODUCT_NAMES.get(product, product)
    eligibility = _eligibility_reasons(product, rules, a)
    if eligibility:
        # A product the applicant cannot have at all: its ratios would only be noise.
        return (
            ProductResult(
                product=product,
                eligible=False,
                max_loan=ZERO,
                binding_constraint="eligibility",
                ltv=None,
                dti=None,
                monthly_payment=ZERO,
                reasons=eligibility,
                rate=rules.rate,
                obstacle=eligibility[0],
            ),
            None,
        )
    income = a.annual_income / TWELVE
    is_home_equity = a.purpose == "home_equity"
    is_refinance = a.purpose == "refinance"
    balance = a.mortgage_balance or ZERO
    cash_wanted = requested - balance if is_refinance else ZERO
    is_cash_out = cash_wanted > 0
    value = a.property_value
    basis = min(a.purchase_price, value) if a.purpose == "purchase" and a.purchase_price else value
    score = judged_score(a)
    notes: list[str] = []
    credit_ok = score >= rules.min_credit_score

    # Affordability: the most housing payment the DTI ratios allow, less tax and insurance (and, for a
    # home equity line, the existing first mortgage), turned into a loan.
    tax = cents(value * costs.property_tax_rate / HUNDRED / TWELVE)
    insurance = cents(value * costs.insurance_rate / HUNDRED / TWELVE)
    first_mortgage = _first_mortgage_payment(a, g) if is_home_equity else ZERO
    fixed = tax + insurance + first_mortgage
    back_end_room = income * rules.max_back_end_dti / HUNDRED - a.monthly_debts
    dti_kind = "dti"
    max_housing = back_end_room
    front_end_room = None
    if rules.max_front_end_dti is not None:
        front_end_room = income * rules.max_front_end_dti / HUNDRED
        if front_end_room < back_end_room:
            max_housing, dti_kind = front_end_room, "front_end_dti"
    factor = payment_factor(rules.rate, rules.term_years)
    cost = _cost_function(rules, g, a, basis)
    afford = _solve_max_base(max_housing - fixed, factor, cost)
    residual_base = None
    region = ""
    if rules.residual_income:
        residual_base, residual_cap, region = _residual_income_cap(a, g, income, fixed, factor, cost)
        if residual_cap < afford:
            afford, dti_kind = residual_cap, "residual_income"
        size = g.va_household_size
        notes.append(
            f"VA residual income: we assumed a household of {size} (the form does not ask), "
            f"in VA's {region.capitalize()} region; a larger household needs more left over each month."
        )

    # Caps on the base loan, by the kind of loan asked. A refinance has two: rate-and-term (the payoff
    # plus closing costs, at the rate-term LTV) and, when cash is asked, cash-out (at its own LTV).
    limit = _loan_limit(rules, limits)
    common: list[tuple[Decimal, str]] = [(afford, dti_kind)]
    if limit is not None:
        common.append((limit, "loan_limit"))
    rate_term_max = cash_out_max = None
    cash_out_binds = False  # the product's most is a cash-out refinance's
    ltv_kind = "cltv" if is_home_equity else "ltv"
    if is_refinance:
        rt_caps = [(cents_down(balance * (HUNDRED + g.refinance_closing_cost_rate) / HUNDRED), "payoff")]
        rt_ratio = _max_ltv(rules, a, score, False)
        if rt_ratio is not None:
            rt_caps.append((cents_down(value * rt_ratio / HUNDRED), "ltv"))
        rate_term_max, rt_binding = _lowest(rt_caps + common)
        terms = rt_caps
        max_ratio = rt_ratio
        max_loan, binding = rate_term_max, rt_binding
        if is_cash_out:
            co_ratio = _max_ltv(rules, a, score, True)
            co_caps = [] if co_ratio is None else [(cents_down(value * co_ratio / HUNDRED), "ltv")]
            cash_out_max, co_binding = _lowest(co_caps + common)
            terms, max_ratio = co_caps, co_ratio
            if cash_out_max >= rate_term_max:
                max_loan, binding, cash_out_binds = cash_out_max, co_binding, True
    else:
        max_ratio = rules.max_cltv if is_home_equity else _max_ltv(rules, a, score, False)
        if is_home_equity:
            terms = (
                []
                if max_ratio is None
                else [(max(cents_down(value * max_ratio / HUNDRED - balance), ZERO), "cltv")]
            )
        else:
            terms = [] if max_ratio is None else [(cents_down(basis * max_ratio / HUNDRED), "ltv")]
        max_loan, binding = _lowest(terms + common)
    if limit is not None:
        terms = [*terms, (limit, "loan_limit")]
    terms_cap = min((c for c, _ in terms), default=requested)
    min_loan = limits.conforming_limit + 1 if rules.above_conforming_only else None
    if min_loan is not None and max_loan < min_loan:
        # A jumbo this small is no jumbo: the product cannot lend to this applicant.
        max_loan, binding = ZERO, "loan_limit"
        rate_term_max = cash_out_max = None
    if not credit_ok:
        max_loan, binding = ZERO, "credit"
        rate_term_max = cash_out_max = None

    # What it lends toward the request, and whether that is an offer: the whole request, or at least the
    # staff-set minimum (and, for a jumbo, a loan above the conforming limit).
    loan = min(requested, max_loan)
    offers = (
        requested > 0
        and max_loan > 0
        and loan >= min(g.min_qualifying_loan, requested)
        and (min_loan is None or loan >= min_loan)
    )
    fits = offers and requested <= max_loan
    if not offers:
        loan = ZERO
    at = loan if offers else requested

    def figures(amount: Decimal) -> tuple[Decimal, Decimal | None, Decimal | None, Decimal | None]:
        fee_rate, mi_rate = cost(amount)
        total = amount + cents(amount * fee_rate)
        housing = cents(total * factor) + cents(total * mi_rate / TWELVE) + fixed
        # Unrounded ratios decide; the rounded ones are for display.
        ltv = _raw_ratio(balance + amount, value) if is_home_equity else _raw_ratio(amount, basis)
        return housing, _raw_ratio(housing + a.monthly_debts, income), _raw_ratio(housing, income), ltv

    housing, dti_raw, front_raw, ltv_raw = figures(at)
    reasons: list[str] = []
    if not fits:
        if at != requested:
            _, dti_raw_req, front_raw_req, ltv_raw_req = figures(requested)
        else:
            dti_raw_req, front_raw_req, ltv_raw_req = dti_raw, front_raw, ltv_raw
        residual_left = (
            None if residual_base is None else residual_base - _raw_housing(requested, cost, factor, fixed)
        )
        if not credit_ok:
            reasons.append(_credit_reason(name, rules, a))
        elif requested <= 0:
            reasons.append("Tell us how much you would like to borrow and we can check this loan for you.")
        else:
            found = _fit_reasons(
                name=name,
                rules=rules,
                a=a,
                g=g,
                requested=requested,
                dti=dti_raw_req,
                front=front_raw_req,
                ltv=ltv_raw_req,
                ltv_kind=ltv_kind,
                max_ratio=max_ratio,
                limit=limit,
                min_loan=min_loan,
                limits=limits,
                income=income,
                residual_left=residual_left,
                region=region,
            )
            # The binding obstacle first: that is the one to work on.
            found.sort(key=lambda kr: kr[0] != binding)
            reasons = [text for _, text in found]
            if not offers and 0 < max_loan < min(g.min_qualifying_loan, requested):
                reasons.append(
                    f"{name} could lend you up to about {_money(max_loan)}, less than the "
                    f"{_money(g.min_qualifying_loan)} we need to pass a request on to lenders."
                )
            if not reasons:  # within a cent or two of the limit: rounding decides
                reasons.append(
                    f"{name} can lend you up to about {_money(max_loan)}; "
                    "this request is a little above that."
                )

    obstacle = _obstacle(
        name=name,
        rules=rules,
        a=a,
        g=g,
        binding=binding,
        max_loan=max_loan,
        afford=afford,
        max_ratio=max_ratio,
        limit=limit,
        limits=limits,
        is_cash_out=cash_out_binds,
        region=region,
        income=income,
        min_loan=min_loan,
        credit_reason=None if credit_ok else _credit_reason(name, rules, a),
    )
    result = ProductResult(
        product=product,
        eligible=offers,
        max_loan=max_loan,
        binding_constraint=binding,
        ltv=_round_ratio(ltv_raw),
        dti=_round_ratio(dti_raw),
        monthly_payment=housing,
        reasons=_dedupe(reasons),
        notes=notes,
        front_end_dti=_round_ratio(front_raw),
        rate=rules.rate,
        fits_request=fits,
        loan=loan,
        obstacle=obstacle,
        rate_term_max=rate_term_max,
        cash_out_max=cash_out_max,
    )
    work = _Work(
        rules=rules,
        name=name,
        cost=cost,
        factor=factor,
        fixed=fixed,
        income=income,
        back_room=back_end_room,
        front_room=front_end_room,
        residual_base=residual_base,
        terms_cap=terms_cap,
        terms_ok=requested <= terms_cap,
        afford=afford,
        min_loan=min_loan,
    )
    return result, work


def _lowest(caps: list[tuple[Decimal, str]]) -> tuple[Decimal, str]:
    return min(caps, key=lambda c: (c[0], _ORDER[c[1]]))


def _raw_housing(loan: Decimal, cost: _Cost, factor: Decimal, fixed: Decimal) -> Decimal:
    """The housing payment for a base loan, unrounded: what the solver holds to its limits."""
    fee_rate, mi_rate = cost(loan)
    return loan * (1 + fee_rate) * (factor + mi_rate / TWELVE) + fixed


def _residual_income_cap(
    a: Applicant, g: Guidelines, income: Decimal, fixed: Decimal, factor: Decimal, cost: _Cost
) -> tuple[Decimal, Decimal, str]:
    """VA residual income (VA Pamphlet 26-7, ch. 4): what is left after estimated income taxes, the housing
    payment, maintenance and utilities, and debts must meet the table for the region and household. Returns
    what is left before housing, the largest loan that leaves enough, and the region."""
    base = income * (HUNDRED - g.va_income_tax_rate) / HUNDRED - g.va_maintenance_utilities - a.monthly_debts
    small_below = g.va_residual_small_loan_below
    required, region = g.va_residual_required(a.state, small_below)
    cap = _solve_max_base(base - required - fixed, factor, cost)
    if cap < small_below:
        # Smaller loans have a lower table; it holds only below the threshold.
        required_small, _ = g.va_residual_required(a.state, ZERO)
        small = min(_solve_max_base(base - required_small - fixed, factor, cost), small_below - CENT)
        cap = max(cap, small)
    return base, cap, region


def judged_score(applicant: Applicant) -> int:
    """The score the engine judges by: the exact score when given, else the lowest of the range (ranges
    never straddle a product's or a price's threshold, so the lowest score decides as the real one would)."""
    if applicant.credit_score is not None:
        return applicant.credit_score
    return CREDIT_RANGES[applicant.credit_range].min_score


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
    # `limits` are already the county's for the property's number of units (1-4).
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


def _credit_reason(name: str, rules: ProductRules, a: Applicant) -> str:
    minimum = rules.min_credit_score
    if a.credit_score is not None:
        return (
            f"{name} need a credit score of at least {minimum}; yours is {a.credit_score}. "
            "Raising your score would open this option."
        )
    low, high, _ = CREDIT_RANGES[a.credit_range]
    if high >= minimum:
        # The range straddles the minimum (only if staff set a minimum off the range edges): we judged it
        # by its lowest score, so a lender may still say yes.
        return (
            f"{name} need a credit score of at least {minimum}. Your range ({low}-{high}) starts below "
            f"that, so we did not count on it; with {minimum} or more a lender may still offer one."
        )
    return (
        f"{name} need a credit score of at least {minimum}; yours is in the "
        f"{low}-{high} range. Raising your score would open this option."
    )


def _fit_reasons(
    *,
    name: str,
    rules: ProductRules,
    a: Applicant,
    g: Guidelines,
    requested: Decimal,
    dti: Decimal | None,
    front: Decimal | None,
    ltv: Decimal | None,
    ltv_kind: str,
    max_ratio: Decimal | None,
    limit: Decimal | None,
    min_loan: Decimal | None,
    limits: LoanLimits,
    income: Decimal,
    residual_left: Decimal | None,
    region: str,
) -> list[tuple[str, str]]:
    """Why the requested loan does not fit, each tagged with the constraint it is about."""
    reasons: list[tuple[str, str]] = []
    if min_loan is not None and requested < min_loan:
        reasons.append(
            (
                "loan_limit",
                f"{name} start above {_money(limits.conforming_limit)} in your county; "
                "your loan is small enough for a conforming loan.",
            )
        )
    if limit is not None and requested > limit:
        if rules.limit == "none":
            text = f"{name} go up to {_money(limit)}; you asked for {_money(requested)}."
        else:
            kind = "FHA" if rules.limit == "fha" else "conforming"
            hint = (
                " a jumbo loan may fit instead."
                if rules.limit == "conforming"
                else " a larger down payment or another loan may fit."
            )
            text = f"This loan is above the {_money(limit)} {kind} limit for your county;{hint}"
        reasons.append(("loan_limit", text))
    if income <= 0:
        reasons.append(("dti", "We need your income to estimate what you can borrow."))
    else:
        debt_share = a.monthly_debts / income * HUNDRED
        most = max(r.max_back_end_dti for r in g.products.values())
        if debt_share >= most:
            # Told kindly, whatever the size: a DTI of millions of percent is simply over any limit.
            reasons.append(
                (
                    "dti",
                    "Your monthly debts are more than any loan allows for your income: they already come to "
                    f"{_pct(debt_share, up=True)} of it before a mortgage payment, and loans allow at most "
                    f"{_pct(most)} for all debts together. Paying down debts, or adding a co-borrower's "
                    "income, is the way forward.",
                )
            )
        elif debt_share >= rules.max_back_end_dti:
            reasons.append(
                (
                    "dti",
                    f"Your monthly debts already come to {_pct(debt_share, up=True)} of your income; "
                    f"{name} need all debts, the new payment included, to be "
                    f"{_pct(rules.max_back_end_dti)} or less.",
                )
            )
        else:
            if rules.max_front_end_dti is not None and front is not None and front > rules.max_front_end_dti:
                reasons.append(
                    (
                        "front_end_dti",
                        f"The housing payment is high for your income: {name} need it to be "
                        f"{_pct(rules.max_front_end_dti)} of your income or less; "
                        f"yours would be {_pct(front, up=True)}.",
                    )
                )
            if dti is not None and dti > rules.max_back_end_dti:
                if dti > RATIO_CAP:
                    text = (
                        "The payment on this loan would be more than any loan allows for your income: "
                        f"{name} need all debts, the new payment included, to be "
                        f"{_pct(rules.max_back_end_dti)} of your income or less."
                    )
                else:
                    text = (
                        "Your monthly debts are high for your income: this loan needs a debt-to-income ratio "
                        f"of {_pct(rules.max_back_end_dti)} or less; yours would be {_pct(dti, up=True)}."
                    )
                reasons.append(("dti", text))
        if residual_left is not None:
            required, _ = g.va_residual_required(a.state, requested)
            if residual_left < required:
                left = max(residual_left, ZERO).to_integral_value(rounding=ROUND_CEILING)
                reasons.append(
                    (
                        "residual_income",
                        f"{name} need {_money(required)} a month left over after taxes, the housing payment, "
                        f"upkeep and debts (for a household of {g.va_household_size} in the "
                        f"{region.capitalize()}); with this loan about {_money(left)} would be left.",
                    )
                )
    if max_ratio is not None and ltv is not None and ltv > max_ratio:
        if ltv_kind == "cltv":
            text = (
                f"Together with your mortgage, this line would be {_pct(ltv, up=True)} of your home's value; "
                f"{_lower(name)} go up to {_pct(max_ratio)}."
            )
        elif a.purpose == "refinance":
            kind = "cash-out refinance" if requested > (a.mortgage_balance or ZERO) else "refinance"
            text = (
                f"This {kind} would be {_pct(ltv, up=True)} of your home's value; "
                f"{name} go up to {_pct(max_ratio)} for a {kind}."
            )
        else:
            text = (
                f"This loan would be {_pct(ltv, up=True)} of the home's price; {name} go up to "
                f"{_pct(max_ratio)}. A larger down payment would help."
            )
        reasons.append((ltv_kind, text))
    return reasons


def _obstacle(
    *,
    name: str,
    rules: ProductRules,
    a: Applicant,
    g: Guidelines,
    binding: str,
    max_loan: Decimal,
    afford: Decimal,
    max_ratio: Decimal | None,
    limit: Decimal | None,
    limits: LoanLimits,
    is_cash_out: bool,
    region: str,
    income: Decimal,
    min_loan: Decimal | None,
    credit_reason: str | None,
) -> str:
    """What limits this product's maximum, in one sentence with its figures (for consumer and lender)."""
    if credit_reason is not None:
        return credit_reason
    if min_loan is not None and max_loan <= 0:
        return (
            f"{name} start above {_money(limits.conforming_limit)} in your county; the most you can borrow "
            "is within the conforming limit."
        )
    up_to = _money(max_loan)
    if binding in _AFFORDABILITY:
        if income <= 0:
            return "We need your income to estimate what you can borrow."
        if afford <= 0:
            return (
                "Your monthly debts, with the home's tax and insurance, leave no room for a loan payment "
                f"within {_lower(name)}' limits ({_pct(rules.max_back_end_dti)} of income for all debts)."
            )
        if binding == "front_end_dti":
            assert rules.max_front_end_dti is not None
            return (
                f"Housing ratio: with the housing payment at {_pct(rules.max_front_end_dti)} of your income, "
                f"{_lower(name)} lend up to {up_to}."
            )
        if binding == "residual_income":
            required, _ = g.va_residual_required(a.state, max_loan)
            return (
                f"Residual income: VA needs {_money(required)} a month left over after taxes, housing, "
                f"upkeep and debts (household of {g.va_household_size}, {region.capitalize()}); "
                f"that holds up to {up_to}."
            )
        return (
            f"Debt-to-income: with all debts at {_pct(rules.max_back_end_dti)} of your income "
            f"({_money(a.monthly_debts)} a month besides this loan), {_lower(name)} lend up to {up_to}."
        )
    if binding == "loan_limit":
        if (
            rules.limit == "none"
            or limit is None
            or (rules.max_loan_amount is not None and limit == rules.max_loan_amount)
        ):
            return f"Loan size: {_lower(name)} go up to {up_to}."
        kind = "FHA" if rules.limit == "fha" else "conforming"
        return f"County loan limit: {_lower(name)} go up to the {up_to} {kind} limit in your county."
    if binding == "payoff":
        return (
            f"Rate-and-term refinance: up to what you owe plus estimated closing costs "
            f"({_pct(g.refinance_closing_cost_rate)} of the balance), {up_to}."
        )
    if binding == "cltv":
        return (
            f"Combined loan-to-value: with your mortgage, {_lower(name)} go up to "
            f"{_pct(max_ratio or ZERO)} of your home's value, a line of up to {up_to}."
        )
    if binding == "ltv":
        shown = _pct(max_ratio or ZERO)
        if a.purpose == "refinance":
            kind = "a cash-out refinance" if is_cash_out else "a refinance"
            return (
                f"Loan-to-value: for {kind}, {_lower(name)} go up to {shown} of your home's value, {up_to}."
            )
        return f"Loan-to-value: {_lower(name)} go up to {shown} of the price, {up_to}."
    return ""


def _gap_steps(
    r: ProductResult, w: _Work, a: Applicant, g: Guidelines, requested: Decimal, minimum: Decimal
) -> list[GapStep]:
    """What would let the consumer borrow the loan they asked for (or as near as the deal's own caps let
    them), on the chosen product: a larger down payment, less cash out, paying down debts, more income."""
    steps: list[GapStep] = []
    if r.binding_constraint in ("eligibility", "credit") or requested <= 0 or r.max_loan >= requested:
        return steps
    floor = min(minimum, requested)
    top = r.max_loan
    if top > 0 and top >= floor:
        if a.purpose == "purchase":
            down = a.down_payment if a.down_payment is not None else ZERO
            more = requested - top
            steps.append(
                GapStep(
                    "down_payment",
                    more,
                    top,
                    f"A down payment of {_money(_up(down + more))} ({_money(_up(more))} more) would bring "
                    f"the loan to {_money(_down(top))}, within what you may qualify for.",
                )
            )
        elif a.purpose == "refinance":
            balance = a.mortgage_balance or ZERO
            if requested > balance and r.cash_out_max is not None and r.cash_out_max > balance:
                cash = r.cash_out_max - balance
                steps.append(
                    GapStep(
                        "cash_out",
                        cash,
                        r.cash_out_max,
                        f"Taking {_money(_down(cash))} in cash instead of {_money(requested - balance)} "
                        "would fit.",
                    )
                )
            elif requested > balance and r.rate_term_max is not None and r.rate_term_max >= balance:
                steps.append(
                    GapStep(
                        "no_cash_out",
                        ZERO,
                        balance,
                        "Refinancing what you owe without cash out would fit "
                        f"(up to {_money(_down(r.rate_term_max))} with closing costs).",
                    )
                )
            elif top < balance:
                steps.append(
                    GapStep(
                        "balance",
                        balance - top,
                        top,
                        f"Paying {_money(_up(balance - top))} off your balance at closing would let you "
                        "refinance the rest.",
                    )
                )
        else:
            steps.append(GapStep("line", top, top, f"A line of up to {_money(_down(top))} would fit."))
    # Affordability: what would let the ratios carry the request, or as much of it as the deal's caps allow.
    target = min(requested, w.terms_cap)
    if (
        w.afford >= target
        or w.income <= 0
        or target < floor
        or (w.min_loan is not None and target < w.min_loan)
    ):
        return steps
    housing = _raw_housing(target, w.cost, w.factor, w.fixed)
    rules = w.rules
    front_ok = w.front_room is None or w.front_room >= housing
    short = housing - w.back_room
    needs: list[Decimal] = [(housing + a.monthly_debts) * HUNDRED / rules.max_back_end_dti]
    required = ZERO
    if rules.max_front_end_dti is not None:
        needs.append(housing * HUNDRED / rules.max_front_end_dti)
    if w.residual_base is not None:
        required, _ = g.va_residual_required(a.state, target)
        short = max(short, housing - (w.residual_base - required))
        spendable = (HUNDRED - g.va_income_tax_rate) / HUNDRED
        needs.append((housing + a.monthly_debts + g.va_maintenance_utilities + required) / spendable)
    if front_ok and 0 < short <= a.monthly_debts:
        # One dollar over, so the rounding of the payment can never leave the loan a cent short.
        pay_down = min(short.to_integral_value(rounding=ROUND_CEILING) + 1, a.monthly_debts)
        steps.append(
            GapStep(
                "debts",
                cents(pay_down),
                target,
                f"Paying off debts that cost {_money(pay_down)} a month would let you borrow "
                f"{_money(_down(target))}.",
            )
        )
    elif a.monthly_debts > 0:
        # Paying off every debt is not enough on its own; say how far it goes.
        rooms = [w.back_room + a.monthly_debts]
        if w.front_room is not None:
            rooms.append(w.front_room)
        if w.residual_base is not None:
            rooms.append(w.residual_base + a.monthly_debts - required)
        debt_free = min(_solve_max_base(min(rooms) - w.fixed, w.factor, w.cost), target)
        if debt_free > r.max_loan and debt_free >= floor:
            steps.append(
                GapStep(
                    "debts",
                    cents(a.monthly_debts),
                    debt_free,
                    f"Paying off all your debts ({_money(a.monthly_debts)} a month) would let you borrow "
                    f"up to {_money(_down(debt_free))}.",
                )
            )
    yearly = (max(needs) * TWELVE + 1) / HUNDRED
    income = yearly.to_integral_value(rounding=ROUND_CEILING) * HUNDRED
    if income > a.annual_income:
        steps.append(
            GapStep(
                "income",
                cents(income),
                target,
                f"A household income of {_money(income)} a year (a co-borrower's income counts) would let "
                f"you borrow {_money(_down(target))}.",
            )
        )
    return steps


def _raw_ratio(part: Decimal, whole: Decimal) -> Decimal | None:
    if whole <= 0:
        return None
    return part / whole * HUNDRED


def _round_ratio(value: Decimal | None) -> Decimal | None:
    if value is None:
        return None
    if value > RATIO_CAP:
        return RATIO_CAP
    return value.quantize(RATIO, rounding=ROUND_HALF_UP)


def _pct(value: Decimal, *, up: bool = False) -> str:
    # The applicant's own figure is rounded up, so 50.04% never reads as "50%" next to a 50% maximum.
    if value > RATIO_CAP:
        return "over 999%"
    shown = value.quantize(Decimal("0.1"), rounding=ROUND_UP if up else ROUND_HALF_UP)
    if shown == shown.to_integral_value():
        shown = shown.quantize(Decimal(1))
    return f"{shown}%"


def _down(value: Decimal) -> Decimal:
    # Whole dollars for sentences: what the consumer may borrow rounds down, what they must add rounds up.
    return value.to_integral_value(rounding=ROUND_FLOOR)


def _up(value: Decimal) -> Decimal:
    return value.to_integral_value(rounding=ROUND_CEILING)


def _lower(name: str) -> str:
    # "Conventional loans" -> "conventional loans"; "FHA loans" keeps its capitals.
    return name[0].lower() + name[1:] if name[1:2].islower() else name


def _money(value: Decimal) -> str:
    if value == value.to_integral_value():
        return f"${value:,.0f}"
    return f"${value:,.2f}"


def _dedupe(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))
