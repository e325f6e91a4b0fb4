"""Issue 11 (items 9, 10, 19, 20): the API answers bad input with a problem+json 4xx, never a 500 or an HTML
page; consent times must be recent and carry their offset; the schema says what the server enforces."""

import base64
import copy
import json
from datetime import timedelta

import pytest
from django.conf import settings
from django.test import Client, override_settings
from django.utils import timezone
from django.utils.html import escape

from core.problems import PROBLEM_TYPES

from .conftest import LEAD
from .ratewindow import start_of_a_window
from .test_intake import assert_problem

pytestmark = pytest.mark.django_db
LEADS = "/api/v1/leads/"


def forged_cursor(position: str) -> str:
    return base64.b64encode(f"o=0&p={position}".encode()).decode()


def test_a_body_of_100000_brackets_is_a_400_problem(partner_api):
    """Issue 11.9: json.loads raised RecursionError on deep nesting, a 500."""
    partner_api.client.raise_request_exception = False
    body = assert_problem(partner_api.post(LEADS, raw="[" * 100_000), 400)
    assert "nested" in body["detail"]
    # Deep but parseable nesting is refused as well, before anything recurses over it.
    assert_problem(partner_api.post(LEADS, raw="[" * 500 + "]" * 500), 400)


@pytest.mark.parametrize("path", ["/api/v1/deliveries/", "/api/v1/account/ledger/"])
@pytest.mark.parametrize("position", ["not-a-date", "2026-13-45T00:00:00", "9999-12-31T23:59:59-01:00"])
def test_a_forged_cursor_is_a_400_naming_the_cursor(lender_api, delivery, path, position):
    """Issue 11.9: a cursor's position reached the database unchecked and raised there, a 500."""
    lender_api.client.raise_request_exception = False
    body = assert_problem(lender_api.get(path, {"cursor": forged_cursor(position)}), 400)
    assert "cursor" in body["errors"]
    # What DRF itself refuses (an offset that is not a number) is a 400 too, not its 404 "Invalid cursor".
    malformed = base64.b64encode(b"o=x").decode()
    assert "cursor" in assert_problem(lender_api.get(path, {"cursor": malformed}), 400)["errors"]


def test_a_real_cursor_still_pages(lender_api, buying_lender, delivery):
    from marketplace.services import lead_distribute
    from marketplace.tests.factories import QualifiedLeadFactory

    lead_distribute(lead_id=QualifiedLeadFactory().pk)
    first = lender_api.get("/api/v1/deliveries/", {"page_size": 1}).json()
    assert len(first["results"]) == 1 and first["next"]
    second = lender_api.get(first["next"]).json()
    assert len(second["results"]) == 1 and second["results"][0]["id"] != first["results"][0]["id"]


@override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=10_000)
def test_a_body_over_the_size_limit_is_a_413_problem_not_an_html_400(partner_api):
    """Issue 11.9: Django answered RequestDataTooBig with its HTML 400 page."""
    lead = copy.deepcopy(LEAD)
    lead["consent"]["text"] = "x" * 20_000
    body = assert_problem(partner_api.post(LEADS, lead), 413)
    assert "10000 bytes" in body["detail"]


@pytest.mark.parametrize(
    "given_at",
    ["0001-01-01T00:00:00Z", "1900-01-01T00:00:00Z", "2001-01-01T00:00:00+00:00", "naive-recent", "tomorrow"],
)
def test_consent_must_be_recent_and_carry_its_offset(partner_api, given_at):
    """Issue 11.10: a given_at of 0001-01-01, 1900 or without a time zone was accepted."""
    now = timezone.now()
    given_at = {
        "naive-recent": (now - timedelta(hours=1)).replace(tzinfo=None).isoformat(),
        "tomorrow": (now + timedelta(days=1)).isoformat(),
    }.get(given_at, given_at)
    lead = copy.deepcopy(LEAD)
    lead["consent"]["given_at"] = given_at
    errors = assert_problem(partner_api.post(LEADS, lead), 400)["errors"]
    assert list(errors) == ["consent.given_at"]


def test_consent_within_the_window_with_any_offset_is_accepted(partner_api):
    lead = copy.deepcopy(LEAD)
    lead["consent"]["given_at"] = (
        (timezone.now() - timedelta(days=29)).astimezone(timezone.get_fixed_timezone(-300)).isoformat()
    )
    assert partner_api.post(LEADS, lead).status_code == 202


@pytest.mark.parametrize("method", ["post", "put", "patch", "delete", "get", "options"])
@pytest.mark.parametrize("path", ["/api/v1/leads", "/api/v1/nothing/", "/api/nothing", "/api/v2/leads/"])
def test_every_unmatched_api_path_is_a_problem_404_even_with_csrf_checks(partner_key, method, path):
    """Issue 11.19: a POST to an unmatched /api/v1/ path answered Django's HTML "CSRF verification failed"
    403 (the catch-all was not CSRF-exempt), and paths under /api/ outside v1 answered an HTML 404."""
    client = Client(enforce_csrf_checks=True)  # as a real client: Django's test client skips CSRF otherwise
    response = client.generic(
        method.upper(),
        path,
        json.dumps(LEAD),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {partner_key}",
    )
    assert_problem(response, 404)


def test_a_missing_trailing_slash_says_where_the_endpoint_is(partner_api):
    body = assert_problem(partner_api.post("/api/v1/leads", LEAD), 404)
    assert "/api/v1/leads/" in body["detail"]


@pytest.mark.parametrize("query", [{"status": ""}, {"purpose": ""}, {"since": ""}])
def test_an_empty_filter_is_a_400_not_every_delivery(lender_api, delivery, query):
    """Issue 11.20: `?status=` (empty) was read as no filter."""
    assert list(assert_problem(lender_api.get("/api/v1/deliveries/", query), 400)["errors"]) == list(query)


@pytest.mark.parametrize("page_size", ["null", "0", "201", "-1", "1.5", "9" * 5000])
def test_an_unreadable_page_size_is_a_400(lender_api, delivery, page_size):
    """Issue 11.20: DRF ignored a page_size it could not read (page_size=null) and answered 50."""
    for path in ("/api/v1/deliveries/", "/api/v1/account/ledger/"):
        errors = assert_problem(lender_api.get(path, {"page_size": page_size}), 400)["errors"]
        assert list(errors) == ["page_size"]


def test_a_key_over_a_newly_lowered_limit_gets_retry_after(partner_api, settings):
    """Issue 11.20: with more requests counted than a lowered limit allows, DRF's throttle reports no wait
    and the 429 had no Retry-After."""
    settings.API_RATE_LIMITS = {"partner": "10/min", "lender": "10/min"}
    path = f"{LEADS}00000000-0000-0000-0000-000000000000/"
    start_of_a_window(60, room=10)  # all six requests in one fixed window, or the count starts again
    for _ in range(5):
        assert partner_api.get(path).status_code == 404
    settings.API_RATE_LIMITS = {"partner": "2/min", "lender": "2/min"}
    response = partner_api.get(path)
    assert_problem(response, 429)
    assert int(response["Retry-After"]) >= 1


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("status/", {"status": "funded"}, "funded_amount"),
        ("status/", {"status": "lost", "lost_reason": "  "}, "lost_reason"),
        ("activities/", {"kind": "call"}, "outcome"),
        ("activities/", {"kind": "note", "note": ""}, "note"),
        ("return/", {"reason": "other"}, "note"),
    ],
)
def test_conditional_requirements_are_400s_naming_the_field(lender_api, delivery, path, body, field):
    """Issue 11.20: fields another field makes required are checked before the move, as the schema says."""
    url = f"/api/v1/deliveries/{delivery.pk}/{path}"
    assert list(assert_problem(lender_api.post(url, body), 400)["errors"]) == [field]


@pytest.mark.parametrize("amount", ["-5", "0", "0.00", "1e5", " 5", "5.", "1.234", 350000, "12345678901"])
def test_funded_amount_is_a_positive_string_amount(lender_api, delivery, amount):
    """Issue 11.20: the schema allowed negative funded amounts; the server takes exactly its pattern."""
    url = f"/api/v1/deliveries/{delivery.pk}/status/"
    errors = assert_problem(lender_api.post(url, {"status": "funded", "funded_amount": amount}), 400)[
        "errors"
    ]
    assert list(errors) == ["funded_amount"]


def test_problem_types_are_pages_we_serve(client, partner_api):
    """Issue 11.20: problem `type` URIs pointed at a placeholder domain."""
    body = assert_problem(partner_api.get("/api/v1/nothing/"), 404)
    assert body["type"] == f"{settings.SITE_URL}/api/problems/not-found"
    for slug, kind in PROBLEM_TYPES.items():
        page = client.get(f"/api/problems/{slug}")
        assert page.status_code == 200 and escape(kind.description) in page.content.decode()
    index = client.get("/api/problems/").content.decode()
    assert all(f"/api/problems/{slug}" in index for slug in PROBLEM_TYPES)
    assert_problem(client.get("/api/problems/no-such-problem"), 404)
    assert_problem(Client(enforce_csrf_checks=True).post("/api/problems/not-found"), 405)


def test_every_drf_error_code_has_a_problem_page():
    from rest_framework import exceptions

    codes = {
        cls.default_code.replace("_", "-")
        for cls in vars(exceptions).values()
        if isinstance(cls, type)
        and issubclass(cls, exceptions.APIException)
        and cls is not exceptions.APIException
    }
    assert codes - {"invalid"} <= set(PROBLEM_TYPES)  # ValidationError's "invalid" is our validation-error


def test_schema_documents_headers_formats_and_conditions(client):
    """Issue 11.20: response headers, field formats, money >= 0 and conditional requirements."""
    schema = client.get("/api/schema/?format=json").json()
    paths, components = schema["paths"], schema["components"]["schemas"]
    create = paths["/api/v1/leads/"]["post"]["responses"]
    assert create["202"]["headers"]["Location"]["required"]
    assert "Idempotent-Replayed" in create["202"]["headers"]
    for path, operations in paths.items():
        for method, operation in operations.items():
            responses = operation["responses"]
            assert responses["429"]["headers"]["Retry-After"]["required"], (method, path)
            assert "WWW-Authenticate" in responses["401"]["headers"], (method, path)
            if method == "post":
                assert "413" in responses, (method, path)

    lead = components["LeadInputRequest"]["properties"]
    assert lead["email"]["format"] == "email" and lead["zip_code"]["pattern"] and lead["phone"]["pattern"]
    ip = components["ConsentInputRequest"]["properties"]["ip_address"]
    assert {case["format"] for case in ip["oneOf"]} == {"ipv4", "ipv6"}

    assert {"type": "number", "minimum": 0} in [
        {k: v for k, v in case.items() if k != "example"} for case in lead["down_payment"]["oneOf"]
    ]
    funded = components["StatusUpdateInputRequest"]["properties"]["funded_amount"]["pattern"]
    assert not funded.startswith("^-")
    assert not components["DeliveryDetailOutput"]["properties"]["price"]["pattern"].startswith("^-")

    cases = components["StatusUpdateInputRequest"]["oneOf"]
    assert {"properties": {"status": {"enum": ["funded"]}, "funded_amount": {}}}.items() <= cases[1].items()
    assert ["reason", "note"] in [c["required"] for c in components["ReturnInputRequest"]["oneOf"]]
    page_size = next(p for p in paths["/api/v1/deliveries/"]["get"]["parameters"] if p["name"] == "page_size")
    assert page_size["schema"] == {"type": "integer", "minimum": 1, "maximum": 200}
