"""Money only: each lender's Account, its append-only LedgerEntry, statements; top-ups, charges, credits and
adjustments through services."""

from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "billing"
