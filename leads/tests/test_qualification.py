"""Tests for the qualification engine: worked examples, each guideline boundary, and properties."""

from __future__ import annotations

import dataclasses
import json
from decimal import ROUND_DOWN, Decimal, localcontext

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from leads.qualification import (
    CREDIT_RANGES,
    DEFAULT_GUIDELINES,
    RATIO_CAP,
    Applicant,
    Guidelines,
    LoanLimits,
    ProductResult,
    Qualification,
    credit_range_for_score,
    evaluate,
    monthly_payment,
)

D = Decimal
G = DEFAULT_GUIDELINES
BASELINE = LoanLimits.baseline()
LOS_ANGELES = LoanLimits.for_county(D("1249125"), "FHFA 2026 LOSANGELESCOUNTY CA")


def buyer(**overrides) -> Applicant:
    """A first-time buyer with good credit (660-679), steady income, modest debts: qualifies comfortably."""
    fields = dict(
        purpose="purchase",
        credit_range="660_679",
        annual_income=D("150000"),
        monthly_debts=D("400"),
        property_value=D("400000"),
        purchase_price=D("400000"),
        down_payment=D("40000"),
        property_type="single_family",
        occupancy="primary",
        first_time_buyer=True,
        state="OH",
    )
    fields.update(overrides)
    return Applicant(**fields)


def homeowner(**overrides) -> Applicant:
    """A homeowner refinancing a $300,000 balance on a $500,000 home."""
    fields = dict(
        purpose="refinance",
        credit_range="740_759",
        annual_income=D("200000"),
        monthly_debts=D("300"),
        property_value=D("500000"),
        mortgage_balance=D("300000"),
        state="OH",
    )
    fields.update(overrides)
    return Applicant(**fields)


def result(q: Qualification, product: str) -> ProductResult:
    return next(r for r in q.results if r.product == product)


def run(applicant: Applicant, limits: LoanLimits = BASELINE, guidelines: Guidelines = G) -> Qualification:
    return evaluate(applicant, guidelines=guidelines, limits=limits)


# --- amortization -------------------------------------------------------------------------------------------


def test_monthly_payment_numpy_financial_example():
    # numpy-financial pmt docs: $200,000 at 7.5% a year over 15 years pays $1,854.02 a month.
    assert monthly_payment(D("200000"), D("7.5"), 15) == D("1854.02")


def test_monthly_payment_thirty_year_example():
    assert monthly_payment(D("100000"), D("6"), 30) == D("599.55")


def test_monthly_payment_edges():
    assert monthly_payment(D("0"), D("6"), 30) == D("0.00")
    assert monthly_payment(D("36000"), D("0"), 30) == D("100.00")  # no interest: principal / months
    with pytest.raises(TypeError):
        monthly_payment(100000.0, D("6"), 30)  # never float
    with pytest.raises(ValueError):
        monthly_payment(D("100000"), D("6"), 0)


# --- credit bands and limits --------------------------------------------------------------------------------


def test_credit_ranges_are_ordered_contiguous_and_cover_300_to_850():
    ranges = list(CREDIT_RANGES.values())
    assert ranges[0].max_score == 850 and ranges[-1].min_score == 300
    for upper, lower in zip(ranges, ranges[1:], strict=False):
        assert lower.max_score + 1 == upper.min_score  # best first, no gap, no overlap


def test_credit_ranges_edges_are_the_program_and_pricing_thresholds():
    """Issue 12.5: every score that decides a product or a price is where a range starts, so no range
    straddles one: FHA 500/580 (HUD 4000.1 II.A.2.b), conventional and VA 620 (Fannie Mae Selling Guide
    B3-5.1-01), HELOC 680, jumbo 700, and the Fannie Mae LLPA matrix's breaks every 20 points, 640-760."""
    edges = {r.min_score for r in CREDIT_RANGES.values()}
    assert {500, 580, 620, 680, 700} <= edges
    assert {640, 660, 680, 700, 720, 740, 760} <= edges
    for rules in G.products.values():
        assert rules.min_credit_score in edges
        if rules.reduced_ltv_below_score is not None:
            assert rules.reduced_ltv_below_score in edges
    assert CREDIT_RANGES["300_499"].label == "Below 500" and CREDIT_RANGES["760_850"].label == "760 or higher"


def test_the_model_choices_are_the_engines_ranges():
    from leads.choices import CreditRange

    assert [(k, r.label) for k, r in CREDIT_RANGES.items()] == list(CreditRange.choices)


@pytest.mark.parametrize(
    "score, expected",
    [(300, "300_499"), (499, "300_499"), (500, "500_579"), (579, "500_579"), (580, "580_619"),
     (619, "580_619"), (620, "620_639"), (679, "660_679"), (680, "680_699"), (759, "740_759"),
     (760, "760_850"), (850, "760_850")],
)  # fmt: skip
def test_an_exact_score_falls_in_one_range(score, expected):
    assert credit_range_for_score(score) == expected


@pytest.mark.parametrize("score", [299, 851, -1, True, 700.0, "700"])
def test_an_exact_score_outside_300_850_is_refused(score):
    with pytest.raises(ValueError):
        credit_range_for_score(score)


def test_loan_limits_baseline_and_county():
    assert BASELINE.conforming_limit == D("832750") and BASELINE.fha_limit == D("541287")
    assert LoanLimits.for_county(D("832750")).fha_limit == D("541287")  # baseline county: FHA floor
    assert LoanLimits.for_county(D("977500")).fha_limit == D("977500")  # high-cost: equal to conforming
    assert LOS_ANGELES.fha_limit == D("1249125")
    assert LoanLimits.for_county(D("1300000")).fha_limit == D("1249125")  # capped at the ceiling
    assert LOS_ANGELES.source == "FHFA 2026 LOSANGELESCOUNTY CA"


# --- conventional -------------------------------------------------------------------------------------------


def test_comfortable_buyer_qualifies_for_conventional_and_fha():
    q = run(buyer())
    assert q.qualified
    assert q.requested_loan == D("360000.00")
    assert {"conventional", "fha"} <= set(q.products)
    assert "va" not in q.products and "home_equity" not in q.products
    assert q.estimate == max(r.max_loan for r in q.results if r.fits_request)
    assert q.ltv == D("90.00")
    assert q.reasons == []
    assert q.guidelines_version == "2026.3"


def test_conventional_first_time_buyer_up_to_97_percent():
    q = run(buyer(down_payment=D("12000")))  # 3% down
    assert result(q, "conventional").fits_request
    assert result(q, "conventional").max_loan == D("388000.00")
    assert result(q, "conventional").binding_constraint == "ltv"
    q = run(buyer(down_payment=D("11999.99")))
    assert not result(q, "conventional").fits_request
    assert any("97%" in r for r in result(q, "conventional").reasons)


def test_conventional_repeat_buyer_needs_5_percent_down():
    assert not result(
        run(buyer(first_time_buyer=False, down_payment=D("12000"))), "conventional"
    ).fits_request
    assert result(run(buyer(first_time_buyer=False, down_payment=D("20000"))), "conventional").fits_request


def test_conventional_dti_above_50_percent_lends_what_50_percent_carries_and_says_why():
    # Fannie Mae B3-6-02: DU's maximum DTI is 50%. The request does not fit; the most that does is offered.
    q = run(buyer(annual_income=D("60000"), monthly_debts=D("900")))
    conv = result(q, "conventional")
    assert not conv.fits_request and conv.eligible
    assert conv.binding_constraint == "dti"
    assert conv.max_loan < q.requested_loan and conv.loan == conv.max_loan
    assert D("49.9") < conv.dti <= D("50")  # the ratio at the loan it offers
    assert any(
        r.startswith("Your monthly debts are high for your income: ")
        and "needs a debt-to-income ratio of 50% or less; yours would be " in r
        for r in conv.reasons
    )


def test_conventional_pmi_only_above_80_percent():
    at_80 = result(run(buyer(down_payment=D("80000"))), "conventional")
    above_80 = result(run(buyer(down_payment=D("79999"))), "conventional")
    tax_and_insurance = D("366.67") + D("116.67")  # 1.10% and 0.35% of $400,000 a year, monthly
    assert at_80.monthly_payment == monthly_payment(D("320000"), D("6.50"), 30) + tax_and_insurance
    pmi = (D("320001") * D("0.005") / 12).quantize(D("0.01"))
    assert above_80.monthly_payment == monthly_payment(D("320001"), D("6.50"), 30) + pmi + tax_and_insurance


def test_conventional_cash_out_refinance_capped_at_80_percent():
    at_cap = result(run(homeowner(cash_out=D("100000"))), "conventional")  # 400,000 / 500,000
    assert at_cap.fits_request and at_cap.ltv == D("80.00")
    assert at_cap.max_loan == D("400000.00") and at_cap.binding_constraint == "ltv"
    over = result(run(homeowner(cash_out=D("100000.01"))), "conventional")
    assert not over.fits_request
    assert any("cash-out refinance" in r and "80%" in r for r in over.reasons)


def test_conventional_rate_term_refinance_up_to_97_percent():
    r = result(run(homeowner(mortgage_balance=D("485000"))), "conventional")
    assert r.fits_request and r.max_loan == D("485000.00")


def test_high_cost_county_raises_the_conventional_cap():
    rich = buyer(
        credit_range="740_759",
        annual_income=D("400000"),
        property_value=D("1300000"),
        purchase_price=D("1300000"),
        down_payment=D("300000"),
    )
    base = result(run(rich), "conventional")
    assert (
        not base.fits_request and base.max_loan == D("832750.00") and base.binding_constraint == "loan_limit"
    )
    assert any("$832,750 conforming limit" in r for r in base.reasons)
    la = result(run(rich, LOS_ANGELES), "conventional")
    assert la.fits_request and la.max_loan > D("832750")


def test_credit_below_the_minimum():
    r = result(run(buyer(credit_range="580_619")), "conventional")
    assert not r.fits_request and r.binding_constraint == "credit" and r.max_loan == 0
    assert any("at least 620" in reason for reason in r.reasons)


# --- FHA ----------------------------------------------------------------------------------------------------


def test_fha_ufmip_is_1_75_percent_financed_into_the_loan():
    # HUD ML 2015-01 / 4000.1 II.A.2.c: UFMIP 1.75% of the base loan, financed; MIP 0.55% above 95% LTV.
    assert (D("300000") * G.fha_ufmip_rate / 100).quantize(D("0.01")) == D("5250.00")
    fha = result(
        run(buyer(purchase_price=D("310000"), property_value=D("310000"), down_payment=D("10850"))), "fha"
    )
    assert fha.fits_request and fha.loan == D("299150.00")  # 3.5% down: 96.5% LTV, FHA's most
    total = D("299150") + D("5235.13")  # 299,150 + 1.75% UFMIP (5,235.125, to the cent)
    mip = (total * D("0.0055") / 12).quantize(D("0.01"))  # LTV 96.5% > 95%: 0.55% a year
    tax = (D("310000") * D("0.011") / 12).quantize(D("0.01"))
    insurance = (D("310000") * D("0.0035") / 12).quantize(D("0.01"))
    assert fha.monthly_payment == monthly_payment(total, D("6.25"), 30) + mip + tax + insurance


def test_fha_580_gets_96_5_percent_and_579_gets_90_percent():
    """HUD 4000.1 II.A.2.b: a score of 580 or more may borrow 96.5% of the value, 500-579 90%. Judged by the
    lowest score of the range: 580-619 counts as 580, 500-579 as 500; an exact score counts as itself."""
    applicant = buyer(credit_range="580_619", down_payment=D("14000"))  # 3.5% down
    assert result(run(applicant), "fha").max_loan == D("386000.00")
    assert result(run(applicant), "fha").fits_request
    below = buyer(credit_range="500_579", down_payment=D("14000"))
    assert result(run(below), "fha").max_loan == D("360000.00")
    assert not result(run(below), "fha").fits_request
    assert result(run(buyer(credit_range="", credit_score=580, down_payment=D("14000"))), "fha").fits_request
    exact_579 = result(run(buyer(credit_range="", credit_score=579, down_payment=D("14000"))), "fha")
    assert exact_579.max_loan == D("360000.00")


def test_fha_500_579_lends_to_90_percent_and_assumes_nothing():
    """Issue 12.5: the old 'poor' band (300-619) was assumed to be 500 for FHA and said so in a note; the
    500-579 range is 500 by its own lowest score, so no assumption (and no note) is left."""
    applicant = buyer(credit_range="500_579", down_payment=D("14000"))
    q = run(applicant)
    fha = result(q, "fha")
    assert fha.max_loan == D("360000.00") and fha.binding_constraint == "ltv"
    assert not fha.fits_request
    assert not any("assumed" in r for r in fha.reasons + fha.notes)
    # Not the $386,000 asked, but FHA lends $360,000 (90%): a pre-qualified lead for that.
    assert q.qualified and q.estimate == D("360000.00") and not q.fits_request
    assert q.best_product == "fha" and q.qualified_loan == D("360000.00")
    assert [(s.kind, s.amount) for s in q.gap] == [("down_payment", D("26000.00"))]
    ten_down = result(run(buyer(credit_range="500_579", down_payment=D("40000"))), "fha")
    assert ten_down.fits_request and not ten_down.notes
    assert q.credit_score_judged == 500


def test_below_500_gets_no_fha_and_says_why():
    """HUD 4000.1 II.A.2.b: below 500 a borrower is not eligible for an FHA-insured loan."""
    q = run(buyer(credit_range="300_499", down_payment=D("40000")))
    fha = result(q, "fha")
    assert fha.binding_constraint == "credit" and fha.max_loan == 0 and not q.qualified
    assert "at least 500" in fha.obstacle and "300-499" in fha.obstacle


def test_an_exact_score_is_judged_as_itself_and_must_agree_with_a_range():
    assert run(buyer(credit_range="", credit_score=742)).credit_score_judged == 742
    assert buyer(credit_range="", credit_score=742).credit_range == "740_759"
    assert buyer(credit_range="740_759", credit_score=742).credit_range == "740_759"
    with pytest.raises(ValueError):
        buyer(credit_range="660_679", credit_score=742)
    with pytest.raises(ValueError):
        buyer(credit_range="", credit_score=900)
    jumbo = result(run(buyer(credit_range="", credit_score=699)), "jumbo")
    assert jumbo.binding_constraint == "credit" and "yours is 699" in jumbo.obstacle


def test_heloc_680_and_jumbo_700_are_range_edges():
    """HELOC 680 and jumbo 700 (our guideline set): 680-699 reaches a HELOC and not jumbo; 700-719 both."""
    owner = dict(
        purpose="home_equity", annual_income=D("200000"), monthly_debts=D("0"), property_value=D("500000"),
        mortgage_balance=D("200000"), desired_loan_amount=D("50000"), state="OH",
    )  # fmt: skip
    assert (
        result(run(Applicant(credit_range="680_699", **owner)), "home_equity").binding_constraint != "credit"
    )
    assert (
        result(run(Applicant(credit_range="660_679", **owner)), "home_equity").binding_constraint == "credit"
    )
    rich = dict(annual_income=D("900000"), purchase_price=D("1500000"), property_value=D("1500000"),
                down_payment=D("300000"))  # fmt: skip
    assert result(run(buyer(credit_range="680_699", **rich)), "jumbo").binding_constraint == "credit"
    assert result(run(buyer(credit_range="700_719", **rich)), "jumbo").binding_constraint != "credit"


def test_stored_guidelines_with_the_retired_poor_band_key_still_load():
    data = G.to_dict()
    data["products"]["fha"]["poor_band_assumed_score"] = 500  # sets 2026.1 and 2026.2 carry it
    assert Guidelines.from_dict(data) == G


def test_fair_credit_fha_96_5_percent():
    r = result(run(buyer(credit_range="620_639", down_payment=D("14000"))), "fha")
    assert r.fits_request and r.max_loan == D("386000.00")


def test_fha_front_end_ratio_31_percent():
    # Income $6,000 a month, no debts: housing may be $1,860 (31%), though back-end would allow $2,580.
    r = result(run(buyer(annual_income=D("72000"), monthly_debts=D("0"))), "fha")
    assert r.binding_constraint == "front_end_dti"
    at_max = result(
        run(buyer(annual_income=D("72000"), monthly_debts=D("0"), down_payment=D("400000") - r.max_loan)),
        "fha",
    )
    assert at_max.fits_request and at_max.front_end_dti <= D("31.00")
    over = result(
        run(
            buyer(annual_income=D("72000"), monthly_debts=D("0"), down_payment=D("400000") - r.max_loan - 500)
        ),
        "fha",
    )
    assert not over.fits_request
    assert any("31% of your income or less" in reason for reason in over.reasons)


def test_fha_capped_by_the_fha_limit():
    r = result(
        run(buyer(property_value=D("700000"), purchase_price=D("700000"), annual_income=D("400000"))), "fha"
    )
    assert r.max_loan == D("541287.00") and r.binding_constraint == "loan_limit"


def test_fha_is_for_primary_residences():
    r = result(run(buyer(occupancy="investment")), "fha")
    assert not r.fits_request and r.binding_constraint == "eligibility"


# --- VA -----------------------------------------------------------------------------------------------------


def test_va_needs_military_service():
    civilian = result(run(buyer(down_payment=D("0"))), "va")
    assert not civilian.fits_request and civilian.max_loan == 0
    assert any("veterans" in r for r in civilian.reasons)
    veteran = result(run(buyer(down_payment=D("0"), military_service=True)), "va")
    assert veteran.fits_request and veteran.ltv == D("100.00") and veteran.max_loan == D("400000.00")


def test_va_funding_fee_by_down_payment():
    def payment(down: str) -> Decimal:
        return result(run(buyer(military_service=True, down_payment=D(down))), "va").monthly_payment

    fixed = D("366.67") + D("116.67")
    assert payment("0") == monthly_payment(D("400000") * D("1.0215"), D("6.125"), 30) + fixed
    assert payment("20000") == monthly_payment(D("380000") * D("1.015"), D("6.125"), 30) + fixed
    assert payment("40000") == monthly_payment(D("360000") * D("1.0125"), D("6.125"), 30) + fixed


def test_va_cash_out_capped_at_90_percent():
    vet = dict(military_service=True, mortgage_balance=D("400000"))
    assert result(run(homeowner(cash_out=D("50000"), **vet)), "va").fits_request
    assert not result(run(homeowner(cash_out=D("50000.01"), **vet)), "va").fits_request


# --- jumbo --------------------------------------------------------------------------------------------------


def jumbo_buyer(loan: Decimal) -> Applicant:
    return buyer(
        credit_range="740_759",
        annual_income=D("600000"),
        property_value=D("2000000"),
        purchase_price=D("2000000"),
        down_payment=D("2000000") - loan,
    )


def test_jumbo_starts_above_the_county_conforming_limit():
    at_limit = run(jumbo_buyer(D("832750")))
    assert result(at_limit, "conventional").fits_request
    assert not result(at_limit, "jumbo").fits_request
    assert any("start above $832,750" in r for r in result(at_limit, "jumbo").reasons)
    above = run(jumbo_buyer(D("832751")))
    assert result(above, "jumbo").fits_request
    assert not result(above, "conventional").fits_request
    # Conventional and FHA still offer what their limits allow; the jumbo lends the whole request.
    assert above.products == ["conventional", "fha", "jumbo"]
    assert above.best_product == "jumbo" and above.qualified_loan == D("832751.00") and above.fits_request
    assert result(above, "conventional").loan == D("832750.00")
    # In Los Angeles the same loan is conforming, and jumbo starts above $1,249,125.
    la = run(jumbo_buyer(D("832751")), LOS_ANGELES)
    assert result(la, "conventional").fits_request and not result(la, "jumbo").fits_request


def test_jumbo_80_percent_and_3_million():
    assert result(run(jumbo_buyer(D("1600000"))), "jumbo").fits_request
    assert not result(run(jumbo_buyer(D("1600000.01"))), "jumbo").fits_request
    big = buyer(
        credit_range="740_759",
        annual_income=D("3000000"),
        property_value=D("5000000"),
        purchase_price=D("5000000"),
        down_payment=D("1000000"),
    )
    r = result(run(big), "jumbo")
    assert r.max_loan == D("3000000.00") and r.binding_constraint == "loan_limit" and not r.fits_request


def test_jumbo_needs_700():
    assert not result(run(buyer(credit_range="660_679", annual_income=D("600000"))), "jumbo").fits_request


# --- home equity --------------------------------------------------------------------------------------------


def equity(**overrides) -> Applicant:
    return homeowner(purpose="home_equity", **overrides)


def test_heloc_combined_ltv_85_percent():
    # 85% of $500,000 is $425,000; less the $300,000 mortgage leaves $125,000.
    fits = result(run(equity(desired_loan_amount=D("125000"))), "home_equity")
    assert fits.fits_request and fits.max_loan == D("125000.00") and fits.binding_constraint == "cltv"
    assert fits.ltv == D("85.00")
    over = result(run(equity(desired_loan_amount=D("125000.01"))), "home_equity")
    assert not over.fits_request
    assert any("85%" in r for r in over.reasons)


def test_heloc_only_for_primary_home_equity():
    assert not result(
        run(equity(desired_loan_amount=D("50000"), occupancy="secondary")), "home_equity"
    ).fits_request
    q = run(equity(desired_loan_amount=D("50000")))
    assert q.products == ["home_equity"]
    assert not result(q, "conventional").fits_request  # purchase products are not for home equity
    assert not result(run(buyer()), "home_equity").fits_request


def test_heloc_counts_the_existing_mortgage_payment():
    q = run(equity(desired_loan_amount=D("50000")))
    he = result(q, "home_equity")
    expected = (
        monthly_payment(D("300000"), D("6.50"), 30)  # estimated first mortgage
        + monthly_payment(D("50000"), D("8.25"), 20)
        + (D("500000") * D("0.011") / 12).quantize(D("0.01"))
        + (D("500000") * D("0.0035") / 12).quantize(D("0.01"))
    )
    assert he.monthly_payment == expected


# --- the whole answer ---------------------------------------------------------------------------------------


def test_not_qualified_shows_no_estimate_and_kind_reasons():
    q = run(buyer(annual_income=D("30000"), monthly_debts=D("1500")))  # debts alone are 60% of income
    assert not q.qualified
    assert q.products == []
    assert q.estimate == D("0") and q.qualified_loan == 0
    assert q.reasons and all(r.endswith(".") for r in q.reasons)
    assert any("more than any loan allows for your income" in r for r in q.reasons)
    # The closest product is one the applicant could have at all, not VA (no service) or a HELOC.
    assert q.best_product in {"conventional", "fha"}


def test_zero_income_is_not_qualified_without_crashing():
    q = run(buyer(annual_income=D("0")))
    assert not q.qualified and q.estimate == 0
    assert result(q, "conventional").dti is None


def test_to_dict_is_json_with_decimal_strings():
    data = run(buyer()).to_dict()
    assert json.loads(json.dumps(data)) == data
    assert data["estimate"] == str(run(buyer()).estimate)
    assert data["results"][0]["max_loan"].count(".") == 1
    # Every field, nested results included, exactly as dataclasses.asdict lays them out.
    q = run(buyer())
    expected = json.loads(json.dumps(dataclasses.asdict(q), default=str))
    assert data == expected and set(data["results"][0]) == {f.name for f in dataclasses.fields(q.results[0])}


def test_applicant_validation():
    with pytest.raises(ValueError):
        buyer(purpose="vacation")
    with pytest.raises(ValueError):
        buyer(credit_range="superb")
    with pytest.raises(TypeError):
        buyer(annual_income=150000.0)
    with pytest.raises(ValueError):
        buyer(monthly_debts=D("-1"))
    assert buyer(annual_income="150000").annual_income == D("150000")


def test_guidelines_round_trip_through_json():
    data = json.loads(json.dumps(G.to_dict()))
    assert Guidelines.from_dict(data) == G
    assert data["version"] == "2026.3"
    assert data["products"]["fha"]["max_front_end_dti"] == "31"


def test_guidelines_keep_the_product_order_whatever_the_json_order():
    data = G.to_dict()
    data["products"] = dict(reversed(list(data["products"].items())))
    assert list(Guidelines.from_dict(data).products) == ["conventional", "fha", "va", "jumbo", "home_equity"]


def test_guidelines_va_residual_table_is_checked():
    data = json.loads(json.dumps(G.to_dict()))
    assert data["va_residual_income"]["south"] == ["441", "738", "889", "1003", "1039"]
    del data["va_residual_income"]["west"]
    with pytest.raises(ValueError, match="va_residual_income needs the regions"):
        Guidelines.from_dict(data)
    data = json.loads(json.dumps(G.to_dict()))
    data["va_residual_income"]["west"] = "491"
    with pytest.raises(ValueError, match="va_residual_income"):
        Guidelines.from_dict(data)


def test_guidelines_from_dict_rejects_bad_data():
    data = G.to_dict()
    with pytest.raises(ValueError, match="unknown keys"):
        Guidelines.from_dict({**data, "surprise": 1})
    bad = json.loads(json.dumps(data))
    bad["products"]["fha"]["rate"] = "six"
    with pytest.raises(ValueError, match="products.fha.rate"):
        Guidelines.from_dict(bad)
    bad = json.loads(json.dumps(data))
    del bad["products"]["va"]["min_credit_score"]
    with pytest.raises(ValueError, match="required"):
        Guidelines.from_dict(bad)


def test_edited_guidelines_change_the_answer():
    data = G.to_dict()
    data["products"]["conventional"]["max_back_end_dti"] = "36"
    strict = Guidelines.from_dict(data)
    applicant = buyer(annual_income=D("110000"), monthly_debts=D("700"))  # DTI about 39%
    assert result(run(applicant), "conventional").fits_request
    assert not result(run(applicant, guidelines=strict), "conventional").fits_request


# --- issue 12.1: the most the consumer can borrow, not a refusal -------------------------------------------


def annuity(rate: str, years: int) -> Decimal:
    """Payment per dollar, written independently of leads.qualification.money: r / (1 - (1 + r)^-n)."""
    with localcontext() as ctx:
        ctx.prec = 40
        r = D(rate) / 1200
        return r / (1 - (1 + r) ** -(years * 12))


def cents_down(amount: Decimal) -> Decimal:
    return amount.quantize(D("0.01"), rounding=ROUND_DOWN)


def stretched_buyer(**overrides) -> Applicant:
    """Asks $300,000 on a $330,000 home with $48,000 a year and $600 of monthly debts."""
    fields = dict(
        annual_income=D("48000"),
        monthly_debts=D("600"),
        property_value=D("330000"),
        purchase_price=D("330000"),
        down_payment=D("30000"),
    )
    return buyer(**{**fields, **overrides})


def test_asking_more_than_the_ratios_carry_is_a_lead_for_what_they_carry():
    """Issue 12.1: a consumer asking $300,000 who can carry about $160,000 is a pre-qualified lead for that,
    not a refusal with an estimate of $0."""
    q = run(stretched_buyer())
    # Fannie Mae Selling Guide B3-6-02: all debts at most 50% of income. $4,000 a month x 50%, less $600 of
    # debts, $302.50 of tax (1.10%) and $96.25 of insurance (0.35%) leaves $1,001.25 for principal and
    # interest at 6.5% over 30 years; under 80% LTV there is no PMI (B7-1-01).
    expected = cents_down(D("1001.25") / annuity("6.5", 30))
    assert expected == D("158408.58")
    conv = result(q, "conventional")
    assert conv.max_loan == expected and conv.binding_constraint == "dti"
    assert conv.eligible and not conv.fits_request and conv.loan == expected
    assert q.qualified and q.requested_loan == D("300000.00")
    assert q.estimate == expected and q.qualified_loan == expected and not q.fits_request
    assert q.best_product == "conventional"
    assert q.reasons[0].startswith("Your monthly debts are high for your income")
    assert q.dti == D("50.00")  # at the loan offered, not the one asked


def test_what_would_close_the_gap_is_spelled_out_and_true():
    """Issue 12.1: the result says what would close the gap: a larger down payment, paying down debts, more
    income; each step, applied, does what it says."""
    a = stretched_buyer()
    q = run(a)
    steps = {s.kind: s for s in q.gap}
    assert list(steps) == ["down_payment", "debts", "income"]
    down = steps["down_payment"]
    assert down.amount == D("300000.00") - q.estimate
    assert down.text == (
        "A down payment of $171,592 ($141,592 more) would bring the loan to $158,408, "
        "within what you may qualify for."
    )
    assert result(
        run(dataclasses.replace(a, down_payment=a.down_payment + down.amount)), "conventional"
    ).fits_request
    # Paying off every debt is not enough for $300,000: it says how far it goes.
    debts = steps["debts"]
    assert debts.amount == D("600.00") and debts.text.startswith("Paying off all your debts ($600 a month)")
    assert result(run(dataclasses.replace(a, monthly_debts=D("0"))), "conventional").max_loan == debts.loan
    income = steps["income"]
    assert income.loan == D("300000.00") and income.text.startswith("A household income of $72,500 a year")
    assert result(run(dataclasses.replace(a, annual_income=income.amount)), "conventional").fits_request
    assert not result(
        run(dataclasses.replace(a, annual_income=income.amount - 200)), "conventional"
    ).fits_request


def test_paying_down_part_of_the_debts_when_that_is_enough():
    a = stretched_buyer(annual_income=D("60000"), monthly_debts=D("900"), down_payment=D("80000"))  # $250,000
    q = run(a)
    step = next(s for s in q.gap if s.kind == "debts")
    assert step.loan == D("250000.00") and D("0") < step.amount < D("900")
    assert (
        step.text == f"Paying off debts that cost ${step.amount:,.0f} a month would let you borrow $250,000."
    )
    assert run(dataclasses.replace(a, monthly_debts=a.monthly_debts - step.amount)).fits_request
    assert not run(dataclasses.replace(a, monthly_debts=a.monthly_debts - step.amount + 2)).fits_request


def test_a_partial_offer_must_reach_the_staff_set_minimum():
    """Issue 12.1: the lead qualifies when a product offers at least the staff-set minimum (default $50,000),
    or the whole request when that is smaller."""
    assert G.min_qualifying_loan == D("50000")
    assert run(stretched_buyer()).qualified  # $158,408 of $300,000
    strict = dataclasses.replace(G, min_qualifying_loan=D("160000"))
    q = run(stretched_buyer(), guidelines=strict)
    assert not q.qualified and q.estimate == 0 and q.minimum_loan == D("160000")
    assert any("less than the $160,000 we need" in r for r in q.reasons)
    # A $40,000 request lent in full qualifies though it is under the minimum.
    small = run(buyer(property_value=D("60000"), purchase_price=D("60000"), down_payment=D("20000")))
    assert small.qualified and small.fits_request and small.qualified_loan == D("40000.00")
    # $34,476 toward a $300,000 request is no lead.
    poor = run(stretched_buyer(annual_income=D("22000"), monthly_debts=D("300")))
    assert result(poor, "conventional").max_loan == D("34476.77")
    assert not poor.qualified and poor.estimate == 0
    assert any("could lend you up to about $34,476.77, less than the $50,000" in r for r in poor.reasons)


# --- issue 12.2: each product's own obstacle; the closest on the consumer's terms ---------------------------


def stretched_veteran(**overrides) -> Applicant:
    """A veteran asking 100% financing on a $250,000 home, whose debts are high for VA's 41%."""
    fields = dict(
        annual_income=D("40000"),
        monthly_debts=D("1100"),
        property_value=D("250000"),
        purchase_price=D("250000"),
        down_payment=D("0"),
        military_service=True,
        first_time_buyer=False,
        state="TX",
    )
    return buyer(**{**fields, **overrides})


def test_a_veteran_refused_on_dti_hears_about_va_dti_not_conventional_ltv():
    """Issue 12.2: the closest product is chosen on the consumer's own terms (100% financing: only VA takes
    it; VA Pamphlet 26-7 ch. 4: 41% DTI and residual income), so the message names VA's obstacle, not
    "Conventional loans go up to 95%"."""
    q = run(stretched_veteran())
    assert not q.qualified
    assert q.best_product == "va"
    assert "41% or less" in q.reasons[0]
    assert not any("95%" in r or "down payment" in r for r in q.reasons)
    assert any("residual" in n for n in q.notes)


def test_each_refused_product_names_its_own_binding_obstacle_first():
    """Issue 12.2: a product's reasons start with what binds it, and every product carries its obstacle."""
    q = run(stretched_veteran())
    for r in q.results:
        assert r.obstacle, r.product
        assert r.reasons, r.product
    conv, fha, jumbo, heloc = (result(q, p) for p in ("conventional", "fha", "jumbo", "home_equity"))
    assert conv.binding_constraint == "dti" and "debt-to-income" in conv.reasons[0]
    assert conv.obstacle.startswith("Debt-to-income: with all debts at 50% of your income ($1,100 a month")
    assert "95%" in conv.reasons[1]  # the LTV is named too, after the obstacle that binds
    assert fha.binding_constraint == "dti" and fha.obstacle.startswith("Debt-to-income")
    assert jumbo.binding_constraint == "credit" and "at least 700" in jumbo.obstacle
    assert heloc.binding_constraint == "eligibility" and "home you own" in heloc.obstacle


def test_closest_prefers_a_product_taking_the_deal_as_described():
    # Without service VA is out; conventional and FHA both refuse 100% financing: the larger share wins.
    q = run(stretched_veteran(military_service=False))
    assert q.best_product == "conventional"


# --- issue 12.3: refinance maximums -------------------------------------------------------------------------


def test_rate_and_term_refinance_lends_the_payoff_plus_closing_costs():
    """Issue 12.3, Fannie Mae B2-1.3-02 (limited cash-out refinance): the new loan pays off the existing
    mortgage and closing costs, no more. $300,000 owed on a $500,000 home: $300,000 + 3% = $309,000, not 97%
    of the value ($485,000)."""
    q = run(homeowner())
    for product in ("conventional", "fha"):
        r = result(q, product)
        assert r.max_loan == D("309000.00") and r.binding_constraint == "payoff", product
        assert (r.rate_term_max, r.cash_out_max) == (D("309000.00"), None)
        assert r.fits_request and r.loan == D("300000.00")
        assert "what you owe plus estimated closing costs" in r.obstacle
    assert q.estimate == D("309000.00") and q.qualified_loan == D("300000.00")
    cheaper = dataclasses.replace(G, refinance_closing_cost_rate=D("2"))
    assert result(run(homeowner(), guidelines=cheaper), "conventional").max_loan == D("306000.00")


def test_cash_out_refinance_at_its_own_ltv_beside_rate_and_term():
    """Issue 12.3: cash out is a cash-out refinance at its own LTV: 80% conventional (Fannie Mae B2-1.3-03),
    80% FHA (HUD 4000.1 II.A.8.d), 90% VA (lenders' usual cap; VA Pamphlet 26-7 ch. 3); both figures shown."""
    vet = run(homeowner(cash_out=D("150000"), military_service=True))  # $450,000: 90% of $500,000
    conv, fha, va = (result(vet, p) for p in ("conventional", "fha", "va"))
    assert (conv.rate_term_max, conv.cash_out_max) == (D("309000.00"), D("400000.00"))
    assert (fha.rate_term_max, fha.cash_out_max) == (D("309000.00"), D("400000.00"))
    assert (va.rate_term_max, va.cash_out_max) == (D("309000.00"), D("450000.00"))
    assert va.fits_request and not conv.fits_request and conv.eligible and conv.max_loan == D("400000.00")
    assert vet.best_product == "va" and vet.fits_request
    civilian = run(homeowner(cash_out=D("150000")))
    assert civilian.qualified and not civilian.fits_request and civilian.estimate == D("400000.00")
    assert [(s.kind, s.amount) for s in civilian.gap] == [("cash_out", D("100000.00"))]
    assert civilian.gap[0].text == "Taking $100,000 in cash instead of $150,000 would fit."


def test_cash_out_beyond_the_equity_still_refinances_what_is_owed():
    # $450,000 owed on $500,000: 80% ($400,000) cannot pay it off, so no cash; rate-and-term still works.
    q = run(homeowner(mortgage_balance=D("450000"), cash_out=D("20000")))
    conv = result(q, "conventional")
    assert conv.cash_out_max == D("400000.00") and conv.rate_term_max == D("463500.00")
    assert conv.max_loan == D("463500.00") and conv.binding_constraint == "payoff"
    assert q.qualified and not q.fits_request
    assert [s.kind for s in q.gap] == ["no_cash_out"]


# --- issue 12.4: VA residual income -------------------------------------------------------------------------


def test_va_residual_income_table_by_region_and_household():
    """VA Pamphlet 26-7, ch. 4 (residual income): loans of $80,000 and above, and below; regions by state;
    each member over five adds $80 ($75 for smaller loans) up to seven."""
    big, small = D("80000"), D("79999.99")
    assert G.va_residual_required("TX", big) == (D("441"), "south")
    assert G.va_residual_required("OH", big) == (D("441"), "midwest")
    assert G.va_residual_required("NY", big) == (D("450"), "northeast")
    assert G.va_residual_required("CA", big) == (D("491"), "west")
    assert G.va_residual_required("CA", small) == (D("425"), "west")
    assert G.va_residual_required("PR", small) == (D("382"), "south")
    assert G.va_residual_required("GU", big) == (D("491"), "west")  # not in the table: the highest
    four = dataclasses.replace(G, va_household_size=4)
    assert four.va_residual_required("TX", big) == (D("1003"), "south")
    seven, nine = (dataclasses.replace(G, va_household_size=n) for n in (7, 9))
    assert seven.va_residual_required("NY", big) == (D("1222"), "northeast")  # 1,062 + 2 x 80
    assert nine.va_residual_required("NY", small) == (D("1071"), "northeast")  # 921 + 2 x 75: up to seven


def test_va_residual_income_binds_below_the_41_percent_dti():
    """VA Pamphlet 26-7 ch. 4: $1,700 a month; 41% DTI leaves $697 for housing, but residual income leaves
    only $1,700 x 80% (estimated taxes) - $252 (upkeep, $0.14 x 1,800 sq ft) - $441 (South, one person) =
    $667, less $91.67 tax and $29.17 insurance; with 11% down the funding fee is 1.25%."""
    vet = buyer(
        annual_income=D("20400"),
        monthly_debts=D("0"),
        property_value=D("100000"),
        purchase_price=D("100000"),
        down_payment=D("0"),
        military_service=True,
        state="TX",
    )
    va = result(run(vet), "va")
    expected = cents_down((D("667") - D("91.67") - D("29.17")) / (D("1.0125") * annuity("6.125", 30)))
    assert va.binding_constraint == "residual_income" and va.max_loan == expected == D("88776.81")
    assert "household of 1" in va.obstacle and "$441" in va.obstacle
    assert any("assumed a household of 1" in n for n in va.notes)
    # The West's table asks more; a larger household asks more still.
    assert result(run(dataclasses.replace(vet, state="CA")), "va").max_loan < expected
    three = dataclasses.replace(G, va_household_size=3)
    assert result(run(vet, guidelines=three), "va").max_loan < expected
    # Asking for more than residual income allows names it.
    asks_all = result(run(vet), "va")
    assert not asks_all.fits_request
    assert any("a month left over after taxes" in r for r in asks_all.reasons)


# --- issue 12.8: the deal as described, beside the most for this home ---------------------------------------


def test_purchase_shows_the_deal_beside_the_most_for_this_home():
    """Issue 12.8: "For this home ($450,000 with $90,000 down) your loan would be $360,000, within what you
    qualify for", beside the most at the product's LTV limit (Fannie Mae: 97% for a first-time buyer)."""
    q = run(
        buyer(
            annual_income=D("250000"),
            property_value=D("450000"),
            purchase_price=D("450000"),
            down_payment=D("90000"),
        )
    )
    deal = q.purchase
    assert deal is not None
    assert (deal.price, deal.down_payment, deal.loan, deal.within) == (
        D("450000.00"),
        D("90000.00"),
        D("360000.00"),
        True,
    )
    assert deal.product == "conventional" and deal.max_loan == D("436500.00") == q.estimate
    assert (deal.max_ltv, deal.down_payment_at_max) == (D("97.00"), D("13500.00"))
    assert run(homeowner()).purchase is None


# --- issue 11.1: ratios of millions -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "overrides", [{"annual_income": D("1")}, {"monthly_debts": D("9999999")}, {"annual_income": D("0.01")}]
)
def test_ratios_of_millions_are_capped_and_told_kindly(overrides):
    """Issue 11.1: $1 a year of income made a DTI of millions of percent, which Lead.dti (numeric(7,2))
    could not hold. Shown and stored ratios stop at 999.99; the consumer reads that it is over any limit."""
    q = run(buyer(**overrides))
    assert not q.qualified
    assert q.dti == RATIO_CAP
    for r in q.results:
        for ratio in (r.dti, r.front_end_dti, r.ltv):
            assert ratio is None or ratio <= RATIO_CAP
    assert "more than any loan allows for your income" in q.reasons[0]
    assert "999" in q.reasons[0] or "income" in q.reasons[0]


# --- properties ---------------------------------------------------------------------------------------------

money = st.integers(min_value=0, max_value=10**9).map(lambda c: D(c).scaleb(-2))


@st.composite
def applicants(draw) -> Applicant:
    purpose = draw(st.sampled_from(["purchase", "refinance", "home_equity"]))
    value = D(draw(st.integers(min_value=50_000, max_value=4_000_000)))
    fields = dict(
        purpose=purpose,
        credit_range=draw(st.sampled_from(list(CREDIT_RANGES))),
        annual_income=D(draw(st.integers(min_value=0, max_value=2_000_000))),
        monthly_debts=D(draw(st.integers(min_value=0, max_value=20_000))),
        property_value=value,
        property_type=draw(
            st.sampled_from(["single_family", "condo", "townhouse", "multi_family", "manufactured"])
        ),
        occupancy=draw(st.sampled_from(["primary", "secondary", "investment"])),
        military_service=draw(st.booleans()),
        first_time_buyer=draw(st.booleans()),
        state=draw(st.sampled_from(["TX", "CA", "NY", "OH", "GU", ""])),
    )
    share = D(draw(st.integers(min_value=0, max_value=1000))) / 1000
    if purpose == "purchase":
        fields.update(purchase_price=value, down_payment=(value * share).quantize(D("0.01")))
    elif purpose == "refinance":
        fields.update(
            mortgage_balance=(value * share).quantize(D("0.01")),
            cash_out=D(draw(st.integers(min_value=0, max_value=200_000))),
        )
    else:
        fields.update(
            mortgage_balance=(value * share * D("0.8")).quantize(D("0.01")),
            desired_loan_amount=D(draw(st.integers(min_value=1, max_value=400_000))),
        )
    return Applicant(**fields)


limit_choices = st.sampled_from([BASELINE, LOS_ANGELES, LoanLimits.for_county(D("977500"))])


def caps_for(product: str, a: Applicant, limits: LoanLimits) -> list[Decimal]:
    """Upper bounds the engine must respect: the product's highest LTV for the purpose (a refinance: the
    larger of rate-and-term, no more than the payoff plus closing costs, and cash-out), and its limit."""
    rules = G.products[product]
    caps = []
    if a.purpose == "purchase" and rules.max_ltv_purchase is not None:
        caps.append(min(a.purchase_price, a.property_value) * rules.max_ltv_purchase / 100)
    elif a.purpose == "refinance":
        balance = a.mortgage_balance or D(0)
        rate_term = balance * (100 + G.refinance_closing_cost_rate) / 100
        if rules.max_ltv_rate_term is not None:
            rate_term = min(rate_term, a.property_value * rules.max_ltv_rate_term / 100)
        paths = [rate_term]
        if a.cash_out > 0 and rules.max_ltv_cash_out is not None:
            paths.append(a.property_value * rules.max_ltv_cash_out / 100)
        caps.append(max(paths))
    elif a.purpose == "home_equity" and rules.max_cltv is not None:
        caps.append(a.property_value * rules.max_cltv / 100 - (a.mortgage_balance or 0))
    if rules.limit == "conforming":
        caps.append(limits.conforming_limit)
    if rules.limit == "fha":
        caps.append(limits.fha_limit)
    if rules.max_loan_amount is not None:
        caps.append(rules.max_loan_amount)
    return caps


PROPERTY_SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY_SETTINGS
@given(applicants(), limit_choices)
def test_estimate_never_exceeds_ltv_cap_or_loan_limit(a, limits):
    q = evaluate(a, guidelines=G, limits=limits)
    for r in q.results:
        assert r.max_loan >= 0
        for cap in caps_for(r.product, a, limits):
            assert r.max_loan <= max(cap, D(0)), (r.product, r.max_loan, cap)


@PROPERTY_SETTINGS
@given(applicants(), limit_choices)
def test_qualified_means_an_offer_of_the_request_or_the_minimum(a, limits):
    """Issue 12.1: qualified exactly when some product lends the whole request or at least the minimum
    toward it; the estimate is the most an offering product lends, and the lead's loan is the request, or
    the estimate when that is less."""
    q = evaluate(a, guidelines=G, limits=limits)
    floor = min(G.min_qualifying_loan, q.requested_loan)
    for r in q.results:
        assert r.eligible == (r.loan > 0), r.product
        if r.eligible:
            assert r.loan == min(q.requested_loan, r.max_loan) and r.loan >= floor
            assert r.binding_constraint not in ("eligibility", "credit")
        assert r.fits_request == (r.eligible and r.max_loan >= q.requested_loan)
    assert q.qualified == any(r.eligible for r in q.results)
    assert q.fits_request == any(r.fits_request for r in q.results)
    if q.qualified:
        assert q.estimate == max(r.max_loan for r in q.results if r.eligible)
        assert q.qualified_loan == min(q.requested_loan, q.estimate) == result(q, q.best_product).loan
        assert bool(q.reasons) != q.fits_request
    else:
        assert q.estimate == 0 and q.qualified_loan == 0 and q.reasons


@PROPERTY_SETTINGS
@given(applicants(), limit_choices)
def test_ratios_fit_their_columns(a, limits):
    """Issue 11.1: whatever the inputs, stored ratios fit Lead.ltv / Lead.dti (numeric(7,2))."""
    q = evaluate(a, guidelines=G, limits=limits)
    for ratio in [q.ltv, q.dti] + [x for r in q.results for x in (r.ltv, r.dti, r.front_end_dti)]:
        assert ratio is None or (0 <= ratio <= RATIO_CAP and ratio.as_tuple().exponent == -2)


RANGES_WORST_FIRST = list(reversed(CREDIT_RANGES))


@PROPERTY_SETTINGS
@given(applicants(), limit_choices, st.data())
def test_a_better_credit_range_never_lowers_the_estimate(a, limits, data):
    """Issue 12.5: moving up any number of credit ranges never lowers what any product lends, never takes
    a product away, and never turns a fit into a refusal."""
    i = RANGES_WORST_FIRST.index(a.credit_range)
    better = data.draw(st.sampled_from(RANGES_WORST_FIRST[i:]))
    before = evaluate(a, guidelines=G, limits=limits)
    after = evaluate(dataclasses.replace(a, credit_range=better), guidelines=G, limits=limits)
    assert after.estimate >= before.estimate
    assert set(before.products) <= set(after.products)
    for r1, r2 in zip(before.results, after.results, strict=True):
        assert r2.max_loan >= r1.max_loan, r1.product
        assert r2.fits_request or not r1.fits_request, r1.product


@PROPERTY_SETTINGS
@given(applicants(), limit_choices, st.data())
def test_an_exact_score_is_never_worse_than_its_range(a, limits, data):
    """Issue 12.5: a range counts as its lowest score, so the exact score inside it lends as much or more;
    and since no range straddles a threshold, exactly as much."""
    low, high, _ = CREDIT_RANGES[a.credit_range]
    score = data.draw(st.integers(min_value=low, max_value=high))
    by_range = evaluate(a, guidelines=G, limits=limits)
    by_score = evaluate(dataclasses.replace(a, credit_score=score), guidelines=G, limits=limits)
    assert by_score.credit_score_judged == score >= by_range.credit_score_judged == low
    for r1, r2 in zip(by_range.results, by_score.results, strict=True):
        assert r2.max_loan == r1.max_loan, r1.product


@PROPERTY_SETTINGS
@given(applicants(), limit_choices, st.integers(min_value=1, max_value=500_000))
def test_more_income_never_lowers_the_estimate(a, limits, raise_by):
    richer = dataclasses.replace(a, annual_income=a.annual_income + raise_by)
    before, after = evaluate(a, guidelines=G, limits=limits), evaluate(richer, guidelines=G, limits=limits)
    assert after.estimate >= before.estimate
    assert after.qualified_loan >= before.qualified_loan
    assert set(before.products) <= set(after.products)
    for r1, r2 in zip(before.results, after.results, strict=True):
        assert r2.max_loan >= r1.max_loan, r1.product
        assert r2.fits_request or not r1.fits_request, r1.product


@PROPERTY_SETTINGS
@given(applicants(), limit_choices, st.integers(min_value=1, max_value=10_000))
def test_lower_debts_never_lower_the_max(a, limits, more):
    indebted = dataclasses.replace(a, monthly_debts=a.monthly_debts + more)
    before, after = evaluate(a, guidelines=G, limits=limits), evaluate(indebted, guidelines=G, limits=limits)
    assert after.estimate <= before.estimate
    assert after.qualified_loan <= before.qualified_loan
    assert set(after.products) <= set(before.products)
    for r1, r2 in zip(before.results, after.results, strict=True):
        assert r2.max_loan <= r1.max_loan, r1.product


@st.composite
def buyers(draw) -> Applicant:
    a = draw(applicants())
    if a.purpose != "purchase":
        value = a.property_value
        a = dataclasses.replace(
            a, purpose="purchase", purchase_price=value, down_payment=D(0), mortgage_balance=None
        )
    return a


@PROPERTY_SETTINGS
@given(buyers(), limit_choices, st.integers(min_value=1, max_value=1000))
def test_a_larger_down_payment_never_lowers_what_fits(a, limits, per_mille):
    """Issue 12.1/12.8: more down never lowers what a product lends on the home, and a request that fit
    still fits (a jumbo excepted: a smaller loan may become a conforming one, which conventional lends)."""
    more = (a.purchase_price * per_mille / 1000).quantize(D("0.01"))
    if a.down_payment + more >= a.purchase_price:
        return
    richer = dataclasses.replace(a, down_payment=a.down_payment + more)
    before, after = evaluate(a, guidelines=G, limits=limits), evaluate(richer, guidelines=G, limits=limits)
    assert after.fits_request or not before.fits_request
    for r1, r2 in zip(before.results, after.results, strict=True):
        assert r2.max_loan >= r1.max_loan, r1.product
        if r1.product != "jumbo":
            assert r2.fits_request or not r1.fits_request, r1.product


@PROPERTY_SETTINGS
@given(applicants(), limit_choices)
def test_each_step_that_closes_the_gap_does(a, limits):
    """Issue 12.1: the down payment, debts and income named on the result page do what they say."""
    q = evaluate(a, guidelines=G, limits=limits)
    for step in q.gap:
        if step.kind == "down_payment":
            changed = dataclasses.replace(a, down_payment=a.down_payment + step.amount)
        elif step.kind == "debts":
            changed = dataclasses.replace(a, monthly_debts=a.monthly_debts - step.amount)
        elif step.kind == "income":
            changed = dataclasses.replace(a, annual_income=step.amount)
        else:
            continue
        again = result(evaluate(changed, guidelines=G, limits=limits), q.best_product)
        assert again.max_loan >= step.loan, (step, again.max_loan)
        if step.kind == "down_payment":
            assert again.fits_request, step


@PROPERTY_SETTINGS
@given(applicants(), limit_choices)
def test_money_has_two_decimal_places(a, limits):
    q = evaluate(a, guidelines=G, limits=limits)
    amounts = [q.estimate, q.requested_loan, q.qualified_loan]
    for r in q.results:
        amounts += [r.max_loan, r.monthly_payment, r.loan]
        amounts += [x for x in (r.rate_term_max, r.cash_out_max) if x is not None]
    amounts += [s.amount for s in q.gap] + [s.loan for s in q.gap]
    for amount in amounts:
        assert isinstance(amount, Decimal) and amount.as_tuple().exponent == -2, amount


@PROPERTY_SETTINGS
@given(applicants(), limit_choices)
def test_borrowing_the_estimate_fits(a, limits):
    # Asking for exactly what a product says it can lend must fit that product, within its ratios.
    q = evaluate(a, guidelines=G, limits=limits)
    for r in q.results:
        if r.max_loan <= 0 or r.binding_constraint in ("eligibility", "credit"):
            continue
        asking = _asking_for(a, r)
        if asking is None:
            continue
        again = evaluate(asking, guidelines=G, limits=limits)
        r2 = result(again, r.product)
        assert r2.fits_request, (r.product, r.max_loan, r2.reasons)
        rules = G.products[r.product]
        assert r2.dti <= rules.max_back_end_dti + D("0.01")


def _asking_for(a: Applicant, r: ProductResult) -> Applicant | None:
    loan = r.max_loan
    if a.purpose == "purchase":
        return dataclasses.replace(a, down_payment=a.purchase_price - loan)
    if a.purpose == "refinance":
        balance = a.mortgage_balance or D(0)
        if r.cash_out_max is not None and r.cash_out_max == loan and loan > balance:
            return dataclasses.replace(a, cash_out=loan - balance)  # the most as a cash-out refinance
        # Rate and term lends the payoff plus costs: the consumer asks for what they owe.
        return dataclasses.replace(a, cash_out=D(0)) if loan >= balance > 0 else None
    return dataclasses.replace(a, desired_loan_amount=loan)


def test_money_strategy_is_two_places():
    # The shared strategy above is used by other suites; keep it honest.
    assert D(12345).scaleb(-2) == D("123.45")
    assert money is not None
