"""Issue 11.1: a batch isolates its records. One lead (or delivery) that raises is set aside and named, and
the rest of its batch qualifies, sells and is notified: the qualify batch, the sale batch, the notification
and e-mail batches, and the partner API's leads, which take the same path. Real PostgreSQL throughout: the
faults are values the database refuses (a numeric overflow, a trigger's refusal) or an exception raised for
one record."""

import dataclasses
import logging
from decimal import Decimal

import pytest
from django.core import mail
from django.db import OperationalError, connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from billing.models import Account, LedgerEntry
from core.models import FailedTask
from core.tasking import failed_task_replay
from integrations import deliveries as notifications
from integrations.deliveries import deliveries_email, deliveries_notify
from integrations.models import ApiKey, LeadSource, WebhookEndpoint, WebhookMessage
from integrations.services import api_key_create, webhook_secret_new
from integrations.tests.conftest import LEAD, Api
from leads import services as lead_services
from leads.models import Lead
from leads.selectors import leads_stuck
from leads.services import lead_release
from leads.tests.test_pipeline import submit
from marketplace import tasks as lead_tasks
from marketplace.models import Delivery
from marketplace.selectors import deliveries_unemailed, deliveries_unnotified
from marketplace.services import leads_distribute, leads_qualify

from .factories import QualifiedLeadFactory, make_subscription

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

POISON_INCOME = Decimal("123457")  # the poisoned consumer's income: nothing else about them is unusual


@pytest.fixture
def market(buying_lender, owner):
    """The buying lender takes every Texas lead, shared, at $40."""
    return make_subscription(buying_lender, states=["TX"], price="40.00")


def _overflowing_engine(monkeypatch):
    """The engine as it was before ratios were capped: for the poisoned consumer it returns a DTI of
    3,490,536%, which PostgreSQL refuses to store in Lead.dti (numeric(7,2)): a genuine DataError."""
    real = lead_services.evaluate

    def evaluate(applicant, **kwargs):
        result = real(applicant, **kwargs)
        if applicant.annual_income == POISON_INCOME:
            return dataclasses.replace(result, dti=Decimal("3490536.00"))
        return result

    monkeypatch.setattr(lead_services, "evaluate", evaluate)


def _raising_engine(monkeypatch):
    """An engine bug that only the poisoned consumer's inputs reach."""
    real = lead_services.evaluate

    def evaluate(applicant, **kwargs):
        if applicant.annual_income == POISON_INCOME:
            raise ZeroDivisionError("decimal division by zero")
        return real(applicant, **kwargs)

    monkeypatch.setattr(lead_services, "evaluate", evaluate)


def _submit_batch(n_good: int, django_capture_on_commit_callbacks) -> tuple[list[Lead], Lead]:
    """Good leads with the poisoned one in the middle, all waiting in `received` for one qualify task."""
    with django_capture_on_commit_callbacks(execute=False):
        good = [submit(email=f"good{i}@example.com", phone=f"512555{i:04d}") for i in range(n_good)]
        poisoned = submit(email="poison@example.com", phone="5125559999", annual_income=POISON_INCOME)
        good += [submit(email="late@example.com", phone="5125558888")]
    return good, poisoned


@pytest.mark.parametrize("fault", [_overflowing_engine, _raising_engine], ids=["db-refuses", "engine-raises"])
def test_one_poisoned_lead_is_held_and_the_rest_of_its_batch_is_sold(
    fault, market, monkeypatch, caplog, django_capture_on_commit_callbacks
):
    """Issue 11.1: one lead that made the qualify batch raise rolled back the whole batch, every later batch
    that claimed it failed too, and the sweeper re-queued it forever. Now the batch is retried lead by lead:
    the poisoned lead is held for review, named by id in the log and in admin (the error's class, no PII),
    and the good ones are qualified and sold by the same task."""
    fault(monkeypatch)
    good, poisoned = _submit_batch(3, django_capture_on_commit_callbacks)

    with caplog.at_level(logging.INFO):
        lead_tasks.leads_qualify_and_sell()

    statuses = dict(Lead.objects.values_list("pk", "status"))
    assert [statuses[lead.pk] for lead in good] == ["sold"] * 4
    assert Delivery.objects.filter(lead__in=good).count() == 4
    poisoned.refresh_from_db()
    assert poisoned.status == "held" and not poisoned.deliveries.exists()
    expected = "DataError" if fault is _overflowing_engine else "ZeroDivisionError"
    assert poisoned.status_reason.startswith(f"Held for review: {expected}")
    assert poisoned.status_reason.endswith("while qualifying")
    assert f"lead {poisoned.pk} held for review: {expected}" in caplog.text
    # No PII of the consumer in the reason or the log, and no database message (it may quote row values).
    for text in (poisoned.status_reason, caplog.text):
        assert "poison@example.com" not in text and "5125559999" not in text and "Gonzalez" not in text
    assert "numeric field overflow" not in caplog.text
    # It is no longer pushed on by the sweeper, and the next batch does not trip over it.
    assert not leads_stuck(older_than_seconds=-60).filter(pk=poisoned.pk).exists()
    with django_capture_on_commit_callbacks(execute=False):
        later = submit(email="next@example.com", phone="5125557777")
    lead_tasks.leads_qualify_and_sell()
    later.refresh_from_db()
    assert later.status == "sold"


def test_a_full_batch_with_a_held_lead_still_hands_the_rest_on(
    market, monkeypatch, settings, django_capture_on_commit_callbacks
):
    """Issue 11.1: a held lead counts as taken, so a full batch that held one still queues the next task for
    the leads waiting behind it (rather than leaving them to the sweeper)."""
    _raising_engine(monkeypatch)
    queued: list[tuple] = []
    monkeypatch.setattr(lead_tasks, "enqueue", lambda task, *args: queued.append((task.name, args)))
    settings.PIPELINE_BATCH_SIZE = 3
    good, poisoned = _submit_batch(2, django_capture_on_commit_callbacks)  # good, good, poisoned, late

    lead_tasks.leads_qualify_and_sell()

    assert queued == [("marketplace.tasks.leads_qualify_and_sell", ())]
    statuses = dict(Lead.objects.values_list("pk", "status"))
    assert [statuses[good[0].pk], statuses[good[1].pk], statuses[poisoned.pk], statuses[good[2].pk]] == [
        "sold",
        "sold",
        "held",
        "received",
    ]


def test_a_transient_error_is_not_blamed_on_a_lead(monkeypatch, django_capture_on_commit_callbacks):
    """Issue 11.1: the database going away is nobody's fault: the batch raises as before (the task retries it)
    and no lead is held."""
    real = lead_services.evaluate

    def evaluate(applicant, **kwargs):
        if applicant.annual_income == POISON_INCOME:
            raise OperationalError("server closed the connection unexpectedly")
        return real(applicant, **kwargs)

    monkeypatch.setattr(lead_services, "evaluate", evaluate)
    _submit_batch(2, django_capture_on_commit_callbacks)

    with pytest.raises(OperationalError):
        leads_qualify(lead_ids=[], claim=50)

    assert set(Lead.objects.values_list("status", flat=True)) == {"received"}


def test_the_happy_path_costs_no_extra_query(market, django_capture_on_commit_callbacks):
    """Issue 11.1: isolation costs nothing until a batch raises: no savepoint per lead, and qualifying then
    selling a batch of five costs what a batch of two does."""

    def queries(n: int) -> tuple[int, int]:
        with django_capture_on_commit_callbacks(execute=False):
            leads = [submit(email=f"n{n}-{i}@example.com", phone=f"51255{n}{i:04d}") for i in range(n)]
        with CaptureQueriesContext(connection) as qualify:
            assert len(leads_qualify(lead_ids=[lead.pk for lead in leads], queue_distribution=False)) == n
        with CaptureQueriesContext(connection) as sell:
            assert len(leads_distribute(lead_ids=[lead.pk for lead in leads], queue_notification=False)) == n
        return len(qualify), len(sell)

    queries(1)  # warm: the guidelines, market settings and floors are read once per process
    assert queries(2) == queries(5)


def _refuse_delivery_of(lead_id: int) -> None:
    """A PostgreSQL trigger that refuses this lead's Delivery rows: a genuine fault of the sale's writes.
    Created inside the test's transaction, so it goes with it."""
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE FUNCTION pg_temp.refuse_delivery() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            "RAISE EXCEPTION 'refused' USING ERRCODE = 'check_violation'; END $$"
        )
        cursor.execute(
            "CREATE TRIGGER refuse_delivery BEFORE INSERT ON marketplace_delivery FOR EACH ROW "
            f"WHEN (NEW.lead_id = {int(lead_id)}) EXECUTE FUNCTION pg_temp.refuse_delivery()"
        )


def test_a_lead_whose_sale_raises_is_held_and_the_others_are_sold(market, buying_lender, caplog):
    """Issue 11.1: the sale batch isolates its leads too: the database refuses one lead's delivery, the batch
    is sold again lead by lead, that lead is held (no delivery, no charge) and the others are sold and
    charged exactly once."""
    leads = [QualifiedLeadFactory() for _ in range(4)]
    poisoned = leads[1]
    _refuse_delivery_of(poisoned.pk)

    with caplog.at_level(logging.INFO):
        sold = leads_distribute(lead_ids=[lead.pk for lead in leads])

    good = [lead.pk for lead in leads if lead != poisoned]
    assert sorted(sold) == good
    assert sorted(Lead.objects.filter(status="sold").values_list("pk", flat=True)) == good
    poisoned.refresh_from_db()
    assert poisoned.status == "held"
    assert poisoned.status_reason.startswith("Held for review: IntegrityError")
    assert poisoned.status_reason.endswith("while selling")
    assert f"lead {poisoned.pk} held for review: IntegrityError" in caplog.text
    assert LedgerEntry.objects.filter(kind="charge").count() == 3
    assert Account.objects.get(lender=buying_lender).balance == Decimal("880.00")


def test_a_held_lead_is_released_from_admin_and_goes_back_where_it_was(
    client, staff, market, monkeypatch, django_capture_on_commit_callbacks
):
    """Issue 11.1: staff find held leads with the admin's status filter and release them once the cause is
    fixed: one held while qualifying is qualified again (and sold), one held while selling is sold."""
    _raising_engine(monkeypatch)
    _, poisoned = _submit_batch(1, django_capture_on_commit_callbacks)
    lead_tasks.leads_qualify_and_sell()
    qualified = QualifiedLeadFactory(qualified_at=timezone.now())
    lead_services.lead_hold(lead_id=qualified.pk, reason="IntegrityError at services.py:1 while selling")
    monkeypatch.undo()  # the cause is fixed
    client.force_login(staff)
    changelist = reverse("admin:leads_lead_changelist")

    page = client.get(changelist, {"status__exact": "held"}).content.decode()
    assert f">{poisoned.pk}<" in page and f">{qualified.pk}<" in page and "Held for review: " in page
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            changelist,
            {"action": "release", "_selected_action": [poisoned.pk, qualified.pk]},
            follow=True,
        )

    text = response.content.decode()
    assert "1 lead(s) released to received" in text and "1 lead(s) released to qualified" in text
    assert set(Lead.objects.filter(pk__in=[poisoned.pk, qualified.pk]).values_list("status", flat=True)) == {
        "sold"
    }
    assert lead_release(lead_id=poisoned.pk) is None  # only a held lead is released


def test_the_consumer_of_a_held_lead_is_told_kindly(client, monkeypatch, django_capture_on_commit_callbacks):
    """Issue 11.1: a held lead's result page says the request is saved and being looked at; no polling."""
    _raising_engine(monkeypatch)
    _, poisoned = _submit_batch(0, django_capture_on_commit_callbacks)
    lead_tasks.leads_qualify_and_sell()

    page = client.get(reverse("leads:result", args=[poisoned.public_id])).content.decode()

    assert "Your request is saved" in page and "taking a closer look" in page
    assert "hx-trigger" not in page


@pytest.fixture
def endpoint(buying_lender):
    return WebhookEndpoint.objects.create(
        lender=buying_lender,
        url="https://crm.example/hook",
        secret=webhook_secret_new(),
        events=["delivery.created"],
    )


def _sold(n: int) -> list[Delivery]:
    sold = leads_distribute(lead_ids=[QualifiedLeadFactory().pk for _ in range(n)], queue_notification=False)
    return sorted((d for ds in sold.values() for d in ds), key=lambda d: d.pk)


def test_one_delivery_whose_webhook_raises_does_not_stop_the_others(
    market, endpoint, monkeypatch, caplog, client, staff
):
    """Issue 11.1: the notification batch isolates its deliveries: the one whose webhook payload raises is set
    aside (named on the delivery and as a FailedTask staff can replay, and left alone by the sweeper), and the
    others' webhooks are queued. Replayed once the cause is fixed, it is notified."""
    # No network: the webhook sends are not queued.
    monkeypatch.setattr("integrations.tasks.webhook_endpoint_send_due.apply_async", lambda *a, **k: None)
    deliveries = _sold(3)
    poisoned = deliveries[1]
    real = notifications.deliveries_payloads

    def payloads(rows):
        if any(d.pk == poisoned.pk for d in rows):
            raise KeyError("consent")
        return real(rows)

    monkeypatch.setattr(notifications, "deliveries_payloads", payloads)

    with caplog.at_level(logging.INFO):
        assert deliveries_notify(delivery_ids=[d.pk for d in deliveries]) == 2

    hooked = {m.payload["data"]["id"] for m in WebhookMessage.objects.all()}
    assert hooked == {deliveries[0].pk, deliveries[2].pk}
    poisoned.refresh_from_db()
    assert poisoned.notified_at is None and poisoned.notify_error.startswith("KeyError")
    assert poisoned.notify_error.endswith("while notifying")
    assert f"delivery {poisoned.pk} notification set aside: KeyError" in caplog.text
    failed = FailedTask.objects.get()
    assert (failed.task_name, failed.args) == ("integrations.tasks.deliveries_notify", [[poisoned.pk]])
    assert not deliveries_unnotified(older_than_seconds=-60).filter(pk=poisoned.pk).exists()
    client.force_login(staff)
    listed = client.get(reverse("admin:marketplace_delivery_changelist"), {"notification": "set_aside"})
    assert listed.context["cl"].result_count == 1 and f">{poisoned.pk}<" in listed.content.decode()

    monkeypatch.setattr(notifications, "deliveries_payloads", real)
    failed_task_replay(failed_task_id=failed.pk)
    poisoned.refresh_from_db()
    assert poisoned.notified_at is not None and poisoned.notify_error == ""


def test_one_delivery_whose_email_raises_does_not_stop_the_others(market, owner, monkeypatch):
    """Issue 11.1: the e-mail batch too: the others' e-mail is sent (each on its own, as they are retried one
    by one), the poisoned delivery is set aside with a FailedTask naming it."""
    deliveries = _sold(3)
    assert deliveries_notify(delivery_ids=[d.pk for d in deliveries]) == 3
    poisoned = deliveries[0]
    real = notifications._message

    def message(group, to):
        if any(d.pk == poisoned.pk for d in group):
            raise ValueError("template")
        return real(group, to)

    monkeypatch.setattr(notifications, "_message", message)
    mail.outbox.clear()

    assert deliveries_email(delivery_ids=[d.pk for d in deliveries]) == 2

    assert len(mail.outbox) == 2 and all(m.to == [owner.email] for m in mail.outbox)
    emailed = set(Delivery.objects.filter(emailed_at__isnull=False).values_list("pk", flat=True))
    assert emailed == {deliveries[1].pk, deliveries[2].pk}
    poisoned.refresh_from_db()
    assert poisoned.notify_error.startswith("ValueError") and poisoned.notify_error.endswith(
        "while e-mailing"
    )
    assert FailedTask.objects.get().args == [[poisoned.pk]]
    assert not deliveries_unemailed(older_than_seconds=-60).filter(pk=poisoned.pk).exists()


def test_a_poisoned_partner_lead_is_held_and_the_partners_other_leads_are_sold(
    market, monkeypatch, django_capture_on_commit_callbacks
):
    """Issue 11.1: the partner API's leads go through the same qualify and sale batch: one poisoned partner
    lead among good ones is held (the partner reads `held`), and the good ones are sold."""
    _overflowing_engine(monkeypatch)
    source = LeadSource.objects.create(name="Quote Partner")
    api = Api(api_key_create(source=source, name="intake", scope=ApiKey.Scope.WRITE).key)
    bodies = [
        {**LEAD, "email": "p1@example.com", "phone": "512-555-0101"},
        {**LEAD, "email": "p2@example.com", "phone": "512-555-0102", "annual_income": str(POISON_INCOME)},
        {**LEAD, "email": "p3@example.com", "phone": "512-555-0103"},
    ]
    with django_capture_on_commit_callbacks(execute=False):
        ids = []
        for body in bodies:
            response = api.post("/api/v1/leads/", body)
            assert response.status_code == 202, response.content
            ids.append(response.json()["id"])

    lead_tasks.leads_qualify_and_sell()

    statuses = [api.get(f"/api/v1/leads/{lead_id}/").json()["status"] for lead_id in ids]
    assert statuses == ["sold", "held", "sold"]
