"""Many sellers at once, on PostgreSQL: the row locks and constraints keep every sale single and paid once."""

import random
import threading
from collections import Counter
from decimal import Decimal

import pytest
from django.db import OperationalError, connection, connections
from django.db.models import Sum

from billing.models import Account, LedgerEntry
from leads.models import Lead
from marketplace.models import Delivery, MarketSettings
from marketplace.services import lead_distribute, leads_distribute

from .factories import LenderFactory, QualifiedLeadFactory, make_subscription

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

THREADS = 8
LEADS = 40


def _market():
    MarketSettings.objects.update_or_create(pk=1, defaults={"shared_max_buyers": 3})
    lenders = [LenderFactory(states=["TX"], balance=b) for b in ("2000", "2000", "300", "150", "2000")]
    make_subscription(lenders[0], exclusive=True, price="120.00", name="excl A", daily_cap=10)
    make_subscription(
        lenders[1], exclusive=True, price="110.00", name="excl B", monthly_budget=Decimal("900")
    )
    for lender, price in zip(lenders, ("45.00", "44.00", "43.00", "42.00", "41.00"), strict=True):
        make_subscription(lender, price=price, name="shared")
    return lenders


def _sell(lead_ids: list[int]) -> None:
    """As the task does: a deadlock (a rare second round of account locks out of order) rolls back and
    is tried again."""
    for attempt in range(5):
        try:
            leads_distribute(lead_ids=lead_ids)
            return
        except OperationalError as exc:
            if "deadlock" not in str(exc) or attempt == 4:
                raise


@pytest.mark.parametrize("batched", [False, True], ids=["one lead at a time", "overlapping batches"])
def test_concurrent_distribution_sells_each_lead_once_and_charges_each_sale_once(batched):
    _market()
    lead_ids = [QualifiedLeadFactory().pk for _ in range(LEADS)]
    errors = []
    barrier = threading.Barrier(THREADS)

    def seller(seed: int):
        rng = random.Random(seed)
        order = lead_ids[:]
        rng.shuffle(order)
        try:
            barrier.wait()
            if batched:  # batches of 1 to 12 leads, overlapping other sellers' batches
                while order:
                    size = rng.randint(1, 12)
                    _sell(order[:size])
                    order = order[size:]
            else:
                for lead_id in order:
                    lead_distribute(lead_id=lead_id)
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(repr(exc))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=seller, args=(i,)) for i in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)

    assert not errors
    assert connection.vendor == "postgresql"
    statuses = Counter(Lead.objects.filter(pk__in=lead_ids).values_list("status", flat=True))
    assert set(statuses) <= {"sold", "unsold"} and statuses["sold"] > 0

    for lead_id in lead_ids:
        rows = list(Delivery.objects.filter(lead_id=lead_id).values_list("lender_id", "exclusive"))
        lenders = [r[0] for r in rows]
        assert len(lenders) == len(set(lenders)), f"lead {lead_id} sold twice to one lender"
        if any(ex for _, ex in rows):
            assert len(rows) == 1, f"exclusive lead {lead_id} has {len(rows)} deliveries"
        else:
            assert len(rows) <= 3

    # One charge per sale, and every balance equals its ledger and stays within its credit.
    assert LedgerEntry.objects.filter(kind="charge").count() == Delivery.objects.count()
    assert Delivery.objects.values("charge").distinct().count() == Delivery.objects.count()
    for account in Account.objects.all():
        ledger = LedgerEntry.objects.filter(account=account).aggregate(t=Sum("amount"))["t"]
        assert account.balance == ledger
        assert account.balance >= -account.credit_limit
    # Caps and budgets held under contention.
    excl_a = Delivery.objects.filter(subscription__name="excl A").count()
    assert excl_a <= 10
    spent_b = Delivery.objects.filter(subscription__name="excl B").aggregate(t=Sum("price"))["t"] or 0
    assert spent_b <= Decimal("900")
