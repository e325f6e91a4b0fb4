"""ZIP code geography: ZIP -> place, county names -> FHFA loan-limit keys, distances. Pure Python, no ORM."""

from __future__ import annotations

import csv
import math
import re
import sys
import threading
import unicodedata
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import cache
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import zipcodes

__all__ = [
    "ZipInfo",
    "lookup_zip",
    "county_key",
    "limit_keys",
    "distance_miles",
    "zips_within",
    "US_STATES",
    "COUNTY_ALIASES",
    "ct_planning_region",
    "county_display_names",
    "zip_time_zones",
]

DATA_DIR = Path(__file__).resolve().parent / "data"
CT_PLACES_FILE = DATA_DIR / "ct-places-planning-regions.csv"

# The states (and DC) a lender can be licensed in and a subscription can cover, alphabetical.
US_STATES: tuple[str, ...] = (
    "AK",
    "AL",
    "AR",
    "AZ",
    "CA",
    "CO",
    "CT",
    "DC",
    "DE",
    "FL",
    "GA",
    "HI",
    "IA",
    "ID",
    "IL",
    "IN",
    "KS",
    "KY",
    "LA",
    "MA",
    "MD",
    "ME",
    "MI",
    "MN",
    "MO",
    "MS",
    "MT",
    "NC",
    "ND",
    "NE",
    "NH",
    "NJ",
    "NM",
    "NV",
    "NY",
    "OH",
    "OK",
    "OR",
    "PA",
    "RI",
    "SC",
    "SD",
    "TN",
    "TX",
    "UT",
    "VA",
    "VT",
    "WA",
    "WI",
    "WV",
    "WY",
)

_ZIP_RE = re.compile(r"^\s*(\d{5})(?:-\d{4})?\s*$")
_NON_LETTERS = re.compile(r"[^A-Z]")
EARTH_RADIUS_MILES = 3958.8


@dataclass(frozen=True)
class ZipInfo:
    zip_code: str
    city: str
    state: str
    county: str  # as zipcodes names it, e.g. "Los Angeles County"; "" when zipcodes has none
    lat: Decimal | None
    long: Decimal | None
    timezone: str


def _decimal_or_none(value: object) -> Decimal | None:
    try:
        return Decimal(str(value)) if value not in (None, "") else None
    except InvalidOperation:
        return None


def lookup_zip(zip_code: str) -> ZipInfo | None:
    """The place a ZIP code names; None for a malformed or unknown ZIP. Takes '12345' or '12345-6789'."""
    if not isinstance(zip_code, str):
        return None
    match = _ZIP_RE.match(zip_code)
    if not match:
        return None
    row = zip_index().get(match.group(1))
    if row is None:
        return None
    city, state, county, lat, long, time_zone = row
    return ZipInfo(
        zip_code=match.group(1),
        city=city,
        state=state,
        county=county,
        lat=_decimal_or_none(lat),
        long=_decimal_or_none(long),
        timezone=time_zone,
    )


_index: dict[str, tuple] | None = None
_index_lock = threading.Lock()


def zip_index() -> dict[str, tuple]:
    """Every ZIP zipcodes knows, by code, as (city, state, county, lat, long, time zone). zipcodes scans its
    whole table per lookup (about 1.4 ms, and intake asks twice per lead); this is built once per process
    (about 0.75 s and 10 MB; the web server builds it as it starts) and makes a lookup a dict access."""
    global _index
    if _index is None:
        with _index_lock:
            if _index is None:
                intern = sys.intern  # cities, counties, states and time zones repeat: store each once
                _index = {
                    row["zip_code"]: (
                        intern(row.get("city") or ""),
                        intern(row.get("state") or ""),
                        intern(row.get("county") or ""),
                        row.get("lat"),
                        row.get("long"),
                        intern(row.get("timezone") or ""),
                    )
                    for row in zipcodes.list_all()
                }
    return _index


def county_key(state: str, county: str) -> str:
    """A county name in FHFA's CountyName form: upper case, accents folded, non-letters dropped.

    "Los Angeles County" -> "LOSANGELESCOUNTY"; "Cataño Municipio" -> "CATANOMUNICIPIO".
    `state` is accepted so callers read naturally; the key itself does not contain it.
    """
    folded = unicodedata.normalize("NFKD", county or "").encode("ascii", "ignore").decode("ascii")
    return _NON_LETTERS.sub("", folded.upper())


# Counties that zipcodes names differently from FHFA, matched on purpose (see leads/data/README.md).
# Key: (state, county_key(zipcodes name)). Value: the FHFA CountyName keys the county spans.
# When a county spans several FHFA areas, callers must use the LOWEST of their limits: we cannot tell from
# the county alone which area a ZIP lies in, and a limit too low only sends a borrower to a jumbo or a
# smaller estimate, while a limit too high would promise a conforming loan no lender can make.
COUNTY_ALIASES: dict[tuple[str, str], tuple[str, ...]] = {
    # Connecticut: since 2024 FHFA lists the nine planning regions (Census county-equivalents since 2022)
    # instead of the eight old counties zipcodes still uses. Each old county -> the regions its towns fall in.
    # Fairfield: Greater Bridgeport (977,500), Western CT (977,500), Naugatuck Valley via Shelton (851,000).
    ("CT", "FAIRFIELDCOUNTY"): (
        "GREATERBRIDGEPORTPLANNINGREGION",
        "WESTERNCONNECTICUTPLANNINGREGION",
        "NAUGATUCKVALLEYPLANNINGREGION",
    ),
    # Hartford: Capitol; Bristol and Plymouth are Naugatuck Valley; Hartland is Northwest Hills.
    ("CT", "HARTFORDCOUNTY"): (
        "CAPITOLPLANNINGREGION",
        "NAUGATUCKVALLEYPLANNINGREGION",
        "NORTHWESTHILLSPLANNINGREGION",
    ),
    # Litchfield: Northwest Hills; Bethlehem, Thomaston, Watertown, Woodbury are Naugatuck Valley;
    # Bridgewater and New Milford are Western CT.
    ("CT", "LITCHFIELDCOUNTY"): (
        "NORTHWESTHILLSPLANNINGREGION",
        "NAUGATUCKVALLEYPLANNINGREGION",
        "WESTERNCONNECTICUTPLANNINGREGION",
    ),
    ("CT", "MIDDLESEXCOUNTY"): ("LOWERCONNECTICUTRIVERVALLEYPLANNINGREGION",),
    # New Haven: South Central; Ansonia, Derby, Naugatuck, Waterbury and others are Naugatuck Valley.
    ("CT", "NEWHAVENCOUNTY"): (
        "SOUTHCENTRALCONNECTICUTPLANNINGREGION",
        "NAUGATUCKVALLEYPLANNINGREGION",
    ),
    # New London: Southeastern; Lyme and Old Lyme are Lower Connecticut River Valley.
    ("CT", "NEWLONDONCOUNTY"): (
        "SOUTHEASTERNCONNECTICUTPLANNINGREGION",
        "LOWERCONNECTICUTRIVERVALLEYPLANNINGREGION",
    ),
    # Tolland: Capitol; Union is Northeastern.
    ("CT", "TOLLANDCOUNTY"): ("CAPITOLPLANNINGREGION", "NORTHEASTERNCONNECTICUTPLANNINGREGION"),
    # Windham: Northeastern; the town of Windham is Southeastern.
    ("CT", "WINDHAMCOUNTY"): (
        "NORTHEASTERNCONNECTICUTPLANNINGREGION",
        "SOUTHEASTERNCONNECTICUTPLANNINGREGION",
    ),
    # Alaska: same areas, words in another order, or the Census name before a boundary change.
    ("AK", "CITYANDBOROUGHOFJUNEAU"): ("JUNEAUCITYANDBOROUGH",),
    ("AK", "MUNICIPALITYOFANCHORAGE"): ("ANCHORAGEMUNICIPALITY",),
    # Petersburg Borough (2013) took FIPS 02195, which FHFA still names Petersburg Census Area.
    ("AK", "PETERSBURGBOROUGH"): ("PETERSBURGCENSUSAREA",),
    # Abolished in 2008, split between Prince of Wales-Hyder and Ketchikan Gateway (ZIP 99950, Ketchikan).
    ("AK", "PRINCEOFWALESOUTERKETCHIKANBOROUGH"): (
        "PRINCEOFWALESHYDERCENSUSAREA",
        "KETCHIKANGATEWAYBOROUGH",
    ),
    # Puerto Rico: zipcodes sometimes drops "Municipio".
    ("PR", "BAYAMON"): ("BAYAMONMUNICIPIO",),
    ("PR", "CAROLINA"): ("CAROLINAMUNICIPIO",),
    ("PR", "CATANO"): ("CATANOMUNICIPIO",),
    ("PR", "SANJUAN"): ("SANJUANMUNICIPIO",),
    ("PR", "TOAALTA"): ("TOAALTAMUNICIPIO",),
    # Virginia: "James City" is James City County (ZIP 23090, Lightfoot).
    ("VA", "JAMESCITY"): ("JAMESCITYCOUNTY",),
    # Single ZIPs that zipcodes files under the neighbouring state's county across the border; mapped to
    # the county the post office actually sits in (checked against the nearest ZIPs' counties).
    ("GA", "CLEBURNECOUNTY"): ("POLKCOUNTY",),  # 30138 Esom Hill, GA
    ("ND", "MCPHERSONCOUNTY"): ("DICKEYCOUNTY",),  # 58439 Forbes, ND
    ("NE", "TODDCOUNTY"): ("CHERRYCOUNTY",),  # 69212 Crookston, NE
    ("OR", "MODOCCOUNTY"): ("LAKECOUNTY",),  # 97635 New Pine Creek, OR
    ("PA", "MONONGALIACOUNTY"): ("FAYETTECOUNTY",),  # 15439 Gans, PA
    ("VA", "MCDOWELLCOUNTY"): ("TAZEWELLCOUNTY",),  # 24619 Horsepen, VA
    ("WV", "WASHINGTONCOUNTY"): ("JEFFERSONCOUNTY",),  # 25410 Bakerton, WV
    # ZIPs with no county in zipcodes, in places where every FHFA area has the same limit, so the county
    # does not matter. Elsewhere a ZIP without a county maps to nothing and the caller uses the baseline,
    # which is the lowest limit anywhere (conservative).
    ("DC", ""): ("DISTRICTOFCOLUMBIA",),
    ("GU", ""): ("GUAM",),
    ("VI", ""): ("STCROIXISLAND", "STJOHNISLAND", "STTHOMASISLAND"),
}


@cache
def _ct_places() -> dict[str, tuple[str, str]]:
    """Connecticut place (town or postal village) -> (town, planning region), from the shipped file."""
    with CT_PLACES_FILE.open(newline="", encoding="utf-8") as f:
        return {_place_key(row["place"]): (row["town"], row["planning_region"]) for row in csv.DictReader(f)}


def _place_key(name: str) -> str:
    return " ".join((name or "").upper().split())


def ct_planning_region(city: str) -> tuple[str, str] | None:
    """The (town, planning region) of a Connecticut ZIP code's place, e.g. "Cos Cob" -> ("Greenwich",
    "Western Connecticut Planning Region"); None for a place the shipped map does not name."""
    return _ct_places().get(_place_key(city))


def limit_keys(state: str, county: str, city: str = "") -> list[str]:
    """The FHFA CountyName keys a zipcodes (state, county) and the ZIP's place map to, in the same state.

    Normally one key. In Connecticut, FHFA lists planning regions: the place leads to its town and the town
    to its region (shipped map). A place the map lacks gets every region of its old county: use the lowest
    of their limits. An empty list means the county is unknown (e.g. a PO-box ZIP with no county): use the
    baseline limit.
    """
    state = (state or "").strip().upper()
    if state == "CT" and city:
        found = ct_planning_region(city)
        if found is not None:
            return [county_key(state, found[1])]
    key = county_key(state, county)
    alias = COUNTY_ALIASES.get((state, key))
    if alias is not None:
        return list(alias)
    return [key] if key else []


@cache
def county_display_names() -> dict[tuple[str, str], str]:
    """(state, FHFA county key) -> the county's name as people write it ("Travis County", "Municipality of
    Anchorage", "Western Connecticut Planning Region"): FHFA's file spells names without spaces."""
    names: dict[tuple[str, str], str] = {}
    for _, state, county, *_ in zip_index().values():
        keys = limit_keys(state, county)
        if len(keys) == 1 and county:
            names.setdefault((state, keys[0]), county)
    for _, region in _ct_places().values():
        names[("CT", county_key("CT", region))] = region
    return names


def distance_miles(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in miles (haversine). Geography only, so float is fine."""
    phi1, phi2 = math.radians(float(lat1)), math.radians(float(lat2))
    dphi = phi2 - phi1
    dlambda = math.radians(float(lon2) - float(lon1))
    a = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlambda / 2) ** 2
    return 2 * EARTH_RADIUS_MILES * math.asin(min(1.0, math.sqrt(a)))


def zips_within(center_zip: str, miles: float) -> list[str]:
    """Every ZIP whose centre lies within `miles` of the centre ZIP (including itself), sorted.

    Used when a subscription is saved, to turn a radius into ZIP rows that matching looks up on an index.
    """
    center = lookup_zip(center_zip)
    if center is None or center.lat is None or center.long is None:
        return []
    lat0, lon0 = float(center.lat), float(center.long)
    # A cheap bounding box first; the exact distance only for ZIPs inside it.
    dlat = miles / 69.0
    dlon = miles / max(1e-6, 69.0 * math.cos(math.radians(lat0)))
    found = {center.zip_code}
    for zip_code, (_, _, _, lat_text, lon_text, _) in zip_index().items():
        try:
            lat, lon = float(lat_text), float(lon_text)
        except (TypeError, ValueError):
            continue
        if (
            abs(lat - lat0) <= dlat
            and abs(lon - lon0) <= dlon
            and distance_miles(lat0, lon0, lat, lon) <= miles
        ):
            found.add(zip_code)
    return sorted(found)


# The mainland's widest span: where nothing better is known, a time is inside quiet hours unless it is
# allowed on both coasts (and Hawaii and Alaska, rare for an unknown ZIP, are no worse off than Pacific).
UNKNOWN_TIME_ZONES: tuple[str, ...] = ("America/New_York", "America/Los_Angeles")


def _valid_zone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return "/" in name  # zipcodes has a few place names in the column ("Napakiak"), not zones


@cache
def _state_time_zones() -> dict[str, str]:
    """Each state's commonest time zone, for the few ZIPs zipcodes gives none (or a bad one) to."""
    counts: dict[str, dict[str, int]] = {}
    for _, state, _, _, _, zone in zip_index().values():
        if zone and _valid_zone(zone):
            by_zone = counts.setdefault(state, {})
            by_zone[zone] = by_zone.get(zone, 0) + 1
    return {state: max(zones, key=lambda z: zones[z]) for state, zones in counts.items()}


def zip_time_zones(zip_code: str, state: str = "") -> tuple[str, ...]:
    """The IANA time zone(s) a consumer at this ZIP lives by, from zipcodes' shipped table: one zone for a
    ZIP it knows; else the state's commonest; else both coasts' (UNKNOWN_TIME_ZONES), so that a caller
    keeping to local hours keeps to them wherever the consumer is."""
    info = lookup_zip(zip_code)
    if info is not None and info.timezone and _valid_zone(info.timezone):
        return (info.timezone,)
    zone = _state_time_zones().get((info.state if info else "") or state)
    return (zone,) if zone else UNKNOWN_TIME_ZONES
