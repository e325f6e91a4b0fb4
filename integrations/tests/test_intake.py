"""Partner intake: POST a lead through LeadForm and lead_submit, read it back, idempotency, problems."""

import copy
from datetime import timedelta

import pytest
from django.conf import settings
from django.test import override_settings
from django.utils import timezone

from integrations.models import ApiKey, LeadIntake
from integrations.services import api_key_create, api_key_revoke
from leads.forms import LeadForm
from leads.models import Lead

from .conftest import LEAD, Api
from .ratewindow import start_of_a_window

pytestmark = pytest.mark.django_db
URL = "/api/v1/leads/"


def assert_problem(response, status):
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/problem+json")
    body = response.json()
    assert (
        body["status"] == status
        and body["title"]
        and body["detail"]
        and body["type"].startswith(f"{settings.SITE_URL}/api/problems/")
    )
    return body


def test_a_partner_posts_a_lead_and_its_source_and_consent_are_recorded(partner, partner_api):
    response = partner_api.post(URL, LEAD)

    assert response.status_code == 202, response.content
    body = response.json()
    lead = Lead.objects.get(public_id=body["id"])
    assert body["status"] == "received"
    assert body["links"]["self"].endswith(f"/api/v1/leads/{lead.public_id}/")
    assert response["Location"] == body["links"]["self"]
    assert lead.source == partner
    assert (lead.sub_id, lead.campaign, lead.utm_source, lead.utm_medium, lead.utm_campaign) == (
        "aff-991",
        "spring",
        "google",
        "cpc",
        "ftb",
    )
    assert lead.consumer.phone == "5125550142"  # cleaned by LeadForm, as on the form
    assert lead.consent.text == LEAD["consent"]["text"]
    assert (lead.consent.ip_address, lead.consent.page_url) == (
        "203.0.113.7",
        "https://partner.example/quote",
    )
    intake = LeadIntake.objects.get(lead=lead)
    assert intake.consent_given_at.isoformat() == LEAD["consent"]["given_at"]


def test_the_partner_reads_status_and_qualification_once_qualified(
    partner_api, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        lead_id = partner_api.post(URL, LEAD).json()["id"]

    body = partner_api.get(f"{URL}{lead_id}/").json()

    assert body["status"] in ("qualified", "sold", "unsold")
    q = body["qualification"]
    assert q["qualified"] is True and q["products"]
    assert {p["product"] for p in q["max_per_product"]} >= set(q["products"])
    assert q["estimate"] and q["dti"] and q["ltv"] and isinstance(q["reasons"], list)


def test_the_qualification_says_what_they_qualify_for_against_the_request(
    partner_api, django_capture_on_commit_callbacks
):
    """Issue 12: the API's qualification object carries the loan qualified for beside the request, each
    product's offer and obstacle, what would close the gap, and the purchase as described."""
    from leads.models import StateHousingCost

    # The figures are at the national tax and insurance rates: as for a state the table lacks.
    StateHousingCost.objects.filter(state="TX").delete()
    stretched = {
        **LEAD,
        "annual_income": "48000",
        "monthly_debts": "600",
        "property_value": "330000",
        "purchase_price": "330000",
        "down_payment": "30000",
        "first_time_buyer": True,
    }
    with django_capture_on_commit_callbacks(execute=True):
        lead_id = partner_api.post(URL, stretched).json()["id"]

    q = partner_api.get(f"{URL}{lead_id}/").json()["qualification"]

    assert q["qualified"] is True and q["fits_request"] is False
    assert (q["requested_loan"], q["estimate"], q["qualified_loan"]) == (
        "300000.00",
        "158408.58",
        "158408.58",
    )
    assert q["minimum_loan"] == "50000.00" and q["best_product"] == "conventional"
    assert q["guidelines_version"] == "2026.3" and q["dti"] == "50.00"
    conv = next(p for p in q["max_per_product"] if p["product"] == "conventional")
    assert conv["eligible"] is True and conv["fits_request"] is False and conv["loan"] == "158408.58"
    assert conv["binding_constraint"] == "dti" and conv["obstacle"].startswith("Debt-to-income")
    assert [step["kind"] for step in q["gap"]] == ["down_payment", "debts", "income"]
    assert q["gap"][0]["amount"] == "141591.42" and q["gap"][0]["text"].startswith("A down payment of")
    assert q["purchase"] == {
        "price": "330000.00",
        "down_payment": "30000.00",
        "loan": "300000.00",
        "within": False,
        "max_loan": "158408.58",
        "max_ltv": "48.00",
        "down_payment_at_max": "171591.42",
        "product": "conventional",
    }


def test_a_partner_may_give_an_exact_credit_score(partner_api, django_capture_on_commit_callbacks):
    """Issue 12.5: the partner API takes an exact score (300-850) instead of a range; the lead stores both,
    the range derived from the score, and the qualification says which score the products were judged by."""
    data = {k: v for k, v in LEAD.items() if k != "credit_range"}
    with django_capture_on_commit_callbacks(execute=True):
        response = partner_api.post(URL, {**data, "credit_score": 702})
    assert response.status_code == 202, response.content
    lead = Lead.objects.get(public_id=response.json()["id"])
    assert (lead.credit_score, lead.credit_range) == (702, "700_719")
    q = partner_api.get(f"{URL}{lead.public_id}/").json()["qualification"]
    assert (q["credit_range"], q["credit_score"], q["credit_score_judged"]) == ("700_719", 702, 702)

    by_range = partner_api.post(URL, {**LEAD, "email": "other@example.com"}).json()["id"]
    assert Lead.objects.get(public_id=by_range).credit_score is None


@pytest.mark.parametrize(
    ("credit", "field", "message"),
    [
        (
            {"credit_range": "660_679", "credit_score": 702},
            "credit_score",
            "A score of 702 is in the 700_719",
        ),
        ({}, "credit_range", "Give credit_range or credit_score."),
        ({"credit_band": "good"}, "credit_range", "credit_band was replaced by credit_range"),
        ({"credit_score": 299}, "credit_score", "greater than or equal to 300"),
        ({"credit_score": 851}, "credit_score", "less than or equal to 850"),
        ({"credit_score": "seven hundred"}, "credit_score", "A valid integer is required."),
        ({"credit_range": "good"}, "credit_range", "is not a valid choice"),
    ],
)
def test_credit_input_problems_are_named(partner_api, credit, field, message):
    data = {k: v for k, v in LEAD.items() if k != "credit_range"}
    body = assert_problem(partner_api.post(URL, {**data, **credit}), 400)
    assert message in body["errors"][field][0], body
    assert Lead.objects.count() == 0


def test_the_schema_documents_credit_range_and_credit_score(client):
    schema = client.get("/api/schema/?format=json").json()["components"]["schemas"]
    lead_input = schema["LeadInputRequest"] if "LeadInputRequest" in schema else schema["LeadInput"]
    props = lead_input["properties"]
    assert props["credit_score"]["minimum"] == 300 and props["credit_score"]["maximum"] == 850
    assert "credit_range" in props and "credit_range" not in lead_input.get("required", [])
    assert "Give this or `credit_range`" in props["credit_score"]["description"]
    out = schema["QualificationOutput"]["properties"]
    assert {"credit_range", "credit_score", "credit_score_judged"} <= set(out)


def test_another_partners_lead_is_404(partner_api, rival_partner_api):
    lead_id = partner_api.post(URL, LEAD).json()["id"]

    assert_problem(rival_partner_api.get(f"{URL}{lead_id}/"), 404)


def test_validation_is_the_forms_with_each_field_listed(partner_api):
    bad = {**LEAD, "zip_code": "1234", "down_payment": "500000", "phone": "12"}

    body = assert_problem(partner_api.post(URL, bad), 400)

    form = LeadForm(
        data={**{k: v for k, v in bad.items() if k not in ("consent", "attribution")}, "consent": True}
    )
    assert not form.is_valid()
    assert body["errors"]["zip_code"] == form.errors["zip_code"]
    assert body["errors"]["phone"] == form.errors["phone"]
    assert Lead.objects.count() == 0


def test_missing_consent_evidence_is_a_field_error(partner_api):
    data = {k: v for k, v in LEAD.items() if k != "consent"}
    assert "consent" in assert_problem(partner_api.post(URL, data), 400)["errors"]
    future = copy.deepcopy(LEAD)
    future["consent"]["given_at"] = (timezone.now() + timedelta(days=1)).isoformat()
    assert "consent.given_at" in assert_problem(partner_api.post(URL, future), 400)["errors"]


def test_idempotency_key_replays_the_first_response(partner_api):
    first = partner_api.post(URL, LEAD, headers={"Idempotency-Key": "abc-1"})
    again = partner_api.post(URL, dict(reversed(list(LEAD.items()))), headers={"Idempotency-Key": "abc-1"})

    assert first.status_code == again.status_code == 202
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert again["Location"] == first["Location"] == first.json()["links"]["self"]
    assert Lead.objects.count() == 1


def test_a_concurrent_duplicate_key_is_rolled_back_and_replays_the_winner(partner_api, monkeypatch):
    from integrations import services as integration_services

    first = partner_api.post(URL, LEAD, headers={"Idempotency-Key": "abc-race"})
    # The second request looks before the first has committed: it finds no record, so it performs too.
    find = integration_services.idempotency_find
    looks = []

    def find_after_the_first_look(**kwargs):
        looks.append(kwargs["key"])
        return None if len(looks) == 1 else find(**kwargs)

    monkeypatch.setattr(integration_services, "idempotency_find", find_after_the_first_look)
    again = partner_api.post(URL, LEAD, headers={"Idempotency-Key": "abc-race"})

    assert len(looks) == 2  # it performed, lost on the unique key, then replayed
    assert again.status_code == 202 and again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true" and again["Location"] == first["Location"]
    assert Lead.objects.count() == 1  # its own lead was rolled back with its record


def test_idempotency_key_with_another_body_is_refused(partner_api):
    partner_api.post(URL, LEAD, headers={"Idempotency-Key": "abc-2"})

    assert_problem(
        partner_api.post(URL, {**LEAD, "first_name": "Ana"}, headers={"Idempotency-Key": "abc-2"}), 422
    )
    assert Lead.objects.count() == 1


def test_keys_are_hashed_rotatable_and_revocable(partner):
    old = api_key_create(source=partner, name="old", scope=ApiKey.Scope.WRITE)
    new = api_key_create(source=partner, name="new", scope=ApiKey.Scope.WRITE)
    assert old.key not in str(ApiKey.objects.values_list()) and len(old.api_key.key_sha256) == 64

    # During rotation both keys work.
    assert Api(old.key).post(URL, LEAD).status_code == 202
    assert Api(new.key).post(URL, {**LEAD, "email": "b@example.com"}).status_code == 202

    api_key_revoke(api_key=old.api_key)
    assert_problem(Api(old.key).post(URL, LEAD), 401)
    assert Api(new.key).post(URL, {**LEAD, "email": "c@example.com"}).status_code == 202


def test_auth_problems(lender_api):
    response = Api(None).post(URL, LEAD)
    assert_problem(response, 401)
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert_problem(Api("lm_pk_not-a-key").post(URL, LEAD), 401)
    assert_problem(lender_api.post(URL, LEAD), 403)  # a lender key cannot post leads


def test_protocol_errors_are_problems_too(partner_api):
    assert_problem(partner_api.post(URL, raw="{not json"), 400)
    assert_problem(
        partner_api.post(URL, raw="purpose=purchase", content_type="application/x-www-form-urlencoded"), 415
    )
    assert_problem(
        partner_api.client.put(
            URL, "{}", content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {partner_api.key}"
        ),
        405,
    )
    assert_problem(partner_api.get("/api/v1/nothing-here/"), 404)
    assert_problem(partner_api.get(f"{URL}not-a-uuid/"), 404)


@override_settings(API_RATE_LIMITS={"partner": "2/min", "lender": "2/min"})
def test_rate_limit_per_key_answers_429_with_retry_after(partner_api, partner):
    start_of_a_window(60, room=10)  # the three requests in one fixed window, or the count starts again
    for _ in range(2):
        partner_api.get(f"{URL}00000000-0000-0000-0000-000000000000/")
    response = partner_api.get(f"{URL}00000000-0000-0000-0000-000000000000/")

    assert_problem(response, 429)
    assert int(response["Retry-After"]) > 0
    # The limit is per key: another key of the same partner still works.
    other = Api(api_key_create(source=partner, name="2", scope="write").key)
    assert other.get(f"{URL}00000000-0000-0000-0000-000000000000/").status_code == 404


def test_the_qualification_names_the_limits_for_the_units_and_their_sources(
    partner_api, django_capture_on_commit_callbacks
):
    """Issues 12.4 and 12.7: the units asked, the county's limits for them and where each came from (a
    Stamford duplex: Western Connecticut's two-unit limit in FHFA's 2026 file, $1,251,400)."""
    duplex = {**LEAD, "zip_code": "06901", "property_type": "multi_family", "units": 2}
    with django_capture_on_commit_callbacks(execute=True):
        lead_id = partner_api.post(URL, duplex).json()["id"]

    q = partner_api.get(f"{URL}{lead_id}/").json()["qualification"]

    assert q["loan_limits"] == {
        "units": 2,
        "conforming_limit": "1251400.00",
        "conforming_source": "FHFA 2026 Western Connecticut Planning Region, CT, 2 units",
        "fha_limit": "1251400.00",
        "fha_source": "derived from FHFA 2026 Western Connecticut Planning Region, CT, 2 units (high-cost "
        "area: FHA equals the conforming limit)",
    }


def test_units_out_of_range_are_a_field_error(partner_api):
    body = assert_problem(partner_api.post(URL, {**LEAD, "property_type": "multi_family", "units": 5}), 400)
    assert "units" in body["errors"]
    body = assert_problem(partner_api.post(URL, {**LEAD, "units": 2}), 400)  # a single-family home
    assert body["errors"]["units"] == [
        "Only a multi-family home has more than one unit; check the type of home."
    ]


def test_a_paused_source_is_refused_new_leads_with_a_403_and_resumes(partner, partner_api, rival_partner_api):
    from integrations.services import lead_source_set_paused

    lead_source_set_paused(source=partner, paused=True)

    response = partner_api.post(URL, LEAD)
    assert_problem(response, 403)
    assert "paused" in response.json()["detail"]
    assert not Lead.objects.filter(source=partner).exists()
    # Another source is not paused with it.
    assert rival_partner_api.post(URL, LEAD).status_code == 202

    lead_source_set_paused(source=partner, paused=False)
    assert partner_api.post(URL, LEAD).status_code == 202
