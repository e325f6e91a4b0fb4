"""Mortgage pre-qualification engine: pure Python, dataclasses in, dataclasses out (no Django, no I/O)."""

from .engine import Applicant, ProductResult, Qualification, evaluate, requested_loan
from .guidelines import (
    BASELINE_CONFORMING_LIMIT,
    CREDIT_BANDS,
    DEFAULT_GUIDELINES,
    FHA_FLOOR,
    HIGH_COST_CEILING,
    OCCUPANCIES,
    PRODUCTS,
    PROPERTY_TYPES,
    PURPOSES,
    CreditBand,
    Guidelines,
    LoanLimits,
    ProductRules,
)
from .money import monthly_payment

__all__ = [
    "Applicant",
    "BASELINE_CONFORMING_LIMIT",
    "CREDIT_BANDS",
    "CreditBand",
    "DEFAULT_GUIDELINES",
    "FHA_FLOOR",
    "Guidelines",
    "HIGH_COST_CEILING",
    "LoanLimits",
    "OCCUPANCIES",
    "PRODUCTS",
    "PROPERTY_TYPES",
    "PURPOSES",
    "ProductResult",
    "ProductRules",
    "Qualification",
    "evaluate",
    "monthly_payment",
    "requested_loan",
]
