"""Benchmark: the qualification engine's cost per lead, in process (no database, no broker).

Evaluates a fixed, seeded mix of 2,000 applicants (every purpose, credit range and property type, incomes
from absurdly low to high) against the default guidelines and turns each result into the dict the pipeline
stores, as `leads_qualify` does. Prints the best of five rounds in microseconds per lead, beside the
machine's speed (a timed Python loop), so runs from different moments can be compared. Run with
`make bench`; not a test.
"""

import os
import platform
import random
import sys
import time
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from leads.qualification import (  # noqa: E402
    CREDIT_RANGES,
    DEFAULT_GUIDELINES,
    OCCUPANCIES,
    PROPERTY_TYPES,
    Applicant,
    HousingCosts,
    LoanLimits,
    evaluate,
)

APPLICANTS = 2000
ROUNDS = 5


def applicants(n: int, seed: int = 20261206) -> list[Applicant]:
    rnd = random.Random(seed)
    out = []
    for _ in range(n):
        purpose = rnd.choice(("purchase", "refinance", "home_equity"))
        value = Decimal(rnd.randrange(80_000, 2_000_000, 1000))
        fields = dict(
            purpose=purpose,
            credit_range=rnd.choice(list(CREDIT_RANGES)),
            annual_income=Decimal(rnd.choice((1, 25_000, 60_000, 95_000, 150_000, 400_000))),
            monthly_debts=Decimal(rnd.choice((0, 250, 900, 2500, 9_999_999))),
            property_value=value,
            property_type=rnd.choice(PROPERTY_TYPES),
            occupancy=rnd.choice(OCCUPANCIES),
            military_service=rnd.random() < 0.15,
            first_time_buyer=rnd.random() < 0.3,
            state=rnd.choice(("TX", "CA", "NY", "FL", "AK")),
        )
        if purpose == "purchase":
            down = (value * Decimal(rnd.choice(("0", "0.035", "0.1", "0.2")))).quantize(Decimal("1"))
            fields |= dict(purchase_price=value, down_payment=down, desired_loan_amount=value - down)
        else:
            balance = (value * Decimal(rnd.choice(("0.2", "0.5", "0.8")))).quantize(Decimal("1"))
            cash = Decimal(rnd.choice((0, 20_000, 100_000)))
            fields |= dict(mortgage_balance=balance, cash_out=cash, desired_loan_amount=balance + cash)
        out.append(Applicant(**fields))
    return out


def python_loop_seconds() -> float:
    def loop() -> None:
        for _ in range(10_000_000):
            pass

    best = float("inf")
    for _ in range(3):
        start = time.process_time()
        loop()
        best = min(best, time.process_time() - start)
    return best


def main() -> None:
    people = applicants(APPLICANTS)
    limits = LoanLimits(conforming_limit=Decimal("832750"), fha_limit=Decimal("541287"))
    costs = HousingCosts(property_tax_rate=Decimal("1.10"), insurance_rate=Decimal("0.35"))
    best = float("inf")
    for _ in range(ROUNDS):
        start = time.process_time()
        for person in people:
            evaluate(person, guidelines=DEFAULT_GUIDELINES, limits=limits, costs=costs).to_dict()
        best = min(best, time.process_time() - start)
    per_lead_us = best / len(people) * 1e6
    print(f"engine: {per_lead_us:.0f} µs CPU per lead (evaluate + to_dict, best of {ROUNDS} x {APPLICANTS})")
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
          f"10M-step Python loop {python_loop_seconds():.2f} s")  # fmt: skip


if __name__ == "__main__":
    main()
