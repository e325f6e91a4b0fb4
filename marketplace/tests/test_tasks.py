"""Every task run twice, or concurrently, has the effect of running once; failures are set aside."""

import threading
from unittest import mock

import pytest
from django.conf import settings
from django.core import mail
from django.db import connections

from core.models import FailedTask
from core.tasking import failed_task_replay
from integrations.tasks import deliveries_email
from integrations.tasks import deliveries_notify as deliveries_notify_task
from leads.models import Lead
from marketplace.models import Delivery
from marketplace.tasks import (
    lead_distribute as lead_distribute_task,
)
from marketplace.tasks import (
    leads_qualify_and_sell,
    leads_stuck_sweep,
    leads_unsold_retry,
)

from .factories import QualifiedLeadFactory, lender_mail, make_subscription

pytestmark = pytest.mark.django_db


def test_qualify_lead_twice_is_once(buying_lender):
    from leads.tests.test_pipeline import submit

    make_subscription(buying_lender, price="40.00")
    lead = submit()
    assert leads_qualify_and_sell(lead.pk) == "sold"  # qualified, then sold by the same task
    before = Lead.objects.get(pk=lead.pk)
    assert leads_qualify_and_sell(lead.pk) == "sold"
    after = Lead.objects.get(pk=lead.pk)
    assert (before.qualified_at, before.estimate) == (after.qualified_at, after.estimate)
    assert Delivery.objects.filter(lead=lead).count() == 1


def test_distribute_lead_twice_is_once(buying_lender, rival_lender):
    make_subscription(buying_lender, price="40.00")
    make_subscription(rival_lender, price="41.00")
    lead = QualifiedLeadFactory()
    assert lead_distribute_task(lead.pk) == 2
    assert lead_distribute_task(lead.pk) == 0
    assert Delivery.objects.filter(lead=lead).count() == 2


def test_notify_delivery_twice_sends_one_email(buying_lender, owner, django_capture_on_commit_callbacks):
    make_subscription(buying_lender, price="40.00")
    lead = QualifiedLeadFactory()
    lead_distribute_task(lead.pk)
    delivery = Delivery.objects.get(lead=lead)
    with django_capture_on_commit_callbacks(execute=True):  # the e-mail task it queues runs
        assert deliveries_notify_task([delivery.pk]) == 1
    with django_capture_on_commit_callbacks(execute=True):
        assert deliveries_notify_task([delivery.pk]) == 0
    assert deliveries_email([delivery.pk]) == 0  # e-mailed already, by the task the first run queued
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == [owner.email]
    # The e-mail names no consumer: a lender reads the contact details in the portal, where access is logged.
    assert (
        lead.consumer.email not in mail.outbox[0].body and lead.consumer.last_name not in mail.outbox[0].body
    )


def test_beat_tasks_twice_are_harmless(buying_lender, django_capture_on_commit_callbacks):
    make_subscription(buying_lender, price="40.00")
    unsold = QualifiedLeadFactory(status="unsold")
    from django.utils import timezone

    Lead.objects.filter(pk=unsold.pk).update(retry_until=timezone.now() + timezone.timedelta(hours=1))
    assert leads_unsold_retry() == 1
    assert leads_unsold_retry() == 0  # sold by the first run
    assert leads_stuck_sweep() == 0
    assert leads_stuck_sweep() == 0
    assert Delivery.objects.filter(lead=unsold).count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_distribute_lead_concurrently_is_once(buying_lender, rival_lender):
    make_subscription(buying_lender, exclusive=True, price="90.00")
    lead = QualifiedLeadFactory()
    barrier = threading.Barrier(4)

    def run():
        barrier.wait()
        try:
            lead_distribute_task(lead.pk)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run) for _ in range(4)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert Delivery.objects.filter(lead=lead).count() == 1


@pytest.fixture
def worker_like_errors():
    """Errors stay in the task, as on a worker, instead of propagating to the caller."""
    from config.celery import app

    app.conf.task_eager_propagates = False
    yield
    app.conf.task_eager_propagates = True


def test_a_task_that_keeps_failing_is_set_aside_and_can_be_replayed(buying_lender, worker_like_errors):
    make_subscription(buying_lender, price="40.00")
    lead = QualifiedLeadFactory()
    boom = RuntimeError("database unavailable")
    with mock.patch("marketplace.services.lead_distribute", side_effect=boom) as patched:
        # Run as a worker would (errors not propagated to the caller): each retry runs inline, then gives up.
        result = lead_distribute_task.apply(args=[lead.pk])
    assert result.failed()
    assert patched.call_count == lead_distribute_task.max_retries + 1  # bounded
    failed = FailedTask.objects.get()
    assert failed.task_name == "marketplace.tasks.lead_distribute" and failed.args == [lead.pk]
    assert "database unavailable" in failed.exception

    failed_task_replay(failed_task_id=failed.pk)
    assert Delivery.objects.filter(lead=lead).exists()
    assert FailedTask.objects.get().replayed_at is not None


def test_visibility_timeout_outlasts_every_task_and_countdown():
    """A Redis broker redelivers an unacknowledged task after the visibility timeout: it must be longer than
    the longest task and any countdown/ETA, or a task would run twice while the first is still going."""
    from celery import current_app

    import integrations.tasks
    import marketplace.tasks
    from core.tasking import ReliableTask

    visibility = settings.CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"]
    prefixes = ("lenders.", "marketplace.", "integrations.", "compliance.")
    tasks = [t for name, t in current_app.tasks.items() if name.startswith(prefixes)]
    assert tasks and integrations.tasks and marketplace.tasks
    for task in tasks:
        limit = task.time_limit or settings.CELERY_TASK_TIME_LIMIT
        assert limit < visibility, task.name
        assert (getattr(task, "retry_backoff_max", 0) or 0) < visibility, task.name
    assert ReliableTask.retry_backoff_max < visibility
    assert visibility > settings.CELERY_TASK_TIME_LIMIT


def test_when_the_inline_notification_fails_the_notification_task_takes_over(
    owner, buying_lender, monkeypatch, django_capture_on_commit_callbacks
):
    """The qualify task tells the buyers itself; if that fails (say the database connection drops) the sale
    stands, and the notification goes to its own task, which retries."""
    from integrations import deliveries as notifications
    from leads.tests.test_pipeline import submit

    make_subscription(buying_lender, price="40.00")
    with django_capture_on_commit_callbacks(execute=False):
        lead = submit()
    queued: list[tuple] = []
    monkeypatch.setattr(notifications, "enqueue", lambda task, *args: queued.append((task.name, args)))
    monkeypatch.setattr(
        notifications, "deliveries_notify", mock.Mock(side_effect=ConnectionRefusedError("connection lost"))
    )

    assert leads_qualify_and_sell(lead.pk) == "sold"

    delivery = Delivery.objects.get(lead=lead)
    assert delivery.notified_at is None and lender_mail(mail.outbox) == []
    assert queued == [("integrations.tasks.deliveries_notify", ([delivery.pk],))]
    monkeypatch.undo()  # the real notification, queueing for real: the e-mail task it queues runs
    with django_capture_on_commit_callbacks(execute=True):
        assert deliveries_notify_task([delivery.pk]) == 1
    assert [m.to for m in lender_mail(mail.outbox)] == [[owner.email]]
