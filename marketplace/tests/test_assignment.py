"""Assignment: new deliveries go round-robin to the officers whose rules fit, inside the sale."""

import pytest
from django.core import mail

from lenders.models import AssignmentRule
from marketplace.models import Delivery
from marketplace.services import lead_distribute
from marketplace.tests.factories import (
    LenderFactory,
    MemberFactory,
    QualifiedLeadFactory,
    lender_mail,
    make_subscription,
)

pytestmark = pytest.mark.django_db

CA = {"zip_code": "90012", "city": "Los Angeles", "state": "CA", "county": "Los Angeles County"}


@pytest.fixture
def lender():
    lender = LenderFactory(name="Round Robin Home Loans", states=["TX", "CA"], balance="5000.00")
    make_subscription(lender, states=["TX", "CA"], price="40.00")
    return lender


def officer(lender, name: str, **rule):
    member = MemberFactory(lender=lender, role="officer", username=name)
    AssignmentRule.objects.create(
        lender=lender, membership=member, position=AssignmentRule.objects.count(), **rule
    )
    return member.user


def sell(**lead) -> Delivery:
    [delivery] = lead_distribute(lead_id=QualifiedLeadFactory(**lead).pk)
    return Delivery.objects.select_related("assigned_to").get(pk=delivery.pk)


def test_round_robin_is_fair_and_in_order(lender):
    for name in ("ann", "bob", "cat"):
        officer(lender, name)
    names = [sell().assigned_to.username for _ in range(7)]
    assert names == ["ann", "bob", "cat", "ann", "bob", "cat", "ann"]
    counts = dict(AssignmentRule.objects.values_list("membership__user__username", "assigned_count"))
    assert counts == {"ann": 3, "bob": 2, "cat": 2}


def test_rules_filter_by_state_and_purpose(lender):
    officer(lender, "texas_purchase", states=["TX"], purposes=["purchase"])
    officer(lender, "california", states=["CA"])
    assert sell().assigned_to.username == "texas_purchase"
    assert sell(**CA).assigned_to.username == "california"
    assert sell(purpose="refinance").assigned_to is None  # no rule fits: left for owners and managers


def test_inactive_rules_and_deactivated_officers_are_skipped(lender):
    officer(lender, "ann")
    bob = officer(lender, "bob")
    officer(lender, "paused", is_active=False)
    bob.membership.is_active = False
    bob.membership.save()
    assert {sell().assigned_to.username for _ in range(3)} == {"ann"}


def test_the_assignee_is_the_one_emailed(lender, django_capture_on_commit_callbacks):
    MemberFactory(lender=lender, role="owner", username="boss")
    officer(lender, "ann")
    with django_capture_on_commit_callbacks(execute=True):
        delivery = sell()
    assert delivery.assigned_to.username == "ann"
    assert [m.to for m in lender_mail(mail.outbox)] == [["ann@example.com"]]


def test_assignment_costs_a_fixed_number_of_queries(lender, django_assert_num_queries):
    """The hook adds three queries to a sale whatever the number of buyers: the rules (with officers),
    one bulk update of the deliveries and one of the rules."""
    other = LenderFactory(name="Second Buyer", states=["TX"], balance="500.00")
    make_subscription(other, states=["TX"], price="40.00")
    officer(lender, "ann")
    MemberFactory(lender=other, role="officer", username="zed")
    AssignmentRule.objects.create(lender=other, membership=other.memberships.get())
    lead = QualifiedLeadFactory()

    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as ctx:
        deliveries = lead_distribute(lead_id=lead.pk)
    assert len(deliveries) == 2
    sql = [q["sql"] for q in ctx.captured_queries]
    assert sum('FROM "lenders_assignmentrule"' in s for s in sql) == 1
    assert sum(s.startswith('UPDATE "lenders_assignmentrule"') for s in sql) == 1
    assert sum(s.startswith('UPDATE "marketplace_delivery"') for s in sql) == 1
    assert {d.assigned_to.username for d in Delivery.objects.select_related("assigned_to")} == {"ann", "zed"}


def test_no_rules_leaves_deliveries_unassigned(lender):
    assert sell().assigned_to is None


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_round_robin_is_fair_under_concurrent_sales():
    """Eight leads sold at once to one lender: each of four officers gets exactly two. The lender's
    account row lock serialises the sales, so no two read the same counters."""
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connection

    lender = LenderFactory(name="Busy Lender", states=["TX"], balance="5000.00")
    make_subscription(lender, states=["TX"], price="40.00")
    for name in ("a1", "a2", "a3", "a4"):
        officer(lender, name)
    leads = [QualifiedLeadFactory().pk for _ in range(8)]

    def run(lead_id: int) -> int:
        try:
            return len(lead_distribute(lead_id=lead_id))
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=8) as pool:
        sold = list(pool.map(run, leads))
    assert sum(sold) == 8
    counts = sorted(AssignmentRule.objects.values_list("assigned_count", flat=True))
    assert counts == [2, 2, 2, 2]
    per_officer = Delivery.objects.values_list("assigned_to__username", flat=True)
    assert sorted(per_officer) == ["a1", "a1", "a2", "a2", "a3", "a3", "a4", "a4"]
