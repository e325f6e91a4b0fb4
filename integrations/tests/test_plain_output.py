"""PlainOutput walks an output serializer's fields more cheaply than DRF does; what it returns must be exactly
what DRF's own walk returns, for every shape a delivery or a lead takes."""

from decimal import Decimal

import pytest
from rest_framework import serializers

from integrations.api.common import PlainOutput
from integrations.api.intake import LeadOutput
from integrations.api.lender import DeliveryDetailOutput, DeliveryListOutput
from integrations.services import deliveries_payloads
from leads.models import Lead
from leads.tests.test_pipeline import submit
from marketplace.models import Delivery
from marketplace.services import delivery_set_status, lead_distribute
from marketplace.tests.factories import QualifiedLeadFactory, make_subscription

pytestmark = pytest.mark.django_db


def both_walks(monkeypatch, represent):
    """represent() through PlainOutput, then through DRF's Serializer.to_representation."""
    plain = represent()
    with monkeypatch.context() as m:
        m.setattr(PlainOutput, "to_representation", serializers.Serializer.to_representation)
        drf = represent()
    return plain, drf


@pytest.fixture
def deliveries(buying_lender, django_capture_on_commit_callbacks):
    """Every shape: a real pipeline lead (consent, engine results with a product that does not fit), funded
    and lost ones, and a lead without consent or qualification (skipped by the factory)."""
    make_subscription(buying_lender, price="40.00")
    with django_capture_on_commit_callbacks(execute=True):
        sold = submit(last_name="O'Donnell", email="seán@example.com")
    funded = lead_distribute(lead_id=QualifiedLeadFactory(purpose="refinance", purchase_price=None).pk)[0]
    for status in ("contacted", "application", "approved"):
        delivery_set_status(delivery=funded, status=status)
    delivery_set_status(delivery=funded, status="funded", funded_amount=Decimal("351234.5"))
    lost = lead_distribute(lead_id=QualifiedLeadFactory().pk)[0]
    delivery_set_status(delivery=lost, status="lost", lost_reason="no_answer")
    return list(
        Delivery.objects.filter(lead__in=[sold, funded.lead, lost.lead])
        .select_related("lead", "lead__consumer", "lead__consent", "subscription")
        .order_by("pk")
    )


def test_delivery_outputs_are_drfs_own(monkeypatch, deliveries):
    assert len(deliveries) == 3
    for serializer in (DeliveryDetailOutput, DeliveryListOutput):
        plain, drf = both_walks(monkeypatch, lambda s=serializer: s(deliveries, many=True).data)
        assert plain == drf
        assert [list(d) for d in plain] == [list(d) for d in drf]  # and the keys in the same order
    payloads, expected = both_walks(monkeypatch, lambda: deliveries_payloads(deliveries))
    assert payloads == expected
    # The shapes were really there: a walk that dropped them would still compare equal to itself.
    real, funded, lost = payloads
    assert (
        real["consent"]["text"] == "I agree to be contacted." and real["contact"]["last_name"] == "O'Donnell"
    )
    assert real["qualification"]["max_per_product"] and real["qualification"]["estimate"]
    assert funded["consent"] is None and funded["qualification"] is None
    assert funded["funded_amount"] == "351234.50" and funded["loan"]["purchase_price"] is None
    assert lost["lost_reason"] == "no_answer" and lost["next_statuses"] == []


def test_lead_output_is_drfs_own(monkeypatch, buying_lender, django_capture_on_commit_callbacks):
    make_subscription(buying_lender, price="40.00")
    with django_capture_on_commit_callbacks(execute=True):
        qualified = submit()
        refused = submit(
            annual_income=Decimal("30000"),
            monthly_debts=Decimal("2500"),
            phone="2145550100",
            email="other@example.com",
        )
    received = submit(phone="2145550101", email="third@example.com")
    leads = list(Lead.objects.filter(pk__in=[qualified.pk, refused.pk, received.pk]).order_by("pk"))
    plain, drf = both_walks(monkeypatch, lambda: LeadOutput(leads, many=True).data)
    assert plain == drf
    assert [lead["status"] for lead in plain] == ["sold", "not_qualified", "received"]
    assert plain[1]["qualification"]["reasons"] and plain[2]["qualification"] is None


def test_qualification_of_a_partial_offer_is_drfs_own(
    monkeypatch, buying_lender, django_capture_on_commit_callbacks
):
    """Issue 12's shapes (gap steps, the purchase, refinance maxima) walk the same both ways."""
    make_subscription(buying_lender, price="40.00")
    with django_capture_on_commit_callbacks(execute=True):
        partial = submit(
            annual_income=Decimal("48000"),
            monthly_debts=Decimal("600"),
            desired_loan_amount=Decimal("360000"),
        )
    lead = Lead.objects.get(pk=partial.pk)
    plain, drf = both_walks(monkeypatch, lambda: LeadOutput(lead).data)
    assert plain == drf and plain["qualification"]["gap"] and plain["qualification"]["purchase"]
