"""Lenders, their people (Membership) and their standing orders (Subscription)."""

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

from core.fields import money_field
from leads.choices import LoanPurpose


def all_loan_purposes() -> list[str]:
    """A new subscription takes every purpose until the lender says otherwise."""
    return list(LoanPurpose.values)


class Lender(models.Model):
    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        PAUSED = "paused", "Paused"

    name = models.CharField(max_length=120)
    nmls_id = models.CharField("NMLS id", max_length=20, blank=True)
    # The sender's identity in the footer of e-mail to consumers (CAN-SPAM asks for a postal address).
    postal_address = models.CharField(
        max_length=200, blank=True, help_text="One line, e.g. 100 Congress Ave, Suite 300, Austin, TX 78701"
    )
    time_zone = models.CharField(max_length=64, default="America/New_York")
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.ACTIVE)
    # Ties between equal bids go to the lender served least recently (DESIGN.md, Allocation).
    last_served_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def licensed_states(self) -> list[str]:
        return sorted(lic.state for lic in self.licenses.all())


class LenderLicense(models.Model):
    lender = models.ForeignKey(Lender, on_delete=models.CASCADE, related_name="licenses")
    state = models.CharField(max_length=2)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["lender", "state"], name="unique_lender_state_license")
        ]
        indexes = [models.Index(fields=["state", "lender"])]

    def __str__(self) -> str:
        return f"{self.lender} in {self.state}"


class Membership(models.Model):
    class Role(models.TextChoices):
        OWNER = "owner", "Owner"
        MANAGER = "manager", "Manager"
        OFFICER = "officer", "Loan officer"

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="membership")
    lender = models.ForeignKey(Lender, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=8, choices=Role.choices, default=Role.OFFICER)
    is_active = models.BooleanField(default=True)
    # The officer's own details, set on their profile (by them, or by an owner or manager on the team page):
    # the pre-qualification letter, the first touch and the sequences (integrations.outreach) sign with them;
    # a loan officer's NMLS id belongs in anything that offers a loan.
    nmls_id = models.CharField("NMLS id", max_length=20, blank=True)
    phone = models.CharField(max_length=15, blank=True, help_text="Digits only, US 10-digit")
    booking_url = models.URLField(
        "booking link", max_length=300, blank=True, help_text="Where a consumer books a call with you."
    )
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.user} ({self.get_role_display()}, {self.lender})"

    @property
    def phone_display(self) -> str:
        p = self.phone
        return f"({p[:3]}) {p[3:6]}-{p[6:]}" if len(p) == 10 else p

    @property
    def sees_all_leads(self) -> bool:
        return self.role in (self.Role.OWNER, self.Role.MANAGER)


class SubscriptionQuerySet(models.QuerySet):
    def for_lender(self, lender: Lender) -> "SubscriptionQuerySet":
        return self.filter(lender=lender)

    def live(self) -> "SubscriptionQuerySet":
        return self.filter(is_active=True, lender__status=Lender.Status.ACTIVE)


class Subscription(models.Model):
    """A lender's standing order: which leads it wants, and on what terms."""

    lender = models.ForeignKey(Lender, on_delete=models.CASCADE, related_name="subscriptions")
    name = models.CharField(max_length=120)
    is_active = models.BooleanField("active", default=True)

    # Filters, each declared once for the sale's SQL and the forecast's ORM in marketplace.matching.
    # The loan purposes taken (LoanPurpose values): a list, so a new purpose needs no column or migration.
    purposes = models.JSONField("loan purposes", default=all_loan_purposes)
    # A lead matches when its lowest possible score (Lead.credit_score_low) reaches this: 620 takes the
    # 620-639 range and every range above it.
    min_credit_score = models.PositiveSmallIntegerField(
        "minimum credit score",
        default=620,
        validators=[MinValueValidator(300), MaxValueValidator(850)],
    )
    min_loan_amount = money_field(null=True, blank=True, validators=[MinValueValidator(0)])
    max_loan_amount = money_field(null=True, blank=True, validators=[MinValueValidator(0)])
    max_ltv = models.DecimalField("maximum LTV %", max_digits=5, decimal_places=2, null=True, blank=True)
    max_dti = models.DecimalField("maximum DTI %", max_digits=5, decimal_places=2, null=True, blank=True)
    # Geography: the states are SubscriptionState rows; ZIPs (listed, or expanded from a radius) are
    # SubscriptionZip rows. When a subscription has any ZIP rows, the lead's ZIP must be one of them.
    radius_center_zip = models.CharField(max_length=5, blank=True)
    radius_miles = models.PositiveIntegerField(null=True, blank=True)
    has_zip_filter = models.BooleanField(default=False, editable=False)

    # Terms.
    exclusive = models.BooleanField(default=False, help_text="Exclusive: this lender is the only buyer.")
    price = money_field(validators=[MinValueValidator(0)], help_text="The bid per lead.")
    daily_cap = models.PositiveIntegerField(null=True, blank=True)
    monthly_cap = models.PositiveIntegerField(null=True, blank=True)
    monthly_budget = money_field(null=True, blank=True)
    # Delivery schedule in the lender's time zone: weekday digits (Monday=0) and an hour window.
    schedule_days = models.CharField(max_length=7, default="0123456")
    schedule_start = models.TimeField(null=True, blank=True)
    schedule_end = models.TimeField(null=True, blank=True)

    # Counters for caps and budget, keyed by the lender-local day and month they count.
    day_key = models.DateField(null=True, blank=True, editable=False)
    day_count = models.PositiveIntegerField(default=0, editable=False)
    month_key = models.DateField(null=True, blank=True, editable=False)
    month_count = models.PositiveIntegerField(default=0, editable=False)
    month_spend = money_field(default=0, editable=False)

    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    objects = SubscriptionQuerySet.as_manager()

    class Meta:
        ordering = ["-price", "id"]
        indexes = [models.Index(fields=["is_active", "lender"])]
        constraints = [
            models.CheckConstraint(
                condition=Q(min_loan_amount__isnull=True)
                | Q(max_loan_amount__isnull=True)
                | Q(min_loan_amount__lte=models.F("max_loan_amount")),
                name="subscription_loan_range_ordered",
            ),
            models.CheckConstraint(condition=Q(price__gt=0), name="subscription_price_positive"),
            models.CheckConstraint(
                condition=Q(min_credit_score__gte=300, min_credit_score__lte=850),
                name="subscription_min_credit_score_300_850",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.lender})"

    @property
    def states(self) -> list[str]:
        return sorted(s.state for s in self.state_rows.all())


class SubscriptionState(models.Model):
    subscription = models.ForeignKey(Subscription, on_delete=models.CASCADE, related_name="state_rows")
    state = models.CharField(max_length=2)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["subscription", "state"], name="unique_subscription_state")
        ]
        # Matching starts here: every live subscription covering the lead's state.
        indexes = [models.Index(fields=["state", "subscription"])]

    def __str__(self) -> str:
        return f"{self.subscription_id}: {self.state}"


class SubscriptionZip(models.Model):
    subscription = models.ForeignKey(Subscription, on_delete=models.CASCADE, related_name="zip_rows")
    zip_code = models.CharField(max_length=5)
    from_radius = models.BooleanField(default=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["subscription", "zip_code"], name="unique_subscription_zip")
        ]
        indexes = [models.Index(fields=["zip_code", "subscription"])]

    def __str__(self) -> str:
        return f"{self.subscription_id}: {self.zip_code}"


class AssignmentRule(models.Model):
    """One officer's place in the lender's round-robin of new leads, optionally limited to some states and
    loan purposes (empty lists mean all). marketplace.services.deliveries_assign_round_robin picks, among
    the active rules that fit a lead and whose officer is active, the one served longest ago (`last_seq`),
    so the rotation is fair."""

    lender = models.ForeignKey(Lender, on_delete=models.CASCADE, related_name="assignment_rules")
    membership = models.ForeignKey(Membership, on_delete=models.CASCADE, related_name="assignment_rules")
    states = models.JSONField(default=list, blank=True, help_text="Two-letter states; empty: every state.")
    purposes = models.JSONField(default=list, blank=True, help_text="Loan purposes; empty: every purpose.")
    is_active = models.BooleanField("active", default=True)
    position = models.PositiveIntegerField(default=0)
    # A per-lender sequence rather than a timestamp: two sales a moment apart cannot tie or arrive out of
    # order, because the lender's account row is locked for the whole sale
    # (see deliveries_assign_round_robin).
    last_seq = models.PositiveBigIntegerField(default=0, editable=False)
    assigned_count = models.PositiveIntegerField(default=0, editable=False)
    last_assigned_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["position", "id"]
        indexes = [models.Index(fields=["lender", "is_active"], name="assignment_rule_lender_active")]
        # One place in the rotation per officer: two rules would give them a double share.
        constraints = [models.UniqueConstraint(fields=["membership"], name="one_assignment_rule_per_member")]

    def __str__(self) -> str:
        return f"Rule #{self.pk} for {self.membership.user}"

    def fits(self, *, state: str, purpose: str) -> bool:
        return (not self.states or state in self.states) and (not self.purposes or purpose in self.purposes)


class Invitation(models.Model):
    """An e-mailed, single-use, expiring link to join a lender's team. Only the token's SHA-256 is kept; the
    token itself exists in the e-mail alone."""

    lender = models.ForeignKey(Lender, on_delete=models.CASCADE, related_name="invitations")
    email = models.EmailField()
    role = models.CharField(max_length=8, choices=Membership.Role.choices, default=Membership.Role.OFFICER)
    token_hash = models.CharField(max_length=64, blank=True, db_index=True)
    expires_at = models.DateTimeField()
    sent_at = models.DateTimeField(null=True, blank=True)
    accepted_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"Invitation #{self.pk} to {self.lender}"

    @property
    def is_pending(self) -> bool:
        return self.accepted_at is None and self.revoked_at is None and self.expires_at > timezone.now()
