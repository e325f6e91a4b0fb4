"""Domain events of the leads app, for the apps above it to subscribe to in their AppConfig.ready()."""

from django.dispatch import Signal

# Sent on commit when a lead starts waiting for the market, with keyword arguments `lead_id` and `status`:
# `received` (a new lead, or a held one released before it was qualified: qualify it) or `qualified` (a held
# lead released after qualifying: sell it). Never for a lead stored as rejected. The market subscribes and
# queues the work; a lost message costs only time, as its sweeper finds leads left waiting.
lead_waiting = Signal()

# Sent on commit when staff save a guideline set (rate sheet) active, with keyword argument
# `guideline_set_id`. Outreach subscribes and re-runs the open leads' numbers (integrations.outreach).
guideline_set_activated = Signal()
