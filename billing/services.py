"""Every movement of money. Each function expects or takes the account's row lock, then posts one entry.
(Returns, which credit a lead's price back, are the market's: marketplace.returns.)"""

from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from core.bulk import bulk_insert, bulk_set

from .models import Account, LedgerEntry
from .signals import balance_lowered

CENT = Decimal("0.01")


class InsufficientFunds(Exception):
    """The account cannot pay: balance plus credit limit is below the amount."""


def account_post(*, account: Account, kind: str, amount: Decimal, memo: str = "", user=None) -> LedgerEntry:
    """Post one entry to an account whose row lock the caller holds (select_for_update), so the
    read-modify-write is safe."""
    amount = amount.quantize(CENT)
    new_balance = account.balance + amount
    if amount < 0 and new_balance < -account.credit_limit:
        raise InsufficientFunds(f"Account {account.pk} has {account.available} available, needs {-amount}.")
    previous, account.balance = account.balance, new_balance
    Account.objects.filter(pk=account.pk).update(balance=new_balance)
    entry = LedgerEntry.objects.create(
        account=account, kind=kind, amount=amount, balance_after=new_balance, memo=memo, created_by=user
    )
    if amount < 0:  # a debit may cross the lender's low-balance line: webhook and e-mail, once, on commit
        balance_lowered.send(
            sender=Account, account_id=account.pk, previous_balance=previous, balance=new_balance
        )
    return entry


def account_open(*, lender) -> Account:
    """The lender's account, created empty if it has none yet."""
    account, _ = Account.objects.get_or_create(lender=lender)
    return account


def account_lock(*, account_id: int) -> Account:
    return Account.objects.select_for_update().get(pk=account_id)


def accounts_charge(*, charges: list[tuple[Account, Decimal, str]]) -> list[LedgerEntry]:
    """Charge locked accounts for a batch of sales: two queries however many charges.

    The caller holds each account's row lock inside its transaction. An account may appear several times
    (one lender buying several leads of a batch): pass the same Account object each time, and each entry
    records the running balance after it, exactly as if the charges had been posted one by one.
    """
    entries = []
    charged: dict[int, Account] = {}
    for account, amount, memo in charges:
        if amount <= 0:
            raise ValueError("A charge must be a positive amount.")
        if charged.setdefault(account.pk, account) is not account:
            raise ValueError("Pass one Account object per account, so the running balance stays right.")
        amount = amount.quantize(CENT)
        if account.balance - amount < -account.credit_limit:
            raise InsufficientFunds(
                f"Account {account.pk} has {account.available} available, needs {amount}."
            )
        account.balance -= amount
        entries.append(
            LedgerEntry(
                account=account,
                kind=LedgerEntry.Kind.CHARGE,
                amount=-amount,
                balance_after=account.balance,
                memo=memo,
            )
        )
    if not entries:
        return []
    bulk_set(list(charged.values()), ["balance"])
    bulk_insert(entries)
    return entries


@transaction.atomic
def account_top_up(*, account_id: int, amount: Decimal, memo: str = "", user=None) -> LedgerEntry:
    if amount <= 0:
        raise ValueError("A top-up must be a positive amount.")
    return account_post(
        account=account_lock(account_id=account_id),
        kind=LedgerEntry.Kind.TOP_UP,
        amount=amount,
        memo=memo or "Top-up",
        user=user,
    )


@transaction.atomic
def account_credit(*, account_id: int, amount: Decimal, memo: str, user=None) -> LedgerEntry:
    if amount <= 0:
        raise ValueError("A credit must be a positive amount.")
    return account_post(
        account=account_lock(account_id=account_id),
        kind=LedgerEntry.Kind.CREDIT,
        amount=amount,
        memo=memo,
        user=user,
    )


@transaction.atomic
def account_adjust(*, account_id: int, amount: Decimal, memo: str, user=None) -> LedgerEntry:
    """A staff correction, either sign; the memo says why."""
    if amount == 0:
        raise ValueError("An adjustment cannot be zero.")
    if not memo:
        raise ValueError("Say why in the memo.")
    return account_post(
        account=account_lock(account_id=account_id),
        kind=LedgerEntry.Kind.ADJUSTMENT,
        amount=amount,
        memo=memo,
        user=user,
    )


def account_set_low_balance_threshold(*, account_id: int, threshold: Decimal) -> None:
    """The balance below which the lender wants a warning. Not money movement, so no ledger entry."""
    if threshold < 0:
        raise ValidationError({"low_balance_threshold": "The threshold cannot be negative."})
    Account.objects.filter(pk=account_id).update(
        low_balance_threshold=threshold.quantize(CENT), updated_at=timezone.now()
    )
