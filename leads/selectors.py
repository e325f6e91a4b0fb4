"""Reads about leads shared by the pipeline, pages and API."""

from datetime import timedelta

from django.db.models import Q
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
    keys = geo.limit_keys(state, county)
    # A county that spans several FHFA areas (Connecticut's old counties) takes the lowest: conservative.
    row = (
        CountyLoanLimit.objects.filter(state=state, county_key__in=keys).order_by("one_unit_limit").first()
        if keys
        else None
    )
    if row is None:
        return LoanLimits.baseline()
    return LoanLimits.for_county(row.one_unit_limit, source=f"FHFA {row.year} {row.county_key} {row.state}")


def lead_find_earlier_duplicate(*, lead: Lead, window_days: int) -> Lead | None:
    """An earlier lead from the same e-mail or phone inside the window, which makes this one a duplicate."""
    since = lead.created_at - timedelta(days=window_days)
    return (
        Lead.objects.filter(
            Q(consumer__email__iexact=lead.consumer.email) | Q(consumer__phone=lead.consumer.phone),
            created_at__gte=since,
            pk__lt=lead.pk,
        )
        .exclude(status__in=[LeadStatus.REJECTED, LeadStatus.DUPLICATE])
        .only("pk")
        .first()
    )


def lead_get_public(*, public_id) -> Lead | None:
    return Lead.objects.filter(public_id=public_id).first()


def leads_stuck(*, older_than_seconds: int = 120):
    return Lead.objects.stuck(older_than=timezone.now() - timedelta(seconds=older_than_seconds))
