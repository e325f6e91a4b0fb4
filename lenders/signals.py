"""Domain events of the lenders app, for the apps above it to subscribe to in their AppConfig.ready()."""

from django.dispatch import Signal

# Sent by subscription_validate while it names a subscription's problems, before anything is saved, with
# keyword arguments `lender`, `data` (the cleaned terms), `states` (upper case), `purposes` (the loan
# purposes chosen) and `err(field, message)`. A receiver adds the rules its app owns (the market: a price
# never below the staff's floor) by calling `err`; it must not write anything.
subscription_validating = Signal()

# Sent inside the transaction that changed a lender's time zone, with keyword argument `lender_id`. The
# market subscribes: its analytics rollup counts each sale on the lender's local day, rebuilt in the new zone.
lender_time_zone_changed = Signal()
