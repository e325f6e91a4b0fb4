"""Issue 15 §4: when staff activate a new rate sheet, the open leads whose numbers improved get a call task on
My day, once per delivery and guideline set, with an activity; an erased consumer or a lost lead gets none."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.admin.sites import site
from django.test import RequestFactory
from django.urls import reverse
from django.utils import timezone

from compliance.services import consumer_erase
from integrations.models import StepRun
from integrations.outreach import tasks
from integrations.outreach.requalify import guideline_set_requalify, requalify_key
from leads.admin import GuidelineSetAdmin
from leads.models import GuidelineSet, Lead
from leads.selectors import guidelines_current
from leads.services import guideline_set_save, leads_evaluate
from marketplace.models import Activity, Delivery
from marketplace.services import delivery_set_status
from marketplace.tests.factories import MemberFactory

from . import test_sequences
from .test_sequences import sold_at

pytestmark = pytest.mark.django_db

jane = test_sequences.jane  # the officer the leads are assigned to (a fixture, used by name)


# A buyer whose income limits the loan (DTI binds): a lower rate lends more (about $292,000 → $344,000 when
# every rate drops 1.5 points). At 90% LTV the loan would be bound by the price and no rate would change it.
STRETCHED = {
    "property_value": Decimal("800000"),
    "purchase_price": Decimal("800000"),
    "down_payment": Decimal("80000"),
    "desired_loan_amount": Decimal("720000"),
    "annual_income": Decimal("90000"),
}


def sold_now(lender, **lead) -> Delivery:
    """A lead sold a week ago, its stored numbers those of today's rate sheet (as qualification left them)."""
    delivery = sold_at(lender, when=timezone.now() - timedelta(days=7), **{**STRETCHED, **lead})
    row = Lead.objects.get(pk=delivery.lead_id)
    results, _ = leads_evaluate(leads=[row], guidelines=guidelines_current())
    Lead.objects.filter(pk=row.pk).update(
        estimate=results[row.pk].estimate, products=list(results[row.pk].products)
    )
    return Delivery.objects.get(pk=delivery.pk)


def rate_sheet(version: str, *, cut: str) -> GuidelineSet:
    """Today's rules with every product's rate cut by `cut` points, saved inactive (the test activates it)."""
    rules = guidelines_current().to_dict()
    for product in rules["products"].values():
        product["rate"] = str(Decimal(str(product["rate"])) - Decimal(cut))
    rules.pop("version", None)
    return GuidelineSet.objects.create(version=version, is_active=False, rules=rules)


def test_a_rate_drop_opens_one_call_task_and_an_activity(
    buying_lender,
    jane,
    django_capture_on_commit_callbacks,
):
    delivery = sold_now(buying_lender, consumer__first_name="Maria")
    before = Lead.objects.get(pk=delivery.lead_id).estimate
    sheet = rate_sheet("test-drop", cut="1.5")
    sheet.is_active = True
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        guideline_set_save(guideline_set=sheet)
    assert callbacks  # the signal, then the task's enqueue, both on commit
    key = requalify_key(sheet.pk)
    # The receiver's task ran (eager in tests; the outbound worker in production) ...
    assert StepRun.objects.filter(enrolment__delivery=delivery, key=key).count() == 1
    # ... and the task delivered twice, or run by hand, writes no second one.
    tasks.guideline_set_requalify(sheet.pk)
    assert guideline_set_requalify(guideline_set_id=sheet.pk).tasks == 0
    runs = StepRun.objects.filter(enrolment__delivery=delivery, key=requalify_key(sheet.pk))
    assert runs.count() == 1
    task = runs.get()
    assert (task.action, task.state) == ("call", "open")
    assert task.title.startswith("New rate sheet: may now qualify for $")
    assert "more" in task.title
    # The rise it names is the engine's, at the new rates.
    results, _ = leads_evaluate(
        leads=[Lead.objects.get(pk=delivery.lead_id)], guidelines=guidelines_current()
    )
    assert results[delivery.lead_id].estimate > before * Decimal("1.05")
    assert (
        Activity.objects.filter(
            delivery=delivery,
            kind="note",
            automated=True,
            note__startswith="Re-qualified against rate sheet test-drop",
        ).count()
        == 1
    )


def test_the_task_shows_on_my_day_for_the_assigned_officer_only(
    client,
    buying_lender,
    jane,
    rival_lender,
):
    delivery = sold_now(buying_lender, consumer__first_name="Maria")
    assert delivery.assigned_to == jane
    # The shipped routine finished long ago: My day is empty before the rate sheet changes.
    StepRun.objects.filter(enrolment__delivery=delivery).update(state="done")
    delivery.enrolment.state = "completed"
    delivery.enrolment.save(update_fields=["state"])
    client.force_login(jane)
    assert "New rate sheet" not in client.get(reverse("portal:my_day")).content.decode()
    sheet = rate_sheet("test-drop", cut="1.5")
    GuidelineSet.objects.filter(pk=sheet.pk).update(is_active=True)
    assert guideline_set_requalify(guideline_set_id=sheet.pk).tasks == 1
    html = client.get(reverse("portal:my_day")).content.decode()
    assert "New rate sheet: may now qualify for $" in html
    assert "Maria may now qualify for $" in html  # what to say, with the consumer's name
    # Another lender's officer never sees it.
    rival = MemberFactory(lender=rival_lender, role="officer", username="rival")
    client.force_login(rival.user)
    assert "New rate sheet" not in client.get(reverse("portal:my_day")).content.decode()


def test_an_erased_consumer_or_a_lost_lead_gets_none(buying_lender, jane):
    erased = sold_now(buying_lender, consumer__email="erased@example.com")
    lost = sold_now(buying_lender, consumer__email="lost@example.com")
    kept = sold_now(buying_lender, consumer__email="kept@example.com")
    consumer_erase(consumer_id=Lead.objects.get(pk=erased.lead_id).consumer_id)
    delivery_set_status(delivery=lost, status="lost", lost_reason="not_ready")
    sheet = rate_sheet("test-drop", cut="1.5")
    GuidelineSet.objects.filter(pk=sheet.pk).update(is_active=True)
    assert guideline_set_requalify(guideline_set_id=sheet.pk).tasks == 1
    keyed = StepRun.objects.filter(key=requalify_key(sheet.pk))
    assert list(keyed.values_list("enrolment__delivery", flat=True)) == [kept.pk]


def test_a_rise_below_the_share_gets_none(buying_lender, jane):
    delivery = sold_now(buying_lender)
    sheet = rate_sheet("test-nudge", cut="0.01")
    GuidelineSet.objects.filter(pk=sheet.pk).update(is_active=True)
    result = guideline_set_requalify(guideline_set_id=sheet.pk)
    assert result.checked == 1 and result.tasks == 0
    assert not StepRun.objects.filter(enrolment__delivery=delivery, key__startswith="requalify:").exists()


def test_a_lead_the_engine_cannot_read_is_set_aside_and_named(buying_lender, jane):
    bad = sold_now(buying_lender, consumer__email="bad@example.com")
    good = sold_now(buying_lender, consumer__email="good@example.com")
    Lead.objects.filter(pk=bad.lead_id).update(purpose="timeshare")  # not a purpose the engine knows
    sheet = rate_sheet("test-drop", cut="1.5")
    GuidelineSet.objects.filter(pk=sheet.pk).update(is_active=True)
    result = guideline_set_requalify(guideline_set_id=sheet.pk)
    assert list(result.set_aside) == [bad.lead_id]
    assert result.tasks == 1
    assert StepRun.objects.filter(enrolment__delivery=good, key=requalify_key(sheet.pk)).exists()


def test_admin_save_of_an_active_set_sends_the_signal(
    admin_user, django_capture_on_commit_callbacks, monkeypatch
):
    heard = []
    from leads.signals import guideline_set_activated

    def hear(**kwargs):
        heard.append(kwargs["guideline_set_id"])

    guideline_set_activated.connect(hear, dispatch_uid="test.hear")
    try:
        sheet = rate_sheet("test-admin", cut="0.5")
        sheet.is_active = True
        request = RequestFactory().post("/")
        request.user = admin_user
        with django_capture_on_commit_callbacks(execute=True):
            GuidelineSetAdmin(GuidelineSet, site).save_model(request, sheet, form=None, change=True)
        inactive = rate_sheet("test-off", cut="0.5")
        with django_capture_on_commit_callbacks(execute=True):
            GuidelineSetAdmin(GuidelineSet, site).save_model(request, inactive, form=None, change=True)
    finally:
        guideline_set_activated.disconnect(dispatch_uid="test.hear")
    assert heard == [sheet.pk]
