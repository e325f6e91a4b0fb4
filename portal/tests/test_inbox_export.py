"""The inbox CSV beyond INBOX_EXPORT_MAX_ROWS: a task writes it and e-mails a signed link that works for the
member who asked, and for nobody else, and not after it expires; the contact-access log records it."""

import csv
import io
import time
from unittest import mock

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse

from compliance.models import ContactAccess
from compliance.services import consumer_erase
from integrations.exports import inbox_exports_expired_purge
from integrations.models import InboxExport
from marketplace.models import Delivery
from marketplace.services import delivery_set_status, lead_distribute
from marketplace.tests.factories import MemberFactory, QualifiedLeadFactory, make_subscription

pytestmark = pytest.mark.django_db


@pytest.fixture
def owner_client(client: Client, owner) -> Client:
    client.force_login(owner)
    return client


@pytest.fixture
def sold(buying_lender):
    make_subscription(buying_lender, states=["TX"], price="40.00")
    deliveries = []
    for name in ("Ana", "Bea", "Cid"):
        lead = QualifiedLeadFactory(consumer__first_name=name)
        deliveries.append(
            next(d for d in lead_distribute(lead_id=lead.pk) if d.lender_id == buying_lender.pk)
        )
    return deliveries


def _rows(response) -> list[list[str]]:
    body = b"".join(response.streaming_content).decode()
    return list(csv.reader(io.StringIO(body)))


def _link(message) -> str:
    line = next(x for x in message.body.splitlines() if "/portal/inbox/exports/" in x)
    return line[line.index("/portal/") :].strip()


def _export(client, settings, django_capture_on_commit_callbacks, max_rows=2, **params):
    settings.INBOX_EXPORT_MAX_ROWS = max_rows
    with django_capture_on_commit_callbacks(execute=True):  # the task runs eagerly in tests, on commit
        response = client.get(reverse("portal:inbox_export"), params)
    return response


def test_a_large_export_is_e_mailed_and_the_link_works_for_the_member(
    owner_client, owner, sold, settings, django_capture_on_commit_callbacks
):
    delivery_set_status(delivery=sold[0], status="contacted")
    response = _export(owner_client, settings, django_capture_on_commit_callbacks)

    assert response.status_code == 202
    assert "on its way by e-mail" in response.content.decode()
    assert "3 leads" in response.content.decode()
    [message] = mail.outbox
    assert message.to == [owner.email] and "3 leads" in message.subject
    download = owner_client.get(_link(message))
    assert download.status_code == 200 and download["Content-Disposition"].startswith("attachment;")
    assert download["Cache-Control"] == "no-store"
    rows = _rows(download)
    assert rows[0][:4] == ["Delivered", "Delivery", "Lead", "Status"]
    assert sorted(r[4] for r in rows[1:]) == ["Ana", "Bea", "Cid"]
    by_name = {r[4]: r for r in rows[1:]}
    assert by_name["Ana"][3] == "Contacted" and by_name["Bea"][16] == "shared"
    # The audit trail: one contact-access record per exported lead, by this member, as an export.
    logged = ContactAccess.objects.filter(channel=ContactAccess.Channel.EXPORT)
    assert sorted(logged.values_list("lead_id", flat=True)) == sorted(d.lead_id for d in sold)
    assert {(a.user_id, a.lender_id) for a in logged} == {(owner.pk, sold[0].lender_id)}


def test_the_export_keeps_the_filters(owner_client, sold, settings, django_capture_on_commit_callbacks):
    for d in sold:
        delivery_set_status(delivery=d, status="contacted")
    Delivery.objects.filter(pk=sold[0].pk).update(status="lost")  # off the filtered list
    _export(owner_client, settings, django_capture_on_commit_callbacks, max_rows=1, status="contacted")
    rows = _rows(owner_client.get(_link(mail.outbox[0])))
    assert sorted(r[4] for r in rows[1:]) == ["Bea", "Cid"]


def test_the_link_is_refused_to_a_rival_lender_and_to_a_colleague(
    owner_client, rival_owner, buying_lender, sold, settings, django_capture_on_commit_callbacks
):
    _export(owner_client, settings, django_capture_on_commit_callbacks)
    link = _link(mail.outbox[0])
    rival = Client()
    rival.force_login(rival_owner)
    assert rival.get(link).status_code == 404
    colleague = Client()
    colleague.force_login(MemberFactory(lender=buying_lender, role="manager", username="manager2").user)
    assert colleague.get(link).status_code == 404
    assert Client().get(link).status_code == 302  # anonymous: to the login page


def test_the_link_expires(owner_client, sold, settings, django_capture_on_commit_callbacks):
    _export(owner_client, settings, django_capture_on_commit_callbacks)
    link = _link(mail.outbox[0])
    assert owner_client.get(link).status_code == 200
    later = time.time() + (settings.INBOX_EXPORT_LINK_HOURS * 3600 + 60)
    with mock.patch("django.core.signing.time.time", return_value=later):
        assert owner_client.get(link).status_code == 404
    # A forged or altered link is no better.
    assert owner_client.get(link[:-3] + "xyz/").status_code == 404


def test_expired_exports_are_purged_and_an_erasure_removes_its_lenders_exports(
    owner_client, sold, settings, django_capture_on_commit_callbacks
):
    _export(owner_client, settings, django_capture_on_commit_callbacks)
    assert InboxExport.objects.filter(status=InboxExport.Status.READY).count() == 1
    assert inbox_exports_expired_purge() == 0  # not yet expired
    consumer_erase(consumer_id=sold[1].lead.consumer_id)
    assert not InboxExport.objects.exists()
    _export(owner_client, settings, django_capture_on_commit_callbacks)
    InboxExport.objects.update(created_at="2000-01-01T00:00:00Z")
    assert inbox_exports_expired_purge() == 1


def test_building_twice_writes_once(owner_client, sold, settings, django_capture_on_commit_callbacks):
    from integrations.exports import inbox_export_build

    _export(owner_client, settings, django_capture_on_commit_callbacks)
    export = InboxExport.objects.get()
    assert inbox_export_build(export_id=export.pk) == 0  # the task again (a redelivery): nothing more
    assert ContactAccess.objects.filter(channel=ContactAccess.Channel.EXPORT).count() == 3
    assert len(mail.outbox) == 1


def test_a_small_export_streams_at_once_and_logs_each_lead(owner_client, sold, settings):
    settings.INBOX_EXPORT_MAX_ROWS = 3
    response = owner_client.get(reverse("portal:inbox_export"))
    assert response.status_code == 200 and response.streaming
    assert sorted(r[4] for r in _rows(response)[1:]) == ["Ana", "Bea", "Cid"]
    assert not InboxExport.objects.exists() and not mail.outbox
    assert ContactAccess.objects.filter(channel=ContactAccess.Channel.EXPORT).count() == 3
