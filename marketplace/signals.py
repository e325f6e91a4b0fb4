"""Domain events of the market, for the apps above it to subscribe to in their AppConfig.ready()."""

from django.dispatch import Signal

# Sent once new deliveries are committed, with keyword arguments `delivery_ids` (a sale's or a batch's) and
# `now`: True when sent from the worker that sold them (tell the buyers from here, one broker round trip
# less), False to queue that work. The integrations app subscribes (webhooks, e-mail); a lost message costs
# only time, as its sweeper finds deliveries left unnotified.
deliveries_created = Signal()

# Sent on commit after a delivery moves along the pipeline (delivery_set_status), with keyword arguments
# `delivery_id` and `status`. Integrations' outreach stops the automated routine at application or lost.
delivery_status_changed = Signal()

# Sent inside the deciding transaction once a return is approved or denied, with keyword argument
# `return_request`. A receiver writes what it owes in the same transaction and queues any sending on commit.
return_decided = Signal()
