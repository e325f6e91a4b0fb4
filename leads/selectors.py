"""Reads about leads shared by the pipeline, pages and API."""

from datetime import datetime, timedelta

from django.db.models import Q
from django.db.models.functions import Upper
from django.utils import timezone

from . import geo
from .choices import LeadStatus
from .models import CountyLoanLimit, GuidelineSet, Lead
from .qualification import DEFAULT_GUIDELINES, Guidelines, LoanLimits


def guidelines_current() -> Guidelines:
    """The newest active guideline set; the built-in defaults when staff have saved none.
    Read through a short per-process cache: it is asked for on every lead."""
    from marketplace import staffconfig

    return staffconfig.cached("guidelines", _guidelines_from_db)


def _guidelines_from_db() -> Guidelines:
    row = GuidelineSet.objects.filter(is_active=True).order_by("-created_at").first()
    if row is None:
        return DEFAULT_GUIDELINES
    return Guidelines.from_dict({**row.rules, "version": row.version})


def loan_limits_for(*, state: str, county: str) -> LoanLimits:
    """The county's conforming limit from FHFA's imported file, or the national baseline."""
    return loan_limits_for_many(counties={(state, county)})[(state, county)]


def loan_limits_for_many(*, counties: set[tuple[str, str]]) -> dict[tuple[str, str], LoanLimits]:
    """loan_limits_for of every (state, county) of a batch of leads, in one query."""
    keys = {pair: geo.limit_keys(*pair) for pair in counties}
    wanted = {key for found in keys.values() for key in found}
    rows: dict[tuple[str, str], CountyLoanLimit] = {}
    if wanted:
        for row in CountyLoanLimit.objects.filter(state__in={s for s, _ in counties}, county_key__in=wanted):
            seen = rows.get((row.state, row.county_key))
            if seen is None or row.one_unit_limit < seen.one_unit_limit:
                rows[(row.state, row.county_key)] = row
    limits = {}
    for (state, county), county_keys in keys.items():
        # A county that spans several FHFA areas (Connecticut's old counties) takes the lowest: conservative.
        found = [rows[(state, k)] for k in county_keys if (state, k) in rows]
        row = min(found, key=lambda r: r.one_unit_limit, default=None)
        limits[(state, county)] = (
            LoanLimits.baseline()
            if row is None
            else LoanLimits.for_county(
                row.one_unit_limit, source=f"FHFA {row.year} {row.county_key} {row.state}"
            )
        )
    return limits


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
