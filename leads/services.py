"""Actions on leads: submit (from the form or the API), qualify (in a Celery task), hold and release."""

import logging
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db import connections, router, transaction
from django.utils import timezone

from core import staffconfig
from core.batching import failure_summary, is_transient, one_by_one
from core.bulk import bulk_set, insert_chain

from . import geo
from .choices import LEAD_MOVES, LeadStatus, lead_statuses_to
from .models import ConsentRecord, Consumer, CountyLoanLimit, GuidelineSet, Lead, StateHousingCost
from .qualification import Applicant, Guidelines, Qualification, credit_range_for_score, evaluate
from .reference import UNIT_FIELDS
from .selectors import (
    guidelines_current,
    housing_costs_for_many,
    leads_earlier_contacts,
    loan_limits_for_many,
)
from .signals import guideline_set_activated, lead_waiting

logger = logging.getLogger(__name__)

LEAD_FIELDS = (
    "purpose",
    "zip_code",
    "property_type",
    "units",
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


# --- status moves: every write of Lead.status goes through these ----------------------------------------


class IllegalLeadMove(ValidationError):
    """A move LEAD_MOVES does not allow: a bug in the caller, or a lead another worker moved meanwhile."""


def _label(status: str) -> str:
    return LeadStatus(status).label if status in LeadStatus.values else repr(status)


def lead_move_check(*, from_: str, to: str) -> None:
    """Raise IllegalLeadMove unless LEAD_MOVES allows a lead in `from_` to move to `to`."""
    if to not in LEAD_MOVES.get(from_, ()):
        raise IllegalLeadMove(f"A lead cannot move from {_label(from_)} to {_label(to)}.")


def lead_set_status(*, lead: Lead, to: str, reason: str | None = None, save: bool = True) -> bool:
    """Move one lead to `to`, refusing a move LEAD_MOVES does not allow; `reason` replaces status_reason.

    With `save` the row is written by a conditional UPDATE (it moves only if it is still in the status
    `lead` says), and the result says whether it moved. Without it the move is checked and made on `lead`
    only, for a batch that holds its leads' rows locked and writes them in one statement (bulk_set) with the
    rest of its work, so the hot path pays no query per lead."""
    lead_move_check(from_=lead.status, to=to)
    if save:
        now = timezone.now()
        changes: dict[str, Any] = {"status": to, "updated_at": now}
        if reason is not None:
            changes["status_reason"] = reason[:200]
        if not Lead.objects.filter(pk=lead.pk, status=lead.status).update(**changes):
            return False
        lead.updated_at = now
    lead.status = to
    if reason is not None:
        lead.status_reason = reason[:200]
    return True


def leads_set_status(
    *, lead_ids: list[int], to: str, from_: Iterable[str] | None = None, reason: str | None = None
) -> list[int]:
    """Move the leads among `lead_ids` that are in one of the statuses `from_` (by default every status
    LEAD_MOVES lets move to `to`) to `to`, in one conditional UPDATE; returns the ids it moved, in id order.
    A lead in another status is left alone (another worker took it meanwhile). Refuses, before writing
    anything, a `from_` status that may not move to `to`."""
    sources = sorted(lead_statuses_to(to) if from_ is None else set(from_))
    for source in sources:
        lead_move_check(from_=source, to=to)
    if not lead_ids or not sources:
        return []
    connection = connections[router.db_for_write(Lead)]
    qn = connection.ops.quote_name
    assign = [f"{qn('status')} = %s", f"{qn('updated_at')} = %s"]
    params: list[Any] = [to, Lead._meta.get_field("updated_at").get_db_prep_value(timezone.now(), connection)]
    if reason is not None:
        assign.append(f"{qn('status_reason')} = %s")
        params.append(reason[:200])
    # One statement that checks and moves (PostgreSQL and SQLite 3.35+ both return the rows it changed);
    # only our own quoted names are formatted in, every value is a parameter.
    pk_column, status_column = Lead._meta.pk.column, Lead._meta.get_field("status").column
    assert pk_column and status_column  # concrete fields: always a column (the stubs allow None)
    template = "UPDATE {table} SET {assign} WHERE {pk} IN ({ids}) AND {status} IN ({sources}) RETURNING {pk}"
    sql = template.format(
        table=qn(Lead._meta.db_table),
        assign=", ".join(assign),
        pk=qn(pk_column),
        ids=", ".join(["%s"] * len(lead_ids)),
        status=qn(status_column),
        sources=", ".join(["%s"] * len(sources)),
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, *lead_ids, *sources])
        return sorted(row[0] for row in cursor.fetchall())


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
        # A lead's first status (choices.LEAD_INITIAL); every later one is a move (lead_set_status).
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
    # One statement, atomic by itself: the consumer, the lead and its consent are stored together or not at
    # all, in one round trip (three ORM saves in a transaction cost five, and about 1 ms more CPU each lead).
    # It skips save() but not the consent's own rules: ConsentRecord.prepare_insert() seals the text.
    insert_chain([consumer, lead, consent], links=["consumer", "lead"])
    if not rejected_reason:
        # Inside a caller's transaction (the partner API) this waits for its commit; otherwise it runs now.
        # The market subscribes (marketplace.apps) and queues qualification.
        transaction.on_commit(
            lambda: lead_waiting.send(sender=Lead, lead_id=lead.pk, status=LeadStatus.RECEIVED)
        )
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


def guideline_set_save(*, guideline_set: GuidelineSet) -> GuidelineSet:
    """Staff save a guideline set (admin). Saved active, the apps above hear `guideline_set_activated` once
    it is committed: outreach re-runs the open leads' numbers against it."""
    with transaction.atomic():
        guideline_set.save()
        if guideline_set.is_active:
            pk = guideline_set.pk
            transaction.on_commit(
                lambda: guideline_set_activated.send(sender=GuidelineSet, guideline_set_id=pk)
            )
    staffconfig.clear()  # new leads qualify against it now, not after the cache's TTL
    return guideline_set


def leads_evaluate(
    *, leads: list[Lead], guidelines: Guidelines
) -> tuple[dict[int, Qualification], dict[int, str]]:
    """The engine's answer for each lead under `guidelines`, stored nowhere (a read): re-qualification
    compares it with what the lead was sold with. Limits and housing costs are read once for the batch. A
    lead the engine cannot evaluate is set aside: (results by lead id, failures by lead id)."""
    limits_by_place = loan_limits_for_many(
        places={(lead.state, lead.county, lead.city, lead.units) for lead in leads}
    )
    costs_by_state = housing_costs_for_many(states={lead.state for lead in leads}, guidelines=guidelines)
    results: dict[int, Qualification] = {}
    failed: dict[int, str] = {}
    for lead in leads:
        try:
            results[lead.pk] = evaluate(
                _applicant(lead),
                guidelines=guidelines,
                limits=limits_by_place[(lead.state, lead.county, lead.city, lead.units)],
                costs=costs_by_state[lead.state],
            )
        except (KeyError, TypeError, ValueError, ArithmeticError) as exc:
            failed[lead.pk] = failure_summary(exc)
    return results, failed


QUALIFICATION_FIELDS = (
    "guideline_version",
    "loan_limit",
    "loan_limit_source",
    "fha_limit",
    "fha_limit_source",
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


def leads_qualify(*, lead_ids: list[int], claim: int = 0) -> list[Lead]:
    """Dedupe and run the engine on a batch of received leads, in one transaction; returns the leads it
    took: qualified, marked duplicate / not qualified, or held.

    Idempotent: a lead already past `received`, or locked by another worker that is qualifying it, is left
    alone. `claim` takes up to that many more leads waiting in `received` (oldest first, skipping locked
    ones), so under load one task clears the queue's backlog instead of paying a round trip per lead.
    Selling the qualified ones is the caller's (the market's batch, marketplace.services.leads_qualify).

    A batch isolates its leads: should the batch raise (one lead's inputs break the engine, or a value the
    database refuses), it is rolled back and its leads are qualified one by one; a lead that raises alone is
    held for staff review (lead_hold) and the others go on. A transient error (the database gone, a
    deadlock) propagates instead, and the task retries.
    """
    taken: list[int] = []
    try:
        return _leads_qualify(lead_ids=lead_ids, claim=claim, taken=taken)
    except Exception as exc:
        if is_transient(exc) or not taken:
            raise
        logger.warning(
            "qualifying a batch of %d lead(s) raised %s; qualifying them one by one",
            len(taken),
            failure_summary(exc),
        )
    held: list[int] = []

    def hold(pk: int, exc: BaseException) -> None:
        if lead_hold(lead_id=pk, reason=f"{failure_summary(exc)} while qualifying"):
            held.append(pk)

    done = one_by_one(
        taken,
        run=lambda pk: _leads_qualify(lead_ids=[pk]),
        set_aside=hold,
    )
    # The held leads count as taken: a full batch still tells the task that more may be waiting.
    leads = [lead for leads in done for lead in leads] + list(Lead.objects.filter(pk__in=held))
    return sorted(leads, key=lambda lead: lead.pk)


def _leads_qualify(*, lead_ids: list[int], claim: int = 0, taken: list[int] | None = None) -> list[Lead]:
    """One transaction of leads_qualify; `taken` receives the ids it locked, for the one-by-one retry."""
    now = timezone.now()
    window = staffconfig.value("duplicate_window_days")
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
        if taken is not None:
            taken.extend(lead.pk for lead in leads)
        # The earlier contacts by e-mail and by phone, each list in id order: a lead looks only at its own.
        by_email: dict[str, list[tuple[int, datetime]]] = defaultdict(list)
        by_phone: dict[str, list[tuple[int, datetime]]] = defaultdict(list)
        for pk, email, phone, created_at in leads_earlier_contacts(leads=leads, window_days=window):
            by_email[email].append((pk, created_at))
            by_phone[phone].append((pk, created_at))
        duplicates: set[int] = set()
        limits_by_place = loan_limits_for_many(
            places={(lead.state, lead.county, lead.city, lead.units) for lead in leads}
        )
        costs_by_state = housing_costs_for_many(states={lead.state for lead in leads}, guidelines=guidelines)
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
                lead_set_status(
                    lead=lead,
                    to=LeadStatus.DUPLICATE,
                    reason=f"Same e-mail or phone as lead #{first} within {window} days",
                    save=False,  # the row is locked; bulk_set below writes the batch
                )
                logger.info("lead %s duplicate of %s", lead.pk, first)
                continue

            limits = limits_by_place[(lead.state, lead.county, lead.city, lead.units)]
            result = evaluate(
                _applicant(lead), guidelines=guidelines, limits=limits, costs=costs_by_state[lead.state]
            )
            lead.guideline_version = result.guidelines_version
            lead.loan_limit = limits.conforming_limit
            lead.loan_limit_source = limits.source
            lead.fha_limit = limits.fha_limit
            lead.fha_limit_source = limits.fha_source
            lead.requested_loan = result.requested_loan
            lead.estimate = result.estimate
            lead.qualified_loan = result.qualified_loan
            lead.ltv = result.ltv
            lead.dti = result.dti
            lead.binding_constraint = result.binding_constraint
            lead.products = list(result.products)
            lead.qualification = result.to_dict()
            lead.qualified_at = now
            lead_set_status(
                lead=lead,
                to=LeadStatus.QUALIFIED if result.qualified else LeadStatus.NOT_QUALIFIED,
                save=False,
            )
            logger.info("lead %s %s", lead.pk, lead.status)
        bulk_set(leads, QUALIFICATION_FIELDS)
    return leads


# Where a held lead was: still to qualify, or qualified and waiting for a buyer.
HOLDABLE = tuple(sorted(lead_statuses_to(LeadStatus.HELD)))


def lead_hold(*, lead_id: int, reason: str) -> bool:
    """Set a lead whose processing raised aside for staff review (status `held`), so that it neither stops
    the batches it was in nor is pushed on forever by the sweeper. `reason` names the error's class and where
    it was raised, never its message (which may quote the consumer's data). Only a lead still waiting is
    held: one another worker finished meanwhile keeps its result. Returns whether the lead was held."""
    held = leads_set_status(
        lead_ids=[lead_id], to=LeadStatus.HELD, from_=HOLDABLE, reason=f"Held for review: {reason}"
    )
    if held:
        logger.error("lead %s held for review: %s", lead_id, reason)
    return bool(held)


def lead_release(*, lead_id: int) -> str | None:
    """Staff: send a held lead back where it was (to qualification when it never qualified, else to sale)
    and queue that work on commit. Returns its new status, or None when the lead was not held."""
    with transaction.atomic():
        lead = Lead.objects.select_for_update().filter(pk=lead_id, status=LeadStatus.HELD).first()
        if lead is None:
            return None
        status = LeadStatus.RECEIVED if lead.qualified_at is None else LeadStatus.QUALIFIED
        lead_set_status(lead=lead, to=status, reason="")
        # The market subscribes (marketplace.apps): qualification for a received lead, else its sale.
        transaction.on_commit(lambda: lead_waiting.send(sender=Lead, lead_id=lead_id, status=status))
    logger.info("lead %s released from hold to %s", lead_id, status)
    return status


# --- reference data ----------------------------------------------------------------------------------------

FHFA_FIELDS = ("state", "county_key", "county_name", *UNIT_FIELDS, "year")
FHA_FIELDS = tuple(f"fha_{f}" for f in UNIT_FIELDS) + ("fha_year",)


def loan_limits_import(*, rows: list[dict[str, Any]]) -> int:
    """Store FHFA's county rows (leads.reference.read_fhfa), replacing a county's FHFA figures and keeping
    any HUD figures imported for it. Returns the number of counties."""
    with transaction.atomic():
        CountyLoanLimit.objects.bulk_create(
            [CountyLoanLimit(fips=row["fips"], **{f: row[f] for f in FHFA_FIELDS}) for row in rows],
            batch_size=1000,
            update_conflicts=True,
            unique_fields=["fips"],
            update_fields=list(FHFA_FIELDS),
        )
    return len(rows)


def fha_limits_import(*, rows: list[dict[str, Any]], year: int) -> tuple[int, list[str]]:
    """Store HUD's FHA limits (leads.reference.read_hud_fha) on the counties' rows, matched by FIPS.
    Returns how many were stored and the FIPS codes no county has."""
    with transaction.atomic():
        counties = CountyLoanLimit.objects.select_for_update().in_bulk(
            [row["fips"] for row in rows], field_name="fips"
        )
        changed = []
        for row in rows:
            county = counties.get(row["fips"])
            if county is None:
                continue
            for field in UNIT_FIELDS:
                setattr(county, f"fha_{field}", row[field])
            county.fha_year = year
            changed.append(county)
        CountyLoanLimit.objects.bulk_update(changed, FHA_FIELDS, batch_size=1000)
    return len(changed), sorted(row["fips"] for row in rows if row["fips"] not in counties)


def housing_costs_import(*, rows: list[dict[str, Any]]) -> int:
    """Store the state table (leads.reference.read_state_costs), replacing each state's figures."""
    fields = ["property_tax_rate", "insurance_rate", "average_premium", "source"]
    with transaction.atomic():
        StateHousingCost.objects.bulk_create(
            [StateHousingCost(**row) for row in rows],
            update_conflicts=True,
            unique_fields=["state"],
            update_fields=fields,
        )
    return len(rows)
