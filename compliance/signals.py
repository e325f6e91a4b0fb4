"""Domain events of the compliance app, for the apps above it to subscribe to in their AppConfig.ready()."""

from django.dispatch import Signal

# Sent inside the erasing transaction, after the consumers' own rows are scrubbed, with keyword arguments
# `consumer_ids` and `lead_ids` (lists of ints). A receiver removes the contact details its app keeps about
# those leads (stored API answers, webhook payloads) in the same transaction, so an erasure is all or
# nothing; it must not send anything (e-mail, HTTP) itself.
consumer_erased = Signal()

# Sent on commit when a consumer stops a channel, with keyword arguments `channel` ("sms" or "email"),
# `address_sha256` (compliance.services.optout_address_hash of the number or address) and `lead_id` (the
# lead the stop came through, or None). Automated sequences subscribe to end what they would send.
consumer_opted_out = Signal()
