"""Reads of the market shared by the portal, admin, API and sweepers. Lender-facing reads start scoped."""

from collections.abc import Iterator
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import Final, Literal

from django.db.models import Count, DateTimeField, ExpressionWrapper, F, Max, Q, QuerySet, Subquery
from django.utils import timezone

from leads.choices import LoanPurpose
from leads.models import Consumer, Lead
from lenders.models import Membership

from .models import Activity, Delivery, FollowUp


def deliveries_for_member(*, membership: Membership) -> QuerySet[Delivery]:
    """What a portal user may see: the lender's deliveries; an officer only those assigned to them."""
    qs = Delivery.objects.for_lender(membership.lender)
    if not membership.sees_all_leads:
        qs = qs.filter(assigned_to_id=membership.user_id)  # the id: no read of the user row
    return qs


@dataclass(frozen=True)
class InboxFilters:
    """What the inbox, its live refresh and the CSV export filter by. Empty values filter nothing."""

    status: str = ""
    q: str = ""
    purpose: str = ""
    state: str = ""
    subscription_id: int | None = None
    # A user id, or UNASSIGNED for leads nobody works yet. Only owners and managers filter by officer.
    assigned_to: int | Literal["none"] | None = None
    delivered_from: datetime | None = None  # inclusive
    delivered_before: datetime | None = None  # exclusive

    @property
    def active(self) -> bool:
        return any(getattr(self, f.name) not in (None, "") for f in fields(self))

    def to_dict(self) -> dict:
        """For a task's arguments or a stored row: times as ISO 8601 text."""
        return {
            f.name: v.isoformat() if isinstance(v := getattr(self, f.name), datetime) else v
            for f in fields(self)
        }

    @classmethod
    def from_dict(cls, data: dict) -> "InboxFilters":
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        for name in ("delivered_from", "delivered_before"):
            if values.get(name):
                values[name] = datetime.fromisoformat(values[name])
        return cls(**values)


UNASSIGNED: Final = "none"


# The inbox never reads the lead's qualification and decision trace (most of a lead row's weight).
LEAD_JSON = ("lead__qualification", "lead__distribution_trace")
# The search's matching leads are found first and then matched to the lender's deliveries; the LIMIT keeps
# PostgreSQL from folding that step into a walk down the inbox's index, which for a common name probes the
# wide lead rows one by one. Far above any lender's leads of one name.
SEARCH_MATCHES_MAX = 100_000


def inbox_for_member(
    *, membership: Membership, status: str = "", q: str = "", filters: InboxFilters | None = None
) -> QuerySet[Delivery]:
    """The member's deliveries, filtered, newest first, with what a row shows joined in (one query). Every
    filter but the search is on the delivery's own columns, which the inbox index covers."""
    f = filters or InboxFilters(status=status, q=q)
    qs = (
        deliveries_for_member(membership=membership)
        .select_related("lead", "lead__consumer", "subscription", "assigned_to")
        .defer(*LEAD_JSON)
    )
    if f.status:
        qs = qs.filter(status=f.status)
    if f.purpose:
        qs = qs.filter(purpose=f.purpose)
    if f.state:
        qs = qs.filter(state=f.state.upper())
    if f.subscription_id:
        qs = qs.filter(subscription_id=f.subscription_id)
    if f.assigned_to == UNASSIGNED:
        qs = qs.filter(assigned_to__isnull=True)
    elif isinstance(f.assigned_to, int):
        qs = qs.filter(assigned_to_id=f.assigned_to)
    if f.delivered_from:
        qs = qs.filter(created_at__gte=f.delivered_from)
    if f.delivered_before:
        qs = qs.filter(created_at__lt=f.delivered_before)
    if q := f.q.strip():
        qs = qs.filter(lead_id__in=leads_matching_search(q)[:SEARCH_MATCHES_MAX])
    return qs.order_by("-created_at", "-id")


PHONE_CHARACTERS = set("0123456789 ()-+.")


def leads_matching_search(q: str) -> QuerySet[Lead, int]:
    """The ids of leads whose consumer matches `q`, by what `q` looks like (each test an index on PostgreSQL,
    leads migration 0012; the lead reached by its (consumer, id) index):
    - an e-mail address (it has an @): addresses that start with it, any case;
    - a phone number (digits and ( ) - + . only, 3 digits or more): the whole number when it has 10 digits
      (11 with a leading 1), else numbers containing the digits ("555-0142");
    - anything else: a first or last name containing it, "maria gonzalez" both together, or, when it has a
      dot, an address starting with it ("maria.gonzalez")."""
    digits = "".join(ch for ch in q if ch.isdigit())
    if "@" in q:
        match = Q(email__istartswith=q)
    elif len(digits) >= 3 and set(q) <= PHONE_CHARACTERS:
        if len(digits) == 11 and digits.startswith("1"):
            digits = digits[1:]
        match = Q(phone=digits) if len(digits) == 10 else Q(phone__contains=digits)
    else:
        match = Q(first_name__icontains=q) | Q(last_name__icontains=q)
        if " " in q:  # "maria gonzalez": first and last name together
            first, _, last = q.partition(" ")
            match |= Q(first_name__icontains=first, last_name__icontains=last.strip())
        if "." in q:
            match |= Q(email__istartswith=q)
    return Lead.objects.filter(consumer__in=Consumer.objects.filter(match)).values_list("id", flat=True)


def inbox_page(qs: QuerySet[Delivery], *, offset: int, limit: int) -> list[Delivery]:
    """One page of the inbox. The page's ids come from the inbox index alone (an index-only scan, however
    deep the OFFSET), and only those rows are joined to their lead, consumer, subscription and officer: one
    query, whose cost does not grow with the page number's depth in the lender's leads."""
    ids = qs.order_by("-created_at", "-id").values("id")[offset : offset + limit]
    return list(qs.filter(id__in=ids))


INBOX_EXPORT_HEADER = [
    "Delivered",
    "Delivery",
    "Lead",
    "Status",
    "First name",
    "Last name",
    "E-mail",
    "Phone",
    "Purpose",
    "City",
    "State",
    "ZIP",
    "Requested loan",
    "Estimated maximum",
    "Products",
    "Price",
    "Sale",
    "Subscription",
    "Assigned to",
    "First contact",
    "Funded amount",
    "Lost reason",
    # Last, so that readers of the earlier columns by position are not thrown (added with guidelines 2026.2).
    "Qualified loan",
]
# Only the exported columns, as tuples: no model objects, and never the lead's JSON.
_EXPORT_COLUMNS = (
    "created_at",
    "id",
    "lead__public_id",
    "status",
    "lead__consumer__first_name",
    "lead__consumer__last_name",
    "lead__consumer__email",
    "lead__consumer__phone",
    "lead__purpose",
    "lead__city",
    "lead__state",
    "lead__zip_code",
    "lead__requested_loan",
    "lead__estimate",
    "lead__products",
    "price",
    "exclusive",
    "subscription__name",
    "assigned_to__first_name",
    "assigned_to__last_name",
    "assigned_to__username",
    "first_contact_at",
    "funded_amount",
    "lost_reason",
    "lead__qualified_loan",
)


def inbox_export_rows(qs: QuerySet[Delivery], *, chunk_size: int = 2000) -> Iterator[tuple]:
    """The inbox's CSV rows for `qs`, read in chunks (a server-side cursor on PostgreSQL): memory stays flat
    however many rows. Times are shown in the current time zone (the lender's, in the portal and its task)."""
    fmt = "%Y-%m-%d %H:%M"
    statuses, purposes = dict(Delivery.Status.choices), dict(LoanPurpose.choices)
    for (
        created_at,
        delivery_id,
        public_id,
        status,
        first_name,
        last_name,
        email,
        phone,
        purpose,
        city,
        state,
        zip_code,
        requested_loan,
        estimate,
        products,
        price,
        exclusive,
        subscription,
        officer_first,
        officer_last,
        officer_username,
        first_contact_at,
        funded_amount,
        lost_reason,
        qualified_loan,
    ) in qs.values_list(*_EXPORT_COLUMNS).iterator(chunk_size=chunk_size):
        # As member_label shows a person: the full name, else the username; nobody when unassigned.
        officer = f"{officer_first or ''} {officer_last or ''}".strip() or officer_username or ""
        yield (
            timezone.localtime(created_at).strftime(fmt),
            delivery_id,
            public_id.hex[:8],  # Lead.reference
            statuses.get(status, status),
            first_name,
            last_name,
            email,
            phone,
            purposes.get(purpose, purpose),
            city,
            state,
            zip_code,
            requested_loan,
            estimate,
            " ".join(products or []),
            price,
            "exclusive" if exclusive else "shared",
            subscription,
            officer,
            timezone.localtime(first_contact_at).strftime(fmt) if first_contact_at else "",
            funded_amount or "",
            lost_reason,
            "" if qualified_loan is None else qualified_loan,
        )


# A change made this long before the latest one may still be committing (a sale's transaction takes a
# moment between stamping its rows and committing): rows touched within it are counted into the version.
VERSION_WINDOW = timedelta(minutes=2)


def inbox_version(*, lender_id: int) -> str:
    """A version of the lender's whole inbox that changes whenever a delivery is added or changes what the
    list shows (status, first contact, assignee: touched_at). Two probes of the (lender, touched_at) index,
    in one query, whatever the number of deliveries: the latest change, and how many changes lie within
    VERSION_WINDOW of it, so a change committed after a later one still moves the version. It covers the
    lender, not one member's filtered list: a lead reassigned away from an officer must refresh their list,
    and a refresh of an unchanged list costs the same as any other."""
    latest = Delivery.objects.filter(lender_id=lender_id).order_by("-touched_at").values("touched_at")[:1]
    since = ExpressionWrapper(Subquery(latest) - VERSION_WINDOW, output_field=DateTimeField())
    agg = Delivery.objects.filter(lender_id=lender_id, touched_at__gte=since).aggregate(
        n=Count("id"), touched=Max("touched_at")
    )
    touched = agg["touched"].timestamp() if agg["touched"] else 0
    return f"{touched:.6f}-{agg['n']}"


def delivery_get_for_member(*, membership: Membership, delivery_id: int) -> Delivery | None:
    """A delivery the member may open, with what the detail page shows; None means 404."""
    return (
        deliveries_for_member(membership=membership)
        .select_related(
            "lead",
            "lead__consumer",
            "lead__consent",
            "subscription",
            "lender",
            "assigned_to",
            "return_request__credit",
        )
        .annotate(buyers=Count("lead__deliveries"))
        .filter(pk=delivery_id)
        .first()
    )


def deliveries_unnotified(*, older_than_seconds: int = 60) -> QuerySet[Delivery]:
    """Not notified, and not set aside for staff (a delivery whose notification raised on its own)."""
    return Delivery.objects.filter(
        notified_at__isnull=True,
        notify_error="",
        created_at__lt=timezone.now() - timedelta(seconds=older_than_seconds),
    )


def deliveries_unemailed(*, older_than_seconds: int = 60) -> QuerySet[Delivery]:
    """Notified, but their e-mail task was lost (broker down) or set aside after its retries; not those yet to
    be notified, nor one whose e-mail raised on its own (notify_error: staff replay it)."""
    return Delivery.objects.filter(
        notified_at__isnull=False,
        emailed_at__isnull=True,
        notify_error="",
        created_at__lt=timezone.now() - timedelta(seconds=older_than_seconds),
    )


def activities_for_delivery(*, delivery: Delivery) -> QuerySet[Activity]:
    return Activity.objects.filter(delivery=delivery).select_related("user").order_by("-created_at", "-id")


def followups_for_delivery(*, delivery: Delivery) -> QuerySet[FollowUp]:
    # Open ones first (NULL done_at sorts first on both databases only when asked), soonest due first.
    return (
        FollowUp.objects.filter(delivery=delivery)
        .select_related("user")
        .order_by(F("done_at").asc(nulls_first=True), "due_at", "id")
    )


def followups_due_for_member(*, membership: Membership, until: datetime, limit: int = 20) -> list[FollowUp]:
    """The member's own open follow-ups due before `until` (overdue first), on leads they may still see."""
    visible = deliveries_for_member(membership=membership)
    return list(
        FollowUp.objects.filter(
            user_id=membership.user_id, done_at__isnull=True, due_at__lt=until, delivery__in=visible
        )
        .select_related("delivery__lead__consumer")
        .defer(*(f"delivery__{name}" for name in LEAD_JSON))
        .order_by("due_at", "id")[:limit]
    )


def followup_get_for_member(*, membership: Membership, followup_id: int) -> FollowUp | None:
    """A follow-up on a lead the member may see; None means 404."""
    return (
        FollowUp.objects.filter(pk=followup_id, delivery__in=deliveries_for_member(membership=membership))
        .select_related("delivery")
        .first()
    )
