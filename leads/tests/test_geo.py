"""Tests for leads.geo: ZIP lookup, distances, and that every zipcodes county finds its FHFA loan limit."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal
from pathlib import Path

import pytest
import zipcodes

from leads.geo import COUNTY_ALIASES, county_key, distance_miles, limit_keys, lookup_zip
from leads.qualification import BASELINE_CONFORMING_LIMIT

# Issue 11.16: the FHFA file ships inside the project, so these tests run on a clean clone (no skip).
FHFA_FILE = Path(__file__).resolve().parents[1] / "data/fhfa-conforming-loan-limits-2026.psv"

# Places zipcodes lists that FHFA does not: military mail (APO/FPO "states" AA, AE, AP) and the freely
# associated states (Micronesia, Marshall Islands, Palau), none of which has a county or a US loan limit.
NO_FHFA_ENTRY = {("AA", ""), ("AE", ""), ("AP", ""), ("FM", ""), ("MH", ""), ("PW", "")}


@pytest.fixture(scope="module")
def fhfa() -> dict[str, dict[str, Decimal]]:
    """state -> {CountyName key -> one-unit limit}, read from the shipped FHFA file."""
    limits: dict[str, dict[str, Decimal]] = defaultdict(dict)
    lines = FHFA_FILE.read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("FIPSStateCode|FIPSCountyCode|CountyName|State|CBSANumber|One-UnitLimit")
    for line in lines[1:]:
        if line.strip():
            fields = line.split("|")
            limits[fields[3]][county_key(fields[3], fields[2])] = Decimal(fields[5])
    return limits


@pytest.fixture(scope="module")
def zip_counties() -> set[tuple[str, str]]:
    return {(z["state"], z["county"] or "") for z in zipcodes.list_all()}


def test_every_zipcodes_county_maps_to_an_fhfa_county_in_its_state(fhfa, zip_counties):
    unmatched = []
    for state, county in sorted(zip_counties):
        keys = limit_keys(state, county)
        if keys and all(k in fhfa.get(state, {}) for k in keys):
            continue
        if (state, county) in NO_FHFA_ENTRY:
            continue
        if county == "" and not keys and min(fhfa[state].values()) == BASELINE_CONFORMING_LIMIT:
            # A ZIP without a county (PO boxes, unique ZIPs) maps to nothing and the caller uses the baseline
            # limit. That is only right where the state's lowest limit is the baseline; DC, Guam and the
            # Virgin Islands (all high-cost) must be aliased instead, and are.
            continue
        unmatched.append((state, county, keys))
    assert unmatched == []


def test_no_fhfa_entry_list_is_still_needed(fhfa, zip_counties):
    # Keeps the allow-list honest: each entry exists in zipcodes and is really missing from FHFA.
    for state, county in NO_FHFA_ENTRY:
        assert (state, county) in zip_counties
        assert state not in fhfa


def test_every_alias_names_a_real_fhfa_county(fhfa):
    for (state, _county), keys in COUNTY_ALIASES.items():
        assert keys, (state, _county)
        for key in keys:
            assert key in fhfa[state], (state, key)


def test_aliases_are_for_names_that_do_not_match_on_their_own(fhfa):
    for state, county in COUNTY_ALIASES:
        assert county not in fhfa[state], f"{state} {county} matches FHFA directly; drop the alias"


def test_plain_counties_match_after_normalising():
    assert county_key("CA", "Los Angeles County") == "LOSANGELESCOUNTY"
    assert county_key("PR", "Cataño Municipio") == "CATANOMUNICIPIO"
    assert county_key("VA", "Williamsburg city") == "WILLIAMSBURGCITY"
    assert limit_keys("ca", "Los Angeles County") == ["LOSANGELESCOUNTY"]
    assert limit_keys("AK", "Municipality of Anchorage") == ["ANCHORAGEMUNICIPALITY"]
    assert limit_keys("PR", "San Juan") == ["SANJUANMUNICIPIO"]


def test_county_without_a_name_maps_to_nothing():
    assert limit_keys("CA", "") == []


def _lowest_limit(fhfa, state: str, county: str) -> Decimal:
    return min(fhfa[state][k] for k in limit_keys(state, county))


def test_connecticut_old_counties_use_the_lowest_planning_region(fhfa):
    # New Haven County spans South Central (832,750) and Naugatuck Valley (851,000): the lower wins.
    assert set(limit_keys("CT", "New Haven County")) == {
        "SOUTHCENTRALCONNECTICUTPLANNINGREGION",
        "NAUGATUCKVALLEYPLANNINGREGION",
    }
    assert _lowest_limit(fhfa, "CT", "New Haven County") == Decimal("832750")
    # Fairfield County is mostly 977,500 but Shelton is in Naugatuck Valley (851,000).
    assert _lowest_limit(fhfa, "CT", "Fairfield County") == Decimal("851000")


def test_high_cost_places_without_a_county_keep_their_limit(fhfa):
    assert _lowest_limit(fhfa, "DC", "") == Decimal("1249125")
    assert _lowest_limit(fhfa, "VI", "") == Decimal("1249125")


def test_border_zip_filed_under_a_neighbouring_county(fhfa):
    info = lookup_zip("25410")  # Bakerton, WV: zipcodes says Washington County (that is Maryland's)
    assert info is not None and info.state == "WV"
    assert limit_keys(info.state, info.county) == ["JEFFERSONCOUNTY"]


def test_lookup_zip_known():
    info = lookup_zip("90210")
    assert info is not None
    assert (info.zip_code, info.city, info.state, info.county) == (
        "90210",
        "Beverly Hills",
        "CA",
        "Los Angeles County",
    )
    assert info.timezone == "America/Los_Angeles"
    assert info.lat == Decimal("34.0901") and info.long == Decimal("-118.4065")


def test_lookup_zip_accepts_zip_plus_four():
    info = lookup_zip("90210-1234")
    assert info is not None and info.zip_code == "90210"


@pytest.mark.parametrize("bad", ["", "9021", "902101", "abcde", "90210-12", "00000", None, 90210])
def test_lookup_zip_unknown_or_malformed(bad):
    assert lookup_zip(bad) is None


def test_distance_miles():
    assert distance_miles(0, 0, 0, 0) == 0
    # Los Angeles City Hall to New York City Hall: about 2,450 miles great-circle.
    d = distance_miles(34.0537, -118.2428, 40.7128, -74.0060)
    assert 2440 < d < 2460
    # One degree of latitude is about 69 miles.
    assert distance_miles(40, -100, 41, -100) == pytest.approx(69.09, abs=0.1)
    assert distance_miles(Decimal("40"), Decimal("-100"), Decimal("41"), Decimal("-100")) == pytest.approx(
        69.09, abs=0.1
    )
