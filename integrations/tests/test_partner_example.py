"""The partner example script (requests only) against a live server: post a lead, then poll its status."""

import pytest

from integrations.examples import partner
from integrations.models import ApiKey, LeadSource
from integrations.services import api_key_create
from leads.models import Lead


@pytest.mark.django_db(transaction=True)
def test_the_partner_script_posts_a_lead_and_polls_it_to_a_decision(live_server):
    source = LeadSource.objects.create(name="Example partner")
    key = api_key_create(source=source, name="script", scope=ApiKey.Scope.WRITE).key

    accepted = partner.submit_lead(live_server.url, key, partner.EXAMPLE_LEAD, idempotency_key="run-1")
    again = partner.submit_lead(live_server.url, key, partner.EXAMPLE_LEAD, idempotency_key="run-1")
    lead = partner.wait_for_status(accepted["links"]["self"], key, timeout=20, every=0.2)

    assert again["id"] == accepted["id"] and Lead.objects.count() == 1
    assert lead["id"] == accepted["id"]
    assert lead["status"] not in partner.PENDING or lead["qualification"]
    assert lead["qualification"]["products"]
    assert Lead.objects.get().source == source


@pytest.mark.django_db(transaction=True)
def test_the_script_surfaces_field_errors(live_server):
    key = api_key_create(source=LeadSource.objects.create(name="P"), name="s", scope="write").key

    with pytest.raises(partner.LeadRejected) as exc:
        partner.submit_lead(live_server.url, key, {**partner.EXAMPLE_LEAD, "zip_code": "00000"})

    assert exc.value.problem["status"] == 400 and "zip_code" in exc.value.problem["errors"]
