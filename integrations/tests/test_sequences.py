"""Issue 15.3: the first 24 hours as a routine. Steps run themselves on beat, each once (claimed before it
sends; a dead worker's claim settled by what the channel recorded); the routine stops when the consumer
replies or says STOP (through Twilio's signed webhook), opts out, is erased, or the lead moves on; texts and
call tasks keep quiet hours (frozen clock: `now` passed in); each step leaves an activity."""

import threading
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core import mail
from django.db import connection
from django.utils import timezone

from compliance.models import OptOut
from compliance.services import consumer_erase, optout_record
from integrations.channels import sms
from integrations.channels.sms import SmsError
from integrations.models import Enrolment, StepRun, TextMessage
from integrations.outreach import services as outreach
from integrations.outreach.services import StepInput, sequence_save
from leads.consent import CONSENT_TEXT
from leads.models import ConsentRecord
from lenders.models import AssignmentRule
from marketplace.models import Activity, Delivery
from marketplace.services import activity_log, lead_distribute
from marketplace.tests.factories import MemberFactory, QualifiedLeadFactory, make_subscription

from .test_channels_webhooks import text_in, twilio_settings  # noqa: F401 - the fixture, used by name

pytestmark = pytest.mark.django_db

# Austin (Central time): a Tuesday at 10:00 am CDT, well inside the day.
SOLD = datetime(2026, 6, 2, 15, 0, tzinfo=UTC)


@pytest.fixture
def jane(buying_lender):
    member = MemberFactory(lender=buying_lender, role="officer", username="jane")
    AssignmentRule.objects.create(lender=buying_lender, membership=member)
    return member.user


def sold_at(lender, when: datetime = SOLD, **lead) -> Delivery:
    """A lead (its consent covers texts) sold at `when`, enrolled and its first touch sent at that time."""
    if not lender.subscriptions.exists():
        make_subscription(lender, exclusive=True, price="90.00")
    row = QualifiedLeadFactory(**lead)
    ConsentRecord.objects.create(lead=row, text=CONSENT_TEXT, ip_address="203.0.113.7")
    delivery = lead_distribute(lead_id=row.pk)[0]
    Delivery.objects.filter(pk=delivery.pk).update(created_at=when)
    outreach.deliveries_outreach_start(delivery_ids=[delivery.pk], now=when)
    return Delivery.objects.get(pk=delivery.pk)


def run(delivery: Delivery, key: str) -> StepRun:
    return StepRun.objects.get(enrolment__delivery=delivery, key=key)


def states(delivery: Delivery) -> dict[str, str]:
    return dict(StepRun.objects.filter(enrolment__delivery=delivery).values_list("key", "state"))


def test_the_shipped_routine_runs_on_beat_step_by_step(buying_lender, jane):
    delivery = sold_at(buying_lender, consumer__email="maria@example.com")
    assert states(delivery)["step:1"] == "open"  # call now
    assert states(delivery)["step:2"] == "pending"
    outreach.outreach_run_due(now=SOLD + timedelta(minutes=4))
    assert states(delivery)["step:2"] == "pending"  # not yet
    outreach.outreach_run_due(now=SOLD + timedelta(minutes=5))
    assert states(delivery)["step:2"] == "done"
    followup = [m for m in mail.outbox if m.subject == "Sorry I missed you, Maria"]
    assert len(followup) == 1
    # Marketing, unlike the first touch: one-click unsubscribe (RFC 8058).
    assert followup[0].extra_headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    outreach.outreach_run_due(now=SOLD + timedelta(hours=1))
    assert len(sms.outbox) == 2 and "again. When is a good time" in sms.outbox[1].body
    outreach.outreach_run_due(now=SOLD + timedelta(hours=4))
    assert run(delivery, "step:4").state == "open" and run(delivery, "step:1").state == "missed"
    # Next morning: 9 am in Austin on Wednesday.
    morning = datetime(2026, 6, 3, 14, 0, tzinfo=UTC)
    assert run(delivery, "step:5").due_at == morning
    outreach.outreach_run_due(now=morning)
    assert run(delivery, "step:5").state == "done"
    outreach.outreach_run_due(now=SOLD + timedelta(hours=24))
    assert run(delivery, "step:6").state == "open"
    # Each step left an activity saying what was sent or what is due.
    notes = list(Activity.objects.filter(delivery=delivery, automated=True).values_list("kind", "note"))
    assert sum(kind == "email" for kind, _ in notes) == 3  # first touch, 5 min, next morning
    assert sum(kind == "text" for kind, _ in notes) == 2
    assert sum(kind == "note" and n.startswith("Call task due") for kind, n in notes) == 3
    assert any("Step 2: e-mail at 5 min. Subject: Sorry I missed you, Maria" in n for _, n in notes)
    # The last call task is open: the routine runs until it is done, then beat marks it completed.
    outreach.enrolments_completed_mark()
    assert Enrolment.objects.get(delivery=delivery).state == "active"
    outreach.call_tasks_complete(delivery=delivery, user=jane)
    outreach.enrolments_completed_mark()
    assert Enrolment.objects.get(delivery=delivery).state == "completed"


def test_a_step_runs_once_when_its_task_runs_twice(buying_lender, jane):
    delivery = sold_at(buying_lender)
    at = SOLD + timedelta(hours=1)
    text_step = run(delivery, "step:3")
    assert outreach.step_run_execute(run_id=text_step.pk, now=at) == "sent"
    assert outreach.step_run_execute(run_id=text_step.pk, now=at) == "taken"
    outreach.outreach_run_due(now=at)
    assert TextMessage.objects.filter(delivery=delivery).count() == 2  # the first touch's and this one
    assert len(sms.outbox) == 2


def test_once_the_consumer_is_reached_the_if_not_reached_steps_are_skipped(buying_lender, jane):
    delivery = sold_at(buying_lender)
    activity_log(delivery=delivery, user=jane, kind="call", outcome="reached")
    outreach.outreach_run_due(now=SOLD + timedelta(hours=1))
    assert run(delivery, "step:2").state == run(delivery, "step:3").state == "skipped"
    assert run(delivery, "step:2").result == "Skipped: the consumer was already reached."
    assert len(sms.outbox) == 1  # the first touch only


def test_a_reply_through_twilios_signed_webhook_stops_the_routine(
    client, buying_lender, jane, django_capture_on_commit_callbacks
):
    delivery = sold_at(buying_lender, consumer__phone="5125550142")
    with django_capture_on_commit_callbacks(execute=True):
        assert text_in(client, "5125550142", "Yes, call me after 5").status_code == 200
    enrolment = Enrolment.objects.get(delivery=delivery)
    assert (enrolment.state, enrolment.stop_reason) == ("stopped", "replied")
    assert not StepRun.objects.filter(enrolment=enrolment, state__in=["pending", "open"]).exists()
    outreach.outreach_run_due(now=SOLD + timedelta(hours=2))
    assert len(sms.outbox) == 1 and not [m for m in mail.outbox if m.subject.startswith("Sorry I missed")]
    assert Activity.objects.filter(
        delivery=delivery, note="Automated sequence stopped: the consumer replied."
    ).exists()


def test_stop_through_the_signed_webhook_stops_every_text_and_the_routine(
    client, buying_lender, owner, jane, django_capture_on_commit_callbacks
):
    delivery = sold_at(buying_lender, consumer__phone="5125550142")
    with django_capture_on_commit_callbacks(execute=True):
        assert text_in(client, "5125550142", "STOP").status_code == 200
    assert Enrolment.objects.get(delivery=delivery).stop_reason == "opted_out"
    outreach.outreach_run_due(now=SOLD + timedelta(hours=2))
    assert len(sms.outbox) == 1  # only the first touch, before the STOP
    client.force_login(owner)
    page = client.get(f"/portal/leads/{delivery.pk}/").content.decode()
    assert "Texts: opted out" in page and "stopped" in page


def test_a_text_to_a_number_that_stopped_through_another_lead_is_never_sent(buying_lender, jane):
    """The STOP came in on the consumer's other request: this routine learns it when its text is due."""
    first = sold_at(buying_lender, consumer__phone="5125550142")
    optout_record(channel=OptOut.Channel.SMS, address="5125550142", source=OptOut.Source.SMS_KEYWORD)
    outreach.outreach_run_due(now=SOLD + timedelta(hours=1))
    assert len(sms.outbox) == 1
    assert Enrolment.objects.get(delivery=first).stop_reason == "opted_out"


def test_erasing_the_consumer_stops_the_routine_without_a_word_sent(buying_lender, jane):
    delivery = sold_at(buying_lender)
    consumer_erase(consumer_id=delivery.lead.consumer_id)
    assert Enrolment.objects.get(delivery=delivery).stop_reason == "erased"
    sent = (len(mail.outbox), len(sms.outbox))
    outreach.outreach_run_due(now=SOLD + timedelta(days=2))
    assert (len(mail.outbox), len(sms.outbox)) == sent


def test_a_paused_sequence_enrols_the_first_touch_only(buying_lender, jane):
    default = outreach.sequence_default_ensure(lender_id=buying_lender.pk)
    default.is_active = False
    default.save()
    delivery = sold_at(buying_lender)
    assert set(states(delivery)) == {"first_touch:email", "first_touch:text"}


# --- quiet hours --------------------------------------------------------------------------------------------


def test_nothing_is_texted_or_called_in_quiet_hours_whatever_the_routine_says(buying_lender, jane):
    """A routine of a text every hour, from a sale at 6 pm in Los Angeles: the texts at 7 and 8 pm go; those
    at 9, 10 and 11 pm (and midnight...) wait for 8 am; beat is run every 15 minutes through the night."""
    sequence_save(
        lender=buying_lender,
        sequence=outreach.sequence_default_ensure(lender_id=buying_lender.pk),
        name="Hourly",
        is_active=True,
        is_default=True,
        subscription_ids=[],
        steps=[
            StepInput(
                action="text", timing="after", delay_minutes=60 * h, skip_if_reached=False, body=f"T{h}"
            )
            for h in range(1, 7)
        ]
        + [StepInput(action="call", timing="after", delay_minutes=300, skip_if_reached=False)],
    )
    make_subscription(buying_lender, states=("CA",), exclusive=True, price="90.00")
    sold = datetime(2026, 6, 3, 1, 0, tzinfo=UTC)  # 6 pm PDT on June 2
    delivery = sold_at(
        buying_lender, sold, zip_code="94103", city="San Francisco", state="CA", county="San Francisco County"
    )
    sent_at: list[datetime] = []
    at = sold
    while at < sold + timedelta(hours=16):
        before = len(sms.outbox)
        outreach.outreach_run_due(now=at)
        sent_at += [at] * (len(sms.outbox) - before)
        at += timedelta(minutes=15)
    for when in sent_at:
        local = when.astimezone(ZoneInfo("America/Los_Angeles"))
        assert 8 <= local.hour < 21, f"a text at {local}"
    # The first touch at 6 pm (at the sale), T1 at 7 pm, T2 at 8 pm; the rest waited for 8 am, where one
    # text goes (the others are skipped: no stack of texts at breakfast).
    assert len(sms.outbox) == 4
    assert [w.astimezone(ZoneInfo("America/Los_Angeles")).hour for w in sent_at] == [19, 20, 8]
    call = run(delivery, "step:7")
    assert call.due_at == datetime(2026, 6, 3, 15, 0, tzinfo=UTC)  # 11 pm -> 8 am PDT
    waited = StepRun.objects.filter(enrolment__delivery=delivery, key__in=["step:4", "step:5", "step:6"])
    assert {r.state for r in waited} == {"skipped"}


def test_a_zip_without_a_known_zone_keeps_both_coasts_hours(buying_lender, jane):
    """An APO ZIP zipcodes gives no zone: the text waits until it is 8 am in Los Angeles too."""
    sold = datetime(2026, 6, 2, 13, 0, tzinfo=UTC)  # 9 am in New York, 6 am in Los Angeles
    delivery = sold_at(buying_lender, sold, zip_code="09001")  # sold in TX's market, an APO address
    assert Enrolment.objects.get(delivery=delivery).time_zones == ["America/New_York", "America/Los_Angeles"]
    assert run(delivery, "first_touch:text").due_at == datetime(2026, 6, 2, 15, 0, tzinfo=UTC)
    assert sms.outbox == []


# --- a step runs once: claims, dead workers, failures ---------------------------------------------------


def claimed_by_a_dead_worker(step: StepRun, at: datetime) -> None:
    """As a worker leaves a step it claimed and was then killed (SIGKILL, the machine lost) at `at`."""
    StepRun.objects.filter(pk=step.pk).update(state="sending", claimed_at=at, attempts=1)


TEXT_DUE = SOLD + timedelta(hours=1)
LATER = TEXT_DUE + timedelta(minutes=10)  # past STALE_CLAIM: the claim's worker is dead


def test_a_text_claimed_by_a_worker_that_died_before_texting_is_sent_once(buying_lender, jane):
    delivery = sold_at(buying_lender)
    claimed_by_a_dead_worker(run(delivery, "step:3"), TEXT_DUE)
    assert outreach.step_runs_recover(now=LATER) == 1
    assert run(delivery, "step:3").state == "pending"  # the first touch's text is its own step's, not this
    outreach.outreach_run_due(now=LATER)
    assert run(delivery, "step:3").state == "done" and len(sms.outbox) == 2
    outreach.outreach_run_due(now=LATER + timedelta(minutes=1))
    assert len(sms.outbox) == 2


def test_a_text_the_provider_took_before_its_worker_died_is_never_sent_again(buying_lender, jane):
    """The TextMessage row is written before Twilio is asked: found after the claim, it proves the send."""
    delivery = sold_at(buying_lender)
    step = run(delivery, "step:3")
    claimed_by_a_dead_worker(step, TEXT_DUE)
    # What the dead worker got as far as: its row written (keyed by its claim), the provider asked, SIGKILL.
    step.refresh_from_db()
    text = TextMessage.objects.create(
        send_key=outreach.text_key(step),
        direction="out",
        status="queued",
        lead=delivery.lead,
        delivery=delivery,
        phone=delivery.lead.consumer.phone,
        body="Hi",
        provider="console",
    )
    outreach.step_runs_recover(now=LATER)
    step.refresh_from_db()
    assert step.state == "done" and step.text_message == text
    outreach.outreach_run_due(now=LATER)
    assert len(sms.outbox) == 1  # the first touch's only


def test_an_e_mail_claimed_by_a_worker_that_died_is_sent_once(buying_lender, jane):
    """The e-mail's activity and its step's `done` commit together, before the mail server's connection is
    closed: a claim left `sending` sent nothing we know of, and is sent again, once."""
    delivery = sold_at(buying_lender)
    step = run(delivery, "step:2")
    at = SOLD + timedelta(minutes=5)
    claimed_by_a_dead_worker(step, at)
    outreach.step_runs_recover(now=at + timedelta(minutes=10))
    assert run(delivery, "step:2").state == "pending"
    outreach.outreach_run_due(now=at + timedelta(minutes=10))
    outreach.outreach_run_due(now=at + timedelta(minutes=11))
    assert len([m for m in mail.outbox if m.subject.startswith("Sorry I missed you")]) == 1
    assert Activity.objects.filter(delivery=delivery, note__startswith=step.title).count() == 1


def test_a_live_claim_is_left_alone(buying_lender, jane):
    delivery = sold_at(buying_lender)
    step = run(delivery, "step:3")
    claimed_by_a_dead_worker(step, TEXT_DUE)
    assert outreach.step_runs_recover(now=TEXT_DUE + timedelta(minutes=1)) == 0  # still within its time limit
    assert outreach.step_run_execute(run_id=step.pk, now=TEXT_DUE + timedelta(minutes=1)) == "taken"


def test_a_provider_outage_is_retried_then_given_up_without_stopping_others(buying_lender, jane, monkeypatch):
    delivery = sold_at(buying_lender)
    step = run(delivery, "step:3")

    def down(*args, **kwargs):
        raise SmsError("Twilio could not be reached (ConnectTimeout).", transient=True)

    monkeypatch.setattr("integrations.channels.sms.ConsoleBackend.send", down)
    at = SOLD + timedelta(hours=1)
    waits = []
    for _ in range(5):
        assert outreach.step_run_execute(run_id=step.pk, now=at) in ("retry", "failed")
        step.refresh_from_db()
        if step.state == "failed":
            break
        waits.append(step.due_at - timezone.now())
        at = step.due_at
    assert step.state == "failed" and step.attempts == 5
    assert step.result == "Not sent: SmsError."
    assert len(waits) == 4 and waits[0] < waits[-1]
    # The rest of the routine goes on.
    outreach.outreach_run_due(now=SOLD + timedelta(hours=4))
    assert run(delivery, "step:4").state == "open"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_workers_running_the_same_step_at_once_send_it_once(buying_lender, jane):
    """Four threads (each its own PostgreSQL connection) run the e-mail at 5 minutes at the same moment."""
    delivery = sold_at(buying_lender)
    step = run(delivery, "step:2")
    # Committed here, the sale's event enrolled it on the wall clock: due at the frozen time instead.
    at = SOLD + timedelta(minutes=10)
    StepRun.objects.filter(pk=step.pk).update(due_at=at - timedelta(minutes=5))
    barrier = threading.Barrier(4)
    outcomes: list[str] = []

    def worker():
        try:
            barrier.wait()
            outcomes.append(outreach.step_run_execute(run_id=step.pk, now=at))
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes).count("sent") == 1, outcomes
    assert len([m for m in mail.outbox if m.subject.startswith("Sorry I missed you")]) == 1
    assert Activity.objects.filter(delivery=delivery, note__startswith=step.title).count() == 1
    assert StepRun.objects.get(pk=step.pk).state == "done"
