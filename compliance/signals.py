"""Domain events of the compliance app, for the apps above it to subscribe to in their AppConfig.ready()."""

from django.dispatch import Signal

# Sent inside the erasing transaction, after the consumers' own rows are scrubbed, with keyword arguments
# `consumer_ids` and `lead_ids` (lists of ints). A receiver removes the contact details its app keeps about
# those leads (stored API answers, webhook payloads) in the same transaction, so an erasure is all or
# nothing; it must not send anything (e-mail, HTTP) itself.
consumer_erased = Signal()
