"""seed_demo: demo logins, three funded lenders, floors, leads through the real pipeline; idempotent."""

import pytest
from django.contrib.auth import authenticate
from django.core.management import call_command
from django.test import RequestFactory

from billing.models import Account
from leads.models import Lead
from lenders.models import Lender, Subscription
from marketplace.models import Delivery, PriceFloor

pytestmark = pytest.mark.django_db


def snapshot():
    return (
        Lender.objects.count(),
        Subscription.objects.count(),
        PriceFloor.objects.count(),
        Lead.objects.count(),
        Delivery.objects.count(),
        sorted(Account.objects.values_list("balance", flat=True)),
    )


def test_seed_demo_builds_a_working_market_and_is_idempotent(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        call_command("seed_demo", leads=12, verbosity=0)
    first = snapshot()
    assert first[0] == 3 and first[2] == 6 and first[3] == 12
    assert first[4] > 0  # leads were sold through the real pipeline
    for username in ("admin", "lender1", "lender2", "lender3"):
        assert (
            authenticate(RequestFactory().post("/"), username=username, password="demo-pass-123") is not None
        )
    assert Lender.objects.get(memberships__user__username="lender1", memberships__role="owner")

    with django_capture_on_commit_callbacks(execute=True):
        call_command("seed_demo", leads=12, verbosity=0)
    assert snapshot() == first
