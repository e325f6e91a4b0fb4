"""Actions on leads: submit (from the form or the API) and qualify (in a Celery task)."""

import logging
from collections import defaultdict
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone

from marketplace.bulk import bulk_set, insert_chain
from marketplace.tasking import enqueue_on_commit

from . import geo
from .choices import LeadStatus
from .models import ConsentRecord, Consumer, Lead
from .qualification import Applicant, credit_range_for_score, evaluate
from .selectors import guidelines_current, leads_earlier_contacts, loan_limits_for_many

logger = logging.getLogger(__name__)

LEAD_FIELDS = (
    "purpose",
    "zip_code",
    "property_type",
    "occupancy",
    "property_value",
    "purchase_price",
    "down_payment",
    "mortgage_balance",
    "cash_out",
    "desired_loan_amount",
    "credit_range",
    "annual_income",
    "monthly_debts",
    "military_service",
    "first_time_buyer",
    "timeline",
)
CONSUMER_FIELDS = ("first_name", "last_name", "email", "phone")


class LeadInputError(ValueError):
    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


def lead_submit(
    *,
    data: dict[str, Any],
    consent_text: str,
    ip_address: str | None,
    user_agent: str,
    page_url: str,
    rejected_reason: str = "",
) -> Lead:
    """Store a consumer's request and its consent, then queue qualification once the row is committed.

    `data` is already validated (leads.forms.LeadForm). The lead is saved before any task runs, so a
    worker or broker outage loses nothing: the sweeper pushes on leads left in `received`.
    A non-empty `rejected_reason` (a tripped honeypot) stores the lead as rejected and queues nothing.
    """
    info = geo.lookup_zip(data["zip_code"])
    if info is None:
        raise LeadInputError({"zip_code": "We could not find this ZIP code."})
    if data.get("credit_score") is not None:
        # An exact score decides the range; a range given beside it must agree (the API checks it first).
        data = {**data, "credit_range": credit_range_for_score(data["credit_score"])}
    consumer = Consumer(**{f: data[f] for f in CONSUMER_FIELDS})
    lead = Lead(
        city=info.city,
        state=info.state,
        county=info.county,
        status=LeadStatus.REJECTED if rejected_reason else LeadStatus.RECEIVED,
        status_reason=rejected_reason,
        credit_score=data.get("credit_score"),  # partners only (the form asks for a range)
        **{f: data.get(f) for f in LEAD_FIELDS if data.get(f) is not None},
    )
    consent = ConsentRecord(
        text=consent_text,
        ip_address=ip_address,
        user_agent=user_agent[:500],
        page_url=page_url[:500],
    )
    consent.seal()
    # One statement, atomic by itself: the consumer, the lead and its consent are stored together or not at
    # all, in one round trip (this is most of an intake request's work).
    insert_chain([consumer, lead, consent], links=["consumer", "lead"])
    if not rejected_reason:
        from .tasks import qualify_soon

        # Inside a caller's transaction (the partner API) this waits for its commit; otherwise it runs now.
        transaction.on_commit(lambda: qualify_soon(lead.pk))
    logger.info("lead %s received (%s)", lead.pk, lead.status)
    return lead


def _applicant(lead: Lead) -> Applicant:
    return Applicant(
        purpose=lead.purpose,
        credit_range=lead.credit_range,
        credit_score=lead.credit_score,
        annual_income=lead.annual_income,
        monthly_debts=lead.monthly_debts,
        property_value=lead.property_value,
        property_type=lead.property_type,
        occupancy=lead.occupancy,
        purchase_price=lead.purchase_price,
        down_payment=lead.down_payment,
        mortgage_balance=lead.mortgage_balance,
        cash_out=lead.cash_out or Decimal("0"),
        desired_loan_amount=lead.desired_loan_amount,
        military_service=lead.military_service,
        first_time_buyer=lead.first_time_buyer,
        state=lead.state,
    )


QUALIFICATION_FIELDS = (
    "guideline_version",
    "loan_limit",
    "loan_limit_source",
    "requested_loan",
    "estimate",
    "qualified_loan",
    "ltv",
    "dti",
    "binding_constraint",
    "products",
    "qualification",
    "qualified_at",
    "status",
    "status_reason",
    "updated_at",
)


def leads_qualify(*, lead_ids: list[int], claim: int = 0, queue_distribution: bool = True) -> list[Lead]:
    """Dedupe and run the engine on a batch of received leads, in one transaction; returns the leads it
    qualified or marked duplicate / not qualified.

    Idempotent: a lead already past `received`, or locked by another worker that is qualifying it, is left
    alone. `claim` takes up to that many more leads waiting in `received` (oldest first, skipping locked
    ones), so under load one task clears the queue's backlog instead of paying a round trip per lead.
    A qualified lead's sale is queued on commit, unless the caller (the qualify task) sells the batch itself.
    """
    from marketplace import staffconfig

    now = timezone.now()
    window = staffconfig.market_settings().duplicate_window_days
    guidelines = guidelines_current()
    waiting = Lead.objects.select_for_update(skip_locked=True, of=("self",)).filter(
        status=LeadStatus.RECEIVED
    )
    with transaction.atomic():
        leads = list(waiting.filter(pk__in=lead_ids).select_related("consumer").order_by("pk"))
        if claim > 0:
            leads += (
                waiting.exclude(pk__in=[lead.pk for lead in leads])
                .select_related("consumer")
                .order_by("pk")[:claim]
            )
            leads.sort(key=lambda lead: lead.pk)
        if not leads:
            return []
        # The earlier contacts by e-mail and by phone, each list in id order: a lead looks only at its own.
        by_email: dict[str, list[tuple[int, datetime]]] = defaultdict(list)
        by_phone: dict[str, list[tuple[int, datetime]]] = defaultdict(list)
        for pk, email, phone, created_at in leads_earlier_contacts(leads=leads, window_days=window):
            by_email[email].append((pk, created_at))
            by_phone[phone].append((pk, created_at))
        duplicates: set[int] = set()
        limits_by_county = loan_limits_for_many(counties={(lead.state, lead.county) for lead in leads})
        for lead in leads:
            lead.updated_at = now
            since = lead.created_at - timedelta(days=window)
            first = min(
                (
                    pk
                    for pk, created_at in (
                        *by_email.get(lead.consumer.email.upper(), ()),
                        *by_phone.get(lead.consumer.phone, ()),
                    )
                    if pk < lead.pk and pk not in duplicates and created_at >= since
                ),
                default=None,
            )
            if first is not None:
                duplicates.add(lead.pk)
                lead.status = LeadStatus.DUPLICATE
                lead.status_reason = f"Same e-mail or phone as lead #{first} within {window} days"
                logger.info("lead %s duplicate of %s", lead.pk, first)
                continue

            limits = limits_by_county[(lead.state, lead.county)]
            result = evaluate(_applicant(lead), guidelines=guidelines, limits=limits)
            lead.guideline_version = result.guidelines_version
            lead.loan_limit = limits.conforming_limit
            lead.loan_limit_source = limits.source
            lead.requested_loan = result.requested_loan
            lead.estimate = result.estimate
            lead.qualified_loan = result.qualified_loan
            lead.ltv = result.ltv
            lead.dti = result.dti
            lead.binding_constraint = result.binding_constraint
            lead.products = list(result.products)
            lead.qualification = result.to_dict()
            lead.qualified_at = now
            lead.status = LeadStatus.QUALIFIED if result.qualified else LeadStatus.NOT_QUALIFIED
            logger.info("lead %s %s", lead.pk, lead.status)
        bulk_set(leads, QUALIFICATION_FIELDS)
        if queue_distribution:
            from marketplace.tasks import distribute_lead

            for lead in leads:
                if lead.status == LeadStatus.QUALIFIED:
                    enqueue_on_commit(distribute_lead, lead.pk)
    return leads
