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
