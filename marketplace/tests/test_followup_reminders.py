"""Issue 11.8: overdue follow-up reminders go to whoever holds the lead now, or to nobody."""

from datetime import timedelta

import pytest
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from marketplace.models import Delivery, FollowUp
from marketplace.services import delivery_reassign, followup_create, followups_remind_overdue
from marketplace.tests.factories import MemberFactory, make_subscription
from portal.tests.test_portal import sell

pytestmark = pytest.mark.django_db


@pytest.fixture
def colleague(buying_lender):
    """A second loan officer of the buying lender."""
    return MemberFactory(lender=buying_lender, role="officer", username="colleague").user


@pytest.fixture
def deliveries(buying_lender, officer):
    """Two leads the officer holds."""
    make_subscription(buying_lender, states=["TX"], price="40.00")
    sold = [sell(buying_lender, first_name=name) for name in ("Maria", "Ana")]
    Delivery.objects.filter(pk__in=[d.pk for d in sold]).update(assigned_to=officer)
    for d in sold:
        d.refresh_from_db()
    return sold


def overdue(delivery, user, note):
    due = timezone.now() - timedelta(hours=1)
    return followup_create(delivery=delivery, user=user, due_at=due, note=note)


def test_a_reassigned_leads_reminder_goes_to_its_new_officer(officer, colleague, deliveries):
    """Issue 11.8: the officer set a follow-up, then the lead was reassigned: the reminder went to the
    officer, who can no longer open the lead. It goes to the officer who holds it now, with their own."""
    moved, kept = deliveries
    overdue(moved, officer, "Call back about FHA")
    overdue(kept, officer, "Send the rate sheet")
    overdue(moved, colleague, "Ask for pay stubs")  # set once the lead was theirs
    delivery_reassign(delivery=moved, membership=colleague.membership)

    assert followups_remind_overdue() == 2

    by_recipient = {m.to[0]: m for m in mail.outbox}
    assert set(by_recipient) == {officer.email, colleague.email}
    assert "Call back about FHA" in by_recipient[colleague.email].body
    assert "Ask for pay stubs" in by_recipient[colleague.email].body
    assert "2 overdue follow-ups" in by_recipient[colleague.email].subject
    assert "Send the rate sheet" in by_recipient[officer.email].body
    assert "Call back about FHA" not in by_recipient[officer.email].body
    assert not FollowUp.objects.filter(reminded_at__isnull=True).exists()


def test_a_lead_taken_from_its_officer_and_left_unassigned_reminds_nobody(officer, owner, deliveries):
    """Issue 11.8: reassigned to nobody, the lead has no holder: no reminder at all (marked, so it is not
    retried forever). An owner's own follow-up still reminds the owner, who sees every lead."""
    moved, _ = deliveries
    overdue(moved, officer, "Call back about FHA")
    overdue(moved, owner, "Check the officer called")
    delivery_reassign(delivery=moved, membership=None)

    assert followups_remind_overdue() == 1

    assert [m.to for m in mail.outbox] == [[owner.email]]
    assert "Call back about FHA" not in mail.outbox[0].body
    assert not FollowUp.objects.filter(reminded_at__isnull=True).exists()


def test_reminding_many_costs_the_queries_of_reminding_one(officer, colleague, buying_lender, deliveries):
    """Issue 11.8: finding each follow-up's holder is one query for all of them."""

    def queries(n: int) -> int:
        for i in range(n):
            overdue(deliveries[i % 2], officer, f"note {i}")
        delivery_reassign(delivery=deliveries[0], membership=colleague.membership)
        with CaptureQueriesContext(connection) as ctx:
            followups_remind_overdue()
        delivery_reassign(delivery=deliveries[0], membership=officer.membership)
        return len(ctx.captured_queries)

    assert queries(2) == queries(6)
