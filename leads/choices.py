"""The vocabulary of a lead: purposes, credit bands, property and status choices."""

from django.db import models


class LoanPurpose(models.TextChoices):
    PURCHASE = "purchase", "Purchase"
    REFINANCE = "refinance", "Refinance"
    HOME_EQUITY = "home_equity", "Home equity"


class CreditBand(models.TextChoices):
    # Score ranges match leads.qualification.CREDIT_BANDS; the labels show them to the consumer.
    EXCELLENT = "excellent", "Excellent (740–850)"
    GOOD = "good", "Good (670–739)"
    FAIR = "fair", "Fair (620–669)"
    POOR = "poor", "Poor (below 620)"


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
