"""Benchmark: the reading side at scale (issue 14). Builds a market with bulk SQL, then times the pages
lenders and staff read all day, in process (Django's test client against PostgreSQL), at 1k / 10k / 100k
deliveries.

    make bench                                  # all benchmarks, this one included
    .venv/bin/python bench/reads.py             # build once (kept for later runs), then time every case
    .venv/bin/python bench/reads.py --admin-1m  # the same market, leads up to 1,000,000 (the admin rows)
    .venv/bin/python bench/reads.py --only inbox --runs 15 --rebuild

The data set (the issue's table): three lenders with 1,000, 10,000 and 100,000 deliveries among 300,000
deliveries of 23 lenders, 250,000 leads (50,000 of them shared by two buyers) with their qualification and
decision-trace JSON inline as the pipeline writes them, a consent record per lead, ~500,000 activities and
~303,000 ledger entries with running balances. It is built with INSERT … SELECT generate_series in a few
minutes and kept in its own database (`READS_BENCH_DB`, default leadmarket_bench_reads; never DATABASE_URL,
since a build truncates it); a later run with the same shape reuses it.

Each row of the table is a case: one small function registered with @case that returns what to time (a
request for the client, or any callable). A case runs as a lender's owner at each size (`scope="lender"`) or
once as staff on the whole data set (`scope="staff"`). The runner makes one untimed warm-up call, then N timed
calls, and reports the median server time and the query count of one call; streamed responses are read to the
end, and their first byte is reported too. Not a test (`make test` never collects it); figures go in the
README ("Reading side at scale").
"""

import argparse
import json
import os
import platform
import re
import resource
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
BENCH_DB = os.environ.get("READS_BENCH_DB", "leadmarket_bench_reads")
PG = os.environ.get("READS_BENCH_PG", "postgres://postgres@127.0.0.1:5432")
os.environ["DATABASE_URL"] = f"{PG}/{BENCH_DB}"
os.environ.setdefault("SECRET_KEY", "bench-only")
os.environ["ALLOWED_HOSTS"] = "testserver,localhost"
os.environ["SECURE_PROXY"] = "0"
os.environ["FAST_PASSWORD_HASHER"] = "1"  # noqa: S105 (a switch, not a password)
# Requests only queue their background work (an in-memory broker); a case that times a task calls it itself.
os.environ["CELERY_TASK_ALWAYS_EAGER"] = "0"
os.environ["CELERY_BROKER_URL"] = "memory://"
os.environ["CACHE_URL"] = "locmemcache://"
os.environ["EMAIL_URL"] = "memorymail://"
os.environ["LOG_LEVEL"] = "WARNING"
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
warnings.filterwarnings("ignore", message="No directory at")  # whitenoise: no collectstatic for a bench

# The shape of the data set. A change here (or in the builder's version) rebuilds it on the next run.
BUILD_VERSION = 1  # bump when the builder changes what it builds
SIZES = {"1k": 1_000, "10k": 10_000, "100k": 100_000}
FILLER_LENDERS = 20
LEADS = 250_000
SHARED_LEADS = 50_000  # leads 1..50,000 have a second buyer: 300,000 deliveries in all
ADMIN_LEADS = 1_000_000
OFFICERS_PER_LENDER = 5
OTHER_LEDGER_ENTRIES = 3_000  # top-ups, besides one charge per delivery
DAYS = 365

FIRST_NAMES = (  # noqa: SIM905 (a list of names reads better as one string)
    "Maria James Linda Robert Patricia John Jennifer Michael Elizabeth David Barbara William Susan Richard "
    "Jessica Joseph Sarah Thomas Karen Charles Nancy Daniel Lisa Matthew Betty Anthony Sandra Mark Ashley "
    "Donald Kimberly Steven Emily Paul Donna Andrew Michelle Joshua Carol Kenneth"
).split()
LAST_NAMES = (  # noqa: SIM905
    "Gonzalez Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez Hernandez Lopez "
    "Wilson Anderson Thomas Taylor Moore Jackson Martin Lee Perez Thompson White Harris Sanchez Clark "
    "Ramirez Lewis Robinson Walker Young Allen King Wright Scott Torres Nguyen Hill Flores Green Adams "
    "Nelson Baker Hall Rivera Campbell Mitchell Carter Roberts Gomez Phillips Evans Turner Diaz Parker "
    "Cruz Edwards Collins Reyes"
).split()
PLACES = [  # (zip, city, state, county)
    ("78701", "Austin", "TX", "Travis County"),
    ("77002", "Houston", "TX", "Harris County"),
    ("90012", "Los Angeles", "CA", "Los Angeles County"),
    ("94103", "San Francisco", "CA", "San Francisco County"),
    ("33101", "Miami", "FL", "Miami-Dade County"),
    ("32801", "Orlando", "FL", "Orange County"),
    ("10001", "New York", "NY", "New York County"),
    ("60601", "Chicago", "IL", "Cook County"),
    ("85004", "Phoenix", "AZ", "Maricopa County"),
    ("98101", "Seattle", "WA", "King County"),
]
AREA_CODES = ["512", "713", "213", "415", "305", "407", "212", "312", "602", "206"]
CONSENT_TEXT = (
    "By submitting this form I agree that Lead Market and up to 3 mortgage lenders may contact me at the "
    "phone number and e-mail I gave, including by autodialed calls and text messages, about my mortgage "
    "inquiry. Consent is not a condition of any purchase. Message and data rates may apply."
)


# --- the registry of cases -----------------------------------------------------------------------------


@dataclass
class Case:
    label: str
    fn: Callable[["Bench"], Any]
    scope: str  # "lender": once per size, as that lender's owner; "staff": once, on the whole data set
    runs: int | None = None  # timed calls, when fewer than --runs will do (a long export)


CASES: list[Case] = []


def case(label: str, *, scope: str = "lender", runs: int | None = None) -> Callable:
    """Register a row of the table. The function gets a Bench (a logged-in client and helpers) and returns
    what to time: a Request (from bench.get) or any zero-argument callable. Work done before it returns
    (finding a sample consumer, reading a version) is not timed."""

    def register(fn: Callable[["Bench"], Any]) -> Callable[["Bench"], Any]:
        CASES.append(Case(label, fn, scope, runs))
        return fn

    return register


@dataclass
class Request:
    path: str
    params: dict = field(default_factory=dict)
    expect: tuple[int, ...] = (200,)
    settings: dict = field(default_factory=dict)  # Django settings overridden for the call


@dataclass
class Bench:
    """What a case works with: the client (logged in as the lender's owner, or as staff), the lender and its
    owner's user (None for staff cases), and the size label."""

    client: Any
    size: str
    lender_id: int | None
    user: Any

    def get(self, name_or_path: str, *args: Any, expect: tuple[int, ...] = (200,), **params: Any) -> Request:
        from django.urls import reverse

        path = name_or_path if name_or_path.startswith("/") else reverse(name_or_path, args=args)
        return Request(path, {k: v for k, v in params.items() if v is not None}, expect)

    def sql(self, query: str, params: list | None = None) -> list[tuple]:
        from django.db import connection

        with connection.cursor() as cur:
            cur.execute(query, params or [])
            return cur.fetchall()

    def sample_consumer(self) -> dict:
        """A consumer sold to this lender about halfway down its inbox (not the newest: search must find it
        in the data, not on the first rows it reads)."""
        rows = self.sql(
            "SELECT c.first_name, c.last_name, c.email, c.phone, d.id FROM marketplace_delivery d "
            "JOIN leads_lead l ON l.id = d.lead_id JOIN leads_consumer c ON c.id = l.consumer_id "
            "WHERE d.lender_id = %s ORDER BY d.created_at DESC, d.id DESC OFFSET %s LIMIT 1",
            [self.lender_id, SIZES[self.size] // 2],
        )
        first, last, email, phone, delivery_id = rows[0]
        return {"first": first, "last": last, "email": email, "phone": phone, "delivery_id": delivery_id}


# --- the data set --------------------------------------------------------------------------------------


def _ensure_database() -> None:
    import psycopg

    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [BENCH_DB]).fetchone():
            conn.execute(f'CREATE DATABASE "{BENCH_DB}"')


def _spec(admin_1m: bool) -> dict:
    return {
        "version": BUILD_VERSION,
        "sizes": SIZES,
        "leads": ADMIN_LEADS if admin_1m else LEADS,
        "shared": SHARED_LEADS,
        "filler": FILLER_LENDERS,
    }


def _built_spec(cur) -> dict | None:
    cur.execute("CREATE TABLE IF NOT EXISTS bench_reads_meta (spec jsonb NOT NULL, built_at timestamptz)")
    cur.execute("SELECT spec FROM bench_reads_meta LIMIT 1")
    row = cur.fetchone()
    if not row:
        return None
    return row[0] if isinstance(row[0], dict) else json.loads(row[0])


def _sample_json() -> tuple[str, str]:
    """A qualification and a decision trace as the pipeline stores them (the engine's own output for a
    typical purchase), so rows weigh what real ones do (~2 KB of JSON a lead)."""
    from leads.qualification import DEFAULT_GUIDELINES, Applicant, HousingCosts, LoanLimits, evaluate

    applicant = Applicant(
        purpose="purchase",
        credit_range="660_679",
        annual_income=Decimal("120000"),
        monthly_debts=Decimal("500"),
        property_value=Decimal("400000"),
        property_type="single_family",
        occupancy="primary",
        military_service=True,
        first_time_buyer=True,
        state="TX",
        purchase_price=Decimal("400000"),
        down_payment=Decimal("40000"),
        desired_loan_amount=Decimal("360000"),
    )
    result = evaluate(
        applicant,
        guidelines=DEFAULT_GUIDELINES,
        limits=LoanLimits(conforming_limit=Decimal("832750"), fha_limit=Decimal("541287")),
        costs=HousingCosts(property_tax_rate=Decimal("1.80"), insurance_rate=Decimal("0.70")),
    ).to_dict()
    considered = [
        {"subscription": 1000 + i, "lender": 10 + i, "price": f"{40 + i}.00", "result": r}
        for i, r in enumerate(
            ["sold", "sold", "outbid", "cap_reached", "outbid", "budget", "outbid", "outbid"]
        )
    ]
    trace = [
        {
            "attempt": 1,
            "at": "2026-06-01T12:00:00+00:00",
            "mode": "shared",
            "revenue": "81.00",
            "matched": 8,
            "considered": considered,
        }
    ]
    return json.dumps(result, default=str), json.dumps(trace)


def _build(cur, *, admin_1m: bool) -> None:
    from django.contrib.auth.models import User

    from billing.models import Account
    from lenders.models import Lender, Membership, Subscription

    t0 = time.perf_counter()
    cur.execute(
        "TRUNCATE compliance_contactaccess, marketplace_activity, marketplace_followup, "
        "billing_returnrequest, marketplace_delivery, billing_ledgerentry, billing_account, "
        "lenders_subscriptionzip, lenders_subscriptionstate, lenders_subscription, lenders_lenderlicense, "
        "lenders_membership, lenders_lender, leads_consentrecord, leads_lead, leads_consumer, "
        "auth_user, bench_reads_meta RESTART IDENTITY CASCADE"
    )
    # Lenders, their owners and officers, and a subscription or two: a few dozen rows, through the ORM.
    names = [f"Reads {label}" for label in SIZES] + [f"Filler {i}" for i in range(FILLER_LENDERS)]
    lenders = Lender.objects.bulk_create([Lender(name=n, time_zone="America/Chicago") for n in names])
    Account.objects.bulk_create([Account(lender=lender) for lender in lenders])
    Subscription.objects.bulk_create(
        [
            Subscription(lender=lender, name=f"{kind} {lender.name}", exclusive=kind == "Exclusive", price=p)
            for lender in lenders
            for kind, p in (("Shared", Decimal("45.00")), ("Exclusive", Decimal("95.00")))
        ]
    )
    for i, lender in enumerate(lenders):
        owner = User.objects.create_user(f"owner{i}", f"owner{i}@lender.example", "bench-pass-123")
        Membership.objects.create(user=owner, lender=lender, role=Membership.Role.OWNER)
        for j in range(OFFICERS_PER_LENDER):
            officer = User.objects.create_user(
                f"officer{i}_{j}",
                f"officer{i}_{j}@lender.example",
                "bench-pass-123",
                first_name=f"Officer{j}",
            )
            Membership.objects.create(user=officer, lender=lender, role=Membership.Role.OFFICER)
    User.objects.create_superuser("staff", "staff@leadmarket.example", "bench-pass-123")
    qualification, trace = _sample_json()
    n_leads = ADMIN_LEADS if admin_1m else LEADS
    params = {
        "first": FIRST_NAMES,
        "last": LAST_NAMES,
        "area": AREA_CODES,
        "zip": [p[0] for p in PLACES],
        "city": [p[1] for p in PLACES],
        "state": [p[2] for p in PLACES],
        "county": [p[3] for p in PLACES],
        "n": n_leads,
        "sold": LEADS,
        "days": DAYS,
    }
    # Consumers: names from the lists, a unique e-mail and a unique 10-digit phone (i * 7919 mod 10^7 is a
    # bijection), created over the past year. Leads 1..LEADS were sold; the rest (the admin's million) were
    # not qualified, duplicates or unsold.
    cur.execute(
        """
        INSERT INTO leads_consumer (id, first_name, last_name, email, phone, created_at)
        SELECT i, f, l, lower(f) || '.' || lower(l) || i || '@example.com',
               (%(area)s::text[])[1 + i %% 10] || lpad(((i::bigint * 7919) %% 10000000)::text, 7, '0'),
               now() - make_interval(
                   secs => (%(days)s * 86400.0) * ((i::bigint * 2654435761) %% 1000003) / 1000003)
        FROM generate_series(1, %(n)s) AS i,
             LATERAL (SELECT (%(first)s::text[])[1 + (i * 7) %% 40] AS f,
                             (%(last)s::text[])[1 + (i * 13) %% 60] AS l) AS name
        """,
        params,
    )
    cur.execute(
        """
        INSERT INTO leads_lead (
            id, public_id, consumer_id, status, status_reason, purpose, zip_code, city, state, county,
            property_type, units, occupancy, property_value, purchase_price, down_payment, mortgage_balance,
            cash_out, desired_loan_amount, credit_range, annual_income, monthly_debts, military_service,
            first_time_buyer, timeline, guideline_version, loan_limit, loan_limit_source, fha_limit,
            fha_limit_source, requested_loan, estimate, qualified_loan, ltv, dti, binding_constraint,
            products, qualification, sub_id, campaign, utm_source, utm_medium, utm_campaign,
            distribution_trace, distribution_attempts, created_at, updated_at, qualified_at, sold_at)
        SELECT i, md5('lead' || i)::uuid, i,
               CASE WHEN i <= %(sold)s THEN 'sold'
                    ELSE (ARRAY['not_qualified', 'unsold', 'duplicate', 'rejected'])[1 + i %% 4] END,
               '', (ARRAY['purchase', 'refinance', 'home_equity'])[1 + i %% 3],
               (%(zip)s::text[])[1 + i %% 10], (%(city)s::text[])[1 + i %% 10],
               (%(state)s::text[])[1 + i %% 10], (%(county)s::text[])[1 + i %% 10],
               'single_family', 1, 'primary', 400000, 400000, 40000, NULL, 0, 360000 + (i %% 100) * 1000,
               (ARRAY['760_850', '740_759', '720_739', '700_719', '680_699', '660_679', '640_659',
                      '620_639'])[1 + i %% 8],
               120000, 500, i %% 7 = 0, i %% 3 = 0, '3_months', '2026.3', 832750, 'FHFA 2026', 541287,
               'HUD 2026', 360000, 420000, 360000, 90.00, 35.00, '', '["conventional", "fha"]'::jsonb,
               %(qualification)s::jsonb, '', '', '', '', '',
               CASE WHEN i <= %(sold)s THEN %(trace)s::jsonb ELSE '[]'::jsonb END, 1,
               c.created_at, c.created_at, c.created_at + interval '2 seconds',
               CASE WHEN i <= %(sold)s THEN c.created_at + interval '3 seconds' END
        FROM generate_series(1, %(n)s) AS i JOIN leads_consumer c ON c.id = i
        """,
        {**params, "qualification": qualification, "trace": trace},
    )
    cur.execute(
        """
        INSERT INTO leads_consentrecord (id, lead_id, text, text_sha256, created_at, ip_address, user_agent,
                                         page_url)
        SELECT id, id, %(text)s, encode(sha256(convert_to(%(text)s, 'UTF8')), 'hex'), created_at,
               '203.0.113.7', 'Mozilla/5.0 (bench)', 'https://leadmarket.example/'
        FROM leads_lead
        """,
        {"text": CONSENT_TEXT},
    )
    t_leads = time.perf_counter()
    # Sales: each sold lead's first buyer (the bench lenders take leads 1..111,000 in blocks, the filler
    # lenders the rest in turn), and a second buyer for the shared ones. Numbered in time order, which is
    # also the order of their charges in the ledger.
    bench_ids = [lender.pk for lender in lenders[: len(SIZES)]]
    filler_ids = [lender.pk for lender in lenders[len(SIZES) :]]
    blocks, start = [], 1
    for lender_id, size in sorted(zip(bench_ids, SIZES.values(), strict=True), key=lambda x: -x[1]):
        blocks.append((start, start + size - 1, lender_id))
        start += size
    first_buyer = " ".join(f"WHEN l.id BETWEEN {a} AND {b} THEN {lender_id}" for a, b, lender_id in blocks)
    cur.execute(
        f"""
        CREATE TEMP TABLE bench_sale ON COMMIT DROP AS
        SELECT row_number() OVER (ORDER BY created_at, lead_id, lender_id) AS n, *
        FROM (
            SELECT l.id AS lead_id,
                   CASE {first_buyer} ELSE (%(filler)s::bigint[])[1 + l.id %% {FILLER_LENDERS}]
                   END AS lender_id,
                   l.id > %(shared)s AS exclusive, l.sold_at AS created_at
            FROM leads_lead l WHERE l.id <= %(sold)s
            UNION ALL
            SELECT l.id, (%(filler)s::bigint[])[1 + (l.id + 7) %% {FILLER_LENDERS}], false,
                   l.sold_at + interval '1 millisecond'
            FROM leads_lead l WHERE l.id <= %(shared)s
        ) AS s
        """,  # noqa: S608 (only integers from this module are formatted in)
        {"filler": filler_ids, "shared": SHARED_LEADS, "sold": LEADS},
    )
    # The ledger: an opening top-up per lender that covers its year, a few more top-ups through the year,
    # and one charge per sale; balance_after is the running balance, as billing.services writes it.
    cur.execute(
        f"""
        CREATE TEMP TABLE bench_entry ON COMMIT DROP AS
        WITH per_lender AS (
            SELECT lender_id, count(*) AS sales,
                   greatest(1, ceil(count(*) * {OTHER_LEDGER_ENTRIES}.0
                                    / (SELECT count(*) FROM bench_sale))::int) AS topups
            FROM bench_sale GROUP BY lender_id
        ), topups AS (
            SELECT p.lender_id, k,
                   CASE WHEN k = 0 THEN p.sales * 100 + 5000 ELSE 500 END::numeric(12, 2) AS amount,
                   now() - make_interval(days => {DAYS + 1})
                         + make_interval(days => k * {DAYS} / p.topups) AS at
            FROM per_lender p, generate_series(0, p.topups - 1) AS k
        ), entries AS (
            SELECT lender_id, 'top_up' AS kind, amount, at, NULL::bigint AS sale FROM topups
            UNION ALL
            SELECT lender_id, 'charge', CASE WHEN exclusive THEN -95.00 ELSE -45.00 END, created_at, n
            FROM bench_sale
        )
        SELECT row_number() OVER (ORDER BY at, sale NULLS FIRST, lender_id) AS id, e.*,
               sum(amount) OVER (PARTITION BY lender_id ORDER BY at, sale NULLS FIRST) AS balance_after
        FROM entries e
        """  # noqa: S608
    )
    cur.execute(
        """
        INSERT INTO billing_ledgerentry (id, account_id, kind, amount, balance_after, memo, created_at)
        SELECT e.id, a.id, e.kind, e.amount, e.balance_after,
               CASE WHEN e.kind = 'charge' THEN 'Lead ' || left(md5('lead' || s.lead_id), 8)
                    ELSE 'Top-up' END, e.at
        FROM bench_entry e JOIN billing_account a ON a.lender_id = e.lender_id
        LEFT JOIN bench_sale s ON s.n = e.sale
        ORDER BY e.id
        """
    )
    cur.execute(
        "UPDATE billing_account a SET balance = t.total, updated_at = now() "
        "FROM (SELECT lender_id, sum(amount) AS total FROM bench_entry GROUP BY lender_id) t "
        "WHERE t.lender_id = a.lender_id"
    )
    # Deliveries: a year of work on them. About a third still new; the rest contacted (within two hours),
    # some on to application, approval, funding, or lost. Assigned round the lender's officers, a sixth to
    # nobody.
    cur.execute(
        f"""
        INSERT INTO marketplace_delivery (
            id, lead_id, lender_id, subscription_id, purpose, state, exclusive, price, charge_id, status,
            status_changed_at,
            first_contact_at, funded_amount, lost_reason, assigned_to_id, notified_at, emailed_at,
            notify_error, created_at, touched_at)
        SELECT s.n, s.lead_id, s.lender_id, sub.id, l.purpose, l.state, s.exclusive,
               CASE WHEN s.exclusive THEN 95 ELSE 45 END,
               e.id, st.status, s.created_at + interval '1 hour',
               CASE WHEN st.status <> 'new' THEN s.created_at + make_interval(mins => (s.n %% 120)::int) END,
               CASE WHEN st.status = 'funded' THEN 350000 END,
               CASE WHEN st.status = 'lost' THEN 'Went with another lender' ELSE '' END,
               (SELECT m.user_id FROM lenders_membership m
                 WHERE m.lender_id = s.lender_id AND m.role = 'officer'
                 ORDER BY m.user_id OFFSET (s.n %% {OFFICERS_PER_LENDER + 1}) LIMIT 1),
               s.created_at, s.created_at, '', s.created_at,
               CASE WHEN st.status = 'new' THEN s.created_at
                    ELSE s.created_at + make_interval(mins => (s.n %% 120)::int) END
        FROM bench_sale s
        JOIN leads_lead l ON l.id = s.lead_id
        JOIN bench_entry e ON e.sale = s.n
        JOIN lenders_subscription sub ON sub.lender_id = s.lender_id AND sub.exclusive = s.exclusive,
        LATERAL (SELECT (ARRAY['new', 'new', 'new', 'contacted', 'contacted', 'contacted', 'contacted',
                               'application', 'application', 'approved', 'funded', 'lost', 'lost',
                               'contacted', 'new'])[1 + (s.n * 11) %% 15] AS status) AS st
        """,  # noqa: S608
        {},
    )
    # Activities: one to four calls, e-mails and notes on each delivery that was worked (~480,000).
    cur.execute(
        """
        INSERT INTO marketplace_activity (delivery_id, user_id, kind, outcome, note, created_at)
        SELECT d.id, d.assigned_to_id, (ARRAY['call', 'email', 'text', 'note'])[1 + k %% 4],
               CASE WHEN k %% 4 = 3 THEN ''
                    ELSE (ARRAY['reached', 'voicemail', 'no_answer', 'sent'])[1 + k %% 4] END,
               CASE WHEN k %% 4 = 3 THEN 'Asked for a call back after work' ELSE '' END,
               d.first_contact_at + make_interval(hours => k * 20)
        FROM marketplace_delivery d,
             generate_series(0, (ARRAY[1, 2, 3, 1, 2, 3, 4])[1 + d.id %% 7] - 1) AS k
        WHERE d.status <> 'new'
        """,
        {},
    )
    for table in (
        "leads_consumer",
        "leads_lead",
        "leads_consentrecord",
        "marketplace_delivery",
        "marketplace_activity",
        "billing_ledgerentry",
    ):
        cur.execute(
            f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"  # noqa: S608
        )
    cur.execute("INSERT INTO bench_reads_meta VALUES (%s, now())", [json.dumps(_spec(admin_1m))])
    print(
        f"built in {time.perf_counter() - t0:.0f} s (consumers, leads, consents {t_leads - t0:.0f} s)",
        flush=True,
    )


def prepare(*, admin_1m: bool, rebuild: bool) -> None:
    """Build the data set unless the database already holds one of this shape; then VACUUM ANALYZE, so the
    planner and the visibility map are as a long-running database's would be."""
    import django

    django.setup()
    _ensure_database()
    from django.core.management import call_command
    from django.db import connection, transaction

    call_command("migrate", verbosity=0)
    with connection.cursor() as cur:
        built = _built_spec(cur)
    if rebuild or built != _spec(admin_1m):
        print(f"building the reads data set in {BENCH_DB} ({'1M leads' if admin_1m else '250k leads'}) ...")
        with transaction.atomic(), connection.cursor() as cur:
            _build(cur, admin_1m=admin_1m)
        t = time.perf_counter()
        with connection.cursor() as cur:
            cur.execute("VACUUM ANALYZE")
        print(f"vacuum analyze {time.perf_counter() - t:.0f} s", flush=True)


# --- timing ---------------------------------------------------------------------------------------------


@dataclass
class Result:
    label: str
    size: str
    median_ms: float
    queries: int
    first_byte_ms: float | None = None
    status: int | None = None
    note: str = ""


def _call(client: Any, what: Any) -> tuple[Any, float | None]:
    """Run one call; returns the response (or the callable's result) and, for a streamed response, the
    seconds to its first chunk. Streamed content is read to the end."""
    start = time.perf_counter()
    if isinstance(what, Request):
        from django.test import override_settings

        with override_settings(**what.settings):
            response = client.get(what.path, what.params)
        first = None
        if response.streaming:
            chunks = iter(response.streaming_content)
            next(chunks, None)
            first = time.perf_counter() - start
            for _ in chunks:
                pass
        if response.status_code not in what.expect:
            raise RuntimeError(f"{what.path} {what.params} answered {response.status_code}")
        return response, first
    return what(), None


def time_case(bench: Bench, c: Case, runs: int) -> Result:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    what = c.fn(bench)
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with CaptureQueriesContext(connection) as queries:  # the warm-up call, counted
        response, _ = _call(bench.client, what)
    n_queries = len(queries)  # now: the log is read lazily, and each request after this one resets it
    times, firsts = [], []
    for _ in range(min(runs, c.runs or runs)):
        start = time.perf_counter()
        _, first = _call(bench.client, what)
        times.append(time.perf_counter() - start)
        if first is not None:
            firsts.append(first)
    # How far this case pushed the process's peak memory (0: it stayed within an earlier case's peak).
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak_before) / 1024
    return Result(
        note=f"peak memory +{grown_mb:.0f} MB" if grown_mb >= 1 else "",
        label=c.label,
        size=bench.size,
        median_ms=round(statistics.median(times) * 1000, 1),
        queries=n_queries,
        first_byte_ms=round(statistics.median(firsts) * 1000, 1) if firsts else None,
        status=getattr(response, "status_code", None),
    )


def _benches(admin_1m: bool) -> list[Bench]:
    from django.contrib.auth.models import User
    from django.test import Client

    from lenders.models import Lender

    benches = []
    for label in SIZES:
        lender = Lender.objects.get(name=f"Reads {label}")
        user = User.objects.get(membership__lender=lender, membership__role="owner")
        client = Client()
        client.force_login(user)
        benches.append(Bench(client=client, size=label, lender_id=lender.pk, user=user))
    staff = User.objects.get(username="staff")
    client = Client()
    client.force_login(staff)
    benches.append(Bench(client=client, size="1M" if admin_1m else "all", lender_id=None, user=staff))
    return benches


def _fmt(r: Result | None) -> str:
    if r is None:
        return "—"
    ms = f"{r.median_ms / 1000:.2f} s" if r.median_ms >= 1000 else f"{r.median_ms:g} ms"
    if r.first_byte_ms is not None and r.first_byte_ms < r.median_ms * 0.9:
        ms = f"{ms} (1st byte {r.first_byte_ms:g} ms)"
    if r.status == 202:
        ms = f"{ms} (202: queued)"
    return f"{ms} · {r.queries}q" + (f" · {r.note}" if r.note else "")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=7, help="timed calls per case (median); default 7")
    parser.add_argument("--only", default="", help="run the cases whose label contains this text")
    parser.add_argument("--sizes", default=",".join(SIZES), help="lender sizes to time, e.g. 100k")
    parser.add_argument("--admin-1m", action="store_true", help="leads up to 1,000,000 (the admin's rows)")
    parser.add_argument("--rebuild", action="store_true", help="build the data set again")
    parser.add_argument("--build-only", action="store_true")
    args = parser.parse_args()
    prepare(admin_1m=args.admin_1m, rebuild=args.rebuild)
    if args.build_only:
        return
    _load_case_modules()
    sizes = [s for s in args.sizes.split(",") if s]
    benches = _benches(args.admin_1m)
    results: list[Result] = []
    for c in CASES:
        if args.only and args.only.lower() not in c.label.lower():
            continue
        for bench in benches:
            if (c.scope == "staff") != (bench.lender_id is None):
                continue
            if c.scope == "lender" and bench.size not in sizes:
                continue
            r = time_case(bench, c, args.runs)
            results.append(r)
            print(f"  {c.label} [{bench.size}]: {_fmt(r)}", flush=True)
    staff_size = benches[-1].size
    cols = [*SIZES, staff_size]
    labels = list(dict.fromkeys(r.label for r in results))
    by = {(r.label, r.size): r for r in results}
    machine = (
        f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"load {' / '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )
    print(f"\nReading side (server time, median of {args.runs}, queries per call; {machine})\n")
    print("| page | " + " | ".join(cols) + " |")
    print("|---|" + "---:|" * len(cols))
    for label in labels:
        print(f"| {label} | " + " | ".join(_fmt(by.get((label, col))) for col in cols) + " |")
    out = {"machine": machine, "runs": args.runs, "results": [r.__dict__ for r in results]}
    (ROOT / "bench-reads.json").write_text(json.dumps(out, indent=2))


# --- the cases: the lender's pages (issue 14 part A); other modules add theirs -------------------------
# More rows: a module bench/reads_<area>.py beside this one, whose functions use `from reads import case`;
# the runner imports every such module, so a new row never touches this file.


@case("inbox, first page")
def inbox_first_page(b: Bench) -> Request:
    return b.get("portal:inbox")


@case("inbox, filtered (status, purpose, state)")
def inbox_filtered(b: Bench) -> Request:
    return b.get("portal:inbox", status="contacted", purpose="refinance", state="TX")


@case("inbox, a deep page (the middle one; page 400 at most, where the count stops)")
def inbox_deep_page(b: Bench) -> Request:
    return b.get("portal:inbox", page=min(400, max(1, SIZES[b.size] // 25 // 2)))


@case("inbox search: name")
def inbox_search_name(b: Bench) -> Request:
    c = b.sample_consumer()
    return b.get("portal:inbox", q=f"{c['first']} {c['last']}")


@case("inbox search: last name")
def inbox_search_last_name(b: Bench) -> Request:
    return b.get("portal:inbox", q=b.sample_consumer()["last"])


@case("inbox search: e-mail")
def inbox_search_email(b: Bench) -> Request:
    return b.get("portal:inbox", q=b.sample_consumer()["email"])


@case("inbox search: phone")
def inbox_search_phone(b: Bench) -> Request:
    p = b.sample_consumer()["phone"]
    return b.get("portal:inbox", q=f"({p[:3]}) {p[3:6]}-{p[6:]}")


_VERSION = re.compile(r'data-version="([^"]+)"')


@case("inbox live refresh, nothing new (every 5 s per open tab)")
def inbox_poll(b: Bench) -> Request:
    page = b.client.get(b.get("portal:inbox").path).content.decode()
    version = _VERSION.search(page).group(1)
    return b.get("portal:inbox_rows", since=version, expect=(204,))


@case("lead detail")
def lead_detail(b: Bench) -> Request:
    return b.get("portal:delivery_detail", b.sample_consumer()["delivery_id"])


@case("inbox CSV export (the request: streams, or hands over to a task past 20,000 rows)", runs=3)
def inbox_csv(b: Bench) -> Request:
    return b.get("portal:inbox_export", expect=(200, 202))


@case("inbox CSV export streamed whole from the request (the limit lifted)", runs=3)
def inbox_csv_streamed(b: Bench) -> Request:
    request = b.get("portal:inbox_export")
    request.settings = {"INBOX_EXPORT_MAX_ROWS": 10**9}
    return request


@case("inbox CSV export as the background task (write, gzip, store, log, e-mail)", runs=3)
def inbox_csv_task(b: Bench) -> Callable[[], int]:
    from integrations.exports import inbox_export_build, inbox_export_request
    from lenders.models import Membership
    from marketplace.selectors import InboxFilters

    membership = Membership.objects.get(user=b.user)

    def build() -> int:
        export = inbox_export_request(membership=membership, filters=InboxFilters())
        return inbox_export_build(export_id=export.pk)

    return build


def _load_case_modules() -> None:
    import importlib

    for path in sorted(Path(__file__).resolve().parent.glob("reads_*.py")):
        importlib.import_module(path.stem)


if __name__ == "__main__":
    # Case modules import this one as `reads`: let them find this very module, with its registry.
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    sys.modules.setdefault("reads", sys.modules["__main__"])
    main()
