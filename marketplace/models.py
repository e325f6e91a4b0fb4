"""The market: price floors, market settings, Delivery (one lead sold to one lender), its pipeline, returns"""

from datetime import UTC, datetime
from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from core.fields import money_field
from leads.choices import LoanPurpose


class MarketSettings(models.Model):
    """Staff-set market parameters; a single row (pk=1)."""

    shared_max_buyers = models.PositiveSmallIntegerField(
        default=3, help_text="N: most buyers of a shared lead."
    )
    unsold_retry_hours = models.PositiveIntegerField(
        default=24, help_text="How long unsold leads are retried."
    )
    duplicate_window_days = models.PositiveIntegerField(default=30)
    return_window_days = models.PositiveIntegerField(
        default=5, help_text="Days a lender has to return a lead."
    )
    return_rate_cap = models.DecimalField(
        max_digits=5,
        decimal_places=2,
        default=15,
        help_text="Most returns a lender may have approved or pending, as % of its deliveries over the "
        "last 30 days (but see the allowance below).",
    )
    return_allowance_per = models.PositiveSmallIntegerField(
        default=10,
        help_text="A minimum allowance: at least one return per this many deliveries over the last 30 days, "
        "whatever the %, so a small lender's first bad lead is allowed. 0: the % alone.",
    )
    retention_days = models.PositiveIntegerField(
        default=90, help_text="Days before PII of rejected, duplicate and unsold leads is erased."
    )
    speed_margin_percent = models.DecimalField(
        max_digits=5,
        decimal_places=2,
        default=5,
        help_text="Bids within this % of each other count as equal: among them the lender with the faster "
        "median time to first contact (last 30 days) wins, then the one served least recently; 0: by price.",
    )
    webhook_endpoints_per_lender = models.PositiveSmallIntegerField(
        default=5,
        help_text="Most webhook endpoints one lender may add. Each endpoint is sent to on its own, so this "
        "bounds what one lender's endpoints can ask of the outbound worker.",
    )

    class Meta:
        verbose_name = verbose_name_plural = "market settings"

    def __str__(self) -> str:
        return "Market settings"

    @classmethod
    def load(cls) -> "MarketSettings":
        obj, _ = cls.objects.get_or_create(pk=1)
        return obj


class PriceFloor(models.Model):
    purpose = models.CharField(max_length=16, choices=LoanPurpose.choices)
    exclusive = models.BooleanField()
    state = models.CharField(max_length=2, blank=True, help_text="Blank: every state without its own floor.")
    price = money_field()

    class Meta:
        ordering = ["purpose", "exclusive", "state"]
        constraints = [
            models.UniqueConstraint(fields=["purpose", "exclusive", "state"], name="unique_price_floor"),
            models.CheckConstraint(condition=Q(price__gte=0), name="price_floor_not_negative"),
        ]

    def __str__(self) -> str:
        kind = "exclusive" if self.exclusive else "shared"
        return f"{self.get_purpose_display()} {kind} {self.state or 'all states'}: ${self.price}"


class DeliveryQuerySet(models.QuerySet):
    def for_lender(self, lender) -> "DeliveryQuerySet":
        return self.filter(lender=lender)


class Delivery(models.Model):
    class Status(models.TextChoices):
        NEW = "new", "New"
        CONTACTED = "contacted", "Contacted"
        APPLICATION = "application", "Application"
        APPROVED = "approved", "Approved"
        FUNDED = "funded", "Funded"
        LOST = "lost", "Lost"

    lead = models.ForeignKey("leads.Lead", on_delete=models.PROTECT, related_name="deliveries")
    lender = models.ForeignKey("lenders.Lender", on_delete=models.PROTECT, related_name="deliveries")
    subscription = models.ForeignKey(
        "lenders.Subscription", on_delete=models.PROTECT, related_name="deliveries"
    )
    exclusive = models.BooleanField()
    price = money_field()
    # The lead's loan purpose and property state, copied at the sale (a lead's request never changes once
    # sold): the inbox filters and counts by them on this table's own index, without reading the wide lead
    # rows (their JSON is most of their weight).
    purpose = models.CharField(max_length=16, choices=LoanPurpose.choices, blank=True)
    state = models.CharField(max_length=2, blank=True)
    # Exactly one charge per delivery: the OneToOne makes a second charge impossible.
    charge = models.OneToOneField("billing.LedgerEntry", on_delete=models.PROTECT, related_name="delivery")
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.NEW)
    status_changed_at = models.DateTimeField(default=timezone.now)
    first_contact_at = models.DateTimeField(null=True, blank=True)
    # The consumer's last reply to a text (integrations' inbound webhook): automated sequences stop on it.
    replied_at = models.DateTimeField(null=True, blank=True)
    funded_amount = money_field(null=True, blank=True)
    lost_reason = models.CharField(max_length=200, blank=True)
    assigned_to = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # Webhooks queued and any low-balance alert raised (by the worker that sold it, right after the sale).
    notified_at = models.DateTimeField(null=True, blank=True)
    # The new-lead e-mail sent (by the outbound worker, so a slow mail server never holds a sale).
    emailed_at = models.DateTimeField(null=True, blank=True)
    # Set when this delivery's webhooks or e-mail raised on their own (integrations.deliveries): the
    # error's class and where, never its message. The sweeper leaves it to staff, who replay its FailedTask.
    notify_error = models.CharField(max_length=200, blank=True)
    # Set when a return of it is approved (marketplace.returns): the lead no longer counts as this lender's
    # exclusive, so the lead may be offered again to others (resale, issue 16.5, is not built yet).
    returned_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    # Last change the inbox shows (status, first contact, assignee). The live inbox compares it to decide
    # whether anything changed since the last refresh; services that change those fields bump it.
    touched_at = models.DateTimeField(default=timezone.now)

    objects = DeliveryQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "deliveries"
        indexes = [
            # The inbox: a lender's deliveries newest first (its order, with the id as tie-break), and what it
            # filters by, so that the page, a deep page's OFFSET and the count read this index alone.
            models.Index(
                fields=["lender", "-created_at", "-id"],
                include=["status", "purpose", "state", "subscription", "assigned_to"],
                name="delivery_inbox",
            ),
            # The same for its most used filter, the status ("new" leads): a selective status needs no walk of
            # the lender's whole index to fill a page or count.
            models.Index(
                fields=["lender", "status", "-created_at", "-id"],
                include=["purpose", "state", "subscription", "assigned_to"],
                name="delivery_inbox_status",
            ),
            # The inbox's live refresh: the lender's latest change is the last entry of this index.
            models.Index(fields=["lender", "touched_at"], name="delivery_lender_touched"),
            # The admin's changelist: every delivery in the model's order.
            models.Index(fields=["-created_at", "-id"], name="delivery_newest_first"),
            # The admin's "notification: set aside" filter: the few rows staff must replay.
            models.Index(fields=["-created_at"], condition=~Q(notify_error=""), name="delivery_set_aside"),
            # The sweeper's look for notifications and e-mails whose task was lost: only pending rows.
            models.Index(
                fields=["created_at"], condition=Q(notified_at__isnull=True), name="delivery_unnotified"
            ),
            models.Index(
                fields=["created_at"], condition=Q(emailed_at__isnull=True), name="delivery_unemailed"
            ),
        ]
        constraints = [
            models.UniqueConstraint(fields=["lead", "lender"], name="one_delivery_per_lead_and_lender"),
            # An exclusive lead has exactly one buyer (a returned one gave it back: issue 16.5).
            models.UniqueConstraint(
                fields=["lead"],
                condition=Q(exclusive=True, returned_at__isnull=True),
                name="one_exclusive_delivery",
            ),
            models.CheckConstraint(condition=Q(price__gt=Decimal("0")), name="delivery_price_positive"),
        ]

    def __str__(self) -> str:
        return f"Delivery #{self.pk}: lead #{self.lead_id} to {self.lender_id}"


class Activity(models.Model):
    """One thing a loan officer did on a lead: a call, an e-mail, a text, or a note. Append-only."""

    class Kind(models.TextChoices):
        CALL = "call", "Call"
        EMAIL = "email", "E-mail"
        TEXT = "text", "Text"
        NOTE = "note", "Note"

    class Outcome(models.TextChoices):
        REACHED = "reached", "Reached"
        VOICEMAIL = "voicemail", "Left voicemail"
        NO_ANSWER = "no_answer", "No answer"
        WRONG_NUMBER = "wrong_number", "Wrong number"
        SENT = "sent", "Sent"
        OTHER = "other", "Other"
        # What the consumer did, heard through the channels (never chosen by an officer in the portal).
        REPLIED = "replied", "Consumer replied"
        OPTED_OUT = "opted_out", "Consumer opted out"
        # A text or e-mail to the consumer that bounced (the provider's status callback): a return's evidence.
        BOUNCED = "bounced", "Bounced, undeliverable"

    CONTACT_KINDS = (Kind.CALL, Kind.EMAIL, Kind.TEXT)
    # What an officer (portal) or a lender's system (API) may log: the consumer's own acts are only heard.
    CONSUMER_OUTCOMES = (Outcome.REPLIED, Outcome.OPTED_OUT, Outcome.BOUNCED)
    OFFICER_OUTCOMES = [c for c in Outcome.choices if c[0] not in ("replied", "opted_out", "bounced")]

    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="activities")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    kind = models.CharField(max_length=8, choices=Kind.choices)
    outcome = models.CharField(max_length=16, choices=Outcome.choices, blank=True)
    note = models.TextField(blank=True, max_length=2000)
    # Done or heard by the platform (a text it sent, a consumer's reply), not by an officer or the API.
    automated = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "activities"
        indexes = [models.Index(fields=["delivery", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} on delivery #{self.delivery_id}"


FOLLOWUP_EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
FOLLOWUP_LATEST = datetime(2100, 1, 1, tzinfo=UTC)


class FollowUp(models.Model):
    """A reminder to get back to a lead. Shown on the inbox when due; e-mailed once when overdue."""

    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="followups")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    due_at = models.DateTimeField()
    note = models.CharField(max_length=200, blank=True)
    done_at = models.DateTimeField(null=True, blank=True)
    reminded_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["due_at", "id"]
        indexes = [
            models.Index(fields=["user", "done_at", "due_at"]),
            # The reminder sweep: open, not yet reminded, by due time.
            models.Index(
                fields=["due_at"],
                condition=Q(done_at__isnull=True, reminded_at__isnull=True),
                name="followup_to_remind",
            ),
        ]
        constraints = [
            # The last guard behind the form's bounds (core.formfields): a time PostgreSQL stores but
            # Python cannot read back (after year 9999 in UTC) would break the lead page for everyone.
            models.CheckConstraint(
                condition=Q(due_at__gte=FOLLOWUP_EARLIEST, due_at__lt=FOLLOWUP_LATEST),
                name="followup_due_at_in_range",
            ),
        ]

    def __str__(self) -> str:
        return f"Follow-up on delivery #{self.delivery_id}"

    @property
    def is_overdue(self) -> bool:
        return self.done_at is None and self.due_at < timezone.now()


class ReturnRequest(models.Model):
    """A lender's claim that a delivered lead was bad. One per delivery: a denied return is final.

    Written and decided only through marketplace.returns (return_request_create / return_approve /
    return_deny), which lock the lender's account so the month's return rate is counted and the credit
    posted exactly once.
    """

    class Reason(models.TextChoices):
        BAD_CONTACT = "bad_contact", "Bad contact data"
        DUPLICATE = "duplicate", "Duplicate"
        DID_NOT_REQUEST = "did_not_request", "Did not request"
        NOT_AS_DESCRIBED = "not_as_described", "Not pre-qualified as described"
        OTHER = "other", "Other"

    class Status(models.TextChoices):
        REQUESTED = "requested", "Requested"
        APPROVED = "approved", "Approved"
        DENIED = "denied", "Denied"

    delivery = models.OneToOneField(
        "marketplace.Delivery", on_delete=models.PROTECT, related_name="return_request"
    )
    # The delivery's lender, kept here so scoping and the monthly return rate stay single-table reads.
    lender = models.ForeignKey("lenders.Lender", on_delete=models.PROTECT, related_name="return_requests")
    reason = models.CharField(max_length=20, choices=Reason.choices)
    note = models.TextField(blank=True, max_length=1000)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.REQUESTED)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_note = models.CharField(max_length=500, blank=True)
    # Decided at once by the evidence we hold (marketplace.evidence), not by staff: the note says what it was.
    by_evidence = models.BooleanField(default=False)
    # The credit an approval posts. OneToOne: one entry can refund one return, and never two.
    credit = models.OneToOneField(
        "billing.LedgerEntry", on_delete=models.PROTECT, null=True, blank=True, related_name="return_request"
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        # The table and its indexes keep the names they had when the model lived in billing (moved without a
        # copy: returns are the market's rule, not money; billing only holds the credit they post).
        db_table = "billing_returnrequest"
        indexes = [
            models.Index(fields=["lender", "-created_at"], name="billing_ret_lender__b15f5a_idx"),
            # The admin's changelist, in the model's order.
            models.Index(fields=["-created_at", "-id"], name="return_newest_first"),
            models.Index(fields=["status", "created_at"], name="billing_ret_status_dfc628_idx"),
        ]
        constraints = [
            # Approved <=> credited: an approval without its credit, or a credit on an open return, is a bug.
            models.CheckConstraint(
                condition=(Q(status="approved") & Q(credit__isnull=False))
                | (~Q(status="approved") & Q(credit__isnull=True)),
                name="return_credited_iff_approved",
            ),
            models.CheckConstraint(
                condition=~Q(reason="other") | ~Q(note=""), name="return_other_needs_note"
            ),
            models.CheckConstraint(
                condition=Q(status="requested") | Q(decided_at__isnull=False), name="return_decision_dated"
            ),
        ]

    def __str__(self) -> str:
        return f"Return of lead #{self.delivery.lead_id} ({self.get_status_display()})"


# Upper bounds, in seconds, of the response-time bins the rollup counts first contacts in: a bin per step of
# a roughly geometric ladder from a minute to a week (the last bin is "a week or more"). The portal's
# response-time buckets (5 min, 30 min, 2 h) are among the edges, so a bucket is a run of whole bins.
CONTACT_BIN_EDGES = (
    60,
    120,
    180,
    300,
    450,
    600,
    900,
    1200,
    1800,
    2700,
    3600,
    5400,
    7200,
    10800,
    14400,
    21600,
    43200,
    86400,
    172800,
    604800,
)
CONTACT_BIN_FIELDS = tuple(f"contact_bin_{i:02d}" for i in range(len(CONTACT_BIN_EDGES) + 1))


class DeliveryRollup(models.Model):
    """One lender's deliveries of one day (the lender's local calendar day of the sale), summed for one group
    of one breakdown: what analytics reads instead of the deliveries, so a year costs a few thousand narrow
    rows rather than every delivery joined to its lead.

    `scope` is whose view the row serves: 0 the whole lender (owners and managers), else the user id of the
    officer the deliveries are assigned to (an officer sees only those). `kind` is the breakdown (purpose,
    subscription, state, officer, bucket) and `key` its group. Every delivery counts once in each kind of
    its scopes, so any one kind sums to the total (the report uses the buckets).

    Written only by marketplace.rollup, in the transaction of each change that moves a figure (a sale, a
    status move, a first contact, a reassignment), and rebuilt from the deliveries when the lender's time
    zone changes (`manage.py delivery_rollups_rebuild` for the rest). Plain integers, not positive ones: a
    row that drifted must never make a sale or a status move fail; the rebuild repairs it.
    """

    # No index of its own: the unique constraint below starts with it.
    lender = models.ForeignKey("lenders.Lender", on_delete=models.CASCADE, related_name="+", db_index=False)
    day = models.DateField()
    scope = models.IntegerField(help_text="0: the whole lender; else the assigned officer's user id.")
    kind = models.CharField(max_length=12)
    key = models.CharField(max_length=32, blank=True)
    leads = models.IntegerField(default=0)
    spend = money_field(default=Decimal("0.00"))
    contacted = models.IntegerField(default=0)
    applications = models.IntegerField(default=0)
    funded = models.IntegerField(default=0)
    funded_amount = models.DecimalField(max_digits=16, decimal_places=2, default=Decimal("0.00"))
    # First contacts by response time, CONTACT_BIN_EDGES: bin i counts those under edge i (and at least
    # edge i - 1); the last, those of a week or more. Medians are estimated from them.
    contact_bin_00 = models.IntegerField(default=0)
    contact_bin_01 = models.IntegerField(default=0)
    contact_bin_02 = models.IntegerField(default=0)
    contact_bin_03 = models.IntegerField(default=0)
    contact_bin_04 = models.IntegerField(default=0)
    contact_bin_05 = models.IntegerField(default=0)
    contact_bin_06 = models.IntegerField(default=0)
    contact_bin_07 = models.IntegerField(default=0)
    contact_bin_08 = models.IntegerField(default=0)
    contact_bin_09 = models.IntegerField(default=0)
    contact_bin_10 = models.IntegerField(default=0)
    contact_bin_11 = models.IntegerField(default=0)
    contact_bin_12 = models.IntegerField(default=0)
    contact_bin_13 = models.IntegerField(default=0)
    contact_bin_14 = models.IntegerField(default=0)
    contact_bin_15 = models.IntegerField(default=0)
    contact_bin_16 = models.IntegerField(default=0)
    contact_bin_17 = models.IntegerField(default=0)
    contact_bin_18 = models.IntegerField(default=0)
    contact_bin_19 = models.IntegerField(default=0)
    contact_bin_20 = models.IntegerField(default=0)

    class Meta:
        constraints = [
            # The upsert's target, and the report's index: one lender and scope, a range of days.
            models.UniqueConstraint(
                fields=["lender", "scope", "day", "kind", "key"], name="one_rollup_row_per_group_and_day"
            ),
        ]

    def __str__(self) -> str:
        return f"Rollup of lender #{self.lender_id} on {self.day}: {self.kind} {self.key or '—'}"


class LenderSpeed(models.Model):
    """A lender's median time to first contact over the last 30 days and its rank among the lenders with
    contacts (1 the fastest): the sale's tie-breaker among close bids and the figure analytics shows.
    Refreshed by beat from the daily rollup (marketplace.speed.lender_speeds_refresh), so a sale reads one
    narrow row per buyer instead of a median over their deliveries."""

    lender = models.OneToOneField(
        "lenders.Lender", on_delete=models.CASCADE, primary_key=True, related_name="+"
    )
    median_seconds = models.FloatField(null=True, blank=True)
    contacts = models.PositiveIntegerField(default=0)
    rank = models.PositiveIntegerField(null=True, blank=True)
    ranked = models.PositiveIntegerField(default=0, help_text="How many lenders were ranked.")

    class Meta:
        verbose_name = verbose_name_plural = "lender speed"

    def __str__(self) -> str:
        return f"Speed of lender #{self.lender_id}"
