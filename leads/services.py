"""Actions on leads: submit (from the form or the API) and qualify (in a Celery task)."""

import logging
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone

from marketplace.tasking import enqueue_on_commit

from . import geo
from .choices import LeadStatus
from .models import ConsentRecord, Consumer, Lead
from .qualification import Applicant, evaluate
from .selectors import guidelines_current, lead_find_earlier_duplicate, loan_limits_for

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
    "credit_band",
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
    with transaction.atomic():
        consumer = Consumer.objects.create(**{f: data[f] for f in CONSUMER_FIELDS})
        lead = Lead.objects.create(
            consumer=consumer,
            city=info.city,
            state=info.state,
            county=info.county,
            status=LeadStatus.REJECTED if rejected_reason else LeadStatus.RECEIVED,
            status_reason=rejected_reason,
            **{f: data.get(f) for f in LEAD_FIELDS if data.get(f) is not None},
        )
        ConsentRecord.objects.create(
            lead=lead,
            text=consent_text,
            ip_address=ip_address,
            user_agent=user_agent[:500],
            page_url=page_url[:500],
        )
        if not rejected_reason:
            from .tasks import qualify_lead

            enqueue_on_commit(qualify_lead, lead.pk)
    logger.info("lead %s received (%s)", lead.pk, lead.status)
    return lead


def _applicant(lead: Lead) -> Applicant:
    return Applicant(
        purpose=lead.purpose,
        credit_band=lead.credit_band,
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


def lead_qualify(*, lead_id: int, queue_distribution: bool = True) -> Lead | None:
    """Dedupe and run the engine. Idempotent: a lead already past `received` is left as it is.

    A qualified lead's sale is queued on commit, unless the caller (the qualify task) sells it itself.
    """
    from marketplace import staffconfig

    with transaction.atomic():
        lead = Lead.objects.select_for_update().select_related("consumer").filter(pk=lead_id).first()
        if lead is None or lead.status != LeadStatus.RECEIVED:
            return lead
        window = staffconfig.market_settings().duplicate_window_days
        earlier = lead_find_earlier_duplicate(lead=lead, window_days=window)
        if earlier is not None:
            lead.status = LeadStatus.DUPLICATE
            lead.status_reason = f"Same e-mail or phone as lead #{earlier.pk} within {window} days"
            lead.save(update_fields=["status", "status_reason", "updated_at"])
            logger.info("lead %s duplicate of %s", lead.pk, earlier.pk)
            return lead

        limits = loan_limits_for(state=lead.state, county=lead.county)
        result = evaluate(_applicant(lead), guidelines=guidelines_current(), limits=limits)
        lead.guideline_version = result.guidelines_version
        lead.loan_limit = limits.conforming_limit
        lead.loan_limit_source = limits.source
        lead.requested_loan = result.requested_loan
        lead.estimate = result.estimate
        lead.ltv = result.ltv
        lead.dti = result.dti
        lead.binding_constraint = result.binding_constraint
        lead.products = list(result.products)
        lead.qualification = result.to_dict()
        lead.qualified_at = timezone.now()
        lead.status = LeadStatus.QUALIFIED if result.qualified else LeadStatus.NOT_QUALIFIED
        lead.save()
        if result.qualified and queue_distribution:
            from marketplace.tasks import distribute_lead

            enqueue_on_commit(distribute_lead, lead.pk)
    logger.info("lead %s %s", lead.pk, lead.status)
    return lead
