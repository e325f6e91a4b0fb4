"""Issue 12.5's data migrations: old credit bands on leads and subscriptions become ranges and minimums
without losing their meaning (leads.migrations.0010, lenders.migrations.0004)."""

from decimal import Decimal

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [("leads", "0008_import_reference_data"), ("lenders", "0002_team_invitations_assignment_rules")]
AFTER = [("leads", "0010_lead_credit_range_from_bands"), ("lenders", "0005_remove_subscription_credit_bands")]


def migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.mark.django_db(transaction=True)
def test_old_bands_become_ranges_and_minimums():
    old = migrate(BEFORE)
    Consumer, Lead = old.get_model("leads", "Consumer"), old.get_model("leads", "Lead")
    Lender, Subscription = old.get_model("lenders", "Lender"), old.get_model("lenders", "Subscription")
    consumer = Consumer.objects.create(
        first_name="A", last_name="B", email="a@example.com", phone="5125550100"
    )
    money = dict(
        property_value=Decimal("400000"), desired_loan_amount=Decimal("0"), annual_income=Decimal("1")
    )
    money |= dict(monthly_debts=Decimal("0"))
    place = dict(purpose="purchase", zip_code="78701", city="Austin", state="TX", county="Travis")
    place |= dict(property_type="single_family", occupancy="primary", timeline="3_months")
    leads = {b: Lead.objects.create(consumer=consumer, credit_band=b, **money, **place).pk for b in
             ("excellent", "good", "fair", "poor")}  # fmt: skip
    lender = Lender.objects.create(name="L", nmls_id="1")
    took = {
        "good and up": dict(credit_excellent=True, credit_good=True, credit_fair=False, credit_poor=False),
        "every band": dict(credit_excellent=True, credit_good=True, credit_fair=True, credit_poor=True),
        "excellent only": dict(
            credit_excellent=True, credit_good=False, credit_fair=False, credit_poor=False
        ),
        "gap": dict(credit_excellent=True, credit_good=False, credit_fair=True, credit_poor=False),
        "none": dict(credit_excellent=False, credit_good=False, credit_fair=False, credit_poor=False),
    }
    subs = {
        name: Subscription.objects.create(
            lender=lender,
            name=name,
            price=Decimal("40.00"),
            day_count=1,
            month_spend=Decimal("40.00"),
            **bands,
        ).pk
        for name, bands in took.items()
    }

    new = migrate(AFTER)
    Lead, Subscription = new.get_model("leads", "Lead"), new.get_model("lenders", "Subscription")
    ranges = dict(Lead.objects.filter(pk__in=leads.values()).values_list("pk", "credit_range"))
    # Each old band goes to the new range holding its lowest score (good 670 -> 660-679).
    assert {b: ranges[pk] for b, pk in leads.items()} == {
        "excellent": "740_759",
        "good": "660_679",
        "fair": "620_639",
        "poor": "300_499",
    }
    minimums = dict(Subscription.objects.values_list("name", "min_credit_score"))
    # "good" took 670-739 and better: 670 takes 680-699 and up, and not 660-679 (which may be below 670).
    assert minimums == {"good and up": 670, "every band": 300, "excellent only": 740, "gap": 620, "none": 850}
    assert set(Subscription.objects.values_list("day_count", flat=True)) == {1}  # nothing else touched

    back = migrate(BEFORE)  # and back: a minimum ticks the band holding it and every band above
    Subscription = back.get_model("lenders", "Subscription")
    good = Subscription.objects.get(pk=subs["good and up"])
    assert (good.credit_poor, good.credit_fair, good.credit_good, good.credit_excellent) == (
        False,
        False,
        True,
        True,
    )
    assert back.get_model("leads", "Lead").objects.get(pk=leads["fair"]).credit_band == "fair"
    migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())  # the schema the other tests expect
