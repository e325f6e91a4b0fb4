"""Demo data for `make run`: logins, three lenders, floors, and ~50 leads sent through the real pipeline.

Idempotent: running it again changes nothing that is already there.
"""

import random
from datetime import timedelta
from decimal import Decimal

from django.contrib.auth.models import User
from django.core.management.base import BaseCommand
from django.db import transaction
from django.test.utils import override_settings
from django.utils import timezone

from billing.models import Account
from billing.services import account_top_up
from leads.consent import CONSENT_TEXT
from leads.forms import LeadForm
from leads.models import Consumer
from leads.services import lead_submit
from lenders.models import Lender, Membership
from lenders.services import lender_set_licenses, subscription_save
from marketplace.models import Delivery, MarketSettings, PriceFloor
from marketplace.rollup import rollup_rebuild
from marketplace.services import delivery_set_status

PASSWORD = "demo-pass-123"  # noqa: S105 - demo data only, printed by `make run`
DEMO_DOMAIN = "demo.example.com"

FLOORS = {  # (purpose, exclusive) -> price
    ("purchase", True): "50.00",
    ("purchase", False): "20.00",
    ("refinance", True): "45.00",
    ("refinance", False): "18.00",
    ("home_equity", True): "40.00",
    ("home_equity", False): "15.00",
}

LENDERS = [
    {
        "login": "lender1",
        "name": "Lone Star Home Loans",
        "nmls": "1001001",
        "tz": "America/Chicago",
        "states": ["TX", "OK"],
        "balance": "5000.00",
        "subscriptions": [
            (
                {
                    "name": "Texas buyers, exclusive",
                    "exclusive": True,
                    "price": Decimal("65.00"),
                    "purposes": ["purchase"],
                    "daily_cap": 40,
                },
                ["TX"],
            ),
            (
                {
                    "name": "Refinance, shared",
                    "price": Decimal("30.00"),
                    "purposes": ["refinance"],
                    "min_credit_score": 300,
                },
                ["TX", "OK"],
            ),
        ],
    },
    {
        "login": "lender2",
        "name": "Pacific Coast Mortgage",
        "nmls": "2002002",
        "tz": "America/Los_Angeles",
        "states": ["CA", "OR", "WA", "TX"],
        "balance": "5000.00",
        "subscriptions": [
            ({"name": "West coast, shared", "price": Decimal("35.00")}, ["CA", "OR", "WA"]),
            (
                {
                    "name": "Jumbo California, exclusive",
                    "exclusive": True,
                    "price": Decimal("95.00"),
                    "min_loan_amount": Decimal("800000"),
                    "purposes": ["purchase", "refinance"],
                },
                ["CA"],
            ),
            (
                {
                    "name": "Texas purchase, shared",
                    "price": Decimal("25.00"),
                    "purposes": ["purchase"],
                },
                ["TX"],
            ),
        ],
    },
    {
        "login": "lender3",
        "name": "Empire Lending Group",
        "nmls": "3003003",
        "tz": "America/New_York",
        "states": ["NY", "NJ", "FL", "TX"],
        "balance": "5000.00",
        "subscriptions": [
            (
                {
                    "name": "East and Texas, shared",
                    "price": Decimal("28.00"),
                    "purposes": ["purchase", "refinance"],
                },
                ["NY", "NJ", "FL", "TX"],
            ),
            (
                {
                    "name": "Home equity NY/NJ, exclusive",
                    "exclusive": True,
                    "price": Decimal("55.00"),
                    "purposes": ["home_equity"],
                },
                ["NY", "NJ"],
            ),
        ],
    },
]

# Most demo consumers in the middle ranges, a few at each end (680-699 twice: the commonest).
DEMO_CREDIT_RANGES = (
    "760_850", "740_759", "720_739", "700_719", "680_699", "680_699", "660_679", "640_659", "620_639",
    "580_619", "500_579",
)  # fmt: skip

ZIPS = [
    "78701",
    "75201",
    "77002",
    "78704",
    "76102",
    "73102",
    "90210",
    "94103",
    "92101",
    "97201",
    "98101",
    "10001",
    "11201",
    "07030",
    "33101",
    "32801",
    "78205",
]
FIRST = ["Maria", "James", "Aisha", "Wei", "Carlos", "Emily", "Darnell", "Priya", "Tom", "Sofia"]
LAST = ["Gonzalez", "Smith", "Johnson", "Chen", "Patel", "Brown", "Nguyen", "Garcia", "Miller", "Davis"]


def _lead_data(rng: random.Random, n: int) -> dict:
    purpose = rng.choice(["purchase", "purchase", "refinance", "home_equity"])
    # Homes priced from income, as real applicants' are; a few stretch too far and are told why.
    income = rng.choice([55_000, 70_000, 95_000, 130_000, 180_000, 260_000])
    value = int(round(income * rng.uniform(2.0, 4.0), -4))
    data = {
        "purpose": purpose,
        "zip_code": rng.choice(ZIPS),
        "property_type": "single_family",
        "occupancy": "primary",
        "property_value": value,
        "credit_range": rng.choice(DEMO_CREDIT_RANGES),
        "annual_income": income,
        "monthly_debts": rng.choice([0, 250, 400, 650, 900, 2000]),
        "military_service": "on" if rng.random() < 0.15 else "",
        "first_time_buyer": "on" if rng.random() < 0.4 else "",
        "timeline": rng.choice(["immediately", "3_months", "6_months"]),
        "first_name": rng.choice(FIRST),
        "last_name": rng.choice(LAST),
        "email": f"demo{n}@{DEMO_DOMAIN}",
        "phone": f"555{rng.randint(2000000, 9999999)}",
        "consent": "on",
    }
    if purpose == "purchase":
        down = int(value * rng.choice([0.035, 0.05, 0.1, 0.2]))
        data.update(purchase_price=value, down_payment=down, desired_loan_amount=value - down)
    elif purpose == "refinance":
        balance = int(value * rng.choice([0.4, 0.6, 0.75]))
        data.update(
            mortgage_balance=balance, cash_out=rng.choice([0, 0, 20_000]), desired_loan_amount=balance
        )
    else:
        balance = int(value * rng.choice([0.3, 0.5]))
        data.update(mortgage_balance=balance, desired_loan_amount=rng.choice([30_000, 50_000, 80_000]))
    return data


class Command(BaseCommand):
    help = "Load demo data (idempotent): logins, lenders, subscriptions, floors and leads."

    def add_arguments(self, parser):
        parser.add_argument("--leads", type=int, default=50)

    def handle(self, *args, leads: int, **options):
        # Demo sales would otherwise print dozens of new-lead e-mails over the console.
        with override_settings(EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend"):
            self._seed(leads)

    def _seed(self, leads: int) -> None:
        MarketSettings.load()
        for (purpose, exclusive), price in FLOORS.items():
            PriceFloor.objects.get_or_create(
                purpose=purpose, exclusive=exclusive, state="", defaults={"price": Decimal(price)}
            )
        if not User.objects.filter(username="admin").exists():
            User.objects.create_superuser("admin", f"admin@{DEMO_DOMAIN}", PASSWORD)
        for spec in LENDERS:
            self._lender(spec)
        existing = Consumer.objects.filter(email__endswith=f"@{DEMO_DOMAIN}").count()
        rng = random.Random(42)  # the same demo every time
        made = 0
        for n in range(leads):
            data = _lead_data(rng, n)
            if n < existing:
                continue
            form = LeadForm(data=data)
            if not form.is_valid():
                self.stderr.write(f"demo lead {n} invalid: {form.errors.as_json()}")
                continue
            lead_submit(
                data=form.cleaned_data,
                consent_text=CONSENT_TEXT,
                ip_address="127.0.0.1",
                user_agent="seed_demo",
                page_url="http://127.0.0.1:8000/",
            )
            made += 1
        if made:
            self._work_the_leads(rng)
        self.stdout.write(self.style.SUCCESS(f"Demo ready: {len(LENDERS)} lenders, {made} new lead(s)."))

    def _work_the_leads(self, rng: random.Random) -> None:
        """Spread the demo sales over the past weeks and move some along the pipeline, through the same
        service the portal uses, so the inbox, returns window and analytics have something to show."""
        now = timezone.now()
        demo = Delivery.objects.filter(lead__consumer__email__endswith=f"@{DEMO_DOMAIN}")
        deliveries = list(demo.order_by("-pk"))
        for i, d in enumerate(deliveries):
            if i < 4:  # the newest few stay fresh in the inbox
                continue
            delivered = now - timedelta(days=rng.uniform(0.2, 25))
            # Demo history only: back-date the sale, then work the lead as an officer would have.
            Delivery.objects.filter(pk=d.pk).update(created_at=delivered, status_changed_at=delivered)
            d.refresh_from_db()
            path = rng.choice(
                [
                    [],
                    ["contacted"],
                    ["contacted", "application"],
                    ["contacted", "lost"],
                    ["contacted", "application", "approved", "funded"],
                ]
            )
            for status in path:
                delivery_set_status(
                    delivery=d,
                    status=status,
                    lost_reason="Chose another lender" if status == "lost" else "",
                    funded_amount=(d.lead.qualified_loan or d.lead.requested_loan)
                    if status == "funded"
                    else None,
                )
            if path:
                minutes = rng.choice([2, 4, 12, 45, 150, 600])
                first_contact = delivered + timedelta(minutes=minutes)
                Delivery.objects.filter(pk=d.pk).update(first_contact_at=first_contact)
        # The back-dating above went around the services: analytics' rollup is rebuilt from what it left.
        for lender_id in {d.lender_id for d in deliveries}:
            rollup_rebuild(lender_id=lender_id)

    @transaction.atomic
    def _lender(self, spec: dict) -> None:
        lender, created = Lender.objects.get_or_create(
            name=spec["name"], defaults={"nmls_id": spec["nmls"], "time_zone": spec["tz"]}
        )
        if created:
            lender_set_licenses(lender=lender, states=spec["states"])
            account = Account.objects.create(lender=lender)
            account_top_up(
                account_id=account.pk, amount=Decimal(spec["balance"]), memo="Demo opening balance"
            )
            for data, states in spec["subscriptions"]:
                subscription_save(lender=lender, data=data, states=states)
        user, user_created = User.objects.get_or_create(
            username=spec["login"], defaults={"email": f"{spec['login']}@{DEMO_DOMAIN}", "first_name": "Demo"}
        )
        if user_created:
            user.set_password(PASSWORD)
            user.save()
        Membership.objects.get_or_create(
            user=user, defaults={"lender": lender, "role": Membership.Role.OWNER}
        )
