"""Benchmark: distributing one lead with 100 and with 10,000 active subscriptions, on PostgreSQL.

Run with `make bench`. Uses DATABASE_URL if set, else a `leadmarket_bench` database on the local server
(created if missing). Prints a table and writes bench-results.json. Not a test: figures go in the README.
"""

import json
import os
import platform
import random
import statistics
import sys
import time
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/leadmarket_bench")
os.environ.setdefault("SECRET_KEY", "bench-only")
os.environ.setdefault("ALLOWED_HOSTS", "localhost")
# Time the sale itself: notifications are queued to an in-memory broker, not run inline.
os.environ["CELERY_TASK_ALWAYS_EAGER"] = "0"
os.environ["CELERY_BROKER_URL"] = "memory://"
os.environ["LOG_LEVEL"] = "WARNING"
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

LEADS_PER_RUN = 60
BATCH = 50


def _ensure_database() -> None:
    import psycopg
    from django.conf import settings

    db = settings.DATABASES["default"]
    if db["ENGINE"] != "django.db.backends.postgresql":
        sys.exit("The benchmark needs PostgreSQL: set DATABASE_URL to a postgres:// URL.")
    conninfo = {
        k: v
        for k, v in {
            "host": db["HOST"],
            "port": db["PORT"],
            "user": db["USER"],
            "password": db["PASSWORD"],
        }.items()
        if v
    }
    with psycopg.connect(dbname="postgres", autocommit=True, **conninfo) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [db["NAME"]]).fetchone():
            conn.execute(f'CREATE DATABASE "{db["NAME"]}"')


def _reset() -> None:
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute(
            "TRUNCATE marketplace_delivery, billing_ledgerentry, billing_account, lenders_subscriptionzip, "
            "lenders_subscriptionstate, lenders_subscription, lenders_lenderlicense, lenders_membership, "
            "lenders_lender, leads_consentrecord, leads_lead, leads_consumer, marketplace_pricefloor "
            "RESTART IDENTITY CASCADE"
        )


def _build_market(n_subscriptions: int, rng: random.Random) -> None:
    """n subscriptions over n/20 lenders, spread over every state, purpose and exclusivity."""
    from billing.models import Account, LedgerEntry
    from leads.geo import US_STATES
    from lenders.models import Lender, LenderLicense, Subscription, SubscriptionState

    n_lenders = max(5, n_subscriptions // 20)
    lenders = Lender.objects.bulk_create(
        [Lender(name=f"Bench {i}", time_zone="UTC") for i in range(n_lenders)]
    )
    LenderLicense.objects.bulk_create(
        [LenderLicense(lender=lender, state=s) for lender in lenders for s in US_STATES]
    )
    accounts = Account.objects.bulk_create(
        [Account(lender=lender, balance=Decimal("1000000.00")) for lender in lenders]
    )
    LedgerEntry.objects.bulk_create(
        [
            LedgerEntry(
                account=a, kind="top_up", amount=Decimal("1000000.00"), balance_after=Decimal("1000000.00")
            )
            for a in accounts
        ]
    )
    subs = []
    for i in range(n_subscriptions):
        purposes = rng.sample(["purchase", "refinance", "home_equity"], rng.randint(1, 3))
        subs.append(
            Subscription(
                lender=lenders[i % n_lenders],
                name=f"sub {i}",
                exclusive=rng.random() < 0.3,
                price=Decimal(rng.randint(20, 120)),
                purposes=purposes,
            )
        )
    subs = Subscription.objects.bulk_create(subs, batch_size=2000)
    SubscriptionState.objects.bulk_create(
        [SubscriptionState(subscription=s, state=st) for s in subs for st in rng.sample(US_STATES, 3)],
        batch_size=5000,
    )


def _time_distribution(n_subscriptions: int) -> dict:
    from django.db import connection

    from leads.geo import US_STATES
    from marketplace.services import lead_distribute
    from marketplace.tests.factories import QualifiedLeadFactory

    rng = random.Random(n_subscriptions)
    _reset()
    _build_market(n_subscriptions, rng)
    with connection.cursor() as cur:
        cur.execute("ANALYZE")
    leads = [QualifiedLeadFactory(state=rng.choice(US_STATES)).pk for _ in range(LEADS_PER_RUN + 5)]
    for lead_id in leads[:5]:  # warm caches and connections
        lead_distribute(lead_id=lead_id)
    times, candidates = [], []
    for lead_id in leads[5:]:
        start = time.perf_counter()
        lead_distribute(lead_id=lead_id)
        times.append((time.perf_counter() - start) * 1000)
    from leads.models import Lead
    from marketplace.services import leads_distribute

    for trace in Lead.objects.filter(pk__in=leads[5:]).values_list("distribution_trace", flat=True):
        candidates.append(len(trace[-1]["considered"]))
    times.sort()
    # The same market under load: the qualify task sells the waiting leads in batches of up to 50.
    batch_times = []
    for _ in range(3):
        batch = [QualifiedLeadFactory(state=rng.choice(US_STATES)).pk for _ in range(BATCH)]
        start = time.perf_counter()
        leads_distribute(lead_ids=batch)
        batch_times.append((time.perf_counter() - start) * 1000 / BATCH)
    return {
        "subscriptions": n_subscriptions,
        "leads": len(times),
        "median_ms": round(statistics.median(times), 2),
        "p95_ms": round(times[int(len(times) * 0.95) - 1], 2),
        "mean_candidates": round(statistics.mean(candidates), 1),
        "batch_ms_per_lead": round(statistics.median(batch_times), 2),
    }


def main() -> None:
    import django

    django.setup()
    _ensure_database()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    results = [_time_distribution(n) for n in (100, 10_000)]
    ratio = round(results[1]["median_ms"] / results[0]["median_ms"], 2)
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    print(f"\nDistribution of one lead (PostgreSQL; {machine})")
    print(f"{'subscriptions':>14} {'median ms':>10} {'p95 ms':>8} {'candidates':>11} {'batched ms/lead':>17}")
    for r in results:
        print(
            f"{r['subscriptions']:>14,} {r['median_ms']:>10} {r['p95_ms']:>8} {r['mean_candidates']:>11} "
            f"{r['batch_ms_per_lead']:>17}"
        )
    print(f"10,000 / 100 median ratio: {ratio} (target < 2)")
    out = {"machine": machine, "results": results, "ratio_10000_to_100": ratio}
    (ROOT / "bench-results.json").write_text(json.dumps(out, indent=2))
    _reset()


if __name__ == "__main__":
    main()
