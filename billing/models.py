"""A lender's money with the marketplace: Account and its append-only ledger."""

from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import F, Q
from django.utils import timezone

from core.fields import money_field
from core.querysets import AppendOnlyQuerySet


class Account(models.Model):
    lender = models.OneToOneField("lenders.Lender", on_delete=models.PROTECT, related_name="account")
    # Changed only by billing.services, with the row locked, together with a LedgerEntry.
    balance = money_field(default=Decimal("0.00"), editable=False)
    credit_limit = money_field(default=Decimal("0.00"), help_text="How far below zero the balance may go.")
    low_balance_threshold = money_field(default=Decimal("200.00"))
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            # The database is the last guard: no sale may take a balance past the allowed credit.
            models.CheckConstraint(
                condition=Q(balance__gte=-F("credit_limit")), name="balance_within_credit"
            ),
            models.CheckConstraint(condition=Q(credit_limit__gte=0), name="credit_limit_not_negative"),
        ]

    def __str__(self) -> str:
        return f"Account of {self.lender}"

    @property
    def available(self) -> Decimal:
        return self.balance + self.credit_limit


class LedgerEntry(models.Model):
    """One movement of money. Never updated or deleted; corrections are new entries."""

    class Kind(models.TextChoices):
        TOP_UP = "top_up", "Top-up"
        CHARGE = "charge", "Charge"
        CREDIT = "credit", "Credit"
        ADJUSTMENT = "adjustment", "Adjustment"

    # No index of its own: ledger_account_newest_first starts with it.
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="entries", db_index=False)
    kind = models.CharField(max_length=12, choices=Kind.choices)
    amount = money_field(help_text="Signed: charges are negative.")
    balance_after = money_field()
    memo = models.CharField(max_length=200, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "ledger entries"
        indexes = [
            # The portal's ledger and CSV (one account, newest first, read in index order: no sort) and the
            # admin's changelist (every account, the same order).
            models.Index(fields=["account", "-created_at", "-id"], name="ledger_account_newest_first"),
            models.Index(fields=["-created_at", "-id"], name="ledger_newest_first"),
        ]
        constraints = [
            models.CheckConstraint(condition=~Q(kind="charge") | Q(amount__lt=0), name="charge_is_negative"),
            models.CheckConstraint(
                condition=~Q(kind__in=["top_up", "credit"]) | Q(amount__gt=0), name="top_up_credit_positive"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.amount} on {self.account}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise ValidationError("Ledger entries are append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ValidationError("Ledger entries are append-only.")
