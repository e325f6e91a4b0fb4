"""Personal data under control: who looked at a consumer's contact details, and what was erased."""

from django.conf import settings
from django.db import models
from django.utils import timezone


class ContactAccess(models.Model):
    """One view of a consumer's full contact details, by a lender's member or by staff. Append-only."""

    class Channel(models.TextChoices):
        PORTAL = "portal", "Lender portal"
        API = "api", "Lender API"
        ADMIN = "admin", "Staff admin"
        EXPORT = "export", "CSV export"
        LETTER = "letter", "Pre-qualification letter"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    lender = models.ForeignKey(
        "lenders.Lender", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    lead = models.ForeignKey("leads.Lead", on_delete=models.PROTECT, related_name="+")
    channel = models.CharField(max_length=8, choices=Channel.choices)
    path = models.CharField(max_length=300, blank=True)
    # Where the request came from (core.clientip: the client, not our proxy); null for older rows.
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-at", "-id"]
        verbose_name_plural = "contact accesses"
        indexes = [models.Index(fields=["lead", "at"])]

    def __str__(self) -> str:
        return f"{self.user_id or 'api'} viewed lead #{self.lead_id} via {self.channel}"


class Erasure(models.Model):
    """A record that a consumer's personal data was erased: by request (staff) or by the retention rule."""

    class Reason(models.TextChoices):
        REQUEST = "request", "Consumer's request"
        RETENTION = "retention", "Retention period ended"

    consumer_id = models.PositiveBigIntegerField(db_index=True)
    lead_ids = models.JSONField(default=list)
    reason = models.CharField(max_length=10, choices=Reason.choices)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    note = models.CharField(max_length=200, blank=True)
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-at"]

    def __str__(self) -> str:
        return f"Consumer #{self.consumer_id} erased ({self.get_reason_display()})"


class OptOut(models.Model):
    """A consumer's stop, per channel: texts to a phone number, or marketing e-mail to an address.

    Keyed by the SHA-256 of the normalised number or address (compliance.services.optout_address_hash), as
    the suppression list is: the stop outlives an erasure of the consumer's details without keeping them,
    and the same person reached through another lead's copy of the number is stopped too. A resume (START)
    closes the row; a later stop opens a new one, so the rows are the history a regulator would ask for.
    The stop is the marketplace's, not one lender's: every buyer texts from the marketplace's number, and a
    consumer who says STOP means all of them.
    """

    class Channel(models.TextChoices):
        SMS = "sms", "Texts"
        EMAIL = "email", "E-mail"

    class Source(models.TextChoices):
        SMS_KEYWORD = "sms_keyword", "Text reply (STOP, START)"
        EMAIL_ONE_CLICK = "email_one_click", "One-click unsubscribe (RFC 8058)"
        EMAIL_LINK = "email_link", "Unsubscribe page"
        EMAIL_MAILTO = "email_mailto", "Unsubscribe e-mail (List-Unsubscribe mailto)"
        PROVIDER = "provider", "The SMS provider: recipient unsubscribed"
        STAFF = "staff", "Staff"

    channel = models.CharField(max_length=8, choices=Channel.choices)
    address_sha256 = models.CharField(max_length=64)
    source = models.CharField(max_length=16, choices=Source.choices)
    keyword = models.CharField(max_length=16, blank=True, help_text="The word the consumer texted.")
    # The lead and sender the stop came through, when known: evidence, not scope.
    lead = models.ForeignKey("leads.Lead", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    lender = models.ForeignKey(
        "lenders.Lender", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_source = models.CharField(max_length=16, choices=Source.choices, blank=True)
    revoked_keyword = models.CharField(max_length=16, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "opt-out"
        indexes = [models.Index(fields=["channel", "address_sha256"])]
        constraints = [
            # At most one standing stop per address: two STOPs at once record one.
            models.UniqueConstraint(
                fields=["channel", "address_sha256"],
                condition=models.Q(revoked_at__isnull=True),
                name="one_open_optout_per_address",
            ),
        ]

    def __str__(self) -> str:
        state = "resumed" if self.revoked_at else "standing"
        return f"Opt-out of {self.get_channel_display().lower()} #{self.pk} ({state})"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None
