"""Reads of accounts and ledgers shared by the portal, admin and checks."""

from decimal import Decimal

from django.db.models import Sum

from .models import Account, LedgerEntry


def account_ledger_total(*, account: Account) -> Decimal:
    return LedgerEntry.objects.filter(account=account).aggregate(t=Sum("amount"))["t"] or Decimal("0.00")


def ledger_for_account(*, account: Account):
    return LedgerEntry.objects.filter(account=account).order_by("-created_at", "-id")
