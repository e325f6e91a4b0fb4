"""Every Celery task of the project, run twice, has the effect of running it once.

The tasks are discovered from the Celery app, so a new task fails here until it gets a scenario: a set-up that
gives the task real work to do. Each run's effect is measured as the whole database of the project's apps,
the e-mails sent and the webhook requests received.
"""

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from django.apps import apps
from django.core import mail
from django.utils import timezone

from billing.models import Account
from config.celery import app
from core.tasking import ReliableTask
from integrations.channels import sms
from integrations.models import (
    IdempotencyRecord,
    InboxExport,
    StepRun,
    TextMessage,
    WebhookEndpoint,
    WebhookMessage,
)
from integrations.services import webhook_secret_new
from integrations.tests.receiver import Receiver
from leads.models import Lead
from lenders.models import Invitation
from marketplace.models import Delivery, LenderSpeed, ReturnRequest
from marketplace.services import activity_log, followup_create, lead_distribute

from .factories import QualifiedLeadFactory, lender_mail, make_subscription

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("daytime")]  # outreach: not quiet hours

PROJECT_APPS = {"core", "leads", "marketplace", "lenders", "billing", "integrations", "compliance", "portal"}


def project_task_names() -> list[str]:
    app.loader.import_default_modules()  # autodiscovery is lazy; make every tasks module register
    return sorted(name for name in app.tasks if name.split(".")[0] in PROJECT_APPS)


@dataclass
class World:
    lender: Any
    owner: Any
    receiver: Receiver
    # Set by a scenario: what to call, and a check that the first run did real work.
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)
    did_work: Callable[[], bool] = lambda: True


def _sold_delivery(w: World):
    make_subscription(w.lender, price="40.00")
    return lead_distribute(lead_id=QualifiedLeadFactory().pk)[0]


def _endpoint(w: World, *, active: bool = True) -> WebhookEndpoint:
    return WebhookEndpoint.objects.create(
        lender=w.lender,
        url=w.receiver.url,
        secret=webhook_secret_new(),
        is_active=active,
        events=["delivery.created", "delivery.updated"],
        disabled_at=None if active else timezone.now(),
        disabled_reason="" if active else "410 Gone",
    )


def _due_message(w: World) -> WebhookMessage:
    return WebhookMessage.objects.create(
        endpoint=_endpoint(w),
        event_id=f"msg_idempotent_{WebhookMessage.objects.count()}",
        event_type="delivery.updated",
        payload={"type": "delivery.updated", "data": {"id": 1}},
        next_attempt_at=timezone.now(),
    )


def leads_qualify_and_sell(w: World):
    from leads.tests.test_pipeline import submit

    make_subscription(w.lender, price="40.00")
    lead = submit()  # its own task is queued on a commit that never comes in this test
    w.args = (lead.pk,)
    w.did_work = lambda: Lead.objects.get(pk=lead.pk).status == "sold"


def lead_distribute_task(w: World):
    make_subscription(w.lender, price="40.00")
    lead = QualifiedLeadFactory()
    w.args = (lead.pk,)
    w.did_work = lambda: lead.deliveries.count() == 1 and len(lender_mail(mail.outbox)) == 1


def deliveries_notify(w: World):
    _endpoint(w)
    delivery = _sold_delivery(w)
    w.args = ([delivery.pk],)
    w.did_work = lambda: len(mail.outbox) == 1 and len(w.receiver.requests) == 1


def leads_distribute(w: World):
    make_subscription(w.lender, price="40.00")
    leads = [QualifiedLeadFactory(consumer__email=f"batch{i}@example.com") for i in range(2)]
    w.args = ([lead.pk for lead in leads],)
    w.did_work = lambda: all(lead.deliveries.count() == 1 for lead in leads)


def deliveries_email(w: World):
    delivery = _sold_delivery(w)
    w.args = ([delivery.pk],)
    w.did_work = lambda: len(mail.outbox) == 1


def leads_unsold_retry(w: World):
    make_subscription(w.lender, price="40.00")
    lead = QualifiedLeadFactory(status="unsold", retry_until=timezone.now() + timedelta(hours=1))
    w.did_work = lambda: lead.deliveries.count() == 1


def lender_speeds_refresh(w: World):
    delivery = _sold_delivery(w)
    activity_log(delivery=delivery, user=w.owner, kind="call", outcome="voicemail")
    w.did_work = lambda: LenderSpeed.objects.filter(lender=w.lender, rank=1).exists()


def leads_stuck_sweep(w: World):
    from leads.tests.test_pipeline import submit

    received = submit()
    qualified = QualifiedLeadFactory(consumer__email="other@example.com")
    Lead.objects.filter(pk__in=[received.pk, qualified.pk]).update(
        updated_at=timezone.now() - timedelta(hours=1)
    )
    w.did_work = lambda: not Lead.objects.filter(status__in=["received", "qualified"]).exists()


def deliveries_stuck_sweep(w: World):
    make_subscription(w.lender, price="40.00", exclusive=True)
    unnotified = lead_distribute(lead_id=QualifiedLeadFactory(consumer__email="third@example.com").pk)[0]
    type(unnotified).objects.filter(pk=unnotified.pk).update(created_at=timezone.now() - timedelta(hours=1))
    w.did_work = lambda: not type(unnotified).objects.filter(notified_at__isnull=True).exists()


def ping(w: World):
    pass  # does nothing, twice


def invitation_send(w: World):
    inv = Invitation.objects.create(
        lender=w.lender,
        email="newhire@example.com",
        role="officer",
        expires_at=timezone.now() + timedelta(days=3),
        invited_by=w.owner,
    )
    w.args = (inv.pk,)
    w.did_work = lambda: len(mail.outbox) == 1


def followups_remind_overdue(w: World):
    delivery = _sold_delivery(w)
    followup_create(delivery=delivery, user=w.owner, due_at=timezone.now() - timedelta(hours=2))
    w.did_work = lambda: len(mail.outbox) == 1


def _due_messages(w: World, count: int) -> list[WebhookMessage]:
    endpoint = _endpoint(w)
    first = WebhookMessage.objects.count()
    return [
        WebhookMessage.objects.create(
            endpoint=endpoint,
            event_id=f"msg_idempotent_{first + i}",
            event_type="delivery.updated",
            payload={"type": "delivery.updated", "data": {"id": 1}},
            next_attempt_at=timezone.now(),
        )
        for i in range(count)
    ]


def webhook_endpoint_send_due(w: World):
    """One endpoint's due messages: each delivered once, in order."""
    messages = _due_messages(w, 3)
    w.args = (messages[0].endpoint_id,)
    w.did_work = lambda: (
        [m.attempts.filter(succeeded=True).count() for m in messages] == [1, 1, 1]
        and [json.loads(body)["data"] for _, body, _ in w.receiver.requests] == [{"id": 1}] * 3
        and [h["webhook-id"] for h, _, _ in w.receiver.requests] == [m.event_id for m in messages]
    )


def send_endpoint_webhooks_failing(w: World):
    """The endpoint is down (503): the first attempt fails, and it and the rest wait for its retry, not for
    a second run."""
    w.receiver.replies.extend([(503, {}, b"down")] * 5)
    messages = _due_messages(w, 3)
    w.args = (messages[0].endpoint_id,)
    w.did_work = lambda: (
        [m.attempts.count() for m in messages] == [1, 0, 0]
        and not messages[0].attempts.filter(succeeded=True).exists()
    )


def message_attempts() -> int:
    return sum(m.attempts.count() for m in WebhookMessage.objects.all())


def webhook_endpoints_schedule_due(w: World):
    _due_message(w)
    w.did_work = lambda: len(w.receiver.requests) == 1 and message_attempts() == 1


def endpoint_disabled_notify(w: World):
    w.args = (_endpoint(w, active=False).pk,)
    w.did_work = lambda: len(mail.outbox) == 1


def low_balance_notify(w: World):
    account = Account.objects.get(lender=w.lender)
    w.args = (account.pk, "150.00")
    w.did_work = lambda: len(mail.outbox) == 1


def return_decided_email(w: World):
    delivery = _sold_delivery(w)
    rr = ReturnRequest.objects.create(
        delivery=delivery,
        lender=w.lender,
        reason="bad_contact",
        requested_by=w.owner,
        status=ReturnRequest.Status.DENIED,
        decided_at=timezone.now(),
    )
    w.args = (rr.pk,)
    w.did_work = lambda: len(mail.outbox) == 1


def text_reply_notify(w: World):
    """A consumer's answer to a text on a sold lead: the buyer (here its owner) is e-mailed once."""
    delivery = _sold_delivery(w)
    text = TextMessage.objects.create(
        direction="in",
        status="received",
        lead=delivery.lead,
        phone=delivery.lead.consumer.phone,
        body="Call me tonight",
        provider="twilio",
        provider_id="SM" + "7" * 32,
    )
    w.args = (text.pk,)
    w.did_work = lambda: len(mail.outbox) == 1


def _texting_delivery(w: World):
    """A sale whose consumer's consent covers texts, its outreach not started (its event never fired)."""
    from leads.consent import CONSENT_TEXT
    from leads.models import ConsentRecord

    make_subscription(w.lender, price="40.00")
    lead = QualifiedLeadFactory(consumer__email="maria@example.com")
    ConsentRecord.objects.create(lead=lead, text=CONSENT_TEXT, ip_address="203.0.113.7")
    return lead_distribute(lead_id=lead.pk)[0]


def deliveries_outreach_start(w: World):
    """The first touch (e-mail and text), the call-now task and the consumer's confirmation: each once."""
    delivery = _texting_delivery(w)
    w.args = ([delivery.pk],)
    w.did_work = lambda: (
        len([m for m in mail.outbox if m.to == ["maria@example.com"]]) == 2
        and len(sms.outbox) == 1
        and StepRun.objects.filter(enrolment__delivery=delivery, state="open").count() == 1
    )


def outreach_run_due(w: World):
    """Beat: a sale whose start task was lost is enrolled, and the steps due (its first touch; and, as the
    sale was 10 minutes ago, the e-mail at 5 minutes) run once."""
    delivery = _texting_delivery(w)
    Delivery.objects.filter(pk=delivery.pk).update(created_at=timezone.now() - timedelta(minutes=10))
    w.did_work = lambda: (
        StepRun.objects.filter(enrolment__delivery=delivery, key="step:2", state="done").exists()
        and len(sms.outbox) == 1
    )


def guideline_set_requalify(w: World):
    """A new rate sheet lends a stretched borrower more: their officer's call task opens once."""
    from integrations.tests.test_requalify import rate_sheet, sold_now
    from leads.models import GuidelineSet

    delivery = sold_now(w.lender)
    sheet = rate_sheet("test-drop", cut="1.5")
    GuidelineSet.objects.filter(pk=sheet.pk).update(is_active=True)
    w.args = (sheet.pk,)
    w.did_work = lambda: (
        StepRun.objects.filter(enrolment__delivery=delivery, key__startswith="requalify:").count() == 1
    )


def inbox_export_build(w: World):
    """A large inbox export the owner asked for: written, logged and e-mailed once."""
    from compliance.models import ContactAccess
    from marketplace.selectors import InboxFilters

    _sold_delivery(w)
    export = InboxExport.objects.create(lender=w.lender, user=w.owner, filters=InboxFilters().to_dict())
    w.args = (export.pk,)
    w.did_work = lambda: (
        len(mail.outbox) == 1
        and InboxExport.objects.get(pk=export.pk).rows == 1
        and ContactAccess.objects.filter(channel=ContactAccess.Channel.EXPORT).count() == 1
    )


def outbox_flush(w: World):
    """An e-mail task the broker refused at commit, left in the outbox: published once."""
    from core.models import OutboxTask

    endpoint = _endpoint(w, active=False)
    OutboxTask.objects.create(
        task_name="integrations.tasks.endpoint_disabled_notify",
        args=[endpoint.pk],
        created_at=timezone.now() - timedelta(minutes=5),
    )
    w.did_work = lambda: len(mail.outbox) == 1 and not OutboxTask.objects.exists()


def consumers_erase_expired(w: World):
    lead = QualifiedLeadFactory(status="unsold")
    Lead.objects.filter(pk=lead.pk).update(created_at=timezone.now() - timedelta(days=400))
    w.did_work = lambda: lead.consumer.__class__.objects.get(pk=lead.consumer_id).erased_at is not None


def records_expired_purge(w: World):
    message = _due_message(w)
    finished = timezone.now() - timedelta(days=4)
    WebhookMessage.objects.filter(pk=message.pk).update(status="succeeded", finished_at=finished)
    IdempotencyRecord.objects.create(
        holder=f"lender:{w.lender.pk}",
        key="k",
        method="POST",
        path="/api/v1/",
        request_sha256="x",
        response_status=200,
        response_body={},
        created_at=timezone.now() - timedelta(days=4),
    )
    w.did_work = lambda: (
        not IdempotencyRecord.objects.exists() and WebhookMessage.objects.get(pk=message.pk).payload is None
    )


SCENARIOS: dict[str, list[Callable[[World], None]]] = {
    "marketplace.tasks.leads_qualify_and_sell": [leads_qualify_and_sell],
    "marketplace.tasks.leads_stuck_sweep": [leads_stuck_sweep],
    "integrations.tasks.deliveries_stuck_sweep": [deliveries_stuck_sweep],
    "marketplace.tasks.lead_distribute": [lead_distribute_task],
    "marketplace.tasks.leads_distribute": [leads_distribute],
    "integrations.tasks.deliveries_notify": [deliveries_notify],
    "integrations.tasks.deliveries_email": [deliveries_email],
    "marketplace.tasks.leads_unsold_retry": [leads_unsold_retry],
    "marketplace.tasks.ping": [ping],
    "lenders.tasks.invitation_send": [invitation_send],
    "marketplace.tasks.followups_remind_overdue": [followups_remind_overdue],
    "marketplace.tasks.lender_speeds_refresh": [lender_speeds_refresh],
    "integrations.tasks.webhook_endpoint_send_due": [
        webhook_endpoint_send_due,
        send_endpoint_webhooks_failing,
    ],
    "core.tasks.outbox_flush": [outbox_flush],
    "integrations.tasks.webhook_endpoints_schedule_due": [webhook_endpoints_schedule_due],
    "integrations.tasks.endpoint_disabled_notify": [endpoint_disabled_notify],
    "integrations.tasks.low_balance_notify": [low_balance_notify],
    "integrations.tasks.return_decided_email": [return_decided_email],
    "integrations.tasks.text_reply_notify": [text_reply_notify],
    "integrations.tasks.inbox_export_build": [inbox_export_build],
    "compliance.tasks.consumers_erase_expired": [consumers_erase_expired],
    "integrations.tasks.records_expired_purge": [records_expired_purge],
    "integrations.outreach.tasks.deliveries_outreach_start": [deliveries_outreach_start],
    "integrations.outreach.tasks.outreach_run_due": [outreach_run_due],
    "integrations.outreach.tasks.guideline_set_requalify": [guideline_set_requalify],
}

# Issue 13.6: the old names of renamed tasks stay registered for one release (core.tasking.renamed_task),
# each running its task: the same scenarios hold for them.
RENAMED = {
    "marketplace.tasks.qualify_lead": "marketplace.tasks.leads_qualify_and_sell",  # old name
    "marketplace.tasks.sweep_stuck_leads": "marketplace.tasks.leads_stuck_sweep",  # old name
    "marketplace.tasks.distribute_lead": "marketplace.tasks.lead_distribute",  # old name
    "marketplace.tasks.distribute_leads": "marketplace.tasks.leads_distribute",  # old name
    "marketplace.tasks.retry_unsold_leads": "marketplace.tasks.leads_unsold_retry",  # old name
    "marketplace.tasks.remind_overdue_followups": "marketplace.tasks.followups_remind_overdue",  # old name
    "integrations.tasks.notify_deliveries": "integrations.tasks.deliveries_notify",  # old name
    "integrations.tasks.email_deliveries": "integrations.tasks.deliveries_email",  # old name
    "integrations.tasks.sweep_stuck_deliveries": "integrations.tasks.deliveries_stuck_sweep",  # old name
    "integrations.tasks.send_endpoint_webhooks": "integrations.tasks.webhook_endpoint_send_due",  # old name
    "integrations.tasks.send_due_webhooks": "integrations.tasks.webhook_endpoints_schedule_due",  # old name
    "integrations.tasks.purge_expired_records": "integrations.tasks.records_expired_purge",  # old name
    "integrations.tasks.email_endpoint_disabled": "integrations.tasks.endpoint_disabled_notify",  # old name
    "integrations.tasks.email_low_balance": "integrations.tasks.low_balance_notify",  # old name
    "integrations.tasks.email_return_decided": "integrations.tasks.return_decided_email",  # old name
    "lenders.tasks.send_invitation": "lenders.tasks.invitation_send",  # old name
    "compliance.tasks.erase_expired_consumers": "compliance.tasks.consumers_erase_expired",  # old name
    "core.tasks.sweep_outbox": "core.tasks.outbox_flush",  # old name
}
SCENARIOS.update({old: SCENARIOS[new] for old, new in RENAMED.items()})


def state(w: World) -> dict[str, Any]:
    """Every row of the project's apps (and the users), the e-mails and the webhook requests so far."""
    rows: dict[str, Any] = {}
    for model in apps.get_models():
        if model._meta.app_label in PROJECT_APPS or model._meta.label == "auth.User":
            rows[model._meta.label] = list(model._default_manager.order_by("pk").values())
    rows["mail"] = [(m.subject, tuple(m.to)) for m in mail.outbox]
    rows["texts"] = [(t.to, t.body) for t in sms.outbox]
    rows["webhook requests"] = [(h.get("webhook-id"), body) for h, body, _ in w.receiver.requests]
    return rows


@pytest.fixture(autouse=True)
def _allow_loopback(settings):
    settings.WEBHOOK_ALLOW_LOOPBACK = True


@pytest.fixture
def world(buying_lender, owner):
    with Receiver() as receiver:
        yield World(lender=buying_lender, owner=owner, receiver=receiver)


def test_every_task_has_a_scenario():
    names = project_task_names()
    assert len(names) >= 14, names
    missing = sorted(set(names) - set(SCENARIOS))
    assert not missing, f"tasks without an idempotency scenario in {__name__}: {missing}"
    assert not set(SCENARIOS) - set(names), "scenarios for tasks that no longer exist"


@pytest.mark.parametrize("name", project_task_names())
def test_running_a_task_twice_is_running_it_once(name, world, django_capture_on_commit_callbacks):
    if name not in SCENARIOS:
        pytest.fail(f"{name} has no scenario: add one to SCENARIOS in {__name__}")
    task = app.tasks[name]
    for scenario in SCENARIOS[name]:
        scenario(world)
        # As a worker runs it: work queued on commit (follow-up tasks, e-mails, webhooks) runs too.
        with django_capture_on_commit_callbacks(execute=True):
            task.apply(args=world.args, kwargs=world.kwargs).get()
        assert world.did_work(), f"{name} ({scenario.__name__}): the first run did nothing to compare"
        once = state(world)
        with django_capture_on_commit_callbacks(execute=True):
            task.apply(args=world.args, kwargs=world.kwargs).get()
        twice = state(world)
        changed = {k for k in once if once[k] != twice[k]}
        assert not changed, f"{name} ({scenario.__name__}): a second run changed {sorted(changed)}"


def test_a_low_balance_alert_for_a_new_crossing_is_still_sent(world, django_capture_on_commit_callbacks):
    """The guard that stops a repeated alert must not swallow the next real one."""
    account = Account.objects.get(lender=world.lender)
    task = app.tasks["integrations.tasks.low_balance_notify"]
    for balance in ("150.00", "150.00", "120.00"):
        task.apply(args=(account.pk, balance)).get()
    assert len(mail.outbox) == 2
    assert "$120.00" in mail.outbox[1].subject


@pytest.mark.parametrize(("old", "new"), RENAMED.items())
def test_a_renamed_task_runs_under_its_old_name_with_its_options(old, new):
    """Issue 13.6: a message queued (or a task set aside, or an outbox row written) before the rename still
    finds a task, which behaves as the new one: same options, same sweeper, same outbox."""
    project_task_names()
    alias, task = app.tasks[old], app.tasks[new]
    assert isinstance(alias, ReliableTask)
    for option in (
        "max_retries",
        "time_limit",
        "soft_time_limit",
        "acks_late",
        "autoretry_for",
        "retry_backoff",
        "outbox",
    ):
        assert getattr(alias, option) == getattr(task, option), option
    # Lost work under the old name is found by the new task's sweeper; a beat task's by the new beat job.
    assert alias.swept_by == (task.swept_by or new)


def test_routes_and_beat_name_tasks_by_their_current_names(settings):
    """Issue 13.6: a route or a schedule left on an old name would send work to the wrong queue (or run the
    alias that goes away next release)."""
    current = set(project_task_names()) - set(RENAMED)
    assert set(settings.CELERY_TASK_ROUTES) <= current
    assert {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()} <= current
