"""From submission to sale: lead_submit, leads_qualify (dedupe, engine, county limits) and the sweeper."""

import hashlib
from decimal import Decimal

import pytest
from django.core import mail
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.db import DataError, connection, transaction
from django.test.utils import CaptureQueriesContext

from core.bulk import insert_chain
from leads.models import ConsentRecord, Consumer, CountyLoanLimit, Lead
from leads.selectors import loan_limits_for, loan_limits_for_many
from leads.services import CONSUMER_FIELDS, LEAD_FIELDS, lead_submit
from marketplace.models import Delivery
from marketplace.services import leads_qualify
from marketplace.tasks import leads_stuck_sweep
from marketplace.tests.factories import lender_mail, make_subscription

pytestmark = pytest.mark.django_db


DATA = {
    "purpose": "purchase",
    "zip_code": "78701",
    "property_type": "single_family",
    "occupancy": "primary",
    "property_value": Decimal("400000"),
    "purchase_price": Decimal("400000"),
    "down_payment": Decimal("40000"),
    "mortgage_balance": None,
    "cash_out": Decimal("0"),
    "desired_loan_amount": Decimal("360000"),
    "credit_range": "660_679",
    "annual_income": Decimal("120000"),
    "monthly_debts": Decimal("500"),
    "military_service": False,
    "first_time_buyer": True,
    "timeline": "3_months",
    "first_name": "Maria",
    "last_name": "Gonzalez",
    "email": "maria@example.com",
    "phone": "5125550142",
}


def submit(**overrides) -> Lead:
    return lead_submit(
        data={**DATA, **overrides},
        consent_text="I agree to be contacted.",
        ip_address="203.0.113.9",
        user_agent="pytest",
        page_url="http://testserver/",
    )


def test_submit_stores_lead_and_consent_before_any_task(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        lead = submit()
    assert len(callbacks) == 1  # qualification is queued only after commit
    lead.refresh_from_db()
    assert (lead.status, lead.city, lead.state, lead.county) == ("received", "Austin", "TX", "Travis County")
    consent = ConsentRecord.objects.get(lead=lead)
    assert consent.text == "I agree to be contacted."
    assert consent.text_sha256 == hashlib.sha256(b"I agree to be contacted.").hexdigest()
    assert (consent.ip_address, consent.user_agent, consent.page_url) == (
        "203.0.113.9",
        "pytest",
        "http://testserver/",
    )


@pytest.mark.postgres
def test_submit_writes_consumer_lead_and_consent_in_one_statement_all_or_nothing():
    with CaptureQueriesContext(connection) as queries:
        lead = submit()
    assert len(queries) == 1  # one round trip: most of an intake request's cost was three inserts
    assert lead.consumer.leads.get() == lead and lead.consent.lead_id == lead.pk
    before = (Consumer.objects.count(), Lead.objects.count(), ConsentRecord.objects.count())
    # A consent row the database refuses (text PostgreSQL cannot store) takes the lead and the consumer
    # with it: no lead is ever stored without its consent.
    with pytest.raises(DataError), transaction.atomic():
        lead_submit(
            data={**DATA, "email": "other@example.com"},
            consent_text="I agree\x00 to be contacted.",
            ip_address="203.0.113.9",
            user_agent="pytest",
            page_url="http://testserver/",
        )
    assert (Consumer.objects.count(), Lead.objects.count(), ConsentRecord.objects.count()) == before


@pytest.mark.postgres
@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {
            "purpose": "refinance",
            "purchase_price": None,
            "down_payment": None,
            "mortgage_balance": Decimal("250000.55"),
            "cash_out": Decimal("20000.10"),
            "desired_loan_amount": Decimal("270000.65"),
            "military_service": True,
            "first_time_buyer": False,
            "first_name": "Zoë",
            "last_name": "O'Brien-Núñez",
        },
    ],
)
def test_every_column_reads_back_as_it_was_written(overrides):
    """The one-statement insert hands each row to PostgreSQL as JSON: money to the cent, times to the
    microsecond, flags, UUIDs, addresses, JSON columns and Unicode all read back unchanged."""
    lead = submit(**overrides)
    consent = lead.consent
    for obj in (lead.consumer, lead, consent):
        stored = type(obj).objects.get(pk=obj.pk)
        for field in obj._meta.concrete_fields:
            written, read = getattr(obj, field.attname), getattr(stored, field.attname)
            assert written == read, f"{type(obj).__name__}.{field.name}: wrote {written!r}, read {read!r}"
    assert lead.created_at.microsecond == type(lead).objects.get(pk=lead.pk).created_at.microsecond


@pytest.mark.parametrize("vendor", ["postgresql", "other"])
def test_intakes_one_statement_keeps_the_consents_own_rules(vendor, monkeypatch):
    """Issue 13.5: insert_chain (intake's one-statement insert) wrote past ConsentRecord.save(), so a consent
    was sealed only because lead_submit remembered to, and a stored one could be written again (a second
    row, refused only by the unique lead). It calls the model's own prepare_insert() now, the checks
    save() makes; the embedded (SQLite) path saves through save()."""
    if vendor == "other":
        if connection.vendor != "postgresql":
            pytest.skip("already the fallback path")
        monkeypatch.setattr(connection, "vendor", "sqlite")
    elif connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL")

    def lead() -> Lead:
        return Lead(
            city="Austin",
            state="TX",
            county="Travis County",
            **{f: DATA[f] for f in LEAD_FIELDS if DATA.get(f) is not None},
        )

    consent = ConsentRecord(text="I agree to be contacted.", user_agent="pytest")  # not sealed by hand
    insert_chain(
        [Consumer(**{f: DATA[f] for f in CONSUMER_FIELDS}), lead(), consent], links=["consumer", "lead"]
    )
    stored = ConsentRecord.objects.get(pk=consent.pk)
    assert stored.lead.consumer.email == DATA["email"]
    assert stored.text_sha256 == hashlib.sha256(b"I agree to be contacted.").hexdigest()
    with pytest.raises(ValidationError, match="cannot be changed"):
        insert_chain([Consumer(email="x@example.com"), lead(), stored], links=["consumer", "lead"])


def test_consent_record_cannot_be_changed_or_deleted():
    from django.core.exceptions import ValidationError

    consent = ConsentRecord.objects.get(lead=submit())
    consent.text = "something else"
    with pytest.raises(ValidationError):
        consent.save()
    with pytest.raises(ValidationError):
        consent.delete()


def test_qualified_lead_is_sold_through_the_pipeline(buying_lender, django_capture_on_commit_callbacks):
    make_subscription(buying_lender, price="40.00")
    with django_capture_on_commit_callbacks(execute=True):
        lead = submit()
    lead.refresh_from_db()
    assert lead.status == "sold"
    assert lead.estimate > Decimal("360000") and "conventional" in lead.products
    assert lead.qualification["qualified"] is True and lead.guideline_version
    assert Delivery.objects.get(lead=lead).lender == buying_lender


def test_not_qualified_lead_is_not_sold_and_says_why(buying_lender, django_capture_on_commit_callbacks):
    make_subscription(buying_lender, price="40.00")
    with django_capture_on_commit_callbacks(execute=True):
        lead = submit(annual_income=Decimal("30000"), monthly_debts=Decimal("2500"))
    lead.refresh_from_db()
    assert lead.status == "not_qualified"
    assert lead.qualification["reasons"]
    assert not Delivery.objects.filter(lead=lead).exists()


def test_same_email_or_phone_within_30_days_is_a_duplicate(buying_lender, django_capture_on_commit_callbacks):
    make_subscription(buying_lender, price="40.00")
    with django_capture_on_commit_callbacks(execute=True):
        first = submit()
        by_email = submit(phone="2145550100", email="MARIA@example.com")
        by_phone = submit(email="other@example.com")
    statuses = [Lead.objects.get(pk=x.pk).status for x in (first, by_email, by_phone)]
    assert statuses == ["sold", "duplicate", "duplicate"]
    assert Delivery.objects.count() == 1


def test_qualify_twice_has_the_effect_of_once():
    lead = submit()
    leads_qualify(lead_ids=[lead.pk])
    first = Lead.objects.get(pk=lead.pk)
    leads_qualify(lead_ids=[lead.pk])
    again = Lead.objects.get(pk=lead.pk)
    assert (first.status, first.qualified_at) == (again.status, again.qualified_at)


def test_sweeper_pushes_on_leads_whose_task_never_ran(buying_lender, django_capture_on_commit_callbacks):
    make_subscription(buying_lender, price="40.00")
    with django_capture_on_commit_callbacks(execute=False):  # the broker was down: nothing was enqueued
        lead = submit()
    Lead.objects.filter(pk=lead.pk).update(updated_at=lead.updated_at.replace(year=2020))
    with django_capture_on_commit_callbacks(execute=True):
        assert leads_stuck_sweep() == 1
    assert Lead.objects.get(pk=lead.pk).status == "sold"


def test_sweeper_sends_the_email_whose_task_was_lost(
    buying_lender, owner, django_capture_on_commit_callbacks
):
    from integrations.deliveries import deliveries_notify
    from integrations.tasks import deliveries_stuck_sweep

    make_subscription(buying_lender, price="40.00")
    with django_capture_on_commit_callbacks(execute=True):
        lead = submit()
    delivery = Delivery.objects.get(lead=lead)
    mail.outbox.clear()
    Delivery.objects.filter(pk=delivery.pk).update(notified_at=None, emailed_at=None)
    with django_capture_on_commit_callbacks(execute=False):  # notified, but the broker lost the e-mail task
        deliveries_notify(delivery_ids=[delivery.pk])
    Delivery.objects.filter(pk=delivery.pk).update(created_at=delivery.created_at.replace(year=2020))
    assert mail.outbox == []
    with django_capture_on_commit_callbacks(execute=True):
        assert deliveries_stuck_sweep() == 1
    assert len(mail.outbox) == 1 and mail.outbox[0].to == [owner.email]
    assert Delivery.objects.get(pk=delivery.pk).emailed_at is not None
    assert deliveries_stuck_sweep() == 0


def test_a_fresh_database_has_fhfa_county_limits_without_an_import():
    """Issue 11.16: the FHFA 2026 file ships in leads/data/ and a data migration loads it, so a fresh clone
    never shows the national baseline in a high-cost county (San Francisco was shown $832,750)."""
    assert CountyLoanLimit.objects.count() == 3235
    sf = loan_limits_for(state="CA", county="San Francisco County")
    assert sf.conforming_limit == Decimal("1249125.00")
    assert sf.source == "FHFA 2026 San Francisco County, CA"
    assert loan_limits_for(state="CA", county="Los Angeles County").conforming_limit == Decimal("1249125.00")
    assert loan_limits_for(state="TX", county="Travis County").conforming_limit == Decimal("832750.00")
    # A Connecticut place the town map lacks gets its old county's lowest planning region.
    assert loan_limits_for(state="CT", county="Fairfield County").conforming_limit == Decimal("851000.00")
    assert loan_limits_for(state="TX", county="").conforming_limit == Decimal("832750")
    # A batch of leads reads all its places in one query, with the same answers.
    places = {
        ("CA", "Los Angeles County", "Los Angeles", 1),
        ("CT", "Fairfield County", "Stamford", 1),
        ("CT", "Fairfield County", "", 1),
        ("TX", "", "", 1),
        ("NY", "Kings County", "Brooklyn", 3),
    }
    with CaptureQueriesContext(connection) as queries:
        batch = loan_limits_for_many(places=places)
    assert len(queries) == 1
    assert {place: limits.conforming_limit for place, limits in batch.items()} == {
        place: loan_limits_for(
            state=place[0], county=place[1], city=place[2], units=place[3]
        ).conforming_limit
        for place in places
    }
    assert batch[("CT", "Fairfield County", "Stamford", 1)].conforming_limit == Decimal("977500.00")


def test_the_import_command_reads_the_shipped_file_again_and_keeps_hud_figures():
    CountyLoanLimit.objects.filter(fips="06075").update(one_unit_limit=Decimal("900000"), fha_year=2026)
    call_command("import_loan_limits", verbosity=0)  # the shipped file by default
    sf = CountyLoanLimit.objects.get(fips="06075")
    assert sf.one_unit_limit == Decimal("1249125.00") and sf.county_name == "San Francisco County"
    assert sf.fha_year == 2026  # FHFA's import leaves HUD's figures alone
    assert CountyLoanLimit.objects.count() == 3235


def test_without_county_rows_the_baseline_applies():
    CountyLoanLimit.objects.all().delete()
    limits = loan_limits_for(state="CA", county="Los Angeles County")
    assert limits.conforming_limit == Decimal("832750") and limits.source == "FHFA 2026 national baseline"


def test_one_qualify_task_clears_the_backlog_and_the_later_tasks_do_nothing(
    owner, buying_lender, rival_lender, django_capture_on_commit_callbacks, django_assert_max_num_queries
):
    """Under load a task takes every lead waiting in `received` and sells them in one batch; a duplicate
    inside the batch is caught against the lead before it, whatever the e-mail's case."""
    from marketplace.tasks import leads_qualify_and_sell

    make_subscription(buying_lender, exclusive=True, price="90.00")
    make_subscription(rival_lender, exclusive=True, price="80.00")
    with django_capture_on_commit_callbacks(execute=False) as queued:  # the tasks wait in the broker
        leads = [submit(email=f"buyer{i}@example.com", phone=f"512555{i:04d}") for i in range(6)]
        twin = submit(email="BUYER2@example.com", phone="2145550100")
    assert len(queued) == 7

    with django_capture_on_commit_callbacks(execute=True) as notified:
        assert leads_qualify_and_sell(leads[3].pk) == "sold"
    statuses = list(Lead.objects.order_by("pk").values_list("status", flat=True))
    assert statuses == ["sold"] * 6 + ["duplicate"]
    assert Lead.objects.get(pk=twin.pk).status_reason.startswith(
        f"Same e-mail or phone as lead #{leads[2].pk}"
    )
    assert Delivery.objects.filter(exclusive=True).count() == 6
    assert [d.lender for d in Delivery.objects.order_by("pk")] == [buying_lender] * 6  # the best bid, funded
    # The same task notified the buyer (no notification task queued) and queued one e-mail task, whose
    # e-mail lists the batch.
    assert len(notified) == 1 and not Delivery.objects.filter(notified_at__isnull=True).exists()
    assert [(m.subject, m.to) for m in lender_mail(mail.outbox)] == [
        ("6 new leads in your portal", [owner.email])
    ]

    for lead in [*leads, twin]:  # their own tasks arrive: three reads (and a savepoint), no second sale
        with django_assert_max_num_queries(5):
            leads_qualify_and_sell(lead.pk)
    assert Delivery.objects.count() == 6


def test_leads_received_while_a_qualify_task_waits_queue_no_task_of_their_own(
    buying_lender, monkeypatch, django_capture_on_commit_callbacks
):
    """Under load: a task per batch, not per lead. The waiting task takes every lead received before it
    starts; a lead received after that queues the next task."""
    from marketplace import tasks

    queued: list[tuple] = []
    monkeypatch.setattr(tasks, "enqueue", lambda task, *args: queued.append((task.name, args)))
    make_subscription(buying_lender, price="40.00")
    with django_capture_on_commit_callbacks(execute=False) as commits:
        leads = [submit(email=f"buyer{i}@example.com", phone=f"512555{i:04d}") for i in range(3)]
    for commit in commits:  # three leads commit while the first one's task waits in the broker
        commit()
    assert queued == [("marketplace.tasks.leads_qualify_and_sell", (leads[0].pk,))]

    assert tasks.leads_qualify_and_sell(leads[0].pk) == "sold"  # it takes all three
    assert [Lead.objects.get(pk=lead.pk).status for lead in leads] == ["sold", "sold", "sold"]

    with django_capture_on_commit_callbacks(execute=True):  # received after the task looked: its own task
        late = submit(email="late@example.com", phone="5125559999")
    assert queued[1:] == [("marketplace.tasks.leads_qualify_and_sell", (late.pk,))]
    tasks.leads_qualify_and_sell(late.pk)
    assert Lead.objects.filter(status="sold").count() == 4


def test_a_full_batch_queues_the_next_task_for_the_rest(
    settings, monkeypatch, django_capture_on_commit_callbacks
):
    from marketplace import tasks

    queued: list[tuple] = []
    monkeypatch.setattr(tasks, "enqueue", lambda task, *args: queued.append((task.name, args)))
    settings.PIPELINE_BATCH_SIZE = 3
    with django_capture_on_commit_callbacks(execute=False):
        leads = [submit(email=f"buyer{i}@example.com", phone=f"512555{i:04d}") for i in range(5)]

    tasks.leads_qualify_and_sell(leads[4].pk)  # its own lead first, then the oldest waiting
    statuses = dict(Lead.objects.values_list("pk", "status"))
    assert [statuses[lead.pk] == "received" for lead in leads] == [False, False, True, True, False]
    assert queued == [("marketplace.tasks.leads_qualify_and_sell", ())]

    assert (
        tasks.leads_qualify_and_sell() is None
    )  # the next task takes the rest, and, short of a full batch, stops
    assert queued == [("marketplace.tasks.leads_qualify_and_sell", ())]
    assert not Lead.objects.filter(status="received").exists()


@pytest.mark.postgres
@pytest.mark.parametrize(
    "overrides",
    [
        {"annual_income": Decimal("1")},
        {"monthly_debts": Decimal("9999999")},
        {"annual_income": Decimal("0"), "monthly_debts": Decimal("9999999")},
    ],
)
def test_a_ratio_of_millions_is_stored_and_the_batch_goes_on(overrides):
    """Issue 11.1: income of $1 a year (or $9,999,999 of monthly debts) gave a DTI of millions of percent,
    which overflowed Lead.dti (numeric(7,2)) and made the whole qualify batch fail. The engine caps stored
    ratios at 999.99 ("over any limit"), the batch qualifies every lead, and the consumer is told kindly."""
    good = submit(email="good@example.com", phone="2145550100")
    extreme = submit(**overrides)
    leads_qualify(lead_ids=[good.pk, extreme.pk])
    good.refresh_from_db()
    extreme.refresh_from_db()
    assert good.status == "qualified"
    assert extreme.status == "not_qualified"
    assert extreme.dti is None or extreme.dti <= Decimal("999.99")
    assert all(
        r["dti"] is None or Decimal(r["dti"]) <= Decimal("999.99") for r in extreme.qualification["results"]
    )
    reasons = " ".join(extreme.qualification["reasons"])
    assert "more than any loan allows" in reasons or "We need your income" in reasons


def test_guidelines_2026_3_are_the_active_set_and_old_leads_keep_their_version():
    """Issue 12: the default guideline set changes its name (2026.2 for the maximum loan, 2026.3 for credit
    ranges); a data migration adds it as the active set (its frozen rules equal the code's defaults), and a
    lead qualified under an older set keeps that version string."""
    from leads.models import GuidelineSet
    from leads.qualification import DEFAULT_GUIDELINES, Guidelines
    from leads.selectors import _guidelines_from_db

    row = GuidelineSet.objects.get(version="2026.3")
    assert row.is_active and DEFAULT_GUIDELINES.version == "2026.3"
    assert Guidelines.from_dict({**row.rules, "version": row.version}) == DEFAULT_GUIDELINES
    assert _guidelines_from_db() == DEFAULT_GUIDELINES
    # PostgreSQL's jsonb does not keep key order; the products come back in the canonical one.
    assert list(_guidelines_from_db().products) == list(DEFAULT_GUIDELINES.products)
    old = submit()
    Lead.objects.filter(pk=old.pk).update(status="qualified", guideline_version="2026.2")
    fresh = submit(email="new@example.com", phone="2145550100")
    leads_qualify(lead_ids=[fresh.pk])
    assert Lead.objects.get(pk=old.pk).guideline_version == "2026.2"
    assert Lead.objects.get(pk=fresh.pk).guideline_version == "2026.3"
