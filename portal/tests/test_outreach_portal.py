"""Issue 15.2 and 15.3 in the portal: the officer's profile, the first-touch editor and its preview, the
sequence editor (owners and managers), My day's call tasks, the analytics count, the lead page's panel."""

from datetime import timedelta

import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from compliance.models import ContactAccess
from integrations.models import Enrolment, MessageTemplate, Sequence, StepRun
from integrations.outreach import services as outreach
from lenders.models import AssignmentRule, Membership
from marketplace.models import Activity, Delivery
from marketplace.services import lead_distribute
from marketplace.tests.factories import MemberFactory, QualifiedLeadFactory, make_subscription

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("daytime")]


@pytest.fixture
def jane(buying_lender):
    """An officer in the round-robin, with her profile filled in."""
    member = MemberFactory(lender=buying_lender, role="officer", username="jane")
    member.user.first_name, member.user.last_name = "Jane", "Doe"
    member.user.save()
    Membership.objects.filter(pk=member.pk).update(nmls_id="2045511", phone="5125550199")
    AssignmentRule.objects.create(lender=buying_lender, membership=member)
    return member.user


def sold(lender, **lead) -> Delivery:
    """A lead sold and enrolled (its start task run by hand: the test transaction never commits)."""
    if not lender.subscriptions.exists():
        make_subscription(lender, exclusive=True, price="90.00")
    delivery = lead_distribute(lead_id=QualifiedLeadFactory(**lead).pk)[0]
    outreach.deliveries_outreach_start(delivery_ids=[delivery.pk])
    return delivery


# --- the first-touch editor -----------------------------------------------------------------------------


FIRST_TOUCH = {
    "send_email": "on",
    "email_subject": "{{first_name}}, your {{loan_purpose}} with {{lender_name}}",
    "email_body": "Hi {{first_name}}, up to {{estimate}} with {{best_product}}.\nCall {{officer_phone}}",
    "send_text": "on",
    "text_body": "Hi {{first_name}} from {{officer_name}}",
}


def test_a_manager_edits_the_first_touch_and_new_leads_get_it(client, owner, buying_lender, jane):
    client.force_login(owner)
    page = client.get(reverse("portal:first_touch"))
    assert page.status_code == 200
    assert (
        "you may qualify for up to $350,000 with a FHA loan" in page.content.decode()
    )  # the default, previewed
    assert client.post(reverse("portal:first_touch"), FIRST_TOUCH).status_code == 302
    template = MessageTemplate.objects.get(lender=buying_lender)
    assert template.email_subject == FIRST_TOUCH["email_subject"]
    delivery = sold(buying_lender, consumer__email="maria@example.com")
    first = next(m for m in mail.outbox if m.to == ["maria@example.com"])
    assert first.subject == "Maria, your purchase with Lone Star Lending"
    assert "up to $420,000 with Conventional." in first.body and "Call (512) 555-0199" in first.body
    assert delivery.lender == buying_lender


def test_the_preview_fills_a_sample_and_names_a_field_we_cannot_fill(client, owner):
    owner.first_name, owner.last_name = "Olivia", "Owner"
    owner.save()
    client.force_login(owner)
    preview = client.post(reverse("portal:first_touch_preview"), FIRST_TOUCH).content.decode()
    assert "Maria, your purchase with Lone Star Lending" in preview
    assert "Hi Maria from Olivia Owner Reply STOP to opt out." in preview
    wrong = client.post(reverse("portal:first_touch_preview"), {**FIRST_TOUCH, "email_body": "Your {{ssn}}"})
    assert "Unknown merge field {{ssn}}" in wrong.content.decode()
    saved = client.post(reverse("portal:first_touch"), {**FIRST_TOUCH, "email_body": "{% load x %}"})
    assert saved.status_code == 400 and "remove the other braces" in saved.content.decode()
    # What the lender types is text, escaped on the page like anything else.
    xss = client.post(
        reverse("portal:first_touch_preview"), {**FIRST_TOUCH, "email_subject": "<script>x</script>"}
    )
    assert "<script>x</script>" not in xss.content.decode()


def test_officers_do_not_edit_the_lenders_messages(client, officer):
    client.force_login(officer)
    assert client.get(reverse("portal:first_touch")).status_code == 403
    assert client.post(reverse("portal:first_touch"), FIRST_TOUCH).status_code == 403
    assert client.post(reverse("portal:first_touch_preview"), FIRST_TOUCH).status_code == 403
    assert client.get(reverse("portal:sequence_create")).status_code == 403


# --- sequences --------------------------------------------------------------------------------------------


def steps_post(steps: list[dict], **head) -> dict:
    data = {
        "name": head.get("name", "Refinance routine"),
        "steps-TOTAL_FORMS": str(len(steps)),
        "steps-INITIAL_FORMS": "0",
        "steps-MIN_NUM_FORMS": "0",
        "steps-MAX_NUM_FORMS": "20",
    }
    if head.get("is_active", True):
        data["is_active"] = "on"
    if head.get("subscriptions"):
        data["subscriptions"] = [str(pk) for pk in head["subscriptions"]]
    for i, step in enumerate(steps):
        for key, value in step.items():
            data[f"steps-{i}-{key}"] = value
    return data


def test_every_lender_starts_with_the_shipped_first_24_hours(client, owner, buying_lender):
    client.force_login(owner)
    html = client.get(reverse("portal:sequences")).content.decode()
    assert "First 24 hours" in html
    default = Sequence.objects.get(lender=buying_lender, is_default=True)
    steps = [(s.action, s.timing, s.delay_minutes) for s in default.steps.order_by("position")]
    assert steps == [
        ("call", "after", 0),
        ("email", "after", 5),
        ("text", "after", 60),
        ("call", "after", 240),
        ("email", "next_morning", 0),
        ("call", "after", 1440),
    ]
    assert default.steps.get(position=2).skip_if_reached  # e-mail at 5 min if not reached


def test_a_subscriptions_sequence_is_the_one_its_leads_follow(client, owner, buying_lender):
    subscription = make_subscription(buying_lender, exclusive=True, price="90.00")
    client.force_login(owner)
    response = client.post(
        reverse("portal:sequence_create"),
        steps_post(
            [
                {"action": "text", "timing": "after", "delay_minutes": "30", "body": "Hi {{first_name}}"},
                {"action": "call", "timing": "after", "delay_minutes": "0", "body": "Say hello"},
            ],
            subscriptions=[subscription.pk],
        ),
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    sequence = Sequence.objects.get(lender=buying_lender, name="Refinance routine")
    assert [s.action for s in sequence.steps.order_by("position")] == [
        "call",
        "text",
    ]  # by time after the sale
    delivery = sold(buying_lender)
    assert Enrolment.objects.get(delivery=delivery).sequence == sequence
    bad = client.post(
        reverse("portal:sequence_edit", args=[sequence.pk]),
        steps_post(
            [{"action": "email", "timing": "after", "delay_minutes": "5", "subject": "", "body": "x"}]
        ),
    )
    assert bad.status_code == 400 and "An e-mail needs a subject and a body." in bad.content.decode()


def test_a_rival_cannot_put_its_subscription_in_our_sequence(client, owner, buying_lender, rival_lender):
    theirs = make_subscription(rival_lender, exclusive=True, price="90.00")
    client.force_login(owner)
    response = client.post(
        reverse("portal:sequence_create"),
        steps_post([{"action": "call", "timing": "after", "delay_minutes": "0"}], subscriptions=[theirs.pk]),
    )
    assert response.status_code == 400
    assert not Sequence.objects.filter(name="Refinance routine").exists()


# --- My day -------------------------------------------------------------------------------------------------


def test_my_day_lists_the_officers_call_tasks_with_click_to_call(
    client, buying_lender, jane, officer, django_assert_num_queries
):
    delivery = sold(buying_lender, consumer__phone="5125550142")
    assert delivery.assigned_to == jane
    client.force_login(jane)
    html = client.get(reverse("portal:my_day")).content.decode()
    assert "Due now" in html and 'href="tel:+15125550142"' in html
    assert "Open with the estimate: up to $420,000." in html  # what to say, filled for the lead
    assert ContactAccess.objects.filter(lead=delivery.lead, user=jane).exists()
    # Another officer's day does not show Jane's lead.
    client.force_login(officer)
    assert "tel:+15125550142" not in client.get(reverse("portal:my_day")).content.decode()


def test_my_days_query_count_does_not_grow_with_its_tasks(
    client, buying_lender, jane, django_assert_num_queries
):
    client.force_login(jane)
    sold(buying_lender)
    client.get(reverse("portal:my_day"))
    with django_assert_num_queries(5) as one:
        client.get(reverse("portal:my_day"))
    for _ in range(3):
        sold(buying_lender)
    # The session, its user, the membership (with its lender; the officer scope filters by its user id),
    # the call tasks with their leads and consumers, one contact-access insert: the same for four leads.
    with django_assert_num_queries(len(one.captured_queries)):
        html = client.get(reverse("portal:my_day")).content.decode()
    assert html.count('href="tel:') == 4  # one row per lead: its next call, not all of the day's


def test_overdue_and_upcoming_tasks_are_told_apart(client, buying_lender, jane):
    late, soon = (
        sold(buying_lender, consumer__last_name="Late"),
        sold(buying_lender, consumer__last_name="Soon"),
    )
    StepRun.objects.filter(enrolment__delivery=late, key="step:1").update(
        due_at=timezone.now() - timedelta(hours=2)
    )
    outreach.call_tasks_complete(delivery=soon, user=jane)  # its call now is done: its 4-hour call is next
    client.force_login(jane)
    html = client.get(reverse("portal:my_day")).content.decode()
    assert "Due now" not in html
    assert (
        html.index("Overdue") < html.index("Maria Late") < html.index("Upcoming") < html.index("Maria Soon")
    )
    assert html.index("Maria Soon") < html.index("Step 4: call task at 4 h")


def test_logging_the_call_from_my_day_closes_the_task_and_counts_as_contact(client, buying_lender, jane):
    delivery = sold(buying_lender)
    run = StepRun.objects.get(enrolment__delivery=delivery, key="step:1")
    client.force_login(jane)
    response = client.post(reverse("portal:call_task_log", args=[run.pk]), {"outcome": "voicemail"})
    assert response.status_code == 302
    run.refresh_from_db()
    assert run.state == "done" and run.completed_by == jane
    assert Activity.objects.filter(delivery=delivery, kind="call", outcome="voicemail", user=jane).exists()
    assert Delivery.objects.get(pk=delivery.pk).first_contact_at is not None
    assert run.title not in client.get(reverse("portal:my_day")).content.decode()
    assert (
        client.post(reverse("portal:call_task_log", args=[run.pk]), {"outcome": "bogus"}).status_code == 302
    )


def test_a_call_logged_on_the_lead_page_closes_its_task_and_the_panel_shows_the_routine(
    client, buying_lender, jane
):
    delivery = sold(buying_lender)
    client.force_login(jane)
    page = client.get(reverse("portal:delivery_detail", args=[delivery.pk])).content.decode()
    assert (
        "Automated outreach" in page and "First touch: e-mail" in page and "Step 2: e-mail at 5 min" in page
    )
    client.post(
        reverse("portal:delivery_activity", args=[delivery.pk]), {"kind": "call", "outcome": "reached"}
    )
    assert StepRun.objects.get(enrolment__delivery=delivery, key="step:1").state == "done"


def test_application_or_lost_stops_the_routine(
    client, buying_lender, jane, django_capture_on_commit_callbacks
):
    delivery = sold(buying_lender)
    client.force_login(jane)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("portal:delivery_status", args=[delivery.pk]), {"status": "contacted"})
        client.post(reverse("portal:delivery_status", args=[delivery.pk]), {"status": "application"})
    enrolment = Enrolment.objects.get(delivery=delivery)
    assert (enrolment.state, enrolment.stop_reason) == ("stopped", "application")
    assert not StepRun.objects.filter(enrolment=enrolment, state__in=["pending", "open"]).exists()
    assert "tel:" not in client.get(reverse("portal:my_day")).content.decode()


def test_analytics_counts_the_call_tasks(client, owner, buying_lender, jane):
    delivery = sold(buying_lender)
    outreach.call_tasks_complete(delivery=delivery, user=jane)
    client.force_login(owner)
    html = client.get(reverse("portal:analytics")).content.decode()
    assert "Call tasks" in html and "1 of 1 done" in html
