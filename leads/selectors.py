"""Reads about leads shared by the pipeline, pages and API."""

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.db.models import Q
from django.db.models.functions import Upper
from django.utils import timezone

from core import staffconfig

from . import geo
from .choices import LeadStatus
from .models import CountyLoanLimit, GuidelineSet, Lead, StateHousingCost
from .qualification import DEFAULT_GUIDELINES, Guidelines, HousingCosts, LoanLimits
from .qualification.guidelines import BASELINE_CONFORMING_LIMITS
from .reference import UNIT_FIELDS


def guidelines_current() -> Guidelines:
    """The newest active guideline set; the built-in defaults when staff have saved none.
    Read through a short per-process cache: it is asked for on every lead."""
    return staffconfig.cached("guidelines", _guidelines_from_db)


def _guidelines_from_db() -> Guidelines:
    row = GuidelineSet.objects.filter(is_active=True).order_by("-created_at").first()
    if row is None:
        return DEFAULT_GUIDELINES
    return Guidelines.from_dict({**row.rules, "version": row.version})


Place = tuple[str, str, str, int]  # state, county (as zipcodes names it), city (the ZIP's place), units


def loan_limits_for(*, state: str, county: str, city: str = "", units: int = 1) -> LoanLimits:
    """The county's limits for a property of `units` units: FHFA's imported (shipped) conforming limit, or
    the national baseline; HUD's FHA limit where imported, else one derived from FHFA's (the FHA floor where
    the conforming limit is statutory). In Connecticut the ZIP's place picks the planning region."""
    place = (state, county, city, units)
    return loan_limits_for_many(places={place})[place]


def loan_limits_for_many(*, places: set[Place]) -> dict[Place, LoanLimits]:
    """loan_limits_for of every (state, county, city, units) of a batch of leads, in one query."""
    keys = {place: geo.limit_keys(place[0], place[1], place[2]) for place in places}
    wanted = {key for found in keys.values() for key in found}
    rows: dict[tuple[str, str], CountyLoanLimit] = {}
    if wanted:
        for row in CountyLoanLimit.objects.filter(state__in={p[0] for p in places}, county_key__in=wanted):
            seen = rows.get((row.state, row.county_key))
            if seen is None or row.one_unit_limit < seen.one_unit_limit:
                rows[(row.state, row.county_key)] = row
    limits = {}
    for place, county_keys in keys.items():
        state, _, _, units = place
        field = UNIT_FIELDS[units - 1]
        # A county that spans several FHFA areas (a Connecticut place the map lacks) takes the lowest:
        # conservative. A file without 2-4 unit columns leaves those to the baseline's ratios.
        found = [rows[(state, k)] for k in county_keys if (state, k) in rows]
        county = min(found, key=lambda r: _unit_limit(r, field), default=None)
        if county is None:
            limits[place] = LoanLimits.baseline(units)
            continue
        where = f"{county.county_name or county.county_key}, {county.state}" + (
            f", {units} units" if units > 1 else ""
        )
        hud = getattr(county, f"fha_{field}")
        limits[place] = LoanLimits.for_county(
            _unit_limit(county, field),
            source=f"FHFA {county.year} {where}",
            units=units,
            state=state,
            hud_fha_limit=hud,
            hud_source=f"HUD {county.fha_year} FHA limit, {where}" if hud is not None else "",
        )
    return limits


def _unit_limit(row: CountyLoanLimit, field: str) -> Decimal:
    value = getattr(row, field)
    if value is None:  # an FHFA file with one-unit limits only: scale by the baseline's 1-to-N ratio
        i = UNIT_FIELDS.index(field)
        value = (row.one_unit_limit * BASELINE_CONFORMING_LIMITS[i] / BASELINE_CONFORMING_LIMITS[0]).quantize(
            row.one_unit_limit
        )
    return value


def housing_costs_for_many(*, states: set[str], guidelines: Guidelines) -> dict[str, HousingCosts]:
    """Each state's property-tax and insurance rates from the staff-edited table (shipped data), or the
    guideline set's national figures for a state or territory it lacks. The table (51 rows) is read through
    the same short per-process cache as the guidelines: it is asked for on every batch."""
    table = staffconfig.cached("housing_costs", _housing_costs_from_db)
    national = HousingCosts(guidelines.property_tax_rate, guidelines.insurance_rate, "national")
    return {state: table.get(state, national) for state in states}


def _housing_costs_from_db() -> dict[str, HousingCosts]:
    return {
        row.state: HousingCosts(row.property_tax_rate, row.insurance_rate, f"{row.state}: {row.source}")
        for row in StateHousingCost.objects.all()
    }


def leads_earlier_contacts(*, leads: list[Lead], window_days: int) -> list[tuple[int, str, str, datetime]]:
    """(id, e-mail upper-cased, phone, created) of every lead, up to the newest of `leads`, sharing an e-mail
    or phone with one of them inside the window: the candidates that make a lead a duplicate. One query on
    the consumer e-mail (upper) and phone indexes; rejected and duplicate leads never count as the original.
    """
    since = min(lead.created_at for lead in leads) - timedelta(days=window_days)
    return list(
        Lead.objects.annotate(email_upper=Upper("consumer__email"))
        .filter(
            Q(email_upper__in={lead.consumer.email.upper() for lead in leads})
            | Q(consumer__phone__in={lead.consumer.phone for lead in leads}),
            created_at__gte=since,
            pk__lte=max(lead.pk for lead in leads),
        )
        .exclude(status__in=[LeadStatus.REJECTED, LeadStatus.DUPLICATE])
        .order_by("pk")
        .values_list("pk", "email_upper", "consumer__phone", "created_at")
    )


def lead_get_public(*, public_id) -> Lead | None:
    return Lead.objects.filter(public_id=public_id).first()


def leads_stuck(*, older_than_seconds: int = 120):
    return Lead.objects.stuck(older_than=timezone.now() - timedelta(seconds=older_than_seconds))


@dataclass(frozen=True)
class LeadContact:
    """Who will contact a consumer: a buyer, and its officer (with their phone) once one is assigned."""

    lender: str
    officer: str
    phone: str


def lead_contacts(*, lead: Lead) -> list[LeadContact]:
    """The buyers of a sold lead, in the order they bought it; one query. Read through the lead's reverse
    relations (deliveries, their lender and officer), which this app may follow without importing the apps
    above it."""
    contacts = []
    for d in lead.deliveries.select_related("lender", "assigned_to__membership").order_by("pk"):
        officer, name, phone = d.assigned_to, "", ""
        member = getattr(officer, "membership", None) if officer is not None else None
        # Only an active officer who still works for this buyer is named (a reassigned or departed one not).
        if (
            officer is not None
            and member is not None
            and officer.is_active
            and member.is_active
            and member.lender_id == d.lender_id
        ):
            name, phone = officer.get_full_name() or officer.get_username(), member.phone_display
        contacts.append(LeadContact(lender=d.lender.name, officer=name, phone=phone))
    return contacts


def lead_buyers_at_most(*, lead: Lead, sold: int) -> int:
    """How many lenders may get this request at most: one when it was sold exclusively, else the market's
    N shared buyers (staff set it; the market provides it, marketplace.apps)."""
    if lead.deliveries.filter(exclusive=True).exists():
        return 1
    return max(sold, int(staffconfig.value("shared_max_buyers")))
