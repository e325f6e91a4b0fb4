"""Working leads: the live inbox and its filters, activity, follow-ups and reminders, reassignment, the
letter and the CSV export, each scoped to the member's lender and, for officers, to their own leads."""

import csv
import io
from datetime import timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone
from pypdf import PdfReader

from core.csvexport import csv_cell as csv_safe
from marketplace.models import Activity, Delivery, FollowUp
from marketplace.services import (
    activity_log,
    delivery_set_status,
    followup_create,
    followups_remind_overdue,
)
from marketplace.tests.factories import MemberFactory, make_subscription
from portal.letters import prequalification_letter

from .test_portal import sell

pytestmark = pytest.mark.django_db

LENDER_ZONE = ZoneInfo("America/Chicago")  # LenderFactory's time zone: the portal's dates are the lender's


def lender_today():
    return timezone.localdate(timezone=LENDER_ZONE)


@pytest.fixture
def our_subscription(buying_lender):
    return make_subscription(buying_lender, states=["TX"], price="40.00")


@pytest.fixture
def delivery(our_subscription, buying_lender) -> Delivery:
    return sell(buying_lender, first_name="Maria")


@pytest.fixture
def owner_client(client, owner):
    client.force_login(owner)
    return client


@pytest.fixture
def rival_client(client, rival_owner):
    client.force_login(rival_owner)
    return client


def url(name: str, *args) -> str:
    return reverse(f"portal:{name}", args=args)


# --- the live inbox -----------------------------------------------------------------------------------


def test_live_refresh_answers_204_until_something_changes(owner_client, buying_lender, delivery):
    html = owner_client.get(url("inbox")).content.decode()
    version = html.split('data-version="', 1)[1].split('"', 1)[0]

    unchanged = owner_client.get(url("inbox_rows"), {"since": version})
    assert unchanged.status_code == 204 and unchanged.content == b""

    sell(buying_lender, first_name="Newcomer")
    changed = owner_client.get(url("inbox_rows"), {"since": version})
    assert changed.status_code == 200 and "Newcomer" in changed.content.decode()

    # A status change (not a new row) also counts as a change.
    version = changed.content.decode().split('data-version="', 1)[1].split('"', 1)[0]
    delivery_set_status(delivery=delivery, status="contacted")
    assert owner_client.get(url("inbox_rows"), {"since": version}).status_code == 200


def test_live_refresh_query_count(owner_client, buying_lender, our_subscription, django_assert_num_queries):
    for i in range(3):
        sell(buying_lender, first_name=f"R{i}")
    version = owner_client.get(url("inbox")).content.decode().split('data-version="', 1)[1].split('"', 1)[0]
    # 1 session, 2 user, 3 membership + lender, 4 the lender's inbox version: unchanged, so 204 (no count).
    with django_assert_num_queries(4):
        assert owner_client.get(url("inbox_rows"), {"since": version}).status_code == 204


def test_rows_turn_urgent_after_five_minutes_without_contact(owner_client, buying_lender, our_subscription):
    old, fresh, reached = (sell(buying_lender, first_name=n) for n in ("Old", "Fresh", "Reached"))
    Delivery.objects.filter(pk__in=[old.pk, reached.pk]).update(
        created_at=timezone.now() - timedelta(minutes=6)
    )
    activity_log(delivery=reached, user=None, kind="call", outcome="voicemail")

    html = owner_client.get(url("inbox")).content.decode()
    rows = {name: html.split(f">{name} ")[0].rsplit("<tr", 1)[1] for name in ("Old", "Fresh", "Reached")}
    assert "is-urgent" in rows["Old"]
    assert "is-urgent" not in rows["Fresh"] and "is-urgent" not in rows["Reached"]
    assert "6 min ago" in html and "Call now" in html
    # The client-side timer ticks from the delivery time; only leads awaiting contact can turn urgent.
    assert html.count('data-urgent-after="300"') == 2


def test_inbox_filters_purpose_state_subscription_officer_dates(client, owner, officer, buying_lender):
    tx = make_subscription(buying_lender, name="Texas", states=["TX"], price="40.00")
    ca = make_subscription(buying_lender, name="California", states=["CA"], price="40.00")
    texan, californian = (
        sell(buying_lender, first_name="Tex"),
        sell(buying_lender, first_name="Cali", state="CA"),
    )
    Delivery.objects.filter(pk=texan.pk).update(assigned_to=officer)
    Delivery.objects.filter(pk=californian.pk).update(created_at=timezone.now() - timedelta(days=10))
    client.force_login(owner)

    def names(**params) -> set[str]:
        html = client.get(url("inbox"), params).content.decode()
        return {n for n in ("Tex", "Cali") if f">{n} " in html}

    assert names() == {"Tex", "Cali"}
    assert names(state="CA") == {"Cali"}
    assert names(subscription=tx.pk) == {"Tex"} and names(subscription=ca.pk) == {"Cali"}
    assert names(officer=officer.pk) == {"Tex"} and names(officer="none") == {"Cali"}
    assert names(purpose="refinance") == set()
    today = lender_today().isoformat()
    assert names(delivered_from=today) == {"Tex"}
    assert names(delivered_to=(lender_today() - timedelta(days=5)).isoformat()) == {"Cali"}
    assert names(q="cali") == {"Cali"}
    # An impossible range names the problem.
    bad = client.get(url("inbox"), {"delivered_from": today, "delivered_to": "2020-01-01"}).content.decode()
    assert "The end date is before the start date." in bad


def test_officer_has_no_officer_filter_and_cannot_widen_scope(
    client, officer, owner, buying_lender, delivery
):
    client.force_login(officer)
    html = client.get(url("inbox"), {"officer": owner.pk}).content.decode()
    assert 'name="officer"' not in html and "Maria" not in html


@pytest.mark.parametrize("rows", [1, 12])
def test_inbox_query_count_with_filters(
    owner_client, buying_lender, our_subscription, django_assert_num_queries, rows
):
    for i in range(rows):
        sell(buying_lender, first_name=f"Q{i}")
    params = {
        "status": "new",
        "purpose": "purchase",
        "state": "TX",
        "subscription": our_subscription.pk,
        "officer": "none",
        "q": "Q",
        "delivered_from": lender_today().isoformat(),
    }
    # 1 session, 2 user, 3 membership + lender, 4 subscriptions (filter choices), 5 team (officer choices),
    # 6 the inbox version, 7 the count, 8 the page with lead, consumer, subscription, assignee (the search a
    # subquery of it), 9 follow-ups due.
    with django_assert_num_queries(9):
        response = owner_client.get(url("inbox"), params)
    assert response.content.decode().count('class="inbox__row') == rows


# --- the lead's page ----------------------------------------------------------------------------------


def test_detail_shows_sharing_and_contact_links(owner_client, delivery):
    html = owner_client.get(url("delivery_detail", delivery.pk)).content.decode()
    assert f'href="tel:+1{delivery.lead.consumer.phone}"' in html
    assert f'href="mailto:{delivery.lead.consumer.email}"' in html
    assert "Shared · 1 buyer" in html
    assert url("delivery_letter", delivery.pk) in html


def test_logging_a_call_sets_first_contact_once_and_notes_never(owner_client, owner, delivery):
    r = owner_client.post(url("delivery_activity", delivery.pk), {"kind": "note", "note": "Prefers e-mail"})
    assert r.status_code == 302
    delivery.refresh_from_db()
    assert delivery.first_contact_at is None

    owner_client.post(url("delivery_activity", delivery.pk), {"kind": "call", "outcome": "no_answer"})
    delivery.refresh_from_db()
    first = delivery.first_contact_at
    assert first is not None

    owner_client.post(
        url("delivery_activity", delivery.pk), {"kind": "email", "outcome": "sent", "note": "Sent"}
    )
    delivery.refresh_from_db()
    assert delivery.first_contact_at == first
    assert list(Activity.objects.filter(delivery=delivery).values_list("kind", flat=True)) == [
        "email",
        "call",
        "note",
    ]
    html = owner_client.get(url("delivery_detail", delivery.pk)).content.decode()
    assert "No answer" in html and "Prefers e-mail" in html and "First contact" in html


def test_activity_needs_an_outcome_or_a_note(owner_client, delivery):
    r = owner_client.post(url("delivery_activity", delivery.pk), {"kind": "call", "outcome": ""})
    assert r.status_code == 400 and "Say how it went." in r.content.decode()
    r = owner_client.post(url("delivery_activity", delivery.pk), {"kind": "note", "note": " "})
    assert r.status_code == 400 and "Write the note." in r.content.decode()
    assert not Activity.objects.exists()


def test_followups_show_on_the_inbox_and_can_be_marked_done(owner_client, owner, delivery):
    r = owner_client.post(
        url("delivery_followup", delivery.pk),
        {
            "due_at": (timezone.localtime(timezone=LENDER_ZONE) - timedelta(minutes=1)).strftime(
                "%Y-%m-%dT%H:%M"
            ),
            "note": "Send rate sheet",
        },
    )
    assert r.status_code == 302
    followup = FollowUp.objects.get()
    html = owner_client.get(url("inbox")).content.decode()
    assert "Follow-ups due today" in html and "Send rate sheet" in html and "Overdue" in html

    assert owner_client.post(url("followup_done", followup.pk), {"next": "inbox"}).status_code == 302
    followup.refresh_from_db()
    assert followup.done_at is not None
    assert "Send rate sheet" not in owner_client.get(url("inbox")).content.decode()


def test_overdue_reminders_are_emailed_once_per_officer(owner, officer, delivery, settings):
    Delivery.objects.filter(pk=delivery.pk).update(assigned_to=officer)
    past = timezone.now() - timedelta(hours=1)
    followup_create(delivery=delivery, user=officer, due_at=past, note="Call back about FHA")
    followup_create(delivery=delivery, user=officer, due_at=past, note="Ask for pay stubs")
    followup_create(delivery=delivery, user=owner, due_at=past, note="Owner's own")
    followup_create(delivery=delivery, user=officer, due_at=timezone.now() + timedelta(hours=1))
    done = followup_create(delivery=delivery, user=officer, due_at=past)
    done.done_at = timezone.now()
    done.save()

    from marketplace.tasks import followups_remind_overdue as followups_remind_overdue_task

    assert followups_remind_overdue_task.delay().get() == 2
    assert sorted(m.to[0] for m in mail.outbox) == ["officer@example.com", "owner@example.com"]
    officer_mail = next(m for m in mail.outbox if m.to == ["officer@example.com"])
    assert "2 overdue follow-ups" in officer_mail.subject
    assert "Call back about FHA" in officer_mail.body and "Ask for pay stubs" in officer_mail.body
    assert "CST" in officer_mail.body or "CDT" in officer_mail.body  # the lender's time zone
    assert officer_mail.alternatives[0][1] == "text/html"
    # Idempotent: a second run sends nothing.
    assert followups_remind_overdue() == 0 and len(mail.outbox) == 2
    assert "remind-overdue-followups" in settings.CELERY_BEAT_SCHEDULE


def test_deactivated_members_get_no_reminder(officer, delivery):
    followup_create(delivery=delivery, user=officer, due_at=timezone.now() - timedelta(hours=1))
    officer.membership.is_active = False
    officer.membership.save()
    assert followups_remind_overdue() == 0 and mail.outbox == []
    assert FollowUp.objects.get().reminded_at is not None  # not retried forever


def test_owner_reassigns_by_hand_and_the_officer_then_sees_it(client, owner, officer, delivery):
    client.force_login(owner)
    r = client.post(url("delivery_assign", delivery.pk), {"assignee": officer.membership.pk}, follow=True)
    assert "Lead assigned to" in r.content.decode()
    delivery.refresh_from_db()
    assert delivery.assigned_to == officer
    client.force_login(officer)
    assert client.get(url("delivery_detail", delivery.pk)).status_code == 200
    # An officer cannot reassign, even their own lead.
    assert client.post(url("delivery_assign", delivery.pk), {"assignee": ""}).status_code == 403
    delivery.refresh_from_db()
    assert delivery.assigned_to == officer


def test_reassigning_to_another_lenders_member_is_refused(owner_client, rival_owner, delivery):
    r = owner_client.post(url("delivery_assign", delivery.pk), {"assignee": rival_owner.membership.pk})
    assert r.status_code == 302
    delivery.refresh_from_db()
    assert delivery.assigned_to is None


# --- the letter and the export ------------------------------------------------------------------------


def test_letter_pdf_carries_lender_borrower_amount_products_dates_and_disclaimer(buying_lender, delivery):
    from datetime import date

    pdf = prequalification_letter(
        delivery=delivery, lender=buying_lender, today=date(2026, 3, 2), compress=False
    )
    assert pdf.startswith(b"%PDF")
    text = pdf_text(pdf)
    for expected in (
        "Lone Star Lending",
        f"NMLS ID: {buying_lender.nmls_id}",
        "Maria Gonzalez",
        "$420,000",
        "Conventional, FHA",
        "March 02, 2026",
        "May 31, 2026",
        "not a commitment to lend",
    ):
        assert expected in text, expected


def pdf_text(pdf: bytes) -> str:
    """The text a reader copies out of the PDF (glyphs mapped back through the font's ToUnicode map)."""
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)


def test_letter_prints_names_outside_latin1_as_written(buying_lender, delivery):
    """Issue 11.18: the built-in PDF fonts are Latin-1 only and turned "Zoë Nguyễn-Łukasz" into
    "Zoë Nguy?n-?ukasz"; the vendored DejaVu Sans is embedded, so the name reads as the borrower wrote it."""
    consumer = delivery.lead.consumer
    consumer.first_name, consumer.last_name = "Zoë", "Nguyễn-Łukasz"
    consumer.save()
    buying_lender.name = "Łódź Home Lending"
    pdf = prequalification_letter(delivery=delivery, lender=buying_lender)
    text = pdf_text(pdf)
    assert "Borrower: Zoë Nguyễn-Łukasz" in text and "Dear Zoë Nguyễn-Łukasz," in text
    assert "Łódź Home Lending" in text and "?" not in text
    assert PdfReader(io.BytesIO(pdf)).metadata.author == "Łódź Home Lending"
    assert b"DejaVuSans" in pdf  # the font travels inside the file: any reader shows the same letters


def test_letter_download(owner_client, delivery):
    r = owner_client.get(url("delivery_letter", delivery.pk))
    assert r.status_code == 200 and r["Content-Type"] == "application/pdf"
    assert r.content.startswith(b"%PDF")
    assert f'filename="prequalification-{delivery.lead.reference}.pdf"' in r["Content-Disposition"]


def _csv(response) -> list[list[str]]:
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))


def test_csv_export_respects_filters_and_defuses_formulas(
    owner_client, buying_lender, our_subscription, django_assert_num_queries
):
    sell(buying_lender, first_name='=HYPERLINK("http://evil")')
    sell(buying_lender, first_name="Plain")
    contacted = sell(buying_lender, first_name="Reached")
    delivery_set_status(delivery=contacted, status="contacted")
    # 1 session, 2 user, 3 membership + lender, 4 the exported leads' ids and 5 one insert logging the
    # contact-details access for all of them, 6 every matching delivery with its lead, consumer,
    # subscription and assignee joined (streamed in chunks; one query at any size).
    with django_assert_num_queries(6):
        rows = _csv(owner_client.get(url("inbox_export"), {"status": "new"}))
    assert rows[0][:4] == ["Delivered", "Delivery", "Lead", "Status"]
    names = [r[4] for r in rows[1:]]
    assert names == ["Plain", '\'=HYPERLINK("http://evil")']
    assert rows[1][15] == "40.00" and rows[1][16] == "shared"
    assert rows[0][-1] == "Qualified loan" and rows[1][-1] == "360000.00"
    from compliance.models import ContactAccess

    assert ContactAccess.objects.filter(channel="export").count() == 2


@pytest.mark.parametrize(
    "value,expected",
    [
        ("=1+1", "'=1+1"),
        ("+1", "'+1"),
        ("-2", "'-2"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "'\t=1"),
        ("Maria", "Maria"),
        # Issue 13.2: numbers stay numbers (one CSV writer), so a negative amount is not made text.
        (Decimal("40.00"), Decimal("40.00")),
        (Decimal("-40.00"), Decimal("-40.00")),
        (None, ""),
    ],
)
def test_csv_safe(value, expected):
    assert csv_safe(value) == expected


# --- every new lead URL: another lender gets 404, an officer cannot reach a colleague's lead ----------

LEAD_URLS = [
    ("get", "delivery_detail", {}),
    ("get", "delivery_letter", {}),
    ("post", "delivery_activity", {"kind": "call", "outcome": "reached"}),
    ("post", "delivery_followup", {"due_at": "2030-01-01T10:00"}),
    ("post", "delivery_status", {"status": "contacted"}),
    ("post", "delivery_assign", {"assignee": ""}),
]


@pytest.mark.parametrize("method,name,data", LEAD_URLS)
def test_another_lender_gets_404(rival_client, delivery, method, name, data):
    response = getattr(rival_client, method)(url(name, delivery.pk), data)
    assert response.status_code == 404
    assert not Activity.objects.exists() and not FollowUp.objects.exists()
    delivery.refresh_from_db()
    assert delivery.status == "new"


@pytest.mark.parametrize("method,name,data", LEAD_URLS)
def test_an_officer_cannot_reach_a_colleagues_lead(
    client, buying_lender, officer, delivery, method, name, data
):
    colleague = MemberFactory(lender=buying_lender, role="officer", username="colleague").user
    Delivery.objects.filter(pk=delivery.pk).update(assigned_to=colleague)
    client.force_login(officer)
    assert getattr(client, method)(url(name, delivery.pk), data).status_code == 404
    assert not Activity.objects.exists() and not FollowUp.objects.exists()


def test_followup_done_is_scoped(client, rival_owner, officer, owner, delivery):
    followup = followup_create(delivery=delivery, user=owner, due_at=timezone.now())
    client.force_login(rival_owner)
    assert client.post(url("followup_done", followup.pk)).status_code == 404
    client.force_login(officer)  # the lead is not assigned to this officer
    assert client.post(url("followup_done", followup.pk)).status_code == 404
    followup.refresh_from_db()
    assert followup.done_at is None


def test_export_is_scoped(client, rival_owner, officer, buying_lender, our_subscription):
    mine = sell(buying_lender, first_name="Mine")
    sell(buying_lender, first_name="Other")
    Delivery.objects.filter(pk=mine.pk).update(assigned_to=officer)
    client.force_login(officer)
    assert [r[4] for r in _csv(client.get(url("inbox_export")))[1:]] == ["Mine"]
    client.force_login(rival_owner)
    assert _csv(client.get(url("inbox_export")))[1:] == []
