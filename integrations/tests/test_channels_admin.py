"""Issue 15.1: staff see texts and opt-outs in admin, read-only, without the consumer's number or words, on
pages whose query count does not grow with their rows."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from compliance.models import OptOut
from compliance.services import optout_record
from integrations.channels.services import text_send
from integrations.models import TextMessage
from marketplace.tests.factories import make_subscription
from portal.tests.test_portal import sell

pytestmark = pytest.mark.django_db


def queries(client, url: str) -> int:
    with CaptureQueriesContext(connection) as seen:
        assert client.get(url).status_code == 200
    return len(seen)


def test_texts_and_opt_outs_in_admin_are_read_only_with_no_contact_details(client, staff, buying_lender):
    make_subscription(buying_lender, states=["TX"], price="40.00")
    client.force_login(staff)
    texts, stops = (
        reverse("admin:integrations_textmessage_changelist"),
        reverse("admin:compliance_optout_changelist"),
    )

    def add_one() -> TextMessage:
        delivery = sell(buying_lender)
        text = text_send(delivery_id=delivery.pk, body="Private words")
        optout_record(
            channel="sms",
            address=delivery.lead.consumer.phone,
            source="sms_keyword",
            lead_id=delivery.lead_id,
        )
        return text

    text = add_one()
    few = queries(client, texts), queries(client, stops)
    for _ in range(4):
        add_one()
    assert (queries(client, texts), queries(client, stops)) == few
    assert TextMessage.objects.count() == 5 and OptOut.objects.count() == 5

    page = client.get(reverse("admin:integrations_textmessage_change", args=[text.pk])).content.decode()
    assert text.phone not in page and "Private words" not in page
    assert client.get(reverse("admin:integrations_textmessage_add")).status_code == 403
    assert client.get(reverse("admin:compliance_optout_add")).status_code == 403
