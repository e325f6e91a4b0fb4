"""One way to queue work (issue 11.7): with the broker really down (a closed port), requests and staff actions
complete, and every kind of work they caused is found again once it is back: by a sweeper, or from the
outbox. Staff see set-aside tasks in admin and replay them."""

from decimal import Decimal
from unittest import mock

import pytest
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from billing.models import LedgerEntry
from config.celery import app as celery_app
from core import tasking
from core.models import FailedTask, OutboxTask
from core.tasks import outbox_flush
from integrations.models import WebhookEndpoint, WebhookMessage
from integrations.services import webhook_secret_new
from integrations.tasks import return_decided_email, webhook_endpoints_schedule_due
from integrations.tests.receiver import Receiver
from marketplace.models import MarketSettings, ReturnRequest
from marketplace.returns import return_approve, return_deny, return_request_create

from .factories import QualifiedLeadFactory, make_subscription
from .topology import free_port

pytestmark = pytest.mark.django_db(transaction=True)  # real commits: on_commit hooks run as in production


@pytest.fixture(autouse=True)
def _allow_loopback(settings):
    settings.WEBHOOK_ALLOW_LOOPBACK = True


@pytest.fixture
def broker_down(monkeypatch):
    """Queue to a real Redis transport whose port nothing listens on, as a web process would see a dead
    broker; afterwards, eager again (the broker is "back") with this process's failure backoff reset."""
    monkeypatch.setitem(celery_app.conf, "task_always_eager", False)
    monkeypatch.setitem(celery_app.conf, "broker_url", f"redis://127.0.0.1:{free_port()}/0")
    # The connection and producer pools are built lazily from broker_url (and kept once built): rebuild them.
    monkeypatch.setattr(celery_app, "_pool", None)
    monkeypatch.setattr(celery_app.amqp, "_producer_pool", None)
    monkeypatch.setattr(tasking, "_broker_down_until", 0.0)
    yield
    celery_app.conf.task_always_eager = True
    tasking._broker_down_until = 0.0


def broker_back() -> None:
    celery_app.conf.task_always_eager = True
    tasking._broker_down_until = 0.0


@pytest.fixture
def receiver():
    with Receiver() as r:
        yield r


@pytest.fixture
def returns(buying_lender, owner, receiver):
    """Three deliveries with a return requested on each; the lender listens for return.decided."""
    from marketplace.services import lead_distribute

    MarketSettings.objects.update_or_create(pk=1, defaults={"return_rate_cap": 100})
    make_subscription(buying_lender, exclusive=True, price="40.00")
    deliveries = [
        lead_distribute(lead_id=QualifiedLeadFactory(consumer__email=f"r{i}@example.com").pk)[0]
        for i in range(3)
    ]
    WebhookEndpoint.objects.create(
        lender=buying_lender, url=receiver.url, secret=webhook_secret_new(), events=["return.decided"]
    )
    mail.outbox.clear()
    return [return_request_create(delivery=d, user=owner, reason="duplicate") for d in deliveries]


def decided_events(receiver) -> int:
    return sum(b'"return.decided"' in body for _, body, _ in receiver.requests)


def test_return_approve_completes_with_the_broker_down_and_its_work_follows_later(
    returns, staff, receiver, broker_down
):
    """Issue 11.7: `return_approve` committed the credit, then showed staff a kombu error from `.delay()` in
    on_commit, and the e-mail was never queued. Now it returns, the e-mail waits in the outbox and the
    webhook in its table, and both go out once the broker is back."""
    rr = return_approve(return_request_id=returns[0].pk, user=staff)

    assert rr.status == ReturnRequest.Status.APPROVED
    assert LedgerEntry.objects.filter(kind="credit", amount=Decimal("40.00")).count() == 1
    assert list(OutboxTask.objects.values_list("task_name", "args")) == [
        ("integrations.tasks.return_decided_email", [rr.pk])
    ]
    message = WebhookMessage.objects.get(event_type="return.decided")
    assert message.status == "pending" and message.endpoint.queued_at is None  # no task: left for the sweeper
    assert not mail.outbox and not receiver.requests

    broker_back()
    assert outbox_flush(older_than_seconds=0) == 1
    assert webhook_endpoints_schedule_due() == 1
    assert [m.subject for m in mail.outbox] == [f"Return approved: lead {rr.delivery.lead.reference}"]
    assert decided_events(receiver) == 1 and not OutboxTask.objects.exists()


def test_a_bulk_admin_action_completes_with_the_broker_down(client, returns, staff, receiver, broker_down):
    """Issue 11.7: a bulk admin action stopped half-way at the first queueing error. Every return is decided,
    the page says so, and every e-mail and webhook follows once the broker is back."""
    client.force_login(staff)
    url = reverse("admin:marketplace_returnrequest_changelist")
    response = client.post(
        url, {"action": "approve_selected", "_selected_action": [r.pk for r in returns]}, follow=True
    )

    assert response.status_code == 200 and "Approved 3 returns." in response.content.decode()
    assert ReturnRequest.objects.filter(status="approved").count() == 3
    assert OutboxTask.objects.count() == 3

    broker_back()
    assert outbox_flush(older_than_seconds=0) == 3
    webhook_endpoints_schedule_due()
    assert len(mail.outbox) == 3 and decided_events(receiver) == 3


def test_the_outbox_is_left_alone_while_the_broker_stays_down(returns, staff, broker_down):
    return_approve(return_request_id=returns[0].pk, user=staff)

    assert outbox_flush(older_than_seconds=0) == 0  # still down: the row stays for the next sweep
    assert OutboxTask.objects.count() == 1


def test_a_rolled_back_change_leaves_no_outbox_row(returns, staff, broker_down):
    from django.db import transaction

    with pytest.raises(RuntimeError), transaction.atomic():
        return_approve(return_request_id=returns[0].pk, user=staff)
        raise RuntimeError("the caller's transaction fails after the approval")
    assert not OutboxTask.objects.exists()


def test_staff_see_what_waits_in_the_outbox(client, staff, returns, broker_down):
    return_approve(return_request_id=returns[0].pk, user=staff)
    client.force_login(staff)
    page = client.get(reverse("admin:core_outboxtask_changelist"))
    assert page.status_code == 200 and "integrations.tasks.return_decided_email" in page.content.decode()


def test_with_the_broker_up_the_outbox_row_is_gone_at_commit(returns, staff, receiver):
    return_approve(return_request_id=returns[0].pk, user=staff)

    assert not OutboxTask.objects.exists()
    assert len(mail.outbox) == 1 and decided_events(receiver) == 1


def test_every_task_is_found_again_by_a_sweeper_or_kept_in_the_outbox(settings):
    """Issue 11.7: every kind of work survives a lost message: its task is a beat job, keeps an outbox row,
    or names the beat job that finds its work again."""
    celery_app.loader.import_default_modules()
    beat = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    ours = [t for name, t in celery_app.tasks.items() if isinstance(t, tasking.ReliableTask)]
    assert len(ours) >= 15
    uncovered = sorted(
        t.name for t in ours if not (t.name in beat or getattr(t, "outbox", False) or t.swept_by in beat)
    )
    assert not uncovered, f"tasks whose lost message nothing would find again: {uncovered}"


# --- FailedTask in admin ------------------------------------------------------------------------------


def failed(task_name: str, args: list, **extra) -> FailedTask:
    return FailedTask.objects.create(
        task_name=task_name,
        task_id=f"t-{FailedTask.objects.count()}",
        args=args,
        exception="OperationalError: database unavailable",
        retries=5,
        **extra,
    )


def test_staff_find_set_aside_tasks_in_admin_with_a_fixed_query_count(client, staff):
    """Issue 11.7: the README said staff replay failed tasks from admin, and FailedTask had no admin page."""
    client.force_login(staff)
    url = reverse("admin:core_failedtask_changelist")
    failed("integrations.tasks.deliveries_notify", [[1, 2]])

    def queries(path: str) -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(path).status_code == 200
        return len(ctx.captured_queries)

    with_one = queries(url)
    for i in range(5):
        failed("integrations.tasks.return_decided_email", [i], replayed_at=timezone.now())
    # Session, user, the counts, the page's rows and the task-name filter's choices: none per row.
    assert queries(url) == with_one

    def listed(query: str) -> set[str]:
        return {t.task_name for t in client.get(url + query).context["cl"].result_list}

    assert listed("?replayed=no") == {"integrations.tasks.deliveries_notify"}
    assert listed("?replayed=yes") == {"integrations.tasks.return_decided_email"}
    assert listed("?q=return_decided") == {"integrations.tasks.return_decided_email"}
    assert listed("?task_name=integrations.tasks.deliveries_notify") == {
        "integrations.tasks.deliveries_notify"
    }


def test_staff_replay_a_set_aside_task_from_admin(client, staff, returns, receiver):
    # The e-mail's task reached the broker, then failed until it was set aside (the mail server was down).
    with mock.patch.object(return_decided_email, "apply_async"):
        rr = return_deny(return_request_id=returns[0].pk, user=staff)
    assert not mail.outbox
    task = failed("integrations.tasks.return_decided_email", [rr.pk])
    client.force_login(staff)
    url = reverse("admin:core_failedtask_changelist")

    response = client.post(url, {"action": "replay", "_selected_action": [task.pk]}, follow=True)

    assert "Replayed 1 task." in response.content.decode()
    assert [m.subject for m in mail.outbox] == [f"Return denied: lead {rr.delivery.lead.reference}"]
    task.refresh_from_db()
    assert task.replayed_at is not None


def test_a_replay_with_the_broker_down_says_so_and_marks_nothing(client, staff, broker_down):
    task = failed("integrations.tasks.deliveries_notify", [[1]])
    client.force_login(staff)
    url = reverse("admin:core_failedtask_changelist")

    response = client.post(url, {"action": "replay", "_selected_action": [task.pk]}, follow=True)

    assert response.status_code == 200 and "the broker is not answering" in response.content.decode()
    task.refresh_from_db()
    assert task.replayed_at is None
