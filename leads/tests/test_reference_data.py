"""Reference data shipped in leads/data/ and what it changes: Connecticut planning regions, county names,
2-4 unit limits, HUD's FHA limits (and the floor without them), state property tax and insurance."""

from __future__ import annotations

import csv
from collections import Counter
from decimal import Decimal as D
from pathlib import Path

import pytest
import zipcodes
from django.core.management import CommandError, call_command
from django.urls import reverse
from hypothesis import given, settings
from hypothesis import strategies as st

from leads import geo, reference
from leads.forms import LeadForm
from leads.models import CountyLoanLimit, Lead, StateHousingCost
from leads.qualification import (
    DEFAULT_GUIDELINES,
    FHA_FLOORS,
    Applicant,
    HousingCosts,
    LoanLimits,
    evaluate,
)
from leads.qualification.guidelines import BASELINE_CONFORMING_LIMITS
from leads.selectors import housing_costs_for_many, loan_limits_for
from marketplace.services import lead_distribute, leads_qualify
from marketplace.tests.factories import FORM_DATA, LenderFactory, MemberFactory, make_subscription

from .test_pipeline import submit
from .test_views import result_url

DATA = Path(__file__).resolve().parents[1] / "data"


def qualified(**overrides) -> Lead:
    lead = submit(**overrides)
    leads_qualify(lead_ids=[lead.pk], queue_distribution=False)
    lead.refresh_from_db()
    return lead


# --- issue 12.7: Connecticut towns and planning regions -----------------------------------------------------


def test_the_ct_map_has_169_towns_in_nine_planning_regions_named_as_fhfa_names_them():
    """Issue 12.7: CT's 169 towns, each in one of the nine planning regions (CT OPM), and each region a
    county of FHFA's 2026 file."""
    with (DATA / "ct-places-planning-regions.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    towns = {r["town"]: r["planning_region"] for r in rows}
    assert len(towns) == 169 and all(r["town"] in towns for r in rows)
    assert all(towns[r["town"]] == r["planning_region"] for r in rows)  # a village is in its town's region
    assert Counter(towns.values()) == {
        "Capitol Planning Region": 38,
        "Greater Bridgeport Planning Region": 6,
        "Lower Connecticut River Valley Planning Region": 17,
        "Naugatuck Valley Planning Region": 19,
        "Northeastern Connecticut Planning Region": 16,
        "Northwest Hills Planning Region": 21,
        "South Central Connecticut Planning Region": 15,
        "Southeastern Connecticut Planning Region": 19,
        "Western Connecticut Planning Region": 18,
    }
    fhfa_ct = {
        r["county_key"] for r in reference.read_fhfa(reference.FHFA_FILE, year=2026) if r["state"] == "CT"
    }
    assert {geo.county_key("CT", region) for region in towns.values()} == fhfa_ct


def test_every_connecticut_zip_place_maps_to_a_town():
    """No Connecticut ZIP falls silently to its old county's lowest region: every place zipcodes names is
    in the shipped map."""
    places = {z["city"] for z in zipcodes.list_all() if z["state"] == "CT"}
    assert sorted(p for p in places if geo.ct_planning_region(p) is None) == []


@pytest.mark.parametrize(
    ("zip_code", "town", "region", "limit"),
    [
        # Limits from FHFA's 2026 county file (leads/data/fhfa-conforming-loan-limits-2026.psv).
        ("06901", "Stamford", "Western Connecticut Planning Region", "977500"),
        ("06807", "Greenwich", "Western Connecticut Planning Region", "977500"),  # Cos Cob, a village
        ("06604", "Bridgeport", "Greater Bridgeport Planning Region", "977500"),
        ("06484", "Shelton", "Naugatuck Valley Planning Region", "851000"),  # Fairfield County, NV region
        ("06702", "Waterbury", "Naugatuck Valley Planning Region", "851000"),
        ("06510", "New Haven", "South Central Connecticut Planning Region", "832750"),
        ("06103", "Hartford", "Capitol Planning Region", "832750"),
    ],
)
def test_a_connecticut_zip_gets_its_planning_regions_limit(db, zip_code, town, region, limit):
    """Issue 12.7: a Stamford ZIP got Fairfield County's lowest region ($851,000) instead of its own
    ($977,500): the ZIP's place leads to its town, the town to its planning region."""
    info = geo.lookup_zip(zip_code)
    assert geo.ct_planning_region(info.city) == (town, region)
    limits = loan_limits_for(state=info.state, county=info.county, city=info.city)
    assert limits.conforming_limit == D(limit)
    assert limits.source == f"FHFA 2026 {region}, CT"


def test_a_stamford_lead_is_held_to_western_connecticuts_limit(db):
    lead = qualified(zip_code="06901")
    assert (lead.city, lead.county) == ("Stamford", "Fairfield County")
    assert lead.loan_limit == D("977500.00")
    assert lead.loan_limit_source == "FHFA 2026 Western Connecticut Planning Region, CT"


def test_the_limit_source_names_the_county_as_people_write_it(db):
    """Issue 12.7: the source read "FHFA 2026 TRAVISCOUNTY TX"."""
    assert qualified().loan_limit_source == "FHFA 2026 Travis County, TX"
    assert CountyLoanLimit.objects.get(fips="02020").county_name in (
        "Anchorage Municipality",
        "Municipality of Anchorage",
    )
    names = CountyLoanLimit.objects.values_list("county_name", flat=True)
    # FHFA writes names without spaces ("LOSANGELESCOUNTY"); every stored name has its spaces back.
    assert not [n for n in names if n.replace(".", "").replace("'", "").isupper() or not n]


# --- issue 12.7: two to four units ----------------------------------------------------------------------


def test_two_to_four_units_use_the_files_limits_for_that_many_units(db):
    """Issue 12.7: FHFA 2026 file, Travis County TX (baseline): 832,750 / 1,066,250 / 1,288,800 /
    1,601,750; San Francisco (ceiling): 1,249,125 / 1,599,375 / 1,933,200 / 2,402,625."""
    travis = [
        loan_limits_for(state="TX", county="Travis County", units=n).conforming_limit for n in (1, 2, 3, 4)
    ]
    assert travis == [D("832750.00"), D("1066250.00"), D("1288800.00"), D("1601750.00")]
    sf = [loan_limits_for(state="CA", county="San Francisco County", units=n) for n in (1, 2, 3, 4)]
    assert [x.conforming_limit for x in sf] == [
        D("1249125.00"),
        D("1599375.00"),
        D("1933200.00"),
        D("2402625.00"),
    ]
    assert [x.fha_limit for x in sf] == [x.conforming_limit for x in sf]  # high-cost: FHA = conforming
    assert sf[2].source == "FHFA 2026 San Francisco County, CA, 3 units"
    # Baseline county, 2-4 units: HUD's floor is 65% of each baseline.
    two = loan_limits_for(state="TX", county="Travis County", units=2)
    assert two.fha_limit == D("693062.00")


def test_a_duplex_lead_borrows_above_the_one_unit_limit(db):
    """A $1,000,000 conventional loan on a $1,400,000 duplex (71% LTV, within the 75% 2-4 unit cap) was
    sent to jumbo by the one-unit $832,750 limit; the two-unit limit ($1,066,250) holds it."""
    lead = qualified(
        property_type="multi_family",
        units=2,
        property_value=D("1400000"),
        purchase_price=D("1400000"),
        down_payment=D("400000"),
        desired_loan_amount=D("1000000"),
        annual_income=D("400000"),
        monthly_debts=D("0"),
        credit_range="740_759",
    )
    assert lead.units == 2 and lead.loan_limit == D("1066250.00")
    conventional = next(r for r in lead.qualification["results"] if r["product"] == "conventional")
    assert conventional["fits_request"] is True
    assert lead.loan_limit_source == "FHFA 2026 Travis County, TX, 2 units"


@pytest.mark.parametrize(
    ("property_type", "units", "error"),
    [
        ("multi_family", "1", "A multi-family home has 2 to 4 units; choose how many."),
        ("single_family", "3", "Only a multi-family home has more than one unit; check the type of home."),
        ("multi_family", "5", "Choose 1, 2, 3 or 4 units."),
    ],
)
def test_the_form_asks_the_number_of_units_and_names_a_wrong_one(property_type, units, error):
    form = LeadForm(data={**FORM_DATA, "property_type": property_type, "units": units})
    assert not form.is_valid()
    assert form.errors["units"] == [error]


@pytest.mark.parametrize(("property_type", "expected"), [("multi_family", 2), ("condo", 1)])
def test_units_left_blank_count_as_the_fewest_the_home_can_have(property_type, expected):
    form = LeadForm(data={**FORM_DATA, "property_type": property_type, "units": ""})
    assert form.is_valid(), form.errors
    assert form.cleaned_data["units"] == expected


def test_every_county_limit_grows_with_the_number_of_units():
    for row in reference.read_fhfa(reference.FHFA_FILE, year=2026):
        limits = [row[f] for f in reference.UNIT_FIELDS]
        assert limits == sorted(limits) and len(set(limits)) == 4, row["fips"]


@settings(max_examples=200, deadline=None)
@given(
    conforming=st.decimals(min_value=D("832750"), max_value=D("1249125"), places=0),
    units=st.sampled_from([1, 2, 3, 4]),
    state=st.sampled_from(["TX", "CA", "AK", "HI", "GU", "VI", "CT"]),
)
def test_without_hud_figures_fha_is_between_the_floor_and_the_conforming_limit(conforming, units, state):
    """Property (issue 12.4): a derived FHA limit never promises more than the county's conforming limit
    nor less than HUD's floor, for any number of units; in the statutory areas it is the floor."""
    scaled = (conforming * reference_ratio(units)).quantize(D("1"))
    limits = LoanLimits.for_county(scaled, "FHFA", units=units, state=state)
    assert FHA_FLOORS[units - 1] <= limits.fha_limit <= max(limits.conforming_limit, FHA_FLOORS[units - 1])
    if state in ("AK", "HI", "GU", "VI"):
        assert limits.fha_limit == FHA_FLOORS[units - 1]


def reference_ratio(units: int) -> D:
    return BASELINE_CONFORMING_LIMITS[units - 1] / BASELINE_CONFORMING_LIMITS[0]


# --- issue 12.4: HUD's FHA limits -----------------------------------------------------------------------

# A file in the layout of HUD's county file ("FHA Mortgage Limits"), made for these tests: the figures are
# illustrative, not HUD's. HUD's own columns beside ours (MSA, median price) are ignored.
HUD_SAMPLE = (
    "MSA Code,MSA Name,State,State FIPS,County FIPS,County Name,Median Price,"
    "One-Unit Limit,Two-Unit Limit,Three-Unit Limit,Four-Unit Limit\n"
    """11260,"Anchorage, AK",AK,02,020,ANCHORAGE,500000,"$1,100,000","$1,400,000","$1,700,000","$2,100,000"
46520,"Urban Honolulu, HI",HI,15,003,HONOLULU,"$900,000","$1,800,000","$2,300,000","$2,800,000","$3,400,000"
12420,"Austin-Round Rock, TX",TX,48,453,TRAVIS,"$480,000","$552,000","$706,650","$854,200","$1,061,550"
"""
)


def write(tmp_path: Path, text: str, name: str = "hud.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_without_huds_file_statutory_areas_get_the_fha_floor(db):
    """Issue 12.4: in Alaska, Hawaii, Guam and the U.S. Virgin Islands the conforming limit is statutory
    ($1,249,125 everywhere), so it cannot give FHA's; Anchorage was given an FHA limit of $1,249,125.
    Without HUD's figures these areas get the 2026 floor, $541,287 (65% of $832,750), and say so."""
    for state, county in (("AK", "Municipality of Anchorage"), ("HI", "Honolulu County"), ("GU", "")):
        limits = loan_limits_for(state=state, county=county)
        assert limits.conforming_limit == D("1249125.00")
        assert limits.fha_limit == D("541287.00"), state
        assert "HUD FHA floor" in limits.fha_source and "statutory" in limits.fha_source
    # Elsewhere the FHFA-derived figure stands, and says where it came from.
    sf = loan_limits_for(state="CA", county="San Francisco County")
    assert sf.fha_limit == D("1249125.00") and sf.fha_source.startswith("derived from FHFA 2026")
    travis = loan_limits_for(state="TX", county="Travis County")
    assert travis.fha_limit == D("541287.00") and travis.fha_source.startswith("HUD FHA floor")


def test_huds_file_sets_the_fha_limit_and_the_source_says_so(db, tmp_path):
    call_command("import_fha_limits", str(write(tmp_path, HUD_SAMPLE)), verbosity=0)
    anchorage = loan_limits_for(state="AK", county="Municipality of Anchorage", city="Anchorage")
    assert anchorage.fha_limit == D("1100000.00")
    assert anchorage.fha_source.startswith("HUD 2026 FHA limit, Anchorage")
    assert loan_limits_for(state="HI", county="Honolulu County", units=3).fha_limit == D("2800000.00")
    assert loan_limits_for(state="TX", county="Travis County", units=2).fha_limit == D("706650.00")
    # Counties HUD's file does not cover keep the derived figure.
    assert loan_limits_for(state="CA", county="San Francisco County").fha_source.startswith("derived")
    # An FHFA re-import keeps HUD's figures.
    call_command("import_loan_limits", verbosity=0)
    assert loan_limits_for(state="AK", county="Municipality of Anchorage").fha_limit == D("1100000.00")


def test_an_anchorage_fha_lead_records_the_floor_and_its_source(db):
    lead = qualified(zip_code="99501")
    assert lead.state == "AK" and lead.loan_limit == D("1249125.00")
    assert lead.fha_limit == D("541287.00") and "statutory" in lead.fha_limit_source


def test_the_hud_importer_takes_pipes_and_five_digit_fips(db, tmp_path):
    text = (
        "State|County FIPS|One-Unit Limit|Two-Unit Limit|Three-Unit Limit|Four-Unit Limit\n"
        "AK|02020|1000000|1300000|1600000|2000000\n"
    )
    call_command("import_fha_limits", str(write(tmp_path, text, "hud.txt")), verbosity=0)
    assert CountyLoanLimit.objects.get(fips="02020").fha_four_unit_limit == D("2000000.00")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("State,County Name\nAK,ANCHORAGE\n", "no column for county_fips, one_unit_limit"),
        (
            HUD_SAMPLE.splitlines()[0] + "\n" + "x,y,AK,02,020,A,1,$125,1400000,1700000,2100000\n",
            "line 2: one unit limit 125 is outside",
        ),
        (HUD_SAMPLE.splitlines()[0] + "\n" + "x,y,Alaska,02,020,A,1,1,1,1,1\n", "line 2: bad state 'ALASKA'"),
        ("", "is empty"),
    ],
)
def test_a_bad_hud_file_is_refused_with_the_line_and_field(db, tmp_path, text, message):
    with pytest.raises(CommandError, match=message.replace("(", r"\(")):
        call_command("import_fha_limits", str(write(tmp_path, text)), verbosity=0)
    assert not CountyLoanLimit.objects.filter(fha_year__isnull=False).exists()


def test_engine_takes_the_fha_limit_it_is_given():
    """An FHA request above the floor in Anchorage is held to the floor without HUD's figure."""
    a = Applicant(
        purpose="purchase",
        credit_range="740_759",
        annual_income=D("400000"),
        monthly_debts=D("0"),
        property_value=D("800000"),
        purchase_price=D("800000"),
        down_payment=D("100000"),
        state="AK",
    )
    floor = LoanLimits.for_county(D("1249125"), "FHFA 2026 Anchorage Municipality, AK", state="AK")
    fha = next(
        r for r in evaluate(a, guidelines=DEFAULT_GUIDELINES, limits=floor).results if r.product == "fha"
    )
    assert fha.max_loan == D("541287.00") and fha.binding_constraint == "loan_limit"
    hud = LoanLimits.for_county(D("1249125"), state="AK", hud_fha_limit=D("1100000"), hud_source="HUD")
    fha = next(
        r for r in evaluate(a, guidelines=DEFAULT_GUIDELINES, limits=hud).results if r.product == "fha"
    )
    assert fha.fits_request  # the $700,000 request, within HUD's limit


# --- issue 12.6: state property tax and insurance -------------------------------------------------------


def test_the_state_table_ships_every_state_with_its_source(db):
    """Issue 12.6: 50 states and DC loaded by the data migration; staff edit them in admin."""
    rows = {r.state: r for r in StateHousingCost.objects.all()}
    assert set(rows) == set(geo.US_STATES)
    tx, hi = rows["TX"], rows["HI"]
    # Tax Foundation 2025 (ACS 2023): Texas 1.58%, Hawaii 0.27%. Insurance: 0.35% x state / national
    # average premium (NAIC 2021: Texas $2,125, Hawaii $1,204, national $1,411).
    assert (tx.property_tax_rate, tx.insurance_rate, tx.average_premium) == (
        D("1.580"),
        D("0.527"),
        D("2125.00"),
    )
    assert (hi.property_tax_rate, hi.insurance_rate) == (D("0.270"), D("0.299"))
    assert "Tax Foundation" in tx.source and "NAIC" in tx.source


def test_states_take_their_own_rates_and_others_the_national_ones(db):
    costs = housing_costs_for_many(states={"TX", "PR"}, guidelines=DEFAULT_GUIDELINES)
    assert (costs["TX"].property_tax_rate, costs["TX"].insurance_rate) == (D("1.580"), D("0.527"))
    assert (costs["PR"].property_tax_rate, costs["PR"].insurance_rate) == (D("1.10"), D("0.35"))
    tx = StateHousingCost.objects.get(state="TX")
    tx.property_tax_rate = D("2")
    tx.save()  # as staff edit it: the per-process copy is dropped at once
    assert housing_costs_for_many(states={"TX"}, guidelines=DEFAULT_GUIDELINES)["TX"].property_tax_rate == D(
        "2"
    )


STRETCHED = dict(
    purpose="purchase",
    credit_range="660_679",
    annual_income=D("48000"),
    monthly_debts=D("600"),
    property_value=D("330000"),
    purchase_price=D("330000"),
    down_payment=D("30000"),
    first_time_buyer=True,
)
TEXAS = HousingCosts(D("1.58"), D("0.527"), "TX")
HAWAII = HousingCosts(D("0.27"), D("0.299"), "HI")


def conventional(applicant: Applicant, costs: HousingCosts | None):
    q = evaluate(applicant, guidelines=DEFAULT_GUIDELINES, limits=LoanLimits.baseline(), costs=costs)
    return next(r for r in q.results if r.product == "conventional")


def test_worked_example_a_texas_home_costs_more_a_month_than_the_national_rate_says():
    """Issue 12.6, worked: a $330,000 home in Texas. National: tax 1.10% = $302.50 a month, insurance
    0.35% = $96.25. Texas: 1.58% = $434.50, 0.527% = $144.93. The same $100,000 loan costs $180.68 a month
    more, and the DTI-bound most ($158,408.58 at the national rates, issue 12.1's example) falls to
    $129,823.05 (-18%: a modest income, so the tax is a large share of the room); in Hawaii (0.27%, 0.299%)
    it rises to $196,738.31 (+24%)."""
    small = Applicant(**STRETCHED, desired_loan_amount=D("100000"))
    national, texas = conventional(small, None), conventional(small, TEXAS)
    assert national.fits_request and texas.fits_request
    assert texas.monthly_payment - national.monthly_payment == D("180.68")

    stretched = Applicant(**STRETCHED, desired_loan_amount=D("300000"))
    base = conventional(stretched, None).max_loan
    assert base == D("158408.58")
    tx, hi = conventional(stretched, TEXAS).max_loan, conventional(stretched, HAWAII).max_loan
    assert (tx, hi) == (D("129823.05"), D("196738.31"))


@settings(max_examples=60, deadline=None)
@given(
    tax=st.decimals(min_value=0, max_value=3, places=2),
    more=st.decimals(min_value=D("0.01"), max_value=2, places=2),
    insurance=st.decimals(min_value=0, max_value=1, places=3),
    income=st.integers(min_value=30000, max_value=300000),
)
def test_a_higher_property_tax_never_raises_what_can_be_borrowed(tax, more, insurance, income):
    """Property: the housing payment counts the tax, so a higher rate never raises any product's most."""
    a = Applicant(**{**STRETCHED, "annual_income": D(income)}, desired_loan_amount=D("300000"))
    low = evaluate(
        a, guidelines=DEFAULT_GUIDELINES, limits=LoanLimits.baseline(), costs=HousingCosts(tax, insurance)
    )
    high = evaluate(
        a,
        guidelines=DEFAULT_GUIDELINES,
        limits=LoanLimits.baseline(),
        costs=HousingCosts(tax + more, insurance),
    )
    for lo, hi in zip(low.results, high.results, strict=True):
        assert hi.max_loan <= lo.max_loan, lo.product


def test_a_texas_lead_is_qualified_at_texas_rates(db):
    national = evaluate(
        Applicant(**{**STRETCHED, "state": "TX"}, desired_loan_amount=D("300000")),
        guidelines=DEFAULT_GUIDELINES,
        limits=LoanLimits.baseline(),
    )
    lead = qualified(
        annual_income=D("48000"),
        monthly_debts=D("600"),
        property_value=D("330000"),
        purchase_price=D("330000"),
        down_payment=D("30000"),
        desired_loan_amount=D("300000"),
    )
    assert lead.estimate < national.estimate


def test_staff_edit_the_state_table_in_admin(admin_client):
    row = StateHousingCost.objects.get(state="TX")
    page = admin_client.get(f"/admin/leads/statehousingcost/{row.pk}/change/")
    assert page.status_code == 200
    response = admin_client.post(
        f"/admin/leads/statehousingcost/{row.pk}/change/",
        {
            "state": "TX",
            "property_tax_rate": "1.600",
            "insurance_rate": "0.500",
            "average_premium": "2125",
            "source": "staff",
        },
    )
    assert response.status_code == 302, response.content
    row.refresh_from_db()
    assert (row.property_tax_rate, row.insurance_rate) == (D("1.600"), D("0.500"))
    bad = admin_client.post(
        f"/admin/leads/statehousingcost/{row.pk}/change/",
        {"state": "TX", "property_tax_rate": "40", "insurance_rate": "0.5", "source": "staff"},
    )
    assert bad.status_code == 200 and "A yearly rate from 0% to 10%" in bad.content.decode()


# --- where the sources show --------------------------------------------------------------------------------


def test_the_result_page_names_the_limits_and_their_sources(client, db):
    """Issue 12.4 / 12.7: the consumer's page says which county's figures applied and where FHA's came
    from (Anchorage: the floor, as the conforming limit there is statutory)."""
    lead = qualified(zip_code="99501")
    html = " ".join(client.get(result_url(lead)).content.decode().replace("&#x27;", "'").split())
    assert "fha" in lead.products
    assert (
        "The conforming loan limit in your county is $1,249,125 (FHFA 2026 Anchorage Municipality, AK)"
        in html
        or "The conforming loan limit in your county is $1,249,125 (FHFA 2026 Municipality of Anchorage, AK)"
        in html
    )
    assert (
        "The FHA loan limit there is $541,287 (HUD FHA floor: the conforming limit here is statutory" in html
    )


def test_the_lenders_lead_page_shows_the_limits_and_their_sources(client, db):
    lender = LenderFactory(states=["CT"], balance="1000.00")
    owner = MemberFactory(lender=lender, role="owner").user
    make_subscription(lender, states=["CT"], price="40.00")
    lead = qualified(zip_code="06901")
    (delivery,) = lead_distribute(lead_id=lead.pk)
    client.force_login(owner)
    html = client.get(reverse("portal:delivery_detail", args=[delivery.pk])).content.decode()
    assert '$977,500 <span class="muted">FHFA 2026 Western Connecticut Planning Region, CT</span>' in html
    assert '<dt>FHA limit</dt><dd>$977,500 <span class="muted">derived from FHFA 2026 Western' in html
