"""Domain events of the billing app, for the apps above it to subscribe to in their AppConfig.ready()."""

from django.dispatch import Signal

# Sent inside the posting transaction after a debit, while the account's row lock is held, with keyword
# arguments `account_id`, `previous_balance` and `balance` (Decimal). A receiver that warns the lender (the
# integrations app: the account.low_balance webhook and e-mail) writes what it owes in the same transaction
# and queues any sending on commit, so a rolled-back charge warns nobody.
balance_lowered = Signal()
