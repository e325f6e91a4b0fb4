"""The vocabulary of a lead: purposes, credit ranges, property and status choices."""

from django.db import models


class LoanPurpose(models.TextChoices):
    PURCHASE = "purchase", "Purchase"
    REFINANCE = "refinance", "Refinance"
    HOME_EQUITY = "home_equity", "Home equity"


class CreditRange(models.TextChoices):
    # The ranges of leads.qualification.CREDIT_RANGES (a test keeps the two equal); each judged by its lowest
    # score, and its edges are the program and pricing thresholds (500, 580, 620, 640 ... 760).
    FROM_760 = "760_850", "760 or higher"
    FROM_740 = "740_759", "740–759"
    FROM_720 = "720_739", "720–739"
    FROM_700 = "700_719", "700–719"
    FROM_680 = "680_699", "680–699"
    FROM_660 = "660_679", "660–679"
    FROM_640 = "640_659", "640–659"
    FROM_620 = "620_639", "620–639"
    FROM_580 = "580_619", "580–619"
    FROM_500 = "500_579", "500–579"
    BELOW_500 = "300_499", "Below 500"


class PropertyType(models.TextChoices):
    SINGLE_FAMILY = "single_family", "Single-family home"
    CONDO = "condo", "Condominium"
    TOWNHOUSE = "townhouse", "Townhouse"
    MULTI_FAMILY = "multi_family", "Multi-family (2–4 units)"
    MANUFACTURED = "manufactured", "Manufactured home"


class Occupancy(models.TextChoices):
    PRIMARY = "primary", "Primary residence"
    SECONDARY = "secondary", "Second home"
    INVESTMENT = "investment", "Investment property"


class Timeline(models.TextChoices):
    IMMEDIATELY = "immediately", "Right away"
    WITHIN_3_MONTHS = "3_months", "Within 3 months"
    WITHIN_6_MONTHS = "6_months", "Within 6 months"
    RESEARCHING = "researching", "Just researching"


class LeadStatus(models.TextChoices):
    RECEIVED = "received", "Received"
    QUALIFIED = "qualified", "Qualified"
    NOT_QUALIFIED = "not_qualified", "Not qualified"
    DUPLICATE = "duplicate", "Duplicate"
    REJECTED = "rejected", "Rejected"
    HELD = "held", "Held for review"  # its processing raised: set aside for staff (leads.services.lead_hold)
    SOLD = "sold", "Sold"
    UNSOLD = "unsold", "Unsold"


_L = LeadStatus
# Every legal move of a lead's status, from -> to; leads.services.lead_set_status / leads_set_status refuse
# the rest. A lead starts as received (or rejected, a tripped honeypot) and ends in a status with no moves.
LEAD_INITIAL: frozenset[str] = frozenset({_L.RECEIVED, _L.REJECTED})
LEAD_MOVES: dict[str, frozenset[str]] = {
    _L.RECEIVED: frozenset({_L.QUALIFIED, _L.NOT_QUALIFIED, _L.DUPLICATE, _L.HELD}),
    _L.QUALIFIED: frozenset({_L.SOLD, _L.UNSOLD, _L.HELD}),
    # Unsold leads are offered again while their retry window is open; an attempt that finds no buyer
    # again leaves them unsold (with one more attempt in their trace).
    _L.UNSOLD: frozenset({_L.SOLD, _L.UNSOLD, _L.HELD}),
    # Staff release a held lead to where it was: qualification when it never qualified, else the sale.
    _L.HELD: frozenset({_L.RECEIVED, _L.QUALIFIED}),
    _L.NOT_QUALIFIED: frozenset(),
    _L.DUPLICATE: frozenset(),
    _L.REJECTED: frozenset(),
    _L.SOLD: frozenset(),
}


def lead_statuses_to(to: str) -> frozenset[str]:
    """The statuses a lead may move to `to` from (e.g. to sold: the sellable ones)."""
    return frozenset(s for s, moves in LEAD_MOVES.items() if to in moves)


class Product(models.TextChoices):
    CONVENTIONAL = "conventional", "Conventional"
    FHA = "fha", "FHA"
    VA = "va", "VA"
    JUMBO = "jumbo", "Jumbo"
    HOME_EQUITY = "home_equity", "Home equity (HELOC)"


# What capped a product's estimate (leads.qualification), in words a loan officer reads at a glance.
BINDING_CONSTRAINT_LABELS = {
    "dti": "Debt-to-income (back-end DTI)",
    "front_end_dti": "Housing ratio (front-end DTI)",
    "ltv": "Loan-to-value",
    "cltv": "Combined loan-to-value",
    "loan_limit": "County loan limit",
    "credit": "Credit score",
    "eligibility": "Eligibility (purpose, occupancy, service or property)",
    "payoff": "Payoff plus closing costs (rate-and-term refinance)",
    "residual_income": "VA residual income",
}
