"""A partner's client for Lead Market, using only `requests`: post a lead, then poll its status.

    LEADMARKET_URL=https://leadmarket.example LEADMARKET_KEY=lm_pk_... python partner.py

Posting is safe to retry: the Idempotency-Key makes a repeated POST return the first answer, never a second
lead. Errors come back as RFC 9457 problem details with each field's messages.
"""

from __future__ import annotations

import os
import sys
import time
import uuid
from contextlib import nullcontext
from datetime import UTC, datetime

import requests

PENDING = {"received", "qualified"}  # still being qualified or offered to lenders


class LeadRejected(Exception):
    def __init__(self, problem: dict):
        super().__init__(problem.get("detail", "rejected"))
        self.problem = problem


def submit_lead(
    base_url: str,
    key: str,
    lead: dict,
    *,
    idempotency_key: str | None = None,
    session: requests.Session | None = None,
    retries: int = 3,
) -> dict:
    """POST the lead; retry network errors, 429 and 5xx with the same Idempotency-Key."""
    headers = {"Authorization": f"Bearer {key}", "Idempotency-Key": idempotency_key or str(uuid.uuid4())}
    with nullcontext(session) if session else requests.Session() as http:
        return _post_with_retries(http, f"{base_url}/api/v1/leads/", lead, headers, retries)


def _post_with_retries(http: requests.Session, url: str, lead: dict, headers: dict, retries: int) -> dict:
    for attempt in range(retries + 1):
        try:
            response = http.post(url, json=lead, headers=headers, timeout=15)
        except requests.ConnectionError:
            if attempt == retries:
                raise
            time.sleep(2**attempt)
            continue
        if response.status_code == 202:
            return response.json()
        if response.status_code == 429 or response.status_code >= 500:
            if attempt == retries:
                response.raise_for_status()
            time.sleep(float(response.headers.get("Retry-After", 2**attempt)))
            continue
        raise LeadRejected(response.json())
    raise RuntimeError("unreachable")


def wait_for_status(
    url: str, key: str, *, timeout: float = 60, every: float = 1, session: requests.Session | None = None
) -> dict:
    """Poll the lead's `self` link until it leaves received/qualified (or the timeout passes)."""
    deadline = time.monotonic() + timeout
    with nullcontext(session) if session else requests.Session() as http:
        while True:
            response = http.get(url, headers={"Authorization": f"Bearer {key}"}, timeout=15)
            response.raise_for_status()
            lead = response.json()
            if lead["status"] not in PENDING or time.monotonic() > deadline:
                return lead
            time.sleep(every)


EXAMPLE_LEAD = {
    "purpose": "purchase",
    "zip_code": "78701",
    "property_type": "single_family",
    "occupancy": "primary",
    "purchase_price": "400000",
    "down_payment": "40000",
    "credit_range": "680_699",
    "annual_income": "120000",
    "monthly_debts": "500",
    "timeline": "3_months",
    "first_name": "Maria",
    "last_name": "Gonzalez",
    "email": "maria@example.com",
    "phone": "512-555-0142",
    "consent": {
        "text": "I agree that Lead Market and up to 3 lenders may contact me about mortgage products.",
        "given_at": datetime.now(UTC).isoformat(),
        "ip_address": "203.0.113.7",
        "user_agent": "Mozilla/5.0",
        "page_url": "https://partner.example/quote",
    },
    "attribution": {
        "sub_id": "aff-991",
        "utm_source": "google",
        "utm_medium": "cpc",
        "utm_campaign": "spring",
    },
}


def main() -> int:
    base_url, key = os.environ["LEADMARKET_URL"].rstrip("/"), os.environ["LEADMARKET_KEY"]
    try:
        accepted = submit_lead(base_url, key, EXAMPLE_LEAD)
    except LeadRejected as exc:
        print("rejected:", exc.problem.get("errors") or exc.problem["detail"], file=sys.stderr)
        return 1
    print("accepted", accepted["id"])
    lead = wait_for_status(accepted["links"]["self"], key)
    print(lead["status"], lead["qualification"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
