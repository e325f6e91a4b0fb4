"""Issue 13.6: one lead, one identity for the lender. The portal page of a delivery was titled "Lead #<lead
row id>", the ledger memo said "Lead #54", the API's lead_id was a UUID: now every place a lender meets the
lead shows Lead.reference, the start of the API's lead_id."""

import csv
import io
import re

import pytest
from django.core import mail
from django.urls import reverse

from billing.models import LedgerEntry
from integrations.deliveries import deliveries_email
from integrations.notifications import return_decided_email
from integrations.services import delivery_payload, return_payload
from marketplace.models import MarketSettings
from marketplace.returns import return_approve, return_request_create

pytestmark = pytest.mark.django_db


def test_the_reference_is_the_start_of_the_public_id(delivery):
    lead = delivery.lead
    assert re.fullmatch(r"[0-9a-f]{8}", lead.reference)
    assert str(lead.public_id).startswith(lead.reference)
    assert str(lead).startswith(f"Lead {lead.reference} (")


def test_page_memo_email_export_and_api_name_the_lead_alike(client, owner, lender_api, delivery):
    lead = delivery.lead
    ref = lead.reference
    client.force_login(owner)

    html = client.get(reverse("portal:delivery_detail", args=[delivery.pk])).content.decode()
    title = re.search(r"<title>(.*?)</title>", html, re.S).group(1)
    assert f"Lead {ref}" in title and f"#{lead.pk}" not in title
    assert f"<span>Lead {ref}</span>" in html

    charge = LedgerEntry.objects.get(kind=LedgerEntry.Kind.CHARGE)
    assert charge.memo == f"Lead {ref} (exclusive)"

    assert deliveries_email(delivery_ids=[delivery.pk]) == 1
    assert f"Lead {ref}" in mail.outbox[-1].body

    body = lender_api.get(f"/api/v1/deliveries/{delivery.pk}/").json()
    assert body["lead_reference"] == ref and body["lead_id"].startswith(ref)
    listed = lender_api.get("/api/v1/deliveries/").json()["results"]
    assert [d["lead_reference"] for d in listed] == [ref]
    assert delivery_payload(delivery)["lead_reference"] == ref  # the delivery webhooks' payload

    export = client.get(reverse("portal:inbox_export"))
    rows = list(csv.reader(io.StringIO(b"".join(export.streaming_content).decode())))
    assert rows[0][2] == "Lead" and rows[1][2] == ref

    letter = client.get(reverse("portal:delivery_letter", args=[delivery.pk]))
    assert f'filename="prequalification-{ref}.pdf"' in letter["Content-Disposition"]


def test_a_decided_return_names_the_lead_by_its_reference(client, owner, staff, delivery):
    MarketSettings.objects.update_or_create(pk=1, defaults={"return_rate_cap": 100})
    ref = delivery.lead.reference
    client.force_login(owner)
    html = client.get(reverse("portal:return_request", args=[delivery.pk])).content.decode()
    assert f"Return lead {ref}" in html

    rr = return_request_create(delivery=delivery, user=owner, reason="bad_contact")
    rr = return_approve(return_request_id=rr.pk, user=staff)
    assert rr.credit.memo == f"Return of lead {ref} approved"
    assert return_payload(rr)["lead_reference"] == ref  # the return_decided webhook's payload
    mail.outbox.clear()
    assert return_decided_email(return_request_id=rr.pk) == 1
    assert mail.outbox[0].subject == f"Return approved: lead {ref}"
    assert f"lead {ref} was" in mail.outbox[0].body

    html = client.get(reverse("portal:returns")).content.decode()
    assert ref in html


def test_staff_find_a_lead_in_admin_by_its_reference(client, staff, delivery):
    client.force_login(staff)
    html = client.get(reverse("admin:leads_lead_changelist"), {"q": delivery.lead.reference}).content.decode()
    assert reverse("admin:leads_lead_change", args=[delivery.lead_id]) in html
