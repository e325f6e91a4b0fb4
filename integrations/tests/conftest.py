"""Personas of the integrations tests: a partner and its rival, a lender's keys, a delivered lead."""

import json
from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client

from integrations.models import ApiKey, LeadSource
from integrations.services import api_key_create
from marketplace.services import lead_distribute
from marketplace.tests.factories import QualifiedLeadFactory, make_subscription

from .receiver import Receiver

LEAD = {
    "purpose": "purchase",
    "zip_code": "78701",
    "property_type": "single_family",
    "occupancy": "primary",
    "property_value": "400000",
    "purchase_price": "400000",
    "down_payment": "40000",
    "credit_range": "660_679",
    "annual_income": 120000,
    "monthly_debts": "500",
    "first_time_buyer": True,
    "timeline": "3_months",
    "first_name": "Maria",
    "last_name": "Gonzalez",
    "email": "maria@example.com",
    "phone": "512-555-0142",
    "consent": {
        "text": "I agree that Lead Market and up to 3 lenders may contact me.",
        # Consent must be recent (within intake.CONSENT_MAX_AGE): an hour before the test run.
        "given_at": (datetime.now(UTC) - timedelta(hours=1)).replace(microsecond=0).isoformat(),
        "ip_address": "203.0.113.7",
        "user_agent": "Mozilla/5.0 (test)",
        "page_url": "https://partner.example/quote",
    },
    "attribution": {
        "sub_id": "aff-991",
        "campaign": "spring",
        "utm_source": "google",
        "utm_medium": "cpc",
        "utm_campaign": "ftb",
    },
}


class Api:
    """A JSON client that sends one key as `Authorization: Bearer`."""

    def __init__(self, key: str | None):
        self.client = Client()
        self.key = key

    def _headers(self, extra):
        headers = {"HTTP_AUTHORIZATION": f"Bearer {self.key}"} if self.key else {}
        headers.update({f"HTTP_{k.upper().replace('-', '_')}": v for k, v in (extra or {}).items()})
        return headers

    def get(self, path, data=None, headers=None):
        return self.client.get(path, data, **self._headers(headers))

    def post(self, path, data=None, headers=None, raw=None, content_type="application/json"):
        body = raw if raw is not None else json.dumps(data)
        return self.client.post(path, body, content_type=content_type, **self._headers(headers))


@pytest.fixture
def partner(db):
    return LeadSource.objects.create(name="Quote Partner")


@pytest.fixture
def rival_partner(db):
    return LeadSource.objects.create(name="Rival Partner")


@pytest.fixture
def partner_key(partner):
    return api_key_create(source=partner, name="intake", scope=ApiKey.Scope.WRITE).key


@pytest.fixture
def partner_api(partner_key):
    return Api(partner_key)


@pytest.fixture
def rival_partner_api(rival_partner):
    return Api(api_key_create(source=rival_partner, name="intake", scope=ApiKey.Scope.WRITE).key)


@pytest.fixture
def lender_key(buying_lender):
    return api_key_create(lender=buying_lender, name="CRM", scope=ApiKey.Scope.WRITE).key


@pytest.fixture
def lender_api(lender_key):
    return Api(lender_key)


@pytest.fixture
def lender_read_api(buying_lender):
    return Api(api_key_create(lender=buying_lender, name="BI", scope=ApiKey.Scope.READ).key)


@pytest.fixture
def rival_api(rival_lender):
    return Api(api_key_create(lender=rival_lender, name="CRM", scope=ApiKey.Scope.WRITE).key)


@pytest.fixture
def delivery(buying_lender):
    """A lead sold exclusively to the buying lender."""
    make_subscription(buying_lender, exclusive=True, price="90.00")
    return lead_distribute(lead_id=QualifiedLeadFactory().pk)[0]


@pytest.fixture
def rival_delivery(rival_lender):
    """A lead sold to the rival: in California, where only the rival subscribes."""
    make_subscription(rival_lender, states=("CA",), exclusive=True, price="80.00")
    lead = QualifiedLeadFactory(
        zip_code="94103", city="San Francisco", state="CA", county="San Francisco County"
    )
    return lead_distribute(lead_id=lead.pk)[0]


@pytest.fixture
def receiver():
    """A lender's webhook endpoint on loopback that records what it is sent."""
    with Receiver() as r:
        yield r
