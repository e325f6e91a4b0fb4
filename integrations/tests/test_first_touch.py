"""Issue 15.2: the first touch. A sale sends the buying lender's message within seconds (e-mail; a text when
the consent covers texts) in the lender's name, signed by the assigned officer; each buyer of a shared lead
names only itself; a step runs once however often its task runs; the consumer is told who will contact them
(result page and a confirmation e-mail with a signed link)."""

from datetime import UTC, datetime, timedelta

import pytest
from django.core import mail
from django.urls import reverse

from integrations.channels import sms
from integrations.models import Enrolment, MessageTemplate, StepRun
from integrations.outreach import services as outreach
from integrations.outreach.merge import TemplateInvalid, render, render_line, template_check
from integrations.outreach.tasks import deliveries_outreach_start
from leads.consent import CONSENT_TEXT, consent_covers_texts
from leads.models import ConsentRecord
from lenders.models import AssignmentRule, Membership
from marketplace.models import Activity, Delivery
from marketplace.services import lead_distribute
from marketplace.tests.factories import MemberFactory, QualifiedLeadFactory, make_subscription

pytestmark = pytest.mark.django_db


def consumer_mail(address: str) -> list:
    return [m for m in mail.outbox if m.to == [address]]


def lead_with_consent(text: str = CONSENT_TEXT, **fields):
    lead = QualifiedLeadFactory(**fields)
    ConsentRecord.objects.create(lead=lead, text=text, ip_address="203.0.113.7")
    return lead


def officer_of(lender, username: str, **profile) -> Membership:
    member = MemberFactory(lender=lender, role="officer", username=username)
    member.user.first_name, member.user.last_name = profile.pop("first", "Jane"), profile.pop("last", "Doe")
    member.user.save()
    Membership.objects.filter(pk=member.pk).update(**profile)
    AssignmentRule.objects.create(lender=lender, membership=member)
    member.refresh_from_db()
    return member


def sell(lead, capture) -> list[Delivery]:
    """Sell as the pipeline does: the deliveries_created event fires on commit and its tasks run (eager)."""
    with capture(execute=True):
        deliveries = lead_distribute(lead_id=lead.pk)
    return deliveries


@pytest.fixture
def jane(buying_lender):
    return officer_of(
        buying_lender,
        "jane",
        nmls_id="2045511",
        phone="5125550199",
        booking_url="https://cal.example/jane",
    )


# --- merge fields ----------------------------------------------------------------------------------------


def test_merge_fills_known_fields_and_runs_nothing_else():
    values = {"first_name": "Maria", "estimate": "$350,000", "officer_name": "Jane Doe"}
    assert render("Hi {{first_name}}, up to {{ estimate }}.", values) == "Hi Maria, up to $350,000."
    # A lender's braces are text to us: no attribute lookups, no tags, nothing executed.
    with pytest.raises(TemplateInvalid, match="remove the other braces"):
        template_check("{{first_name.__class__}}")
    with pytest.raises(TemplateInvalid, match="Unknown merge field"):
        template_check("{{ settings }}")
    with pytest.raises(TemplateInvalid, match="remove the other braces"):
        template_check("{% load static %}{{first_name}}")
    # A value is never re-read as a template, and an HTML-looking value stays text (the e-mail escapes it).
    assert render("{{first_name}}", {"first_name": "{{estimate}}<b>"}) == "{{estimate}}<b>"


def test_a_line_whose_field_has_no_value_is_left_out():
    text = "Hi {{first_name}},\n\nBook a time: {{booking_url}}\n\nCall me at {{officer_phone}}."
    assert render(text, {"first_name": "Maria", "officer_phone": "(512) 555-0199"}) == (
        "Hi Maria,\n\nCall me at (512) 555-0199."
    )
    assert render_line("{{first_name}}, about\nyour {{loan_purpose}}", {"first_name": "Maria"}) == (
        "Maria, about your"
    )


def test_our_consent_versions_and_partners_texts_say_whether_texts_are_covered():
    assert consent_covers_texts(text=CONSENT_TEXT)
    assert consent_covers_texts(text="I agree to calls, e-mails and text messages from up to 3 lenders.")
    assert consent_covers_texts(text="You may contact me by phone or SMS.")
    assert not consent_covers_texts(text="I agree that Lead Market and up to 3 lenders may contact me.")
    assert not consent_covers_texts(text="In this context, lenders may call me.")  # a word, not a substring
    assert not consent_covers_texts(text="")


# --- the first touch -------------------------------------------------------------------------------------


@pytest.mark.usefixtures("daytime")  # texts go at once only outside quiet hours
def test_a_sale_sends_the_first_touch_in_the_lenders_name_signed_by_its_officer(
    buying_lender, jane, django_capture_on_commit_callbacks
):
    make_subscription(buying_lender, exclusive=True, price="90.00")
    lead = lead_with_consent(consumer__email="maria@example.com", consumer__phone="5125550142")
    (delivery,) = sell(lead, django_capture_on_commit_callbacks)

    first, confirmation = consumer_mail("maria@example.com")
    assert first.subject == "Maria, about your mortgage request with Lone Star Lending"
    assert first.from_email.startswith("Lone Star Lending <")
    assert first.reply_to == [jane.user.email]
    body = first.body
    assert "I'm Jane Doe, a loan officer with Lone Star Lending (NMLS #2045511)." in body
    assert "you may qualify for up to $420,000 with a Conventional loan" in body
    assert "(512) 555-0199" in body and "https://cal.example/jane" in body
    assert "List-Unsubscribe" not in first.extra_headers  # the answer to their request, not marketing

    (text,) = sms.outbox
    assert text.to == "+15125550142"
    assert text.body.startswith("Hi Maria, this is Jane Doe at Lone Star Lending")
    assert "$420,000" in text.body and "Reply STOP to opt out." in text.body

    # Each step left an activity saying what was sent (and the machine's contact is not the officer's).
    notes = list(delivery.activities.filter(automated=True).values_list("kind", "note"))
    assert any(
        kind == "email" and "First touch: e-mail. Subject: Maria, about" in note for kind, note in notes
    )
    assert any(kind == "text" and note == text.body for kind, note in notes)
    assert any(
        kind == "note" and note.startswith("Call task due (Step 1: call task now)") for kind, note in notes
    )
    assert Delivery.objects.get(pk=delivery.pk).first_contact_at is None
    runs = dict(StepRun.objects.filter(enrolment__delivery=delivery).values_list("key", "state"))
    assert runs["first_touch:email"] == runs["first_touch:text"] == "done"
    assert runs["step:1"] == "open"  # call now: on the officer's My day
    assert runs["step:2"] == "pending"  # the e-mail at 5 minutes

    # The consumer's confirmation, from the marketplace: who will contact them, and a signed link back.
    assert confirmation.subject == "Your mortgage request: who will contact you"
    assert "Lone Star Lending: your loan officer is Jane Doe, (512) 555-0199" in confirmation.body
    assert "Only this lender has your request." in confirmation.body


def test_the_first_touch_runs_once_however_often_its_task_runs(
    buying_lender, jane, django_capture_on_commit_callbacks
):
    make_subscription(buying_lender, exclusive=True, price="90.00")
    lead = lead_with_consent(consumer__email="maria@example.com")
    (delivery,) = sell(lead, django_capture_on_commit_callbacks)
    sent = (len(mail.outbox), len(sms.outbox), Activity.objects.count(), StepRun.objects.count())
    for _ in range(2):
        with django_capture_on_commit_callbacks(execute=True):
            deliveries_outreach_start.apply(args=([delivery.pk],)).get()
        outreach.deliveries_enrol(delivery_ids=[delivery.pk])
    assert (len(mail.outbox), len(sms.outbox), Activity.objects.count(), StepRun.objects.count()) == sent
    assert Enrolment.objects.filter(delivery=delivery).count() == 1


def test_a_consent_that_does_not_name_texts_gets_no_text(
    buying_lender, jane, django_capture_on_commit_callbacks
):
    make_subscription(buying_lender, exclusive=True, price="90.00")
    lead = lead_with_consent(text="I agree that Lead Market and up to 3 lenders may contact me.")
    (delivery,) = sell(lead, django_capture_on_commit_callbacks)
    assert sms.outbox == []
    keys = set(StepRun.objects.filter(enrolment__delivery=delivery).values_list("key", flat=True))
    assert "first_touch:text" not in keys and "first_touch:email" in keys
    assert "step:3" not in keys  # the sequence's text at 1 h is never scheduled either
    assert len(consumer_mail(lead.consumer.email)) == 2  # first touch and confirmation


@pytest.mark.usefixtures("daytime")  # texts go at once only outside quiet hours
def test_each_buyer_of_a_shared_lead_names_only_itself(
    buying_lender, rival_lender, jane, django_capture_on_commit_callbacks
):
    for lender in (buying_lender, rival_lender):
        make_subscription(lender, exclusive=False, price="30.00")
    officer_of(rival_lender, "raj", first="Raj", last="Patel", nmls_id="777001")
    lead = lead_with_consent(consumer__email="maria@example.com")
    deliveries = sell(lead, django_capture_on_commit_callbacks)
    assert len(deliveries) == 2
    firsts = [m for m in consumer_mail("maria@example.com") if m.subject.startswith("Maria, about")]
    assert len(firsts) == 2 and len(sms.outbox) == 2
    for message in firsts:
        mine, other = (
            ("Lone Star Lending", "Rival Mortgage")
            if "Lone Star" in message.subject
            else ("Rival Mortgage", "Lone Star Lending")
        )
        assert mine in message.body and other not in message.body and other not in message.from_email
    for text in sms.outbox:
        assert ("Lone Star" in text.body) != ("Rival" in text.body)
    (confirmation,) = [m for m in consumer_mail("maria@example.com") if m.subject.startswith("Your mortgage")]
    assert "Lone Star Lending" in confirmation.body and "Rival Mortgage" in confirmation.body
    assert "No more than 3 lenders get your request." in confirmation.body


@pytest.mark.usefixtures("daytime")  # texts go at once only outside quiet hours
def test_the_lenders_own_template_and_an_unassigned_lead(buying_lender, django_capture_on_commit_callbacks):
    outreach.message_template_save(
        lender=buying_lender,
        user=None,
        send_email=True,
        email_subject="Your {{loan_purpose}} in {{city}}",
        email_body="Hello {{first_name}}.\nYour officer: {{officer_name}}\n"
        "{{lender_name}}, NMLS {{lender_nmls}}",
        send_text=True,
        text_body="{{lender_name}}: hello {{first_name}}",
    )
    make_subscription(buying_lender, exclusive=True, price="90.00")
    lead = lead_with_consent(consumer__email="maria@example.com")
    sell(lead, django_capture_on_commit_callbacks)
    first = consumer_mail("maria@example.com")[0]
    assert first.subject == "Your purchase in Austin"
    # No officer assigned: their line is left out rather than sent half empty.
    assert "Your officer" not in first.body
    assert f"Lone Star Lending, NMLS {buying_lender.nmls_id}" in first.body
    assert sms.outbox[0].body == "Lone Star Lending: hello Maria Reply STOP to opt out."


def test_a_template_with_a_field_we_do_not_have_is_refused(buying_lender):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError) as exc:
        outreach.message_template_save(
            lender=buying_lender,
            user=None,
            send_email=True,
            email_subject="Hi",
            email_body="Your SSN is {{ssn}}",
            send_text=False,
            text_body="x",
        )
    assert "email_body" in exc.value.message_dict
    assert not MessageTemplate.objects.filter(lender=buying_lender).exists()


# --- quiet hours, with a frozen clock ---------------------------------------------------------------------


def test_a_text_sold_late_at_night_waits_for_the_consumers_morning(buying_lender, jane):
    """Austin (Central time). Sold at 11:30 pm local: the e-mail goes at once, the text at 8 am."""
    make_subscription(buying_lender, exclusive=True, price="90.00")
    lead = lead_with_consent(consumer__email="maria@example.com")
    (delivery,) = lead_distribute(lead_id=lead.pk)
    sold = datetime(2026, 6, 3, 4, 30, tzinfo=UTC)  # 11:30 pm CDT on June 2
    Delivery.objects.filter(pk=delivery.pk).update(created_at=sold)
    outreach.deliveries_outreach_start(delivery_ids=[delivery.pk], now=sold + timedelta(seconds=2))
    assert [m.subject for m in consumer_mail("maria@example.com")][0].startswith("Maria, about")
    assert sms.outbox == []
    runs = {r.key: r for r in StepRun.objects.filter(enrolment__delivery=delivery)}
    morning = datetime(2026, 6, 3, 13, 0, tzinfo=UTC)  # 8 am CDT
    assert runs["first_touch:text"].due_at == morning
    assert runs["step:1"].due_at == morning  # the call-now task is not due at midnight either
    assert runs["step:1"].state == "pending"
    # Beat at 7:59 am sends nothing; at 8:00 the text goes and the call task opens.
    outreach.outreach_run_due(now=morning - timedelta(minutes=1))
    assert sms.outbox == []
    outreach.outreach_run_due(now=morning)
    assert len(sms.outbox) == 1
    assert StepRun.objects.get(pk=runs["step:1"].pk).state == "open"


def test_a_step_found_due_in_quiet_hours_waits_without_sending(buying_lender, jane):
    """A step due at 8:55 pm that beat reaches at 9:05 pm (a busy worker) waits for the morning."""
    make_subscription(buying_lender, exclusive=True, price="90.00")
    lead = lead_with_consent()
    (delivery,) = lead_distribute(lead_id=lead.pk)
    sold = datetime(2026, 6, 2, 0, 55, tzinfo=UTC)  # 7:55 pm CDT: the text at 1 h is due 8:55 pm
    Delivery.objects.filter(pk=delivery.pk).update(created_at=sold)
    outreach.deliveries_outreach_start(delivery_ids=[delivery.pk], now=sold)
    sms.outbox.clear()
    late = datetime(2026, 6, 2, 2, 5, tzinfo=UTC)  # 9:05 pm CDT
    text_step = StepRun.objects.get(enrolment__delivery=delivery, key="step:3")
    assert text_step.due_at == sold + timedelta(hours=1)
    assert outreach.step_run_execute(run_id=text_step.pk, now=late) == "waiting"
    text_step.refresh_from_db()
    assert sms.outbox == [] and text_step.state == "pending"
    assert text_step.due_at == datetime(2026, 6, 2, 13, 0, tzinfo=UTC)


# --- the consumer's pages ---------------------------------------------------------------------------------


def test_the_result_page_and_the_signed_link_say_who_will_contact_them(
    client, buying_lender, jane, django_capture_on_commit_callbacks
):
    make_subscription(buying_lender, exclusive=True, price="90.00")
    lead = lead_with_consent(consumer__email="maria@example.com")
    sell(lead, django_capture_on_commit_callbacks)
    lead.refresh_from_db()
    html = client.get(reverse("leads:result", args=[lead.public_id])).content.decode()
    assert "Lone Star Lending" in html and "Jane Doe" in html and "Only this lender has your request." in html
    confirmation = consumer_mail("maria@example.com")[-1]
    link = next(w for w in confirmation.body.split() if "/r/" in w)
    again = client.get(link.removeprefix("http://127.0.0.1:8000"))
    assert again.status_code == 200 and "Jane Doe" in again.content.decode()
    assert client.get("/r/not-a-token/").status_code == 404
    assert client.get(link.removeprefix("http://127.0.0.1:8000")[:-3] + "xx/").status_code == 404
