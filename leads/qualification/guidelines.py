"""Lending guidelines, credit ranges and loan limits the engine judges against; editable by staff as JSON."""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass, field
from decimal import ROUND_FLOOR, Decimal
from types import MappingProxyType
from typing import Any, NamedTuple

from .money import to_decimal

PURPOSES = ("purchase", "refinance", "home_equity")
PROPERTY_TYPES = ("single_family", "condo", "townhouse", "multi_family", "manufactured")
OCCUPANCIES = ("primary", "secondary", "investment")
PRODUCTS = ("conventional", "fha", "va", "jumbo", "home_equity")
VA_REGIONS = ("northeast", "midwest", "south", "west")

# VA Pamphlet 26-7, ch. 4 (residual income table): the region of each state. Puerto Rico is in the South;
# a place the table does not name (Guam, the U.S. Virgin Islands, ...) takes the West, whose figures are
# the highest, so the check is never too lenient.
VA_REGION_BY_STATE: MappingProxyType[str, str] = MappingProxyType(
    {
        **dict.fromkeys(("CT", "ME", "MA", "NH", "NJ", "NY", "PA", "RI", "VT"), "northeast"),
        **dict.fromkeys(
            ("IL", "IN", "IA", "KS", "MI", "MN", "MO", "NE", "ND", "OH", "SD", "WI"), "midwest"
        ),
        **dict.fromkeys(
            (
                "AL", "AR", "DE", "DC", "FL", "GA", "KY", "LA", "MD", "MS", "NC", "OK", "PR", "SC", "TN",
                "TX", "VA", "WV",
            ),
            "south",
        ),
        **dict.fromkeys(
            ("AK", "AZ", "CA", "CO", "HI", "ID", "MT", "NV", "NM", "OR", "UT", "WA", "WY"), "west"
        ),
    }
)  # fmt: skip
VA_DEFAULT_REGION = "west"


class CreditRange(NamedTuple):
    min_score: int
    max_score: int
    label: str


# Ranges the consumer picks from, best first. Their edges are the scores that decide products and prices:
# FHA 500 and 580 (HUD 4000.1 II.A.2.b), conventional and VA 620 (Fannie Mae Selling Guide B3-5.1-01), HELOC
# 680, jumbo 700, and the loan-level price breaks every 20 points from 620 to 760 (Fannie Mae LLPA Matrix).
# The engine judges a range by its lowest score (conservative): someone who says 680-699 may be at 680; as
# no range straddles a threshold, that never costs a consumer a product or a price tier.
CREDIT_RANGES: MappingProxyType[str, CreditRange] = MappingProxyType(
    {
        "760_850": CreditRange(760, 850, "760 or higher"),
        "740_759": CreditRange(740, 759, "740–759"),
        "720_739": CreditRange(720, 739, "720–739"),
        "700_719": CreditRange(700, 719, "700–719"),
        "680_699": CreditRange(680, 699, "680–699"),
        "660_679": CreditRange(660, 679, "660–679"),
        "640_659": CreditRange(640, 659, "640–659"),
        "620_639": CreditRange(620, 639, "620–639"),
        "580_619": CreditRange(580, 619, "580–619"),
        "500_579": CreditRange(500, 579, "500–579"),
        "300_499": CreditRange(300, 499, "Below 500"),
    }
)
MIN_CREDIT_SCORE, MAX_CREDIT_SCORE = 300, 850
# The thresholds above, lowest first: the minimums a subscription offers (and the ranges' lower edges).
CREDIT_THRESHOLDS: tuple[int, ...] = tuple(sorted(r.min_score for r in CREDIT_RANGES.values()))


def credit_range_for_score(score: int) -> str:
    """The range an exact score (300-850) falls in."""
    if isinstance(score, bool) or not isinstance(score, int):
        raise ValueError(f"credit_score must be a whole number; got {score!r}")
    if not MIN_CREDIT_SCORE <= score <= MAX_CREDIT_SCORE:
        raise ValueError(
            f"credit_score must be between {MIN_CREDIT_SCORE} and {MAX_CREDIT_SCORE}; got {score}"
        )
    return next(key for key, r in CREDIT_RANGES.items() if r.min_score <= score <= r.max_score)


# FHFA 2026 conforming loan limits by number of units (1-4): the baseline and the high-cost ceiling (150% of
# the baseline), as in FHFA's county file.
BASELINE_CONFORMING_LIMITS: tuple[Decimal, ...] = tuple(
    Decimal(v) for v in ("832750.00", "1066250.00", "1288800.00", "1601750.00")
)
HIGH_COST_CEILINGS: tuple[Decimal, ...] = tuple(
    Decimal(v) for v in ("1249125.00", "1599375.00", "1933200.00", "2402625.00")
)
BASELINE_CONFORMING_LIMIT = BASELINE_CONFORMING_LIMITS[0]
HIGH_COST_CEILING = HIGH_COST_CEILINGS[0]
# HUD's FHA forward-mortgage floor: 65% of the conforming baseline, truncated to the dollar (2026, one
# unit: 832,750 x 0.65 = 541,287.50 -> 541,287), and the same share of each 2-4 unit baseline.
FHA_FLOORS: tuple[Decimal, ...] = tuple(
    (b * Decimal("0.65")).to_integral_value(rounding=ROUND_FLOOR).quantize(Decimal("0.01"))
    for b in BASELINE_CONFORMING_LIMITS
)
FHA_FLOOR = FHA_FLOORS[0]
# Where the conforming limit is set by statute, not by home prices (12 U.S.C. 1717(b)(2): Alaska, Hawaii,
# Guam and the U.S. Virgin Islands), it says nothing about FHA's limit, which only HUD's file gives.
STATUTORY_LIMIT_AREAS = frozenset({"AK", "HI", "GU", "VI"})
UNIT_COUNTS = (1, 2, 3, 4)


@dataclass(frozen=True)
class LoanLimits:
    """The loan limits for the property's county and number of units, and where each figure came from."""

    conforming_limit: Decimal
    fha_limit: Decimal
    source: str = "baseline"
    fha_source: str = ""
    units: int = 1

    def __post_init__(self) -> None:
        for name in ("conforming_limit", "fha_limit"):
            value = to_decimal(getattr(self, name), field=name)
            if value <= 0:
                raise ValueError(f"{name} must be positive")
            object.__setattr__(self, name, value)
        if self.units not in UNIT_COUNTS:
            raise ValueError("units must be 1, 2, 3 or 4")
        if not self.fha_source:
            object.__setattr__(self, "fha_source", f"derived from the conforming limit ({self.source})")

    @classmethod
    def baseline(cls, units: int = 1) -> LoanLimits:
        """Limits for a baseline county; also the fallback for an unknown county (the lowest anywhere)."""
        i = _unit_index(units)
        return cls(
            BASELINE_CONFORMING_LIMITS[i],
            FHA_FLOORS[i],
            "FHFA 2026 national baseline",
            "HUD FHA floor (national baseline)",
            units,
        )

    @classmethod
    def for_county(
        cls,
        conforming_limit: Decimal,
        source: str = "",
        *,
        units: int = 1,
        state: str = "",
        hud_fha_limit: Decimal | None = None,
        hud_source: str = "",
    ) -> LoanLimits:
        """Limits for a county from its FHFA conforming limit for this number of units, and HUD's FHA limit
        where HUD's file has been imported.

        Without HUD's figure it is derived: FHA's limit is 115% of the area median price between the floor
        and the ceiling; so is the conforming limit above the baseline. So in a high-cost county (conforming
        limit above the baseline) the FHA limit equals the conforming limit, capped at the ceiling. In a
        baseline county HUD's own limit may be anywhere from the floor up to the baseline; we use the floor,
        which is never too high. Where the conforming limit is statutory (Alaska, Hawaii, Guam, the Virgin
        Islands) nothing can be derived from it: the floor applies.
        """
        i = _unit_index(units)
        conforming_limit = to_decimal(conforming_limit, field="conforming_limit")
        source = source or f"county {conforming_limit}"
        if hud_fha_limit is not None:
            fha_limit, fha_source = to_decimal(hud_fha_limit, field="hud_fha_limit"), hud_source or "HUD"
        elif state.strip().upper() in STATUTORY_LIMIT_AREAS:
            fha_limit = FHA_FLOORS[i]
            fha_source = (
                "HUD FHA floor: the conforming limit here is statutory and HUD's county limits are not "
                "imported"
            )
        elif conforming_limit > BASELINE_CONFORMING_LIMITS[i]:
            fha_limit = min(conforming_limit, HIGH_COST_CEILINGS[i])
            fha_source = f"derived from {source} (high-cost area: FHA equals the conforming limit)"
        else:
            fha_limit, fha_source = FHA_FLOORS[i], f"HUD FHA floor ({source} is the baseline)"
        return cls(conforming_limit, fha_limit, source, fha_source, units)


def _unit_index(units: int) -> int:
    if units not in UNIT_COUNTS:
        raise ValueError("units must be 1, 2, 3 or 4")
    return units - 1


@dataclass(frozen=True)
class HousingCosts:
    """The yearly property tax and homeowners insurance the engine counts in the housing payment, each a %
    of the home's value: the state's published figures, or the guideline set's national ones."""

    property_tax_rate: Decimal
    insurance_rate: Decimal
    source: str = "national"

    def __post_init__(self) -> None:
        for name in ("property_tax_rate", "insurance_rate"):
            value = to_decimal(getattr(self, name), field=name)
            if not ZERO_PCT <= value <= TEN_PCT:
                raise ValueError(f"{name} must be a yearly % from 0 to 10")
            object.__setattr__(self, name, value)


@dataclass(frozen=True)
class ProductRules:
    """One loan product's rules. Percentages are Decimal percents (97 means 97%)."""

    rate: Decimal  # annual interest rate, %
    term_years: int
    min_credit_score: int
    max_back_end_dti: Decimal
    max_front_end_dti: Decimal | None
    max_ltv_purchase: Decimal | None
    max_ltv_rate_term: Decimal | None
    max_ltv_cash_out: Decimal | None
    max_cltv: Decimal | None  # home equity: (existing mortgage + this loan) / value
    # Below this score, purchase and rate-term loans are held to reduced_max_ltv (FHA: 580 and 90%).
    reduced_ltv_below_score: int | None = None
    reduced_max_ltv: Decimal | None = None
    # Purchase LTV for buyers who are not first-time buyers, when lower than max_ltv_purchase.
    max_ltv_purchase_repeat_buyer: Decimal | None = None
    # Further LTV caps by occupancy and property type (the lowest cap that applies wins).
    max_ltv_by_occupancy: dict[str, Decimal] = field(default_factory=dict)
    max_ltv_by_property_type: dict[str, Decimal] = field(default_factory=dict)
    requires_military_service: bool = False
    purposes: tuple[str, ...] = ("purchase", "refinance")
    occupancies: tuple[str, ...] = OCCUPANCIES
    property_types: tuple[str, ...] = PROPERTY_TYPES
    # Which county limit caps the loan: 'conforming', 'fha' or 'none'.
    limit: str = "conforming"
    # Jumbo: only loans above the county conforming limit.
    above_conforming_only: bool = False
    max_loan_amount: Decimal | None = None
    # Mortgage insurance / guarantee fee: 'none', 'pmi', 'fha' or 'va'.
    mortgage_insurance: str = "none"
    # VA: the residual income left each month must meet the table in Guidelines (VA Pamphlet 26-7, ch. 4).
    residual_income: bool = False

    def __post_init__(self) -> None:
        if self.limit not in ("conforming", "fha", "none"):
            raise ValueError(f"limit must be conforming, fha or none, not {self.limit!r}")
        if self.mortgage_insurance not in ("none", "pmi", "fha", "va"):
            raise ValueError(
                f"mortgage_insurance must be none, pmi, fha or va, not {self.mortgage_insurance!r}"
            )
        for name, allowed in (
            ("purposes", PURPOSES),
            ("occupancies", OCCUPANCIES),
            ("property_types", PROPERTY_TYPES),
        ):
            bad = set(getattr(self, name)) - set(allowed)
            if bad:
                raise ValueError(f"{name}: unknown values {sorted(bad)}")
        if self.term_years <= 0:
            raise ValueError("term_years must be positive")


@dataclass(frozen=True)
class Guidelines:
    """A rate sheet and the rules per product. Stored as JSON (to_dict/from_dict) so staff can edit it."""

    version: str
    products: dict[str, ProductRules]
    property_tax_rate: Decimal = Decimal("1.10")  # annual % of value
    insurance_rate: Decimal = Decimal("0.35")  # annual % of value
    pmi_rate: Decimal = Decimal("0.50")  # conventional PMI, annual % of the loan, when LTV > 80%
    pmi_above_ltv: Decimal = Decimal("80")
    fha_ufmip_rate: Decimal = Decimal("1.75")  # financed into the loan
    # FHA annual MIP (terms over 15 years): by base loan amount and LTV.
    fha_mip_loan_threshold: Decimal = Decimal("726200")
    fha_mip_ltv_threshold: Decimal = Decimal("95")
    fha_mip_rate_low_ltv: Decimal = Decimal("0.50")
    fha_mip_rate_high_ltv: Decimal = Decimal("0.55")
    fha_mip_rate_large_low_ltv: Decimal = Decimal("0.70")
    fha_mip_rate_large_high_ltv: Decimal = Decimal("0.75")
    # VA funding fee, first use, by down payment; refinances pay the cash-out rate.
    va_fee_under_5_down: Decimal = Decimal("2.15")
    va_fee_5_to_10_down: Decimal = Decimal("1.50")
    va_fee_10_plus_down: Decimal = Decimal("1.25")
    va_fee_refinance: Decimal = Decimal("2.15")
    # Home equity: the existing first mortgage's payment is estimated from its balance at this product's
    # rate and term (we do not ask for it), so the back-end DTI counts it.
    first_mortgage_estimate_product: str = "conventional"
    # A lead qualifies when some product lends the whole request, or at least this much toward it.
    min_qualifying_loan: Decimal = Decimal("50000")
    # A rate-and-term (limited cash-out) refinance lends the payoff plus closing costs and no more (Fannie
    # Mae Selling Guide B2-1.3-02; HUD 4000.1 II.A.8.d, VA: the same idea). Closing costs are estimated as
    # this % of the balance.
    refinance_closing_cost_rate: Decimal = Decimal("3")
    # VA residual income (VA Pamphlet 26-7, ch. 4, "residual income"): what must be left each month after
    # taxes, the housing payment, maintenance and utilities, and debts, by region and household size (1-5;
    # each member over 5, up to 7, adds the extra figure). One table for loans of $80,000 and more, one for
    # smaller loans.
    va_residual_income: dict[str, tuple[Decimal, ...]] = field(
        default_factory=lambda: {
            "northeast": _amounts("450", "755", "909", "1025", "1062"),
            "midwest": _amounts("441", "738", "889", "1003", "1039"),
            "south": _amounts("441", "738", "889", "1003", "1039"),
            "west": _amounts("491", "823", "990", "1117", "1158"),
        }
    )
    va_residual_income_small_loans: dict[str, tuple[Decimal, ...]] = field(
        default_factory=lambda: {
            "northeast": _amounts("390", "654", "788", "888", "921"),
            "midwest": _amounts("382", "641", "772", "868", "902"),
            "south": _amounts("382", "641", "772", "868", "902"),
            "west": _amounts("425", "713", "859", "967", "1004"),
        }
    )
    va_residual_extra_member: Decimal = Decimal("80")
    va_residual_extra_member_small_loans: Decimal = Decimal("75")
    va_residual_small_loan_below: Decimal = Decimal("80000")
    # The form does not ask the household's size: this is assumed, and the result says so.
    va_household_size: int = 1
    # Residual income deducts federal and state income tax and Social Security and Medicare, which we do
    # not ask about: estimated as this % of gross income.
    va_income_tax_rate: Decimal = Decimal("20")
    # Maintenance and utilities a month: VA's $0.14 a square foot, on an assumed 1,800 square feet.
    va_maintenance_utilities: Decimal = Decimal("252")

    def __post_init__(self) -> None:
        unknown = set(self.products) - set(PRODUCTS)
        if unknown:
            raise ValueError(f"unknown products: {sorted(unknown)}")
        for name in ("va_residual_income", "va_residual_income_small_loans"):
            table = getattr(self, name)
            if set(table) != set(VA_REGIONS) or any(len(row) != 5 for row in table.values()):
                raise ValueError(
                    f"{name} needs the regions {', '.join(VA_REGIONS)}, "
                    "each with 5 amounts (households of 1-5)"
                )
        if self.va_household_size < 1:
            raise ValueError("va_household_size must be at least 1")
        if not ZERO_PCT <= self.va_income_tax_rate < HUNDRED_PCT:
            raise ValueError("va_income_tax_rate must be a % from 0 to under 100")

    def va_residual_required(self, state: str, loan: Decimal) -> tuple[Decimal, str]:
        """The residual income VA requires a month for a loan in this state, and the region it used."""
        region = VA_REGION_BY_STATE.get(state, VA_DEFAULT_REGION)
        if loan < self.va_residual_small_loan_below:
            row, extra = (
                self.va_residual_income_small_loans[region],
                self.va_residual_extra_member_small_loans,
            )
        else:
            row, extra = self.va_residual_income[region], self.va_residual_extra_member
        size = self.va_household_size
        if size <= 5:
            return row[size - 1], region
        return row[4] + extra * (min(size, 7) - 5), region

    def to_dict(self) -> dict[str, Any]:
        return _to_jsonable(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Guidelines:
        """Rebuild from to_dict() output; missing top-level figures take defaults, bad ones raise."""
        if not isinstance(data, dict):
            raise ValueError("guidelines must be a JSON object")
        kwargs = _parse_fields(cls, data, skip={"products"}, where="guidelines")
        products_data = data.get("products")
        if not isinstance(products_data, dict):
            raise ValueError("guidelines.products must be an object")
        # In the canonical order, whatever order the JSON came in (PostgreSQL's jsonb keeps none): ties
        # between products go to the one listed first, and pages list them in this order.
        order = {name: i for i, name in enumerate(PRODUCTS)}
        products = {
            name: ProductRules(
                **_parse_fields(ProductRules, _current(products_data[name]), where=f"products.{name}")
            )
            for name in sorted(products_data, key=lambda n: order.get(n, len(order)))
        }
        return cls(products=products, **kwargs)


ZERO_PCT = Decimal(0)
TEN_PCT = Decimal(10)
HUNDRED_PCT = Decimal(100)


def _amounts(*values: str) -> tuple[Decimal, ...]:
    return tuple(Decimal(v) for v in values)


def _to_jsonable(value: Any) -> Any:
    """Plain JSON values, money as strings. Dataclasses field by field: dataclasses.asdict deep-copies every
    value first, which cost more than evaluating the applicant. Scalars, most of a result, return first."""
    kind: type = type(value)  # declared: mypy infers type[Any] and then doubts it is hashable (the cache key)
    if kind in _JSON_SCALARS:
        return value
    if kind is Decimal:
        return str(value)
    if kind is list or kind is tuple:
        return [_to_jsonable(v) for v in value]
    if kind is dict:
        return {k: _to_jsonable(v) for k, v in value.items()}
    names = _dataclass_fields(kind)
    if names is not None:
        return {name: _to_jsonable(getattr(value, name)) for name in names}
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {k: _to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_to_jsonable(v) for v in value]
    return value


_JSON_SCALARS = frozenset({str, int, float, bool, type(None)})


@functools.cache
def _dataclass_fields(kind: type) -> tuple[str, ...] | None:
    return tuple(f.name for f in dataclasses.fields(kind)) if dataclasses.is_dataclass(kind) else None


# Keys sets stored before they were retired still carry; they are read and dropped, never refused.
# poor_band_assumed_score: the FHA score assumed for the old 'poor' band (300-619), gone with the band
# (issue 12.5): every credit range is judged by its own lowest score.
RETIRED_PRODUCT_KEYS = frozenset({"poor_band_assumed_score"})


def _current(data: Any) -> Any:
    return (
        {k: v for k, v in data.items() if k not in RETIRED_PRODUCT_KEYS} if isinstance(data, dict) else data
    )


def _parse_fields(cls: type, data: Any, *, where: str, skip: set[str] | None = None) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ValueError(f"{where} must be an object")
    skip = skip or set()
    fields = {f.name: f for f in dataclasses.fields(cls) if f.name not in skip}
    unknown = set(data) - set(fields) - skip
    if unknown:
        raise ValueError(f"{where}: unknown keys {sorted(unknown)}")
    out: dict[str, Any] = {}
    for name, f in fields.items():
        if name not in data:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise ValueError(f"{where}.{name} is required")
            continue
        out[name] = _parse_value(f.type, data[name], where=f"{where}.{name}")
    return out


def _parse_value(type_: Any, value: Any, *, where: str) -> Any:
    # Annotations are strings (from __future__ import annotations); parse by their spelling.
    spelled = str(type_)
    if value is None:
        if "None" in spelled:
            return None
        raise ValueError(f"{where} is required")
    try:
        if spelled.startswith("dict[str, Decimal]"):
            return {str(k): to_decimal(v, field=where) for k, v in dict(value).items()}
        if spelled.startswith("dict[str, tuple[Decimal"):
            if not isinstance(value, dict) or any(isinstance(v, str) for v in value.values()):
                raise ValueError(f"{where} must be an object of lists")
            return {str(k): tuple(to_decimal(x, field=where) for x in v) for k, v in value.items()}
        if spelled.startswith("tuple[str"):
            if isinstance(value, str):
                raise ValueError(f"{where} must be a list")
            return tuple(str(v) for v in value)
        if spelled.startswith("Decimal"):
            return to_decimal(value, field=where)
        if spelled.startswith("int"):
            if isinstance(value, bool) or not isinstance(value, (int, str)):
                raise ValueError(f"{where} must be a whole number")
            return int(value)
        if spelled == "bool":
            if not isinstance(value, bool):
                raise ValueError(f"{where} must be true or false")
            return value
        if spelled == "str":
            return str(value)
    except (TypeError, ArithmeticError) as exc:
        raise ValueError(f"{where}: {exc}") from exc
    raise ValueError(f"{where}: cannot parse {spelled}")


D = Decimal

# 2026.2 (issue 12): the most each product lends instead of a refusal, a staff-set minimum loan to qualify,
# rate-and-term refinances capped at the payoff plus closing costs, VA residual income. Stored by the data
# migration leads/migrations/*_guidelines_2026_2 as the active set; leads qualified before keep "2026.1".
# 2026.3 (issue 12.5): credit judged by the lowest score of eleven ranges, or an exact score; stored by
# leads/migrations/*_guidelines_2026_3.
DEFAULT_GUIDELINES = Guidelines(
    version="2026.3",
    products={
        # Fannie Mae Selling Guide: min representative score 620 (B3-5.1-01); DU max DTI 50% (B3-6-02), no
        # front-end ratio; Eligibility Matrix: purchase 97% (at least one first-time buyer, B5-6-01/97% LTV
        # options, else 95%), limited cash-out (rate-term) refi 97% and never more than the payoff plus
        # closing costs (B2-1.3-02), cash-out refi 80% (B2-1.3-03, one-unit principal);
        # second home 90%, investment 85%; manufactured home 95% (standard); 3-4 units 75% (we do not ask the
        # number of units, so the lowest 2-4 unit cap). PMI required above 80% LTV (charter requirement).
        "conventional": ProductRules(
            rate=D("6.50"),
            term_years=30,
            min_credit_score=620,
            max_back_end_dti=D("50"),
            max_front_end_dti=None,
            max_ltv_purchase=D("97"),
            max_ltv_purchase_repeat_buyer=D("95"),
            max_ltv_rate_term=D("97"),
            max_ltv_cash_out=D("80"),
            max_cltv=None,
            max_ltv_by_occupancy={"secondary": D("90"), "investment": D("85")},
            max_ltv_by_property_type={"manufactured": D("95"), "multi_family": D("75")},
            limit="conforming",
            mortgage_insurance="pmi",
        ),
        # HUD Handbook 4000.1 II.A.2.b: score 580+ -> 96.5% LTV, 500-579 -> 90%, below 500 ineligible;
        # II.A.5.d manual-underwriting ratios 31% / 43%; cash-out refinance 80% (II.A.8.d); owner-occupied
        # only. HUD also allows 97.75% on a rate-term refinance; we use the purchase figure (conservative).
        # UFMIP 1.75% financed (ML 2015-01); annual MIP 0.50%/0.55% for base loans <= $726,200 at
        # LTV <= / > 95%, 0.70%/0.75% above (ML 2023-05, terms over 15 years).
        "fha": ProductRules(
            rate=D("6.25"),
            term_years=30,
            min_credit_score=500,
            max_back_end_dti=D("43"),
            max_front_end_dti=D("31"),
            max_ltv_purchase=D("96.5"),
            max_ltv_rate_term=D("96.5"),
            max_ltv_cash_out=D("80"),
            max_cltv=None,
            reduced_ltv_below_score=580,
            reduced_max_ltv=D("90"),
            occupancies=("primary",),
            limit="fha",
            mortgage_insurance="fha",
        ),
        # VA Lenders Handbook (M26-7) ch. 4: 41% DTI benchmark, no front-end ratio; residual income by
        # region and household size (the table above; we hold both the 41% and the residual income, and do
        # not use VA's allowance above 41% for residual income 20% over the table: conservative); no down
        # payment; occupancy required. VA has no minimum score: 620 is the usual lender overlay.
        # Cash-out: VA allows 100% but lenders commonly stop at 90%. With full entitlement VA has no loan
        # limit since 2020; lenders commonly stay at the conforming limit, which we use. Funding fee first
        # use (38 U.S.C. 3729, from 2023-04-07): 2.15% under 5% down, 1.50% 5-10%, 1.25% 10%+; cash-out 2.15%.
        "va": ProductRules(
            rate=D("6.125"),
            term_years=30,
            min_credit_score=620,
            max_back_end_dti=D("41"),
            max_front_end_dti=None,
            max_ltv_purchase=D("100"),
            max_ltv_rate_term=D("100"),
            max_ltv_cash_out=D("90"),
            max_cltv=None,
            requires_military_service=True,
            occupancies=("primary",),
            limit="conforming",
            mortgage_insurance="va",
            residual_income=True,
        ),
        # Jumbo (non-agency) loans follow each investor's overlays; these are typical figures: 700 score,
        # 43% DTI (the ATR/QM general-definition ceiling many investors keep), 80% LTV purchase and rate-term,
        # 70% cash-out, loans from just above the county conforming limit to $3,000,000, no manufactured
        # homes.
        "jumbo": ProductRules(
            rate=D("6.875"),
            term_years=30,
            min_credit_score=700,
            max_back_end_dti=D("43"),
            max_front_end_dti=None,
            max_ltv_purchase=D("80"),
            max_ltv_rate_term=D("80"),
            max_ltv_cash_out=D("70"),
            max_cltv=None,
            property_types=("single_family", "condo", "townhouse", "multi_family"),
            limit="none",
            above_conforming_only=True,
            max_loan_amount=D("3000000"),
        ),
        # Home equity line (HELOC), typical bank figures: 680 score, 43% DTI, 85% combined LTV, primary
        # residence only, payment amortized over 20 years at the sheet rate, lines up to $500,000.
        "home_equity": ProductRules(
            rate=D("8.25"),
            term_years=20,
            min_credit_score=680,
            max_back_end_dti=D("43"),
            max_front_end_dti=None,
            max_ltv_purchase=None,
            max_ltv_rate_term=None,
            max_ltv_cash_out=None,
            max_cltv=D("85"),
            purposes=("home_equity",),
            occupancies=("primary",),
            limit="none",
            max_loan_amount=D("500000"),
        ),
    },
)
