"""Consumers, their leads, consent evidence, and the guideline data the qualification engine reads."""

import hashlib
import uuid

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Case, F, Q, Value, When
from django.db.models.functions import Coalesce, Upper
from django.utils import timezone

from core.fields import money_field
from core.querysets import AppendOnlyQuerySet

from .choices import CreditRange, LeadStatus, LoanPurpose, Occupancy, PropertyType, Timeline
from .qualification import CREDIT_RANGES


class Consumer(models.Model):
    first_name = models.CharField(max_length=80)
    last_name = models.CharField(max_length=80)
    email = models.EmailField(db_index=True)
    phone = models.CharField(max_length=15, db_index=True, help_text="Digits only, US 10-digit")
    created_at = models.DateTimeField(default=timezone.now)
    erased_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        # The inbox's search by name, e-mail or phone has trigram indexes on PostgreSQL, made by migration
        # 0012 outside the model (SQLite, the embedded default, has no GIN and searches by scanning).
        indexes = [
            # Duplicate checks compare e-mails case-insensitively (leads.selectors.leads_earlier_contacts).
            models.Index(Upper("email"), name="leads_consumer_email_upper"),
            # Staff find a consumer by last name, ignoring case, newest first (leads.search).
            models.Index(Upper("last_name"), F("id").desc(), name="leads_consumer_last_name_upper"),
        ]

    def __str__(self) -> str:
        return f"Consumer #{self.pk}"

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()

    @property
    def phone_display(self) -> str:
        p = self.phone
        return f"({p[:3]}) {p[3:6]}-{p[6:]}" if len(p) == 10 else p


def credit_score_low_expression() -> Coalesce:
    """Lead.credit_score_low in SQL: the exact score when given, else the lowest score of the range, from
    the credit-range table itself (a new range needs no edit here)."""
    lowest = [When(credit_range=key, then=Value(r.min_score)) for key, r in CREDIT_RANGES.items()]
    return Coalesce(
        "credit_score", Case(*lowest, output_field=models.IntegerField()), output_field=models.IntegerField()
    )


class LeadQuerySet(models.QuerySet):
    def stuck(self, *, older_than):
        """Leads whose next task never ran (e.g. the broker was down at commit time)."""
        return self.filter(status__in=[LeadStatus.RECEIVED, LeadStatus.QUALIFIED], updated_at__lt=older_than)


# The lead's wide columns that no list shows: the engine's full working and the sales' decision trace (a few
# kB of JSON a lead). Lists of leads, or of rows joined to their lead, defer them.
LEAD_JSON_FIELDS = ("qualification", "distribution_trace")


class Lead(models.Model):
    # Status moves are declared in leads.choices.LEAD_MOVES and made by leads.services.lead_set_status.
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    consumer = models.ForeignKey(Consumer, on_delete=models.PROTECT, related_name="leads")
    status = models.CharField(max_length=16, choices=LeadStatus.choices, default=LeadStatus.RECEIVED)
    status_reason = models.CharField(max_length=200, blank=True)

    purpose = models.CharField(max_length=16, choices=LoanPurpose.choices)
    zip_code = models.CharField(max_length=5)
    city = models.CharField(max_length=80)
    state = models.CharField(max_length=2)
    county = models.CharField(max_length=80)
    property_type = models.CharField(max_length=16, choices=PropertyType.choices)
    # Living units (1-4): loan limits and LTV caps for 2-4 units differ from one unit's.
    units = models.PositiveSmallIntegerField(default=1)
    occupancy = models.CharField(max_length=16, choices=Occupancy.choices)
    property_value = money_field()
    purchase_price = money_field(null=True, blank=True)
    down_payment = money_field(null=True, blank=True)
    mortgage_balance = money_field(null=True, blank=True)
    cash_out = money_field(default=0)
    desired_loan_amount = money_field()
    # The consumer's credit range; a partner may give the exact score instead, and the range is derived
    # from it (leads.services.lead_submit). Matching and the engine judge by credit_score_low.
    credit_range = models.CharField(max_length=16, choices=CreditRange.choices)
    credit_score = models.PositiveSmallIntegerField(
        null=True, blank=True, validators=[MinValueValidator(300), MaxValueValidator(850)]
    )
    annual_income = money_field()
    monthly_debts = money_field()
    military_service = models.BooleanField(default=False)
    first_time_buyer = models.BooleanField(default=False)
    timeline = models.CharField(max_length=16, choices=Timeline.choices)

    # Qualification, written once by leads_qualify. The JSON keeps every product's result and reasons.
    guideline_version = models.CharField(max_length=40, blank=True)
    # The county's limits for this property's number of units, and where each came from.
    loan_limit = money_field(null=True, blank=True)
    loan_limit_source = models.CharField(max_length=120, blank=True)
    fha_limit = money_field(null=True, blank=True)
    fha_limit_source = models.CharField(max_length=160, blank=True)
    requested_loan = money_field(null=True, blank=True)
    # The most an offering product lends ("you may qualify for up to"), and what the best one lends toward
    # the request (the request, or the estimate when that is less): lenders' loan filters match on the latter.
    estimate = money_field(null=True, blank=True)
    qualified_loan = money_field(null=True, blank=True)
    # At the qualified loan (at the request when not qualified). The engine caps ratios at 999.99
    # (leads.qualification.engine.RATIO_CAP), so any inputs fit these columns.
    ltv = models.DecimalField(max_digits=7, decimal_places=2, null=True, blank=True)
    dti = models.DecimalField(max_digits=7, decimal_places=2, null=True, blank=True)
    binding_constraint = models.CharField(max_length=40, blank=True)
    products = models.JSONField(default=list, blank=True)
    qualification = models.JSONField(default=dict, blank=True)

    # Where the lead came from: a partner (None for our own form) and the partner's attribution, so a
    # source's and a campaign's quality can be measured.
    source = models.ForeignKey("integrations.LeadSource", null=True, blank=True, on_delete=models.PROTECT)
    sub_id = models.CharField(max_length=100, blank=True)
    campaign = models.CharField(max_length=100, blank=True)
    utm_source = models.CharField(max_length=100, blank=True)
    utm_medium = models.CharField(max_length=100, blank=True)
    utm_campaign = models.CharField(max_length=100, blank=True)

    # Distribution: the decision trace of every attempt, and the window unsold leads are retried in.
    distribution_trace = models.JSONField(default=list, blank=True)
    distribution_attempts = models.PositiveIntegerField(default=0)
    retry_until = models.DateTimeField(null=True, blank=True)

    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)
    qualified_at = models.DateTimeField(null=True, blank=True)
    sold_at = models.DateTimeField(null=True, blank=True)

    objects = LeadQuerySet.as_manager()

    class Meta:
        indexes = [
            # Consumer to lead without reading the wide lead row (an index-only scan): the inbox's search
            # finds consumers, then their leads.
            models.Index(fields=["consumer", "id"], name="lead_consumer_id"),
            models.Index(fields=["status", "updated_at"]),
            # The admin's list by status (held for review, sold, ...), newest first, at a million leads.
            models.Index(fields=["status", "-id"], name="lead_status_newest_first"),
            models.Index(fields=["status", "retry_until"]),
            # The staff dashboard and source economics: a day range of leads grouped by what they are,
            # read from this index alone (an index-only scan), never from the wide lead rows.
            models.Index(
                fields=["created_at"],
                include=["status", "state", "purpose", "source", "campaign", "qualified_at"],
                name="lead_dashboard",
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(units__gte=1, units__lte=4), name="leads_lead_units_1_to_4"
            ),
            models.CheckConstraint(
                condition=Q(credit_score__isnull=True) | Q(credit_score__gte=300, credit_score__lte=850),
                name="lead_credit_score_300_850",
            ),
        ]

    def __str__(self) -> str:
        return f"Lead {self.reference} ({self.get_purpose_display()}, {self.state})"

    @property
    def reference(self) -> str:
        """The one reference a lender sees for this lead: on its portal page, the ledger memo, e-mails, the
        letter, the CSV export and the API (lead_reference). The start of its public id (the API's lead_id
        begins with it), never the row id, which would tell buyers how many leads the marketplace takes.
        Staff find a lead by it in admin (search)."""
        return self.public_id.hex[:8]

    @property
    def credit_score_low(self) -> int:
        """The lowest score this lead may have: the exact score when given, else its range's lowest."""
        if self.credit_score is not None:
            return self.credit_score
        return CREDIT_RANGES[self.credit_range].min_score

    @property
    def credit_display(self) -> str:
        label = self.get_credit_range_display()
        return f"{self.credit_score} ({label})" if self.credit_score is not None else label

    @property
    def location(self) -> str:
        return f"{self.city}, {self.state} {self.zip_code}"


class ConsentRecord(models.Model):
    """Proof that the consumer agreed to be contacted. Written once, never changed."""

    lead = models.OneToOneField(Lead, on_delete=models.PROTECT, related_name="consent")
    text = models.TextField()
    text_sha256 = models.CharField(max_length=64)
    created_at = models.DateTimeField(default=timezone.now)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=500, blank=True)
    page_url = models.URLField(max_length=500, blank=True)

    objects = AppendOnlyQuerySet.as_manager()

    def __str__(self) -> str:
        return f"Consent for lead #{self.lead_id}"

    def save(self, *args, **kwargs):
        self.prepare_insert()
        super().save(*args, **kwargs)

    def prepare_insert(self) -> None:
        """What every write of a consent does first, through save() or a bulk insert (core.bulk
        calls it): refuse to change a stored record, and seal the text."""
        if self.pk is not None:
            raise ValidationError("A consent record cannot be changed once written.")
        self.seal()

    def delete(self, *args, **kwargs):
        raise ValidationError("A consent record cannot be deleted.")

    def seal(self) -> None:
        """Fingerprint the text agreed to, so any later change to the stored text shows."""
        self.text_sha256 = hashlib.sha256(self.text.encode()).hexdigest()


class GuidelineSet(models.Model):
    """A version of the lending guidelines and rate sheet. The newest active one qualifies new leads."""

    version = models.CharField(max_length=40, unique=True)
    is_active = models.BooleanField(default=True)
    rules = models.JSONField(help_text="Product rules and rate sheet (see leads.qualification.Guidelines).")
    created_at = models.DateTimeField(default=timezone.now)
    notes = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.version

    def clean(self) -> None:
        from .qualification import Guidelines

        try:
            Guidelines.from_dict({**self.rules, "version": self.version})
        except (KeyError, TypeError, ValueError, ArithmeticError) as exc:
            raise ValidationError({"rules": f"These rules cannot be read: {exc}"}) from exc


class CountyLoanLimit(models.Model):
    """A county's loan limits: FHFA's conforming limits by number of units (`import_loan_limits`, shipped
    in leads/data/) and, once imported from HUD's file (`import_fha_limits`), HUD's FHA limits."""

    fips = models.CharField(max_length=5, unique=True)
    state = models.CharField(max_length=2)
    county_key = models.CharField(max_length=100)
    county_name = models.CharField(
        max_length=100, blank=True, help_text='As people write it: "Travis County"'
    )
    one_unit_limit = money_field()
    two_unit_limit = money_field(null=True, blank=True)
    three_unit_limit = money_field(null=True, blank=True)
    four_unit_limit = money_field(null=True, blank=True)
    year = models.PositiveSmallIntegerField()
    fha_one_unit_limit = money_field(null=True, blank=True)
    fha_two_unit_limit = money_field(null=True, blank=True)
    fha_three_unit_limit = money_field(null=True, blank=True)
    fha_four_unit_limit = money_field(null=True, blank=True)
    fha_year = models.PositiveSmallIntegerField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["state", "county_key"])]

    def __str__(self) -> str:
        return f"{self.county_name or self.county_key}, {self.state}: {self.one_unit_limit}"


class StateHousingCost(models.Model):
    """A state's effective property-tax rate and homeowners insurance estimate, both a % of the home's value
    a year; the engine uses them instead of the national figures. Shipped in leads/data/ (source and year in
    its README); staff correct them here."""

    state = models.CharField(max_length=2, unique=True)
    property_tax_rate = models.DecimalField(
        max_digits=5, decimal_places=3, help_text="Effective property tax, % of value a year"
    )
    insurance_rate = models.DecimalField(
        max_digits=5, decimal_places=3, help_text="Homeowners insurance, % of value a year"
    )
    average_premium = money_field(
        null=True, blank=True, help_text="The state's average annual premium the rate came from"
    )
    source = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["state"]

    def __str__(self) -> str:
        return f"{self.state}: tax {self.property_tax_rate}%, insurance {self.insurance_rate}%"

    def clean(self) -> None:
        for name in ("property_tax_rate", "insurance_rate"):
            value = getattr(self, name)
            if value is not None and not 0 <= value <= 10:
                raise ValidationError({name: "A yearly rate from 0% to 10% of the home's value."})
