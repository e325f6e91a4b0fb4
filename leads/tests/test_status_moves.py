"""Issue 13.4: a lead's status moves are declared (leads.choices.LEAD_MOVES) and made only through
lead_set_status / leads_set_status, which refuse every move the table does not allow."""

import itertools
import os
import re
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext

from leads.choices import LEAD_INITIAL, LEAD_MOVES, LeadStatus, lead_statuses_to
from leads.models import Lead
from leads.services import IllegalLeadMove, lead_hold, lead_set_status, leads_set_status
from marketplace.tests.factories import QualifiedLeadFactory

pytestmark = pytest.mark.django_db

S = LeadStatus
PAIRS = list(itertools.product(S.values, S.values))
LEGAL = [(a, b) for a, b in PAIRS if b in LEAD_MOVES[a]]
ILLEGAL = [(a, b) for a, b in PAIRS if b not in LEAD_MOVES[a]]


def test_every_status_declares_its_moves():
    """Issue 13.4: a new status cannot be added without saying where it may go; final statuses go nowhere."""
    assert set(LEAD_MOVES) == set(S.values)
    assert all(moves <= set(S.values) for moves in LEAD_MOVES.values())
    assert set(S.values) >= LEAD_INITIAL
    for final in (S.SOLD, S.NOT_QUALIFIED, S.DUPLICATE, S.REJECTED):
        assert LEAD_MOVES[final] == frozenset()
    # Every status is reachable: it starts a lead or some move leads to it.
    assert set(S.values) == LEAD_INITIAL | set().union(*LEAD_MOVES.values())


def test_the_pipeline_moves_are_the_legal_ones():
    """Issue 13.4: the table holds exactly the moves the pipeline makes (qualify, sell, retry, hold,
    release)."""
    assert set(LEGAL) == {
        (S.RECEIVED, S.QUALIFIED),
        (S.RECEIVED, S.NOT_QUALIFIED),
        (S.RECEIVED, S.DUPLICATE),
        (S.RECEIVED, S.HELD),
        (S.QUALIFIED, S.SOLD),
        (S.QUALIFIED, S.UNSOLD),
        (S.QUALIFIED, S.HELD),
        (S.UNSOLD, S.SOLD),
        (S.UNSOLD, S.UNSOLD),
        (S.UNSOLD, S.HELD),
        (S.HELD, S.RECEIVED),
        (S.HELD, S.QUALIFIED),
    }
    assert lead_statuses_to(S.SOLD) == {S.QUALIFIED, S.UNSOLD}
    assert lead_statuses_to(S.HELD) == {S.RECEIVED, S.QUALIFIED, S.UNSOLD}


@pytest.mark.parametrize(("from_", "to"), LEGAL)
def test_a_legal_move_is_made_and_stored(from_, to):
    lead = QualifiedLeadFactory(status=from_)
    assert lead_set_status(lead=lead, to=to, reason="why") is True
    lead.refresh_from_db()
    assert (lead.status, lead.status_reason) == (to, "why")


@pytest.mark.parametrize(("from_", "to"), ILLEGAL)
def test_an_illegal_move_is_refused_and_nothing_is_written(from_, to):
    lead = QualifiedLeadFactory(status=from_, status_reason="before")
    with pytest.raises(IllegalLeadMove, match=f"cannot move from {S(from_).label} to {S(to).label}"):
        lead_set_status(lead=lead, to=to, reason="after")
    with pytest.raises(IllegalLeadMove):
        lead_set_status(lead=lead, to=to, save=False)  # the in-memory form (batches) refuses it too
    assert lead.status == from_
    lead.refresh_from_db()
    assert (lead.status, lead.status_reason) == (from_, "before")


@pytest.mark.parametrize(("from_", "to"), ILLEGAL)
def test_the_bulk_form_refuses_an_illegal_source_before_writing(from_, to):
    lead = QualifiedLeadFactory(status=from_)
    with pytest.raises(IllegalLeadMove):
        leads_set_status(lead_ids=[lead.pk], to=to, from_=[from_])
    lead.refresh_from_db()
    assert lead.status == from_


def test_a_stale_copy_does_not_move_a_lead_another_worker_moved():
    """A conditional UPDATE: the lead moves only from the status the caller saw."""
    lead = QualifiedLeadFactory(status=S.QUALIFIED)
    stale = Lead.objects.get(pk=lead.pk)
    assert lead_set_status(lead=lead, to=S.SOLD)
    assert lead_set_status(lead=stale, to=S.HELD) is False
    lead.refresh_from_db()
    assert lead.status == S.SOLD


def test_bulk_form_moves_only_the_leads_that_may_move_in_one_query():
    leads = {status: QualifiedLeadFactory(status=status) for status in S.values}
    ids = [lead.pk for lead in leads.values()]
    with CaptureQueriesContext(connection) as queries:
        moved = leads_set_status(lead_ids=ids, to=S.HELD, reason="Held for review: test")
    assert len(queries) == 1  # one conditional UPDATE … RETURNING, however many leads
    assert moved == sorted(leads[s].pk for s in (S.RECEIVED, S.QUALIFIED, S.UNSOLD))
    for status, lead in leads.items():
        lead.refresh_from_db()
        expected = S.HELD if status in (S.RECEIVED, S.QUALIFIED, S.UNSOLD) else status
        assert lead.status == expected, status
    assert Lead.objects.get(pk=leads[S.RECEIVED].pk).status_reason == "Held for review: test"


def test_bulk_form_keeps_to_the_sources_it_is_given():
    received, qualified = QualifiedLeadFactory(status=S.RECEIVED), QualifiedLeadFactory(status=S.QUALIFIED)
    assert leads_set_status(lead_ids=[received.pk, qualified.pk], to=S.HELD, from_=[S.QUALIFIED]) == [
        qualified.pk
    ]
    assert Lead.objects.get(pk=received.pk).status == S.RECEIVED


def test_a_sold_lead_is_never_held():
    lead = QualifiedLeadFactory(status=S.SOLD)
    assert lead_hold(lead_id=lead.pk, reason="ValueError in test") is False
    lead.refresh_from_db()
    assert lead.status == S.SOLD


# The one module that writes Lead.status; the batches (qualify, sell) call lead_set_status(save=False) on the
# leads they hold locked and write the batch in one statement.
OWNER = "leads/services.py"
ASSIGNMENTS = re.compile(
    r"\blead\.status\s*=[^=]"  # lead.status = ...
    r"|Lead\.objects\b.*\.update\([^)]*\bstatus="  # Lead.objects.filter(...).update(status=...)
    r"|\.update\([^)]*\bstatus=LeadStatus\."  # any queryset of leads updated to a lead status
)


def test_no_module_but_the_service_assigns_a_lead_status():
    """Issue 13.4: lead status was assigned in five places across two apps; now only lead_set_status does."""
    root = Path(settings.BASE_DIR)
    offenders, scanned = [], set()
    for folder, dirs, files in os.walk(root):
        dirs[:] = [
            d for d in dirs if not d.startswith(".") and d not in ("tests", "migrations", "node_modules")
        ]
        for name in files:
            path = Path(folder, name)
            rel = path.relative_to(root).as_posix()
            if not name.endswith(".py") or rel == OWNER:
                continue
            scanned.add(rel)
            for number, line in enumerate(path.read_text().splitlines(), 1):
                if ASSIGNMENTS.search(line):
                    offenders.append(f"{rel}:{number}: {line.strip()}")
    # The walk reaches every app of the layout (the sale batch and its tasks in marketplace, the portal's
    # pages, the API and deliveries in integrations, the plumbing in core), so a move does not hide a write.
    assert {
        "marketplace/services.py",
        "marketplace/tasks.py",
        "portal/lead.py",
        "integrations/deliveries.py",
        "integrations/tasks.py",
        "core/tasking.py",
        "leads/admin.py",
    } <= scanned
    assert offenders == []


def test_the_batch_form_checks_the_move_without_a_query():
    """Issue 13.4: the qualify and sale batches hold their leads locked and write them in one statement; the
    move they check on each lead costs no query (the hot path's count is asserted in test_batch_isolation)."""
    lead = QualifiedLeadFactory(status=S.QUALIFIED)
    with CaptureQueriesContext(connection) as queries:
        assert lead_set_status(lead=lead, to=S.SOLD, save=False) is True
    assert len(queries) == 0 and lead.status == S.SOLD
    assert Lead.objects.get(pk=lead.pk).status == S.QUALIFIED  # written by the batch's bulk_set, not here
