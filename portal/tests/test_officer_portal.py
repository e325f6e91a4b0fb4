"""The portal a loan officer lives in (issue 15, section 5), walked as the officer assigned to a lead:
reaching the consumer moves the lead on, the response time in words, the letter in the officer's name,
messages that say what is missing, analytics of their own leads. A rival lender's officer sees and moves
nothing of ours; an officer never reaches a manager-only action."""

import csv
import io
import re
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from pypdf import PdfReader

from integrations.models import ApiKey, WebhookEndpoint, WebhookMessage
from integrations.services import api_key_create, webhook_secret_new
from integrations.tests.conftest import Api
from lenders.models import Membership
from marketplace.models import Activity, Delivery
from marketplace.services import activity_log, delivery_set_status
from marketplace.tests.factories import MemberFactory, make_subscription

from .test_portal import sell

pytestmark = pytest.mark.django_db


def url(name: str, *args) -> str:
    return reverse(f"portal:{name}", args=args)


@pytest.fixture
def our_subscription(buying_lender):
    return make_subscription(buying_lender, states=["TX"], price="40.00")


@pytest.fixture
def delivery(our_subscription, buying_lender, officer) -> Delivery:
    """Maria's lead, sold to us and assigned to our officer."""
    d = sell(buying_lender, first_name="Maria")
    Delivery.objects.filter(pk=d.pk).update(assigned_to=officer)
    d.refresh_from_db()
    return d


@pytest.fixture
def officer_client(client: Client, officer) -> Client:
    client.force_login(officer)
    return client


@pytest.fixture
def rival_officer(rival_lender):
    return MemberFactory(lender=rival_lender, role="officer", username="rival-officer").user


def inbox_row(html: str, first_name: str) -> str:
    """The inbox's <tr> of the consumer with this first name."""
    before, after = html.split(f">{first_name} ", 1)
    return "<tr" + before.rsplit("<tr", 1)[1] + after.split("</tr>", 1)[0]


def page(client: Client, d: Delivery) -> str:
    response = client.get(url("delivery_detail", d.pk))
    assert response.status_code == 200
    return response.content.decode()


# --- 1. reaching the consumer moves the lead to Contacted --------------------------------------------


def test_a_reached_call_moves_a_new_lead_to_contacted(officer_client, delivery, buying_lender):
    endpoint = WebhookEndpoint.objects.create(
        lender=buying_lender,
        url="https://crm.example/hook",
        secret=webhook_secret_new(),
        events=["delivery.updated"],
    )
    assert "Mark contacted" in page(officer_client, delivery)

    response = officer_client.post(
        url("delivery_activity", delivery.pk), {"kind": "call", "outcome": "reached", "note": "Wants a quote"}
    )

    assert response.status_code == 302
    delivery.refresh_from_db()
    assert delivery.status == "contacted" and delivery.first_contact_at is not None
    html = officer_client.get(response["Location"]).content.decode()
    assert "Call logged. Lead moved to Contacted." in html
    assert 'badge--contacted">Contacted' in html
    assert "Mark contacted" not in html  # the move is made; what is left is application or lost
    assert "Mark application" in html
    # A CRM listening for status changes hears about this one as about any other.
    message = WebhookMessage.objects.get(endpoint=endpoint)
    assert message.event_type == "delivery.updated" and message.payload["data"]["status"] == "contacted"


@pytest.mark.parametrize("outcome", ["voicemail", "no_answer", "wrong_number"])
def test_an_attempt_that_did_not_reach_them_leaves_the_lead_new(officer_client, delivery, outcome):
    officer_client.post(url("delivery_activity", delivery.pk), {"kind": "call", "outcome": outcome})

    delivery.refresh_from_db()
    assert delivery.status == "new"
    assert delivery.first_contact_at is not None  # an attempt still stops the response clock
    assert "Mark contacted" in page(officer_client, delivery)


def test_reaching_them_later_in_the_pipeline_moves_nothing(officer, delivery):
    delivery_set_status(delivery=delivery, status="contacted")
    delivery_set_status(delivery=delivery, status="application")

    activity_log(delivery=delivery, user=officer, kind="call", outcome="reached")
    delivery.refresh_from_db()
    assert delivery.status == "application"

    delivery_set_status(delivery=delivery, status="lost", lost_reason="Went elsewhere")
    activity_log(delivery=delivery, user=officer, kind="email", outcome="reached")  # no error, no move
    delivery.refresh_from_db()
    assert delivery.status == "lost" and Activity.objects.filter(delivery=delivery).count() == 2


def test_a_note_saying_reached_is_not_contact(officer, delivery):
    activity_log(delivery=delivery, user=officer, kind="note", outcome="reached", note="Reached? Not yet")
    delivery.refresh_from_db()
    assert delivery.status == "new" and delivery.first_contact_at is None


def test_a_reached_call_through_the_api_moves_it_too(delivery, buying_lender):
    key = api_key_create(lender=buying_lender, name="CRM", scope=ApiKey.Scope.WRITE).key
    response = Api(key).post(
        f"/api/v1/deliveries/{delivery.pk}/activities/", {"kind": "text", "outcome": "reached"}
    )
    assert response.status_code == 201
    delivery.refresh_from_db()
    assert delivery.status == "contacted"


def test_a_rival_officer_cannot_log_on_our_lead_or_move_it(client, rival_officer, delivery):
    client.force_login(rival_officer)
    response = client.post(url("delivery_activity", delivery.pk), {"kind": "call", "outcome": "reached"})
    assert response.status_code == 404
    delivery.refresh_from_db()
    assert delivery.status == "new" and delivery.first_contact_at is None
    assert not Activity.objects.exists()


# --- 2. the response time, in words; the inbox's clock stops at first contact --------------------------


@pytest.mark.parametrize(
    "seconds,words",
    [
        (0, "0 s"),
        (40, "40 s"),
        (60, "1 min"),
        (200, "3 min 20 s"),
        (2040, "34 min"),
        (3600, "1 h"),
        (7500, "2 h 5 min"),
        (86400 * 3 + 3600 * 4 + 59, "3 d 4 h"),
        (-5, "0 s"),  # a clock skew never shows a negative time
    ],
)
def test_duration_in_words(seconds, words):
    from portal.shared import duration

    assert duration(seconds) == words


def _contacted_after(d: Delivery, seconds: int) -> None:
    """The lead as if delivered `seconds` before its first contact, which happened two days ago."""
    first = timezone.now() - timedelta(days=2)
    Delivery.objects.filter(pk=d.pk).update(
        created_at=first - timedelta(seconds=seconds), first_contact_at=first
    )


def test_the_lead_page_says_how_long_the_first_contact_took(officer_client, delivery):
    html = page(officer_client, delivery)
    assert "None yet: waiting" in html and "data-timer" in html  # still waiting: the clock ticks

    _contacted_after(delivery, 40)
    html = page(officer_client, delivery)
    assert "<strong>after 40 s</strong>" in html
    assert "None yet" not in html


def test_the_inbox_clock_stops_at_first_contact(officer_client, buying_lender, officer, delivery):
    waiting = sell(buying_lender, first_name="Waiting")
    lost = sell(buying_lender, first_name="Dropped")
    Delivery.objects.filter(pk__in=[waiting.pk, lost.pk]).update(assigned_to=officer)
    delivery_set_status(delivery=lost, status="lost", lost_reason="Not interested")
    _contacted_after(delivery, 200)

    html = officer_client.get(url("inbox")).content.decode()
    rows = {n: inbox_row(html, n) for n in ("Maria", "Waiting", "Dropped")}
    # Reached after 3 min 20 s two days ago: it says so, and does not count "2 d" of waiting.
    assert "first contact after</span> 3 min 20 s" in rows["Maria"]
    assert "data-timer" not in rows["Maria"] and "2 d ago" not in rows["Maria"]
    assert "data-timer" in rows["Waiting"] and 'data-urgent-after="300"' in rows["Waiting"]
    assert "data-timer" not in rows["Dropped"] and "no contact logged" in rows["Dropped"]


# --- 3. the letter carries the officer's name, NMLS id and phone; the officer keeps their profile -------


def pdf_text(pdf: bytes) -> str:
    return "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf)).pages)


def test_an_officer_fills_in_their_profile(officer_client, officer):
    form = officer_client.get(url("profile"))
    assert form.status_code == 200 and "Your profile" in form.content.decode()

    response = officer_client.post(
        url("profile"),
        {
            "first_name": "Olivia",
            "last_name": "Ortega",
            "nmls_id": "NMLS #1234567",
            "phone": "(512) 555-0199",
            "booking_url": "calendly.com/olivia",
        },
    )

    assert response.status_code == 302
    member = Membership.objects.select_related("user").get(user=officer)
    assert (member.user.get_full_name(), member.nmls_id, member.phone) == (
        "Olivia Ortega",
        "1234567",
        "5125550199",
    )
    assert member.booking_url == "https://calendly.com/olivia"
    html = officer_client.get(url("profile")).content.decode()
    assert 'value="(512) 555-0199"' in html and "Your profile is saved." in html


@pytest.mark.parametrize(
    "field,value,message",
    [
        ("phone", "555-01", "Enter a 10-digit US phone number"),
        ("phone", "(012) 555-0199", "not a valid US phone number"),
        ("nmls_id", "NMLS", "An NMLS id is up to 12 digits"),
        ("nmls_id", "1234567890123", "An NMLS id is up to 12 digits"),
        ("booking_url", "not a link", "Enter a valid URL"),
    ],
)
def test_a_bad_profile_value_is_named_beside_its_field(officer_client, officer, field, value, message):
    data = {"first_name": "Olivia", "last_name": "Ortega", "nmls_id": "", "phone": "", "booking_url": ""}
    response = officer_client.post(url("profile"), {**data, field: value})
    assert response.status_code == 400 and message in response.content.decode()
    assert Membership.objects.get(user=officer).nmls_id == ""


def test_the_letter_is_signed_by_the_assigned_officer(client, owner, officer, buying_lender, delivery):
    member = Membership.objects.get(user=officer)
    member.nmls_id, member.phone = "1234567", "5125550199"
    member.save()
    officer.first_name, officer.last_name = "Olivia", "Ortega"
    officer.save()

    # The owner downloads it for Olivia's lead: Olivia signs it, the borrower's contact.
    client.force_login(owner)
    text = pdf_text(client.get(url("delivery_letter", delivery.pk)).content)
    assert "Olivia Ortega" in text and "NMLS ID: 1234567" in text and "Phone: (512) 555-0199" in text
    assert officer.email in text and f"Loan Officer, {buying_lender.name}" in text
    assert f"NMLS ID: {buying_lender.nmls_id}" in text  # the company's too
    assert "Lead reference" not in text


def test_an_officer_without_nmls_id_is_told_before_sending_a_letter(officer_client, delivery, officer):
    html = page(officer_client, delivery)
    assert "it will lack your NMLS id and phone" in html and url("profile") in html
    text = pdf_text(officer_client.get(url("delivery_letter", delivery.pk)).content)
    assert "NMLS ID: \n" not in text and "not on file" not in text.split("Sincerely", 1)[1]

    Membership.objects.filter(user=officer).update(nmls_id="1234567", phone="5125550199")
    assert "it will lack" not in page(officer_client, delivery)


def test_a_manager_edits_an_officers_profile_but_not_an_owners(client, buying_lender, owner, officer):
    manager = MemberFactory(lender=buying_lender, role="manager", username="manager").user
    client.force_login(manager)
    officer_member = Membership.objects.get(user=officer)
    owner_member = Membership.objects.get(user=owner)
    data = {"first_name": "O", "last_name": "K", "nmls_id": "7654321", "phone": "", "booking_url": ""}

    team = client.get(url("team")).content.decode()
    assert url("member_profile", officer_member.pk) in team
    assert url("member_profile", owner_member.pk) not in team
    assert client.post(url("member_profile", officer_member.pk), data).status_code == 302
    assert Membership.objects.get(pk=officer_member.pk).nmls_id == "7654321"

    assert client.get(url("member_profile", owner_member.pk)).status_code == 403
    assert client.post(url("member_profile", owner_member.pk), data).status_code == 403
    assert Membership.objects.get(pk=owner_member.pk).nmls_id == ""


def test_an_officer_cannot_edit_a_colleagues_profile(officer_client, buying_lender):
    colleague = MemberFactory(lender=buying_lender, role="officer", username="colleague")
    data = {"first_name": "X", "last_name": "Y", "nmls_id": "1", "phone": "", "booking_url": ""}
    assert officer_client.get(url("member_profile", colleague.pk)).status_code == 403
    assert officer_client.post(url("member_profile", colleague.pk), data).status_code == 403
    assert Membership.objects.get(pk=colleague.pk).nmls_id == ""


def test_a_rival_owner_cannot_edit_our_officers_profile(client, rival_owner, officer):
    client.force_login(rival_owner)
    member = Membership.objects.get(user=officer)
    data = {"first_name": "X", "last_name": "Y", "nmls_id": "1", "phone": "", "booking_url": ""}
    assert client.get(url("member_profile", member.pk)).status_code == 404
    assert client.post(url("member_profile", member.pk), data).status_code == 404
    assert Membership.objects.get(pk=member.pk).nmls_id == ""


def test_the_profile_service_refuses_what_the_pages_refuse(buying_lender, rival_lender, owner, officer):
    from django.core.exceptions import PermissionDenied

    from lenders.team import membership_profile_update

    args = {"first_name": "A", "last_name": "B", "nmls_id": "", "phone": "", "booking_url": ""}
    officer_member, owner_member = Membership.objects.get(user=officer), Membership.objects.get(user=owner)
    rival = MemberFactory(lender=rival_lender, role="owner", username="rival-boss")
    with pytest.raises(PermissionDenied):
        membership_profile_update(actor=officer_member, member=owner_member, **args)
    with pytest.raises(PermissionDenied):
        membership_profile_update(actor=rival, member=officer_member, **args)
    membership_profile_update(actor=owner_member, member=officer_member, **{**args, "nmls_id": "42"})
    assert Membership.objects.get(pk=officer_member.pk).nmls_id == "42"


# --- 4. messages in words, the floor before the bid, dashes for what a product does not offer, one id each


def test_mark_funded_without_an_amount_says_what_is_missing(officer_client, delivery):
    for status in ("contacted", "application", "approved"):
        delivery_set_status(delivery=delivery, status=status)
    html = page(officer_client, delivery)
    # The words the page shows before sending (portal.js reads them; the browser test presses the button).
    assert 'data-missing="Enter the funded loan amount, in dollars, to mark this lead funded."' in html

    response = officer_client.post(
        url("delivery_status", delivery.pk), {"status": "funded", "funded_amount": ""}
    )

    assert response.status_code == 400
    html = response.content.decode()
    funded_field = html.split('id="id_funded_funded_amount"', 1)[1].split("</div>", 1)[0]
    assert "Enter the funded loan amount." in funded_field  # beside the amount, not somewhere on the page
    delivery.refresh_from_db()
    assert delivery.status == "approved"


def test_the_follow_up_about_label_points_at_its_own_field(officer_client, delivery):
    html = page(officer_client, delivery)
    ids = re.findall(r'\sid="([^"]+)"', html)
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)
    about = re.search(r'<label for="([^"]+)">About</label>', html)
    assert about and about.group(1) == "id_followup_note"
    assert 'id="id_followup_note"' in html and 'id="id_note"' in html  # the activity's note keeps its own
    # And the form still works under its new ids.
    officer_client.post(
        url("delivery_followup", delivery.pk), {"due_at": "2030-01-02T10:00", "note": "Rates"}
    )
    assert delivery.followups.get().note == "Rates"


def _really_qualified_delivery(lender) -> Delivery:
    """A 580-619 credit purchase through the real engine: FHA lends; conventional, VA, jumbo, HELOC do not."""
    from leads.tests.test_pipeline import submit
    from marketplace.services import lead_distribute, leads_qualify

    make_subscription(lender, states=["TX"], price="40.00", min_credit_score=500, name="Low credit")
    lead = submit(credit_range="580_619")
    leads_qualify(lead_ids=[lead.pk], queue_distribution=False)
    return next(d for d in lead_distribute(lead_id=lead.pk) if d.lender_id == lender.pk)


def test_products_the_borrower_cannot_have_show_dashes_not_dollars(client, owner, buying_lender):
    d = _really_qualified_delivery(buying_lender)
    results = {r["product"]: r for r in d.lead.qualification["results"]}
    assert results["conventional"]["eligible"] is False and results["conventional"]["max_loan"] == "0.00"
    client.force_login(owner)

    html = page(client, d)

    table = html.split('class="product-table"', 1)[1].split("</table>", 1)[0]
    conventional = table.split(">Conventional</th>", 1)[1].split("</tr>", 1)[0]
    fha = table.split(">FHA</th>", 1)[1].split("</tr>", 1)[0]
    cells = re.findall(r'<td class="num">([^<]*)</td>', conventional)
    assert cells and set(cells) == {"—"}  # max loan, toward the request, rate
    assert re.search(r"\$[1-9][0-9,]+", fha)  # the product that lends shows its figures
    assert not re.search(r"\$0\b", html)


def test_the_subscription_form_shows_the_floor_before_a_price_is_typed(client, owner):
    from decimal import Decimal

    from marketplace.models import PriceFloor

    PriceFloor.objects.create(purpose="purchase", exclusive=False, state="", price=Decimal("30.00"))
    PriceFloor.objects.create(purpose="purchase", exclusive=True, state="", price=Decimal("60.00"))
    PriceFloor.objects.create(purpose="purchase", exclusive=True, state="TX", price=Decimal("75.00"))
    client.force_login(owner)

    html = client.get(url("subscription_create")).content.decode()
    assert "The floor for shared purchase leads is <strong>$30.00</strong>" in html
    assert 'aria-describedby="id_price_helptext price-floor"' in html

    # Choosing exclusive in Texas: the forecast's answer brings the new floor beside the price (out of band).
    form = {
        "name": "x",
        "purposes": ["purchase"],
        "states": ["TX"],
        "min_credit_score": "620",
        "exclusive": "exclusive",
        "price": "",
        "schedule_days": ["0", "1", "2", "3", "4", "5", "6"],
    }
    partial = client.post(url("subscription_forecast"), form).content.decode()
    assert 'id="price-floor"' in partial and 'hx-swap-oob="true"' in partial
    assert "The floor for exclusive purchase leads in TX is <strong>$75.00</strong>" in partial

    refused = client.post(url("subscription_create"), {**form, "price": "70.00"})
    assert "$70.00 is below the $75.00 floor for exclusive purchase leads in TX." in refused.content.decode()


def test_an_officer_never_reaches_the_subscription_form_or_its_floors(officer_client):
    assert officer_client.get(url("subscription_create")).status_code == 403
    assert officer_client.post(url("subscription_forecast"), {"purposes": ["purchase"]}).status_code == 403


# --- 5. analytics for an officer's own leads, beside the team's; managers see the whole lender ----------


@pytest.fixture
def desk(buying_lender, our_subscription, officer):
    """Three leads for our officer (one reached after a minute), two for a colleague, one unassigned; all
    handed out through the service the portal uses, so analytics' rollup follows."""
    from marketplace.services import delivery_reassign

    colleague = MemberFactory(lender=buying_lender, role="officer", username="colleague")
    mine = [sell(buying_lender, first_name=f"Mine{i}") for i in range(3)]
    theirs = [sell(buying_lender, first_name=f"Theirs{i}") for i in range(2)]
    sell(buying_lender, first_name="Nobody")
    for d in mine:
        delivery_reassign(delivery=d, membership=officer.membership)
    for d in theirs:
        delivery_reassign(delivery=d, membership=colleague)
    activity_log(delivery=mine[0], user=officer, kind="call", outcome="reached")
    activity_log(delivery=theirs[0], user=colleague.user, kind="call", outcome="reached")
    return {"mine": mine, "theirs": theirs, "colleague": colleague}


def test_an_officer_reaches_analytics_of_their_own_leads_beside_the_team(
    officer_client, desk, django_assert_num_queries
):
    inbox = officer_client.get(url("inbox")).content.decode()
    assert f'href="{url("analytics")}"' in inbox  # the nav shows it to officers

    # session, user, membership + the report (rollup, subscription names) + the team's total + call tasks
    # + the lender's speed rank
    with django_assert_num_queries(8):
        response = officer_client.get(url("analytics"))

    assert response.status_code == 200
    html = response.content.decode()
    report = response.context["report"]
    assert (report.total.leads, report.total.contacted) == (3, 1)
    assert "The leads assigned to you" in html and "By loan officer" not in html
    you, team = response.context["team_rows"]
    assert (you.label, you.leads, you.contacted) == ("You", 3, 1)
    assert (team.label, team.leads, team.contacted) == ("Your team", 6, 2)
    vs = html.split('id="vs-team-title"', 1)[1].split("</section>", 1)[0]
    assert "$" not in vs  # the desk's speed and conversion, not its spend

    body = b"".join(officer_client.get(url("analytics_csv")).streaming_content).decode()
    total = next(csv.DictReader(io.StringIO(body)))
    assert total["breakdown"] == "Total" and total["leads"] == "3"


def test_a_manager_still_sees_the_whole_lender(client, buying_lender, desk):
    manager = MemberFactory(lender=buying_lender, role="manager", username="manager").user
    client.force_login(manager)
    response = client.get(url("analytics"))
    html = response.content.decode()
    assert response.context["report"].total.leads == 6
    assert "By loan officer" in html and "You and your team" not in html
    assert response.context["team"] is None


def test_a_rival_officer_sees_none_of_our_figures(client, rival_officer, desk):
    client.force_login(rival_officer)
    response = client.get(url("analytics"))
    assert response.status_code == 200
    assert response.context["report"].total.leads == 0
    _, team = response.context["team_rows"]
    assert team.leads == 0  # their own desk: nobody's leads there


def test_the_rollup_follows_a_reached_call(desk, buying_lender):
    from marketplace.rollup import rollup_computed, rollup_stored

    # The move to Contacted made by the call is counted like any other move.
    assert Delivery.objects.get(pk=desk["mine"][0].pk).status == "contacted"
    assert rollup_stored(lender_id=buying_lender.pk) == rollup_computed(lender_id=buying_lender.pk)
