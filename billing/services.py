"""Every movement of money. Each function expects or takes the account's row lock, then posts one entry."""

from decimal import Decimal

from django.db import transaction

from .models import Account, LedgerEntry

CENT = Decimal("0.01")


class InsufficientFunds(Exception):
    """The account cannot pay: balance plus credit limit is below the amount."""


def _post(*, account: Account, kind: str, amount: Decimal, memo: str = "", user=None) -> LedgerEntry:
    # Caller holds the row lock on `account` (select_for_update), so the read-modify-write is safe.
    amount = amount.quantize(CENT)
    new_balance = account.balance + amount
    if amount < 0 and new_balance < -account.credit_limit:
        raise InsufficientFunds(f"Account {account.pk} has {account.available} available, needs {-amount}.")
    account.balance = new_balance
    Account.objects.filter(pk=account.pk).update(balance=new_balance)
    return LedgerEntry.objects.create(
        account=account, kind=kind, amount=amount, balance_after=new_balance, memo=memo, created_by=user
    )


def account_lock(*, account_id: int) -> Account:
    return Account.objects.select_for_update().get(pk=account_id)


def accounts_charge(*, charges: list[tuple[Account, Decimal, str]]) -> list[LedgerEntry]:
    """Charge several locked accounts at once (one sale, up to N buyers): two queries, not two per buyer.

    The caller holds each account's row lock inside its transaction; each account appears at most once.
    """
    entries = []
    for account, amount, memo in charges:
        if amount <= 0:
            raise ValueError("A charge must be a positive amount.")
        amount = amount.quantize(CENT)
        if account.balance - amount < -account.credit_limit:
            raise InsufficientFunds(f"Account {account.pk} has {account.available} available, needs {amount}.")
        account.balance -= amount
        entries.append(LedgerEntry(account=account, kind=LedgerEntry.Kind.CHARGE, amount=-amount,
                                   balance_after=account.balance, memo=memo))
    Account.objects.bulk_update([a for a, _, _ in charges], ["balance"])
    return LedgerEntry.objects.bulk_create(entries)


@transaction.atomic
def account_top_up(*, account_id: int, amount: Decimal, memo: str = "", user=None) -> LedgerEntry:
    if amount <= 0:
        raise ValueError("A top-up must be a positive amount.")
    return _post(account=account_lock(account_id=account_id), kind=LedgerEntry.Kind.TOP_UP, amount=amount,
                 memo=memo or "Top-up", user=user)


@transaction.atomic
def account_credit(*, account_id: int, amount: Decimal, memo: str, user=None) -> LedgerEntry:
    if amount <= 0:
        raise ValueError("A credit must be a positive amount.")
    return _post(account=account_lock(account_id=account_id), kind=LedgerEntry.Kind.CREDIT, amount=amount,
                 memo=memo, user=user)


@transaction.atomic
def account_adjust(*, account_id: int, amount: Decimal, memo: str, user=None) -> LedgerEntry:
    """A staff correction, either sign; the memo says why."""
    if amount == 0:
        raise ValueError("An adjustment cannot be zero.")
    if not memo:
        raise ValueError("Say why in the memo.")
    return _post(account=account_lock(account_id=account_id), kind=LedgerEntry.Kind.ADJUSTMENT, amount=amount,
                 memo=memo, user=user)
