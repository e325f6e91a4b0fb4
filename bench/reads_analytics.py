"""Rows of the reads bench (bench/reads.py) for issue 14 part B: analytics, billing and the ledger CSV for a
lender's owner, and the staff's admin changelists and their searches."""

from datetime import timedelta

from reads import Bench, Request, case


def _rollup_ready(b: Bench) -> None:
    """The builder writes deliveries with SQL, around the services that keep analytics' rollup: build it
    once from them (untimed), as the migration does for an existing database."""
    from marketplace.models import DeliveryRollup
    from marketplace.rollup import rollup_rebuild

    if not DeliveryRollup.objects.filter(lender_id=b.lender_id).exists():
        rollup_rebuild(lender_id=b.lender_id)


def _range(days: int) -> dict:
    from django.utils import timezone

    today = timezone.localdate()
    return {"start": (today - timedelta(days=days - 1)).isoformat(), "end": today.isoformat()}


@case("analytics, 365 days")
def analytics_year(b: Bench) -> Request:
    _rollup_ready(b)
    return b.get("portal:analytics", revenue="3000", **_range(365))


@case("analytics, 30 days")
def analytics_month(b: Bench) -> Request:
    _rollup_ready(b)
    return b.get("portal:analytics", revenue="3000", **_range(30))


@case("analytics CSV, 365 days")
def analytics_csv_year(b: Bench) -> Request:
    _rollup_ready(b)
    return b.get("portal:analytics_csv", revenue="3000", **_range(365))


@case("billing, first page")
def billing_page(b: Bench) -> Request:
    return b.get("portal:billing")


@case("billing, a deep ledger page (the middle one)")
def billing_deep_page(b: Bench) -> Request:
    """The "Older" link of the page that ends halfway down the ledger (found untimed)."""
    from billing.models import LedgerEntry
    from core.paging import cursor_make

    entries = LedgerEntry.objects.filter(account__lender_id=b.lender_id).order_by("-created_at", "-id")
    middle = entries.values_list("created_at", "id")[entries.count() // 2]
    return b.get("portal:billing", older_than=cursor_make(*middle))


@case("ledger CSV", runs=3)
def ledger_csv(b: Bench) -> Request:
    return b.get("portal:billing_csv")


# --- staff: the admin's big changelists ------------------------------------------------------------------


def _sample_lead(b: Bench) -> dict:
    """A lead about halfway down the table, with its consumer's contact details."""
    [(lead_id, public_id, email, phone, last)] = b.sql(
        "SELECT l.id, l.public_id::text, c.email, c.phone, c.last_name FROM leads_lead l "
        "JOIN leads_consumer c ON c.id = l.consumer_id "
        "WHERE l.id = (SELECT (max(id) + min(id)) / 2 FROM leads_lead)"
    )
    return {"id": lead_id, "reference": public_id[:8], "email": email, "phone": phone, "last": last}


@case("admin: leads", scope="staff")
def admin_leads(b: Bench) -> Request:
    return b.get("admin:leads_lead_changelist")


@case("admin: leads, filtered (status, state)", scope="staff")
def admin_leads_filtered(b: Bench) -> Request:
    return b.get("admin:leads_lead_changelist", status__exact="sold", state="TX")


@case("admin: leads, search by reference", scope="staff")
def admin_leads_reference(b: Bench) -> Request:
    return b.get("admin:leads_lead_changelist", q=_sample_lead(b)["reference"])


@case("admin: leads, search by e-mail", scope="staff")
def admin_leads_email(b: Bench) -> Request:
    return b.get("admin:leads_lead_changelist", q=_sample_lead(b)["email"].upper())


@case("admin: leads, search by phone", scope="staff")
def admin_leads_phone(b: Bench) -> Request:
    p = _sample_lead(b)["phone"]
    return b.get("admin:leads_lead_changelist", q=f"({p[:3]}) {p[3:6]}-{p[6:]}")


@case("admin: leads, search by last name", scope="staff")
def admin_leads_last_name(b: Bench) -> Request:
    return b.get("admin:leads_lead_changelist", q=_sample_lead(b)["last"])


@case("admin: consumers, search by last name", scope="staff")
def admin_consumers_last_name(b: Bench) -> Request:
    return b.get("admin:leads_consumer_changelist", q=_sample_lead(b)["last"])


@case("admin: consents", scope="staff")
def admin_consents(b: Bench) -> Request:
    return b.get("admin:leads_consentrecord_changelist")


@case("admin: deliveries", scope="staff")
def admin_deliveries(b: Bench) -> Request:
    return b.get("admin:marketplace_delivery_changelist")


@case("admin: deliveries, filtered (status, this year)", scope="staff")
def admin_deliveries_filtered(b: Bench) -> Request:
    from django.utils import timezone

    year = timezone.now().replace(month=1, day=1, hour=0, minute=0, second=0, microsecond=0)
    return b.get(
        "admin:marketplace_delivery_changelist",
        status__exact="funded",
        created_at__gte=year.isoformat(),
    )


@case("admin: deliveries, search by lead", scope="staff")
def admin_deliveries_lead(b: Bench) -> Request:
    return b.get("admin:marketplace_delivery_changelist", q=_sample_lead(b)["reference"])


@case("admin: ledger", scope="staff")
def admin_ledger(b: Bench) -> Request:
    return b.get("admin:billing_ledgerentry_changelist")


@case("admin: ledger, search by lead", scope="staff")
def admin_ledger_lead(b: Bench) -> Request:
    return b.get("admin:billing_ledgerentry_changelist", q=_sample_lead(b)["reference"])


@case("admin: ledger, one account", scope="staff")
def admin_ledger_account(b: Bench) -> Request:
    [(account_id,)] = b.sql(
        "SELECT a.id FROM billing_account a JOIN lenders_lender l ON l.id = a.lender_id "
        "WHERE l.name = 'Reads 100k'"
    )
    return b.get("admin:billing_ledgerentry_changelist", account__id__exact=account_id)
