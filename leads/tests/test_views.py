"""The public form and result pages, as an anonymous visitor (and a bot) sees them."""

import hashlib
import json
import re
import uuid
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from leads.consent import CONSENT_TEXT
from leads.models import ConsentRecord, Consumer, Lead
from marketplace.tests.factories import FORM_DATA, ConsumerFactory, QualifiedLeadFactory

pytestmark = pytest.mark.django_db

FORM_URL = "/"
UA = "Mozilla/5.0 (X11; Linux x86_64) TestBrowser/1.0"

# Lead.qualification as the engine leaves it (Qualification.to_dict()), trimmed to what the page reads.
QUALIFIED = {
    "qualified": True,
    "products": ["conventional", "fha"],
    "estimate": "350000.00",
    "requested_loan": "300000.00",
    "ltv": "75.00",
    "dti": "31.50",
    "binding_constraint": "dti",
    "reasons": [],
    "best_product": "conventional",
    "results": [
        {"product": "conventional", "eligible": True, "max_loan": "350000.00", "binding_constraint": "dti",
         "ltv": "75.00", "dti": "31.50", "monthly_payment": "2450.37", "reasons": []},
        {"product": "fha", "eligible": True, "max_loan": "340000.00", "binding_constraint": "dti",
         "ltv": "75.00", "dti": "33.10", "monthly_payment": "2610.00", "reasons": []},
        {"product": "va", "eligible": False, "max_loan": "0", "binding_constraint": "eligibility",
         "ltv": "75.00", "dti": "31.00", "monthly_payment": "2300.00",
         "reasons": ["VA loans are for veterans, service members and eligible surviving spouses."]},
    ],
}  # fmt: skip
DTI_REASON = (
    "Your monthly debts are high for your income: this loan needs a debt-to-income ratio of 50% or less; "
    "yours would be 61.3%."
)
NOT_QUALIFIED = {
    **QUALIFIED,
    "qualified": False,
    "products": [],
    "estimate": "0",
    "reasons": [DTI_REASON],
    "results": [],
}


def post_form(client, data=None, **extra):
    return client.post(FORM_URL, data if data is not None else FORM_DATA, HTTP_USER_AGENT=UA, **extra)


def error_beside(response, field: str) -> str:
    """The text of the error list rendered beside a field (Django gives it the id `id_<field>_error`)."""
    html = response.content.decode()
    match = re.search(rf'<ul class="errorlist" id="id_{field}_error">(.*?)</ul>', html, re.S)
    assert match, f"no error beside {field}"
    return re.sub(r"<[^>]+>", "", match.group(1)).replace("&#x27;", "'").strip()


# --- the form ---------------------------------------------------------------------------------------------


def test_form_page_shows_consent_honeypot_and_no_inline_script(client):
    response = client.get(FORM_URL)
    assert response.status_code == 200
    html = response.content.decode()
    assert CONSENT_TEXT in html
    assert 'name="website"' in html
    assert re.search(r'<div class="hp" aria-hidden="true">', html)
    assert re.search(r'<input[^>]*name="website"[^>]*tabindex="-1"', html)
    assert re.search(r'<input[^>]*name="website"[^>]*autocomplete="off"', html)
    # Every script is a static file: a CSP without 'unsafe-inline' must not break the page.
    assert all("src=" in tag for tag in re.findall(r"<script[^>]*>", html))
    assert " style=" not in html
    # Without JavaScript every purpose's section shows, labelled for whom it is.
    for heading in ("If you are buying", "If you are refinancing", "If you want a home equity line"):
        assert heading in html
    assert "I served or serve in the U.S. military (VA loans)" in html
    assert "760 or higher" in html and "Below 500" in html and "<select" in html


def test_valid_post_stores_consumer_lead_and_consent_then_redirects(
    client, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        response = post_form(client, REMOTE_ADDR="203.0.113.9")

    lead = Lead.objects.get()
    assert response.status_code == 303
    assert response["Location"] == f"/result/{lead.public_id}/"
    assert lead.status == "received"
    assert lead.city == "Austin" and lead.state == "TX"
    assert str(lead.desired_loan_amount) == "360000.00"
    consumer = Consumer.objects.get()
    assert (consumer.first_name, consumer.phone, consumer.email) == (
        "Maria",
        "5125550142",
        "maria@example.com",
    )
    consent = ConsentRecord.objects.get(lead=lead)
    assert consent.text == CONSENT_TEXT
    assert consent.text_sha256 == hashlib.sha256(CONSENT_TEXT.encode()).hexdigest()
    assert consent.ip_address == "203.0.113.9"
    assert consent.user_agent == UA
    assert consent.page_url == "http://testserver/"
    assert len(callbacks) == 1  # qualification is queued once the row is committed


def test_valid_post_runs_the_pipeline_on_commit(client, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        post_form(client)
    assert Lead.objects.get().status not in ("received", "rejected")


def test_honeypot_stores_a_rejected_lead_queues_nothing_and_redirects_the_same(
    client, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        response = post_form(client, {**FORM_DATA, "website": "http://cheap-pills.example"})
    lead = Lead.objects.get()
    assert response.status_code == 303
    assert response["Location"] == f"/result/{lead.public_id}/"
    assert (lead.status, lead.status_reason) == ("rejected", "honeypot")
    assert callbacks == []


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("zip_code", "00000", "We could not find ZIP code 00000."),
        ("zip_code", "12", "Enter a 5-digit ZIP code, like 78701."),
        ("purpose", "mortgage", "Choose what you would like to do."),
        ("property_type", "castle", "Choose the type of home."),
        ("property_value", "NaN", "Enter the home's value in dollars, like 250,000."),
        ("down_payment", "500000", "Your down payment must be less than the price ($400,000)."),
        ("credit_range", "", "Choose the range your credit score is in."),
        ("annual_income", "1e400", "Enter your yearly income in dollars, like 250,000."),
        ("monthly_debts", "-1", "Your monthly debt payments can't be negative."),
        ("timeline", "", "Choose when you would like to get started."),
        ("first_name", "", "Enter your first name."),
        ("email", "maria@", "Enter an e-mail address like name@example.com."),
        ("phone", "555-0142", "Enter a 10-digit US phone number, like (512) 555-0142."),
        ("consent", "", "Tick the box to agree to be contacted; we can't pass on your request without it."),
    ],
)
def test_invalid_field_gets_its_message_beside_it_and_in_the_summary(client, field, value, message):
    response = post_form(client, {**FORM_DATA, field: value})
    assert response.status_code == 400
    assert error_beside(response, field) == message
    html = response.content.decode()
    anchor = f"#id_{field}_0" if field == "purpose" else f"#id_{field}"
    assert f'<a href="{anchor}">' in html  # the summary at the top links to the field
    assert 'aria-invalid="true"' in html
    assert not Lead.objects.exists()


def test_unknown_zip_stores_nothing(client):
    response = post_form(client, {**FORM_DATA, "zip_code": "00000"})
    assert response.status_code == 400
    assert "We could not find ZIP code 00000." in response.content.decode()
    assert not Lead.objects.exists() and not Consumer.objects.exists()


def test_entered_values_are_kept_on_error(client):
    response = post_form(client, {**FORM_DATA, "email": "bad", "first_name": "Zoë"})
    assert 'value="Zoë"' in response.content.decode()


def test_one_visitors_errors_and_values_never_reach_the_next_visitors_form(client):
    """Form instances share their field objects (no deep copy per request): nothing of a bad request may
    stay on them, in the page's values, errors or aria attributes."""

    def page() -> str:
        html = client.get(FORM_URL).content.decode()
        return re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", html)

    before = page()
    bad = post_form(client, {**FORM_DATA, "email": "bad", "first_name": "Zoë"}).content.decode()
    assert 'aria-invalid="true"' in bad and "Zoë" in bad
    assert page() == before


# --- hostile input: 4xx, never 500 ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        {},
        {**FORM_DATA, "property_value": "9" * 100_000},
        {**FORM_DATA, "first_name": "A" * 1_000_000},
        {**FORM_DATA, "annual_income": "Infinity", "monthly_debts": "-Infinity", "property_value": "sNaN"},
        {**FORM_DATA, "purpose": ["purchase", "refinance"], "zip_code": ["78701", "00000"]},
        {**FORM_DATA, "email": "😀@example.com", "last_name": "\u202e\u0000"},
        {**FORM_DATA, "phone": "+1 (512) 555-0142 ext. 9"},
        {"purpose": "home_equity", "zip_code": "78701"},
        {"purpose": "refinance", "zip_code": "78701", "mortgage_balance": "1" * 60},
    ],
)
def test_hostile_form_posts_are_refused_cleanly(client, data):
    response = post_form(client, data)
    assert response.status_code == 400
    assert not Lead.objects.exists()


def test_repeated_keys_use_one_value_and_do_not_crash(client):
    # A form post with two values for one key: Django takes the last; the submission still validates.
    response = post_form(client, {**FORM_DATA, "first_name": ["<b>x</b>", "Maria"]})
    assert response.status_code == 303


def test_body_over_the_upload_limit_is_400(client):
    response = post_form(client, {**FORM_DATA, "first_name": "A" * 3_000_000})
    assert response.status_code == 400


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (json.dumps(FORM_DATA), "application/json"),
        ("purpose=purchase&zip_code=78701", "text/plain"),
        (b"\xff\xfe\x00garbage", "application/octet-stream"),
        ("purpose=%ff%fe&zip_code=%00", "application/x-www-form-urlencoded"),
        ("--x\r\nbroken multipart", "multipart/form-data; boundary=x"),
    ],
)
def test_wrong_body_types_are_400(client, body, content_type):
    response = client.generic("POST", FORM_URL, body, content_type=content_type)
    assert response.status_code == 400
    assert not Lead.objects.exists()


@pytest.mark.parametrize("method", ["put", "patch", "delete"])
def test_other_methods_are_405(client, method):
    assert getattr(client, method)(FORM_URL).status_code == 405


def test_odd_remote_addr_is_stored_as_no_ip(client):
    response = post_form(client, REMOTE_ADDR="not-an-ip")
    assert response.status_code == 303
    assert ConsentRecord.objects.get().ip_address is None


# --- the result page --------------------------------------------------------------------------------------


def result_url(lead) -> str:
    return reverse("leads:result", args=[lead.public_id])


def status_url(lead) -> str:
    return reverse("leads:result_status", args=[lead.public_id])


def make_lead(**fields):
    consumer = ConsumerFactory(first_name="Maria", last_name="Gonzalez", email="maria.g@example.com",
                               phone="5125550199")  # fmt: skip
    return QualifiedLeadFactory(consumer=consumer, **fields)


def assert_no_pii_but_first_name(html: str) -> None:
    assert "Maria" in html
    for pii in ("Gonzalez", "maria.g@example.com", "5125550199", "(512) 555-0199"):
        assert pii not in html


def test_received_lead_polls_with_htmx_and_meta_refresh(client):
    lead = make_lead(status="received", qualification={}, products=[], estimate=None)
    response = client.get(result_url(lead))
    assert response.status_code == 200
    html = response.content.decode()
    assert "checking your details" in html
    assert f'hx-get="{status_url(lead)}?shown=received"' in html
    assert 'hx-trigger="every 1s"' in html and 'hx-swap="outerHTML"' in html
    assert '<noscript><meta http-equiv="refresh" content="2"></noscript>' in html
    assert "no-cache" in response["Cache-Control"] or "max-age=0" in response["Cache-Control"]
    assert_no_pii_but_first_name(html)


def test_status_partial_is_204_while_nothing_changed_and_swaps_when_final(client):
    lead = make_lead(status="received", qualification={}, products=[], estimate=None)
    assert client.get(status_url(lead) + "?shown=received").status_code == 204
    partial = client.get(status_url(lead)).content.decode()
    assert 'hx-trigger="every 1s"' in partial and "<html" not in partial

    Lead.objects.filter(pk=lead.pk).update(status="unsold", qualification=QUALIFIED, estimate="350000.00")
    response = client.get(status_url(lead) + "?shown=received")
    assert response.status_code == 200
    html = response.content.decode()
    assert 'You may qualify for up to <span class="amount">$350,000</span>' in html
    assert "hx-trigger" not in html  # final: polling stops


def test_stuck_lead_stops_polling_and_says_so(client):
    lead = make_lead(status="received", qualification={}, products=[], estimate=None)
    Lead.objects.filter(pk=lead.pk).update(created_at=timezone.now() - timedelta(hours=1))
    html = client.get(result_url(lead)).content.decode()
    assert "hx-trigger" not in html and "http-equiv" not in html
    assert "taking longer than usual" in html


def test_qualified_lead_shows_estimate_products_payment_and_limit(client):
    lead = make_lead(
        qualification=QUALIFIED, estimate="350000.00", requested_loan="300000.00", loan_limit="806500.00"
    )
    html = client.get(result_url(lead)).content.decode()
    assert 'You may qualify for up to <span class="amount">$350,000</span>' in html
    assert "<li>Conventional</li><li>FHA</li>" in html
    assert "<li>VA</li>" not in html
    assert "$2,450" in html  # the best product's payment for the requested loan
    assert "The conforming loan limit in your county is $806,500." in html
    assert "matching you with a lender" in html  # still being distributed: keeps polling
    assert 'hx-trigger="every 1s"' in html
    assert_no_pii_but_first_name(html)


def test_the_result_page_says_which_credit_score_the_loans_were_judged_by(client):
    """Issue 12.5: a range counts as its lowest score (660-679 as 660); a partner's exact score as itself."""
    by_range = make_lead(qualification=QUALIFIED, estimate="350000.00", credit_range="660_679")
    html = client.get(result_url(by_range)).content.decode()
    assert "We judged your credit at 660, the lowest score in the range you chose (660–679)" in html
    exact = make_lead(qualification=QUALIFIED, estimate="350000.00", credit_range="700_719", credit_score=702)
    assert "We judged your credit by your score of 702." in client.get(result_url(exact)).content.decode()


def test_sold_lead_says_how_many_lenders_and_stops_polling(client):
    lead = make_lead(status="sold", qualification=QUALIFIED, estimate="350000.00")
    html = client.get(result_url(lead)).content.decode()
    assert "You may qualify for up to" in html
    assert "A licensed loan officer will call you shortly" in html
    assert "hx-trigger" not in html and "http-equiv" not in html


def test_sold_lead_names_the_lenders_who_will_contact_them(client, buying_lender, rival_lender):
    """Issue 15.2: the consumer is told who will contact them, and how many lenders at most (the market's N
    shared buyers, 3 by default, as the consent text says)."""
    from marketplace.services import lead_distribute
    from marketplace.tests.factories import make_subscription

    for lender in (buying_lender, rival_lender):
        make_subscription(lender, exclusive=False, price="30.00")
    lead = make_lead(qualification=QUALIFIED)
    deliveries = lead_distribute(lead_id=lead.pk)
    lead.refresh_from_db()
    assert lead.status == "sold"
    assert len(deliveries) == 2
    html = client.get(result_url(lead)).content.decode()
    assert "Who will contact you:" in html
    assert "<strong>Lone Star Lending</strong>" in html and "<strong>Rival Mortgage</strong>" in html
    assert "No more than 3 lenders get your request." in html


def test_unsold_lead_is_told_kindly_we_are_finding_a_lender(client):
    lead = make_lead(status="unsold", qualification=QUALIFIED, estimate="350000.00")
    html = client.get(result_url(lead)).content.decode()
    assert "We are finding a lender for you" in html
    assert "hx-trigger" not in html


def test_not_qualified_lead_hears_why_and_what_would_help(client):
    lead = make_lead(
        status="not_qualified",
        qualification=NOT_QUALIFIED,
        estimate="0",
        products=[],
        binding_constraint="dti",
    )
    html = client.get(result_url(lead)).content.decode()
    assert "could not match you with a loan just now" in html
    assert "61.3%" in html  # the engine's own reason
    assert "Paying down monthly debts" in html
    assert "You may qualify" not in html
    assert "hx-trigger" not in html
    assert_no_pii_but_first_name(html)


def test_duplicate_lead_is_told_we_already_have_it(client):
    lead = make_lead(status="duplicate", qualification={}, products=[])
    html = client.get(result_url(lead)).content.decode()
    assert "We already have your request from the last 30 days; a lender will be in" in html


def test_rejected_lead_gets_a_neutral_thank_you(client):
    lead = make_lead(status="rejected", status_reason="honeypot", qualification={}, products=[])
    html = client.get(result_url(lead)).content.decode()
    assert "We have received your request." in html
    assert "honeypot" not in html and "Maria" not in html


def test_a_broken_qualification_json_does_not_break_the_page(client):
    lead = make_lead(qualification={"results": "nonsense", "products": [1, None], "best_product": 7})
    assert client.get(result_url(lead)).status_code == 200


def test_unknown_public_id_is_404(client):
    missing = uuid.uuid4()
    assert client.get(f"/result/{missing}/").status_code == 404
    assert client.get(f"/result/{missing}/status/").status_code == 404
    assert client.get("/result/1/").status_code == 404  # the database id is never an address


# --- issue 12: what the consumer qualifies for, from the engine itself -------------------------------------


def qualified_page(client, **data):
    from decimal import Decimal

    from leads.tests.test_pipeline import submit
    from marketplace.services import leads_qualify

    lead = submit(**{k: Decimal(v) if isinstance(v, str) and v[:1].isdigit() else v for k, v in data.items()})
    leads_qualify(lead_ids=[lead.pk])
    lead.refresh_from_db()
    html = client.get(result_url(lead)).content.decode().replace("&#x27;", "'")
    return lead, re.sub(r"\s+", " ", html)


def test_asking_too_much_shows_what_they_qualify_for_and_what_would_close_the_gap(client):
    """Issue 12.1: "You may qualify for up to $158,408 (you asked about $300,000)", with what would close
    the gap, on the page of a qualified lead (not a refusal)."""
    from leads.models import StateHousingCost

    # The figures are at the national tax and insurance rates: as for a state the table lacks.
    StateHousingCost.objects.filter(state="TX").delete()
    lead, html = qualified_page(
        client,
        annual_income="48000",
        monthly_debts="600",
        property_value="330000",
        purchase_price="330000",
        down_payment="30000",
        desired_loan_amount="300000",
    )
    assert lead.status == "qualified" and lead.qualified_loan == lead.estimate < lead.requested_loan
    assert (
        'You may qualify for up to <span class="amount">$158,408</span> '
        '<span class="asked">(you asked about $300,000)</span>' in html
    )
    assert "What would close the gap:" in html
    assert "A down payment of $171,592 ($141,592 more) would bring the loan to $158,408" in html
    assert "Paying off all your debts ($600 a month) would let you borrow up to" in html
    assert "A household income of $72,500 a year" in html
    assert "this loan needs a debt-to-income ratio of 50% or less" in html
    assert "Estimated monthly payment for a $158,408 loan" in html
    # Issue 12.8: the home as described, beside the most for it.
    assert (
        "For this home ($330,000 with $30,000 down) your loan would be $300,000, more than the $158,408 you "
        "may qualify for." in html
    )


def test_a_purchase_within_reach_shows_the_deal_and_the_room(client):
    """Issue 12.8: "For this home ($450,000 with $90,000 down) your loan would be $360,000, within what you
    qualify for", beside the most at the product's LTV limit."""
    lead, html = qualified_page(
        client,
        annual_income="250000",
        property_value="450000",
        purchase_price="450000",
        down_payment="90000",
        desired_loan_amount="360000",
    )
    assert lead.status == "qualified"
    assert (
        "For this home ($450,000 with $90,000 down) your loan would be $360,000, within what you qualify for."
        in html
    )
    assert "The most you may borrow for it is $436,500 (97% of the price), with $13,500 down." in html
    assert "(you asked about" not in html and "What would close the gap" not in html


def test_a_cash_out_refinance_shows_both_refinances(client):
    """Issue 12.3: rate and term up to the balance plus closing costs, and the cash-out figure, both shown."""
    lead, html = qualified_page(
        client,
        purpose="refinance",
        purchase_price=None,
        down_payment=None,
        property_value="500000",
        mortgage_balance="300000",
        cash_out="150000",
        desired_loan_amount="450000",
        annual_income="200000",
        monthly_debts="300",
    )
    assert lead.status == "qualified" and lead.qualified_loan == 400000
    assert (
        "Refinancing what you owe (rate and term): up to $309,000, your balance plus estimated closing costs."
        in html
    )
    assert "With cash out: up to $400,000, which is $100,000 in cash (you asked for $150,000)." in html
    assert "Taking $100,000 in cash instead of $150,000 would fit." in html


def test_a_veteran_reads_the_household_assumption(client):
    """Issue 12.4: the form does not ask the household size; VA's residual income assumed one, and says so."""
    lead, html = qualified_page(client, military_service=True, down_payment="0", desired_loan_amount="400000")
    assert "we assumed a household of 1 (the form does not ask)" in html
