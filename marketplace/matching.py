"""The one matching spec: what of a lead a subscription's filters read, and each filter, declared once.

The sale's matching SQL (marketplace.services.subscriptions_matching) and the forecast's ORM filter
(marketplace.analytics.subscription_forecast) are both generated from SUBSCRIPTION_TERMS, and the delivery
schedule (checked at sale time, in the lender's zone) and the forecast's schedule filter from SCHEDULE; a
test on a randomized market holds the two sides to the same answer (marketplace/tests/test_matching.py).

A new loan purpose or credit range is a new choice (leads.choices, leads.qualification.CREDIT_RANGES): the
purposes are a list on the subscription and credit a minimum score, so neither needs a column, a migration
or an edit here. A new filter is one line below plus its column on Subscription.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from django.db.models import Q
from django.db.models.functions import Coalesce

from core.terms import (
    AtLeast,
    AtMost,
    Candidate,
    OneOf,
    RowsInclude,
    WeeklyWindow,
    driving,
    field_candidate,
    predicates,
    q_all,
    values_cte,
)
from leads.models import Lead, credit_score_low_expression
from lenders.models import LenderLicense, Subscription, SubscriptionState, SubscriptionZip


def _loan(lead: Lead) -> Any:
    # The loan the consumer qualifies for (the request, or the most a product lends when that is less);
    # leads qualified before it was stored fall back to the request.
    return lead.requested_loan if lead.qualified_loan is None else lead.qualified_loan


STATE = field_candidate("state", "varchar")
ZIP = field_candidate("zip_code", "varchar")
LOAN = Candidate("loan", "numeric", _loan, lambda: Coalesce("qualified_loan", "requested_loan"))
LTV = field_candidate("ltv", "numeric")
DTI = field_candidate("dti", "numeric")
PURPOSE = field_candidate("purpose", "varchar")
# Credit: the exact score when a partner gave one, else the lowest score of the lead's range.
CREDIT = Candidate(
    "credit_score_low", "integer", lambda lead: lead.credit_score_low, credit_score_low_expression
)

LEAD_VALUES = (STATE, ZIP, LOAN, LTV, DTI, PURPOSE, CREDIT)

SUBSCRIPTION_TERMS = (
    # The states the order covers: the term the matcher starts from, through the (state, subscription) index.
    RowsInclude("states", STATE, SubscriptionState, column="state", owner="subscription_id", drives=True),
    # The lender must hold a licence in the property's state (a lapsed licence stops the order there).
    RowsInclude("licensed_states", STATE, LenderLicense, column="state", owner="lender_id", via="lender_id"),
    # Listed ZIPs and those within the radius (expanded to rows when the order is saved).
    RowsInclude(
        "zips", ZIP, SubscriptionZip, column="zip_code", owner="subscription_id", optional="has_zip_filter"
    ),
    AtLeast("min_loan_amount", LOAN),
    AtMost("max_loan_amount", LOAN),
    AtMost("max_ltv", LTV),
    AtMost("max_dti", DTI),
    # The purposes listed (LoanPurpose values; lenders.services refuses any other).
    OneOf("purposes", PURPOSE),
    # A lead matches when its lowest possible score reaches the minimum: 620 takes 620-639 and above.
    AtLeast("min_credit_score", CREDIT),
)

SCHEDULE = WeeklyWindow(
    days="schedule_days", start="schedule_start", end="schedule_end", moment="qualified_at"
)


@cache
def matching_sql(rows: int) -> str:
    """The matching query for a batch of `rows` leads (see subscriptions_matching): every live subscription
    whose terms the lead meets, with the funds pre-check, ranked by price within each lead. Built once per
    batch size; only declared names are formatted in, lead values and the rest are params."""
    return f"""
WITH {values_cte(LEAD_VALUES, rows, key="lead_id")},
m AS (
  SELECT l.lead_id, s.id, s.lender_id, s.exclusive, s.price, lr.last_served_at,
         RANK() OVER (PARTITION BY l.lead_id ORDER BY s.price DESC) AS price_rank,
         COUNT(*) OVER (PARTITION BY l.lead_id) AS matched
  FROM l
  {driving(SUBSCRIPTION_TERMS).join(Subscription._meta.db_table)}
  JOIN lenders_lender lr ON lr.id = s.lender_id
  JOIN billing_account a ON a.lender_id = s.lender_id
  WHERE s.is_active AND lr.status = %s
    AND {predicates(SUBSCRIPTION_TERMS)}
    AND s.price <= a.balance + a.credit_limit
)
SELECT lead_id, id, lender_id, exclusive, price, last_served_at, matched FROM m
WHERE price_rank <= %s
ORDER BY lead_id, price DESC, last_served_at ASC NULLS FIRST, lender_id, id
"""  # noqa: S608  # nosec B608


def leads_meeting(terms: dict[str, Any]) -> Q:
    """The leads a subscription with these terms would match, as a Q over Lead (the forecast's filter).
    `terms` names each term's value as SUBSCRIPTION_TERMS does (states, licensed_states, zips, bounds,
    purposes, min_credit_score); a bound left out or None sets no bound."""
    return q_all(SUBSCRIPTION_TERMS, terms)


def in_schedule(sub: Subscription, local_now: Any) -> bool:
    """Whether the subscription takes leads at this moment of the lender's local time."""
    return SCHEDULE.holds(sub, local_now)


def subscription_terms(sub: Subscription) -> dict[str, Any]:
    """A saved subscription's terms as leads_meeting reads them (the states, the lender's licences and the
    ZIP rows included), so a subscription can be asked "which leads would you match?" in the ORM."""
    terms: dict[str, Any] = {
        t.key: getattr(sub, t.key) for t in SUBSCRIPTION_TERMS if not isinstance(t, RowsInclude)
    }
    terms["states"] = SubscriptionState.objects.filter(subscription=sub).values("state")
    terms["licensed_states"] = LenderLicense.objects.filter(lender_id=sub.lender_id).values("state")
    terms["zips"] = (
        SubscriptionZip.objects.filter(subscription=sub).values("zip_code") if sub.has_zip_filter else None
    )
    for key in (SCHEDULE.days, SCHEDULE.start, SCHEDULE.end):
        terms[key] = getattr(sub, key)
    return terms
