"""Personal data: consent is immutable, unsold leads' PII is erased on schedule, erasure on request
is logged."""

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, InternalError, ProgrammingError, connection, transaction
from django.utils import timezone

from billing.models import LedgerEntry
from compliance.models import Erasure
from compliance.services import consumer_erase, consumers_erase_expired
from leads.models import ConsentRecord, Consumer, Lead
from leads.tests.test_pipeline import submit
from marketplace.tests.factories import QualifiedLeadFactory

pytestmark = pytest.mark.django_db


def test_consent_records_refuse_bulk_update_and_delete():
    submit()
    with pytest.raises(ValidationError):
        ConsentRecord.objects.update(text="changed")
    with pytest.raises(ValidationError):
        ConsentRecord.objects.all().delete()


def test_ledger_entries_refuse_bulk_update_and_delete(buying_lender):
    with pytest.raises(ValidationError):
        LedgerEntry.objects.update(amount=1)
    with pytest.raises(ValidationError):
        LedgerEntry.objects.all().delete()


@pytest.mark.postgres
def test_the_database_refuses_to_change_consent_or_ledger_rows(buying_lender):
    submit()
    for sql in (
        "UPDATE leads_consentrecord SET text = 'x'",
        "DELETE FROM leads_consentrecord",
        "UPDATE billing_ledgerentry SET amount = 0",
        "DELETE FROM billing_ledgerentry",
    ):
        with (
            pytest.raises((InternalError, IntegrityError, ProgrammingError)),
            transaction.atomic(),
            connection.cursor() as cur,
        ):
            cur.execute(sql)
    assert ConsentRecord.objects.count() == 1


def test_erasure_on_request_scrubs_pii_keeps_statistics_and_is_logged(staff):
    lead = submit()
    erasure = consumer_erase(consumer_id=lead.consumer_id, requested_by=staff, note="ticket 42")
    consumer = Consumer.objects.get(pk=lead.consumer_id)
    assert consumer.email != "maria@example.com" and consumer.phone == "" and consumer.first_name == "erased"
    assert consumer.erased_at is not None
    assert Lead.objects.filter(pk=lead.pk, purpose="purchase").exists()  # the statistics stay
    assert erasure.lead_ids == [lead.pk] and erasure.requested_by == staff
    assert ConsentRecord.objects.get(lead=lead).text  # the legal proof stays unchanged


def test_retention_erases_only_old_unsold_leads():
    old = timezone.now() - timedelta(days=91)
    unsold = QualifiedLeadFactory(status="unsold", created_at=old)
    duplicate = QualifiedLeadFactory(status="duplicate", created_at=old)
    sold = QualifiedLeadFactory(status="sold", created_at=old)
    recent = QualifiedLeadFactory(status="unsold")

    assert consumers_erase_expired(retention_days=90) == 2
    assert consumers_erase_expired(retention_days=90) == 0  # idempotent

    erased = set(Consumer.objects.filter(erased_at__isnull=False).values_list("pk", flat=True))
    assert erased == {unsold.consumer_id, duplicate.consumer_id}
    assert sold.consumer_id not in erased and recent.consumer_id not in erased
    assert Erasure.objects.filter(reason="retention").count() == 2


def test_admin_erase_action_erases_and_logs(client, staff):
    lead = submit()
    client.force_login(staff)
    response = client.post(
        "/admin/leads/consumer/",
        {
            "action": "erase_consumers",
            "_selected_action": [lead.consumer_id],
        },
        follow=True,
    )
    assert response.status_code == 200
    assert Consumer.objects.get(pk=lead.consumer_id).erased_at is not None
    assert Erasure.objects.get().requested_by == staff
