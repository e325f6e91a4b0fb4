"""Domain events of the integrations app, for code in this app (and config) to subscribe to."""

from django.dispatch import Signal

# Sent on commit when a consumer answers a text with anything but a keyword (STOP, HELP, START...), with
# keyword arguments `lead_id`, `delivery_ids` (every buyer's delivery of that lead) and `text_message_id`
# (the inbound TextMessage). Automated sequences subscribe to stop themselves: a person now takes over.
consumer_replied = Signal()
