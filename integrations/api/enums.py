"""Named choice sets for the OpenAPI schema (SPECTACULAR_SETTINGS["ENUM_NAME_OVERRIDES"] points here)."""

from billing.models import LedgerEntry
from leads.choices import LeadStatus
from marketplace.models import Activity, Delivery, ReturnRequest

DELIVERY_STATUS = Delivery.Status
LEAD_STATUS = LeadStatus
LEDGER_KIND = LedgerEntry.Kind
ACTIVITY_KIND = Activity.Kind
RETURN_STATUS = ReturnRequest.Status
