"""Every movement of money. Each function expects or takes the account's row lock, then posts one entry.

Returns live here too: requesting, approving and denying one locks the lender's account first (the same lock
a sale takes), so the month's return rate is counted under the lock and a return is credited exactly once.
"""

from datetime import datetime, timedelta
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.dateformat import format as date_format

from core.bulk import bulk_insert, bulk_set

from .models import Account, LedgerEntry, ReturnRequest

CENT = Decimal("0.01")


class InsufficientFunds(Exception):
    """The account cannot pay: balance plus credit limit is below the amount."""


def _post(*, account: Account, kind: str, amount: Decimal, memo: str = "", user=None) -> LedgerEntry:
    # Caller holds the row lock on `account` (select_for_update), so the read-modify-write is safe.
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
        from integrations.services import account_low_balance_check

        account_low_balance_check(account_id=account.pk, previous_balance=previous, balance=new_balance)
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
    return _post(
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
    return _post(
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
    return _post(
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


# --- returns ------------------------------------------------------------------------------------------
#
# The return-rate cap (MarketSettings.return_rate_cap, % of a month's deliveries) is enforced when the lender
# asks, counting returns still waiting for staff as if approved: the lender hears "no" at once, with the
# numbers, instead of days later. Approval checks the cap again (approved returns only) as the last guard.
# The month is the lender-local calendar month in which the returned lead was delivered.


def return_deadline(*, delivery, window_days: int) -> datetime:
    return delivery.created_at + timedelta(days=window_days)


def _lock_lender_account(lender_id: int) -> Account:
    return Account.objects.select_for_update().get(lender_id=lender_id)


def _cap_message(*, stats, cap: Decimal, would_be: int) -> str:
    return (
        f"Returns are capped at {cap.normalize():f}% of a month's deliveries. In {stats.month:%B %Y} you had "
        f"{stats.deliveries} deliveries and {would_be - 1} return{'s' if would_be != 2 else ''} approved or "
        f"pending, so another would make {stats.rate_with(would_be):.1f}%."
    )


@transaction.atomic
def return_request(
    *, delivery, user, reason: str, note: str = "", now: datetime | None = None
) -> ReturnRequest:
    """A lender asks for its money back on a bad lead. Refused, with the reason, outside the window, for a
    second request on the same lead, or when the month's returns would pass the staff cap."""
    from marketplace.models import MarketSettings

    from .selectors import return_rate_for_month

    now = now or timezone.now()
    note = (note or "").strip()
    if reason not in ReturnRequest.Reason.values:
        raise ValidationError({"reason": "Choose a reason."})
    if reason == ReturnRequest.Reason.OTHER and not note:
        raise ValidationError({"note": "Say what was wrong with the lead."})
    market = MarketSettings.load()
    _lock_lender_account(delivery.lender_id)
    if ReturnRequest.objects.filter(delivery_id=delivery.pk).exists():
        raise ValidationError("A return has already been requested for this lead.")
    deadline = return_deadline(delivery=delivery, window_days=market.return_window_days)
    if now > deadline:
        raise ValidationError(
            f"The return window for this lead closed on "
            f"{date_format(timezone.localtime(deadline), 'M j, Y, g:i A T')}: "
            f"returns are accepted for {market.return_window_days} days after delivery."
        )
    stats = return_rate_for_month(lender_id=delivery.lender_id, when=delivery.created_at)
    would_be = stats.approved + stats.pending + 1
    if stats.rate_with(would_be) > market.return_rate_cap:
        raise ValidationError(_cap_message(stats=stats, cap=market.return_rate_cap, would_be=would_be))
    try:
        with transaction.atomic():
            return ReturnRequest.objects.create(
                delivery=delivery,
                lender_id=delivery.lender_id,
                reason=reason,
                note=note[:1000],
                requested_by=user,
                created_at=now,
            )
    except IntegrityError as exc:  # another request for this lead won the race (the lock makes this rare)
        raise ValidationError("A return has already been requested for this lead.") from exc


def _decide(return_request_id: int) -> tuple[Account, ReturnRequest]:
    """Lock the lender's account, then the return (always in this order), and refuse a decided return."""
    lender_id = ReturnRequest.objects.values_list("lender_id", flat=True).get(pk=return_request_id)
    account = _lock_lender_account(lender_id)
    rr = ReturnRequest.objects.select_for_update().select_related("delivery").get(pk=return_request_id)
    if rr.status != ReturnRequest.Status.REQUESTED:
        raise ValidationError(f"This return was already {rr.get_status_display().lower()}.")
    return account, rr


@transaction.atomic
def return_approve(*, return_request_id: int, user, note: str = "") -> ReturnRequest:
    """Approve a return and credit the lead's price back, in one transaction, exactly once."""
    from marketplace.models import MarketSettings

    from .selectors import return_rate_for_month

    account, rr = _decide(return_request_id)
    market = MarketSettings.load()
    stats = return_rate_for_month(lender_id=rr.lender_id, when=rr.delivery.created_at)
    if stats.rate_with(stats.approved + 1) > market.return_rate_cap:
        would_be = stats.approved + 1
        raise ValidationError(_cap_message(stats=stats, cap=market.return_rate_cap, would_be=would_be))
    rr.credit = _post(
        account=account,
        kind=LedgerEntry.Kind.CREDIT,
        amount=rr.delivery.price,
        memo=f"Return of lead #{rr.delivery.lead_id} approved",
        user=user,
    )
    rr.status, rr.decided_by, rr.decided_at = ReturnRequest.Status.APPROVED, user, timezone.now()
    rr.decision_note = (note or "").strip()[:500]
    rr.save(update_fields=["credit", "status", "decided_by", "decided_at", "decision_note"])
    _notify_decided(rr)
    return rr


@transaction.atomic
def return_deny(*, return_request_id: int, user, note: str = "") -> ReturnRequest:
    _, rr = _decide(return_request_id)
    rr.status, rr.decided_by, rr.decided_at = ReturnRequest.Status.DENIED, user, timezone.now()
    rr.decision_note = (note or "").strip()[:500]
    rr.save(update_fields=["status", "decided_by", "decided_at", "decision_note"])
    _notify_decided(rr)
    return rr


def _notify_decided(rr: ReturnRequest) -> None:
    # The return.decided webhook and the lender's e-mail, queued on commit by the integrations app.
    from integrations.services import return_decided_notify

    return_decided_notify(return_request=rr)
