"""Readers for the reference data files (FHFA and HUD county limits, state housing costs): text in, checked
rows out, no ORM, so the import commands and the data migration share them. Bad input raises ValueError
naming the file, line and field."""

from __future__ import annotations

import csv
import io
import re
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from . import geo

DATA_DIR = geo.DATA_DIR
FHFA_FILE = DATA_DIR / "fhfa-conforming-loan-limits-2026.psv"
STATE_COSTS_FILE = DATA_DIR / "state-housing-costs.csv"

FHFA_REQUIRED = ("FIPSStateCode", "FIPSCountyCode", "CountyName", "State", "One-UnitLimit")
FHFA_UNIT_COLUMNS = ("One-UnitLimit", "Two-UnitLimit", "Three-UnitLimit", "Four-UnitLimit")
UNIT_FIELDS = ("one_unit_limit", "two_unit_limit", "three_unit_limit", "four_unit_limit")
# Sanity bounds for a limit: catches a shifted column or a limit typed in thousands.
MIN_LIMIT = Decimal("100000")
MAX_LIMIT = Decimal("10000000")
CENT = Decimal("0.01")

# The national figures insurance is scaled from (see leads/data/README.md): the guideline set's 0.35% of
# value, and the national average homeowners premium of the data year (NAIC, 2021).
NATIONAL_INSURANCE_RATE = Decimal("0.35")
NATIONAL_AVERAGE_PREMIUM = Decimal("1411")
STATE_COSTS_SOURCE = (
    "Tax Foundation 2025 (ACS 2023) effective property tax; NAIC 2021 average homeowners premium"
)


def _read_text(path: Path) -> str:
    try:
        return Path(path).read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise ValueError(f"Cannot read {path}: {exc.strerror or exc}") from exc


def _limit(text: str, where: str, name: str) -> Decimal:
    try:
        value = Decimal(text.replace(",", "").replace("$", "").strip())
    except InvalidOperation:
        raise ValueError(f"{where}: {name} {text!r} is not a number") from None
    if not MIN_LIMIT <= value <= MAX_LIMIT:
        raise ValueError(f"{where}: {name} {value} is outside {MIN_LIMIT}-{MAX_LIMIT}")
    return value.quantize(CENT)


def read_fhfa(path: Path, *, year: int) -> list[dict[str, Any]]:
    """FHFA's county file (pipe-separated): one row per county with its 1-4 unit conforming limits (2-4
    are None when the file lacks those columns) and the county's name as people write it."""
    text = _read_text(path)
    lines = text.splitlines()
    if not lines:
        raise ValueError(f"{path} is empty")
    header = [h.strip() for h in lines[0].split("|")]
    missing = [c for c in FHFA_REQUIRED if c not in header]
    if missing:
        raise ValueError(
            f"{path} line 1: header lacks {', '.join(missing)}; is this FHFA's pipe-separated file?"
        )
    col = {name: header.index(name) for name in (*FHFA_REQUIRED, *FHFA_UNIT_COLUMNS) if name in header}
    names = geo.county_display_names()
    rows: dict[str, dict[str, Any]] = {}
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        fields = [f.strip() for f in line.split("|")]
        where = f"{path} line {number}"
        if len(fields) != len(header):
            raise ValueError(f"{where}: expected {len(header)} fields, found {len(fields)}")
        state_fips, county_fips = fields[col["FIPSStateCode"]], fields[col["FIPSCountyCode"]]
        if not re.fullmatch(r"\d{2}", state_fips) or not re.fullmatch(r"\d{3}", county_fips):
            raise ValueError(f"{where}: bad FIPS code {state_fips!r}/{county_fips!r}")
        state = fields[col["State"]].upper()
        if not re.fullmatch(r"[A-Z]{2}", state):
            raise ValueError(f"{where}: bad state {state!r}")
        raw_name = fields[col["CountyName"]]
        key = geo.county_key(state, raw_name)
        if not key:
            raise ValueError(f"{where}: county name is empty")
        fips = state_fips + county_fips
        if fips in rows:
            raise ValueError(f"{where}: FIPS {fips} appears twice")
        row: dict[str, Any] = {
            "fips": fips,
            "state": state,
            "county_key": key,
            "county_name": names.get((state, key)) or _spaced(raw_name),
            "year": year,
        }
        for column, field in zip(FHFA_UNIT_COLUMNS, UNIT_FIELDS, strict=True):
            row[field] = _limit(fields[col[column]], where, column) if column in col else None
        rows[fips] = row
    if not rows:
        raise ValueError(f"{path} has a header but no counties")
    return list(rows.values())


# FHFA names that zipcodes does not give a spelling for (no ZIP of ours lies there, or zipcodes names the
# place otherwise), written out.
FHFA_NAMES = {
    "COVINGTONCITY": "Covington city",
    "EMPORIACITY": "Emporia city",
    "LEXINGTONCITY": "Lexington city",
    "MANASSASPARKCITY": "Manassas Park city",
    "EASTERNDISTRICT": "Eastern District",
    "MANU'ADISTRICT": "Manu'a District",
    "ROSEISLAND": "Rose Island",
    "SWAINSISLAND": "Swains Island",
    "WESTERNDISTRICT": "Western District",
    "GUAM": "Guam",
    "NORTHERNISLANDSMUNICIPALITY": "Northern Islands Municipality",
    "ROTAMUNICIPALITY": "Rota Municipality",
    "SAIPANMUNICIPALITY": "Saipan Municipality",
    "TINIANMUNICIPALITY": "Tinian Municipality",
    "ST.CROIXISLAND": "St. Croix Island",
    "ST.JOHNISLAND": "St. John Island",
    "ST.THOMASISLAND": "St. Thomas Island",
}


def _spaced(name: str) -> str:
    # "CapitolPlanningRegion" -> "Capitol Planning Region"; other all-capitals names from the table above.
    if name.isupper():
        return FHFA_NAMES.get(name, name)
    return re.sub(r"(?<=[a-z])(?=[A-Z])", " ", name)


# HUD's FHA forward-mortgage limits by county: the columns we read, by their names in HUD's county file.
# Names are matched ignoring case, spaces, hyphens and underscores; other columns (MSA code and name, median
# price, limit type, last revised) are ignored. The county is given either as State FIPS + County FIPS
# (2 + 3 digits) or as a 5-digit County FIPS.
HUD_COLUMNS: dict[str, tuple[str, ...]] = {
    "state": ("state", "stateabbr", "stateabbreviation", "statename"),
    "state_fips": ("statefips", "fipsstatecode", "statecode", "statefipscode"),
    "county_fips": ("countyfips", "fipscountycode", "countycode", "countyfipscode", "fips"),
    "county_name": ("countyname", "county"),
    "one_unit_limit": ("oneunitlimit", "limit1unit", "limitoneunit", "1unitlimit", "oneunit", "limit1"),
    "two_unit_limit": ("twounitlimit", "limit2units", "limit2unit", "limittwounits", "2unitlimit", "limit2"),
    "three_unit_limit": (
        "threeunitlimit",
        "limit3units",
        "limit3unit",
        "limitthreeunits",
        "3unitlimit",
        "limit3",
    ),
    "four_unit_limit": (
        "fourunitlimit",
        "limit4units",
        "limit4unit",
        "limitfourunits",
        "4unitlimit",
        "limit4",
    ),
}
HUD_REQUIRED = ("state", "county_fips", *UNIT_FIELDS)


def _norm(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def read_hud_fha(path: Path) -> list[dict[str, Any]]:
    """HUD's FHA county limits file (comma, pipe or tab separated, with a header row): one row per county
    with its FIPS code and 1-4 unit FHA limits."""
    text = _read_text(path)
    first = text.splitlines()[0] if text.strip() else ""
    if not first:
        raise ValueError(f"{path} is empty")
    delimiter = max("|,\t", key=first.count)
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    header = [_norm(h) for h in next(reader)]
    col: dict[str, int] = {}
    for field, names in HUD_COLUMNS.items():
        for name in names:
            if name in header:
                col[field] = header.index(name)
                break
    missing = [f for f in HUD_REQUIRED if f not in col]
    if missing:
        raise ValueError(
            f"{path} line 1: no column for {', '.join(missing)}; expected HUD's county file with State, "
            "State FIPS, County FIPS, County Name and One- to Four-Unit Limit columns"
        )
    rows: dict[str, dict[str, Any]] = {}
    for number, fields in enumerate(reader, start=2):
        if not any(f.strip() for f in fields):
            continue
        where = f"{path} line {number}"
        if len(fields) < len(header):
            raise ValueError(f"{where}: expected {len(header)} fields, found {len(fields)}")
        state = fields[col["state"]].strip().upper()
        if not re.fullmatch(r"[A-Z]{2}", state):
            raise ValueError(f"{where}: bad state {state!r} (the two-letter abbreviation)")
        county_fips = fields[col["county_fips"]].strip()
        if re.fullmatch(r"\d{5}", county_fips):
            fips = county_fips
        elif "state_fips" in col and re.fullmatch(r"\d{1,3}", county_fips):
            state_fips = fields[col["state_fips"]].strip()
            if not re.fullmatch(r"\d{1,2}", state_fips):
                raise ValueError(f"{where}: bad state FIPS {state_fips!r}")
            fips = state_fips.zfill(2) + county_fips.zfill(3)
        else:
            raise ValueError(f"{where}: bad county FIPS {county_fips!r}")
        if fips in rows:
            raise ValueError(f"{where}: FIPS {fips} appears twice")
        row: dict[str, Any] = {"fips": fips, "state": state}
        row["county_name"] = fields[col["county_name"]].strip() if "county_name" in col else ""
        for field in UNIT_FIELDS:
            row[field] = _limit(fields[col[field]], where, field.replace("_", " "))
        rows[fips] = row
    if not rows:
        raise ValueError(f"{path} has a header but no counties")
    return list(rows.values())


def read_state_costs(path: Path = STATE_COSTS_FILE) -> list[dict[str, Any]]:
    """The shipped state table: effective property-tax rate (%), average premium ($), and the insurance
    rate (% of value) scaled from the national one by the state's premium."""
    text = _read_text(path)
    reader = csv.DictReader(io.StringIO(text))
    needed = {"state", "property_tax_rate", "average_premium"}
    if not needed <= set(reader.fieldnames or ()):
        raise ValueError(f"{path} line 1: expected the columns {', '.join(sorted(needed))}")
    rows = []
    for number, raw in enumerate(reader, start=2):
        where = f"{path} line {number}"
        state = (raw["state"] or "").strip().upper()
        if not re.fullmatch(r"[A-Z]{2}", state):
            raise ValueError(f"{where}: bad state {state!r}")
        try:
            tax = Decimal(raw["property_tax_rate"].strip())
            premium = Decimal(raw["average_premium"].strip())
        except (InvalidOperation, AttributeError):
            raise ValueError(f"{where}: the rate and the premium must be numbers") from None
        if not 0 <= tax <= 10 or not 0 < premium < 100000:
            raise ValueError(f"{where}: rate {tax}% or premium ${premium} is implausible")
        insurance = (NATIONAL_INSURANCE_RATE * premium / NATIONAL_AVERAGE_PREMIUM).quantize(Decimal("0.001"))
        rows.append(
            {
                "state": state,
                "property_tax_rate": tax,
                "insurance_rate": insurance,
                "average_premium": premium.quantize(CENT),
                "source": STATE_COSTS_SOURCE,
            }
        )
    return rows
