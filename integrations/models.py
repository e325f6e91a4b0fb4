"""Partners (LeadSource), API keys, idempotency records, webhook endpoints and their delivery log."""

from __future__ import annotations

import hashlib
from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.db.models.fields.json import KT
from django.utils import timezone

from core.fields import money_field


class LeadSource(models.Model):
    """A partner that posts leads in (affiliate or partner site), or one of our own paid campaigns. Leads keep
    it with their sub id and campaign, so each source's economics (volume, sales, payout, margin, returns)
    is measured (integrations.dashboard); staff set what we pay it per lead."""

    class Kind(models.TextChoices):
        PARTNER = "partner", "Partner"
        CAMPAIGN = "campaign", "Our own campaign"

    class Payout(models.TextChoices):
        PER_RECEIVED = "per_received", "Per lead received"
        PER_QUALIFIED = "per_qualified", "Per qualified lead"
        PER_SOLD = "per_sold", "Per sold lead"

    name = models.CharField(max_length=120, unique=True)
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.PARTNER)
    is_active = models.BooleanField(default=True, help_text="Inactive sources' keys are refused.")
    # Paused: the source keeps its keys (it still reads its leads and figures) but new leads are refused with
    # a 403 saying so, rather than accepted and never sold (the partner would be paid for nothing).
    paused_at = models.DateTimeField(null=True, blank=True, help_text="Set: new leads are refused.")
    payout_model = models.CharField(max_length=14, choices=Payout.choices, default=Payout.PER_SOLD)
    payout_amount = money_field(default=Decimal("0.00"), help_text="What we pay the source per counted lead.")
    contact_email = models.EmailField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def is_paused(self) -> bool:
        return self.paused_at is not None


class SourcePaused(Exception):  # noqa: N818 (named as the state it reports, like DoesNotExist)
    """A paused source's new lead (integrations.services.lead_submit_from_partner): the API answers 403."""


class ApiKeyQuerySet(models.QuerySet):
    def active(self) -> ApiKeyQuerySet:
        return self.filter(revoked_at__isnull=True)

    def for_lender(self, lender) -> ApiKeyQuerySet:
        return self.filter(lender=lender)


class ApiKey(models.Model):
    """A bearer key of a partner or of a lender. Only its SHA-256 is stored: the key itself is shown once.

    SHA-256 and not a slow password hash: keys are 256 random bits, so brute force is hopeless anyway, and
    every API request looks its key up by hash in one indexed query.
    Rotation without downtime: a holder may have several active keys; make a new one, switch, revoke the old.
    """

    class Scope(models.TextChoices):
        READ = "read", "Read"
        WRITE = "write", "Read and write"

    source = models.ForeignKey(
        LeadSource, on_delete=models.CASCADE, null=True, blank=True, related_name="api_keys"
    )
    lender = models.ForeignKey(
        "lenders.Lender", on_delete=models.CASCADE, null=True, blank=True, related_name="api_keys"
    )
    name = models.CharField(max_length=80, help_text="What uses this key, e.g. 'CRM sync'.")
    prefix = models.CharField(
        max_length=16, db_index=True, help_text="The first characters, to recognise a key."
    )
    key_sha256 = models.CharField(max_length=64, unique=True, editable=False)
    scope = models.CharField(max_length=5, choices=Scope.choices, default=Scope.READ)
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = ApiKeyQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            # A key belongs to exactly one holder: a partner or a lender.
            models.CheckConstraint(
                condition=(Q(source__isnull=False) & Q(lender__isnull=True))
                | (Q(source__isnull=True) & Q(lender__isnull=False)),
                name="api_key_one_holder",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.name})"

    @staticmethod
    def hash(key: str) -> str:
        return hashlib.sha256(key.encode()).hexdigest()

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    @property
    def is_partner(self) -> bool:
        return self.source_id is not None


class LeadIntake(models.Model):
    """How a partner's lead came in: the key used and the consent time the partner reports.

    Kept beside the lead (not on ConsentRecord, which lead_submit writes once with the time we received it),
    so both the consumer's own consent time and our receipt time are evidence.
    """

    lead = models.OneToOneField("leads.Lead", on_delete=models.PROTECT, related_name="intake")
    source = models.ForeignKey(LeadSource, on_delete=models.PROTECT, related_name="intakes")
    api_key = models.ForeignKey(ApiKey, on_delete=models.SET_NULL, null=True, related_name="+")
    consent_given_at = models.DateTimeField()
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"Intake of lead #{self.lead_id} from {self.source_id}"


class IdempotencyRecord(models.Model):
    """The first successful response to a request with an Idempotency-Key, replayed for a retry.

    A key is scoped by holder, method and path, as Stripe scopes them: the same key sent to another URL is
    another request, never a replay of this one. Records expire (IDEMPOTENCY_KEY_TTL_HOURS, purged by
    integrations.tasks.records_expired_purge) and those about an erased consumer's lead are deleted with
    the erasure, since an answer may carry the consumer's contact details.
    """

    holder = models.CharField(max_length=40, help_text="source:<id> or lender:<id>: keys are per holder.")
    key = models.CharField(max_length=255)
    method = models.CharField(max_length=8)
    path = models.CharField(max_length=255)
    request_sha256 = models.CharField(max_length=64)
    response_status = models.PositiveSmallIntegerField()
    response_body = models.JSONField()
    # The lead the answer is about when it may carry its consumer's contact details or a lender's notes.
    lead = models.ForeignKey("leads.Lead", on_delete=models.CASCADE, null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["holder", "method", "path", "key"], name="unique_idempotency_key_per_request"
            )
        ]

    def __str__(self) -> str:
        return f"{self.holder} {self.key}"


class WebhookEvent(models.TextChoices):
    DELIVERY_CREATED = "delivery.created", "A lead was delivered to you"
    DELIVERY_UPDATED = "delivery.updated", "A delivery's pipeline status changed"
    RETURN_DECIDED = "return.decided", "A return request was approved or denied"
    ACCOUNT_LOW_BALANCE = "account.low_balance", "The account balance fell below its threshold"


class WebhookEndpointQuerySet(models.QuerySet):
    def for_lender(self, lender) -> WebhookEndpointQuerySet:
        return self.filter(lender=lender)


class WebhookEndpoint(models.Model):
    """A lender's URL that receives signed events.

    The secret is stored as is, not hashed: signing each message needs the secret itself (HMAC), unlike an
    API key, which we only ever compare. It is shown to the lender once, never logged, and only the sender
    reads it. After a rotation the previous secret also signs for a day, so the receiver can switch over
    without dropping messages (Standard Webhooks allows several signatures in one header).
    """

    lender = models.ForeignKey("lenders.Lender", on_delete=models.CASCADE, related_name="webhook_endpoints")
    url = models.URLField(max_length=500)
    description = models.CharField(max_length=120, blank=True)
    secret = models.CharField(max_length=80, editable=False)
    previous_secret = models.CharField(max_length=80, blank=True, editable=False)
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True, editable=False)
    events = models.JSONField(default=list, help_text="Event types this endpoint receives.")
    is_active = models.BooleanField(default=True)
    disabled_at = models.DateTimeField(null=True, blank=True)
    disabled_reason = models.CharField(max_length=200, blank=True)
    failure_count = models.PositiveIntegerField(
        default=0, help_text="Failed attempts since the last success."
    )
    created_at = models.DateTimeField(default=timezone.now)
    # Scheduling: one send task per endpoint, and one endpoint of a lender sending at a time, so a lender's
    # dead endpoints hold one outbound process at most (integrations.webhooks, "Scheduling").
    # Set when a send task for this endpoint is queued (to run at this time); a task is not queued again.
    queued_at = models.DateTimeField(null=True, blank=True, editable=False)
    # The lease of the task sending to this endpoint now; another endpoint of the lender waits for it.
    sending_until = models.DateTimeField(null=True, blank=True, editable=False)

    objects = WebhookEndpointQuerySet.as_manager()

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return self.url

    def signing_secrets(self, now=None) -> list[str]:
        now = now or timezone.now()
        secrets = [self.secret]
        if self.previous_secret and self.previous_secret_expires_at and self.previous_secret_expires_at > now:
            secrets.append(self.previous_secret)
        return secrets


class WebhookMessage(models.Model):
    """One event for one endpoint. Its `event_id` is the webhook-id header, the same on every retry."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="messages")
    event_id = models.CharField(max_length=40, unique=True)
    event_type = models.CharField(max_length=40, choices=WebhookEvent.choices)
    # Null once cleared: by retention a few days after delivery (WEBHOOK_PAYLOAD_RETENTION_DAYS), or when
    # the consumer it is about is erased. A cleared message cannot be sent or resent.
    payload = models.JSONField(null=True)
    payload_cleared_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempt_count = models.PositiveSmallIntegerField(default=0)
    # The sweeper sends what is due; a claimed attempt pushes this forward (a lease) so it runs once.
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"]),
            # The admin's changelist, in this order.
            models.Index(fields=["-created_at", "-id"], name="webhook_message_newest_first"),
            # Erasure finds the messages about a lead (every event about one carries data.lead_id).
            models.Index(KT("payload__data__lead_id"), name="webhook_message_lead"),
            # Retention clears delivered payloads by age.
            models.Index(
                fields=["finished_at"], condition=Q(payload_cleared_at__isnull=True), name="webhook_uncleared"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} {self.event_id}"

    @property
    def payload_cleared(self) -> bool:
        return self.payload_cleared_at is not None


class WebhookAttempt(models.Model):
    message = models.ForeignKey(WebhookMessage, on_delete=models.CASCADE, related_name="attempts")
    attempted_at = models.DateTimeField(default=timezone.now)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True, help_text="Empty: no HTTP answer.")
    latency_ms = models.PositiveIntegerField(default=0)
    response_excerpt = models.CharField(max_length=1024, blank=True)
    error = models.CharField(max_length=200, blank=True)
    succeeded = models.BooleanField(default=False)

    class Meta:
        ordering = ["-attempted_at", "-id"]

    def __str__(self) -> str:
        return f"Attempt on {self.message_id}: {self.status_code or self.error}"


class TextMessage(models.Model):
    """One text to or from a consumer, as the SMS provider handled it (integrations.channels).

    An outbound row is written before the provider is called and follows its status callbacks, so a text is
    on record even if the worker dies mid-send; `undelivered` and `failed` stay as evidence (a return for a
    bad number can cite "SMS bounced"). An inbound row keeps what the consumer sent when the number is a
    lead's; from an unknown number it keeps neither the number (masked) nor the words.
    """

    class Direction(models.TextChoices):
        OUTBOUND = "out", "Sent"
        INBOUND = "in", "Received"

    class Status(models.TextChoices):
        # Twilio's message statuses (the console backend answers "sent").
        QUEUED = "queued", "Queued"
        ACCEPTED = "accepted", "Accepted"
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"
        DELIVERED = "delivered", "Delivered"
        READ = "read", "Read"
        UNDELIVERED = "undelivered", "Undelivered"
        FAILED = "failed", "Failed"
        CANCELED = "canceled", "Canceled"
        RECEIVED = "received", "Received"

    # A callback may arrive late or twice: a status moves only to a later stage (a "sent" after
    # "delivered" changes nothing). Undelivered, failed and canceled are as final as delivered.
    STAGE = {
        Status.QUEUED: 1,
        Status.ACCEPTED: 1,
        Status.SENDING: 2,
        Status.SENT: 3,
        Status.DELIVERED: 4,
        Status.UNDELIVERED: 4,
        Status.FAILED: 4,
        Status.CANCELED: 4,
        Status.READ: 5,
        Status.RECEIVED: 5,
    }
    BOUNCED = (Status.UNDELIVERED, Status.FAILED)

    direction = models.CharField(max_length=3, choices=Direction.choices)
    status = models.CharField(max_length=12, choices=Status.choices)
    lead = models.ForeignKey("leads.Lead", on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    delivery = models.ForeignKey(
        "marketplace.Delivery", on_delete=models.PROTECT, null=True, blank=True, related_name="texts"
    )
    # The consumer's number, ten digits (masked for an unknown sender); blank once erased.
    phone = models.CharField(max_length=15, blank=True)
    body = models.TextField(blank=True, max_length=1600)
    provider = models.CharField(max_length=16)
    provider_id = models.CharField(max_length=64, blank=True, help_text="Twilio's message SID")
    # The caller's name for this send ("sequence-step:41"): a text with the same key on the same delivery is
    # never sent twice, however often the task that sends it runs.
    send_key = models.CharField(max_length=80, blank=True)
    error_code = models.CharField(max_length=16, blank=True)
    error_message = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    status_changed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["lead", "-created_at"]),
            models.Index(fields=["delivery", "-created_at"]),
        ]
        constraints = [
            # One row per provider message: a webhook Twilio retries is recognised, never logged twice.
            models.UniqueConstraint(
                fields=["provider", "provider_id"],
                condition=~Q(provider_id=""),
                name="one_text_per_provider_id",
            ),
        ]

    def __str__(self) -> str:
        return f"Text #{self.pk} ({self.get_direction_display().lower()}, {self.status})"


class InboxExport(models.Model):
    """An inbox CSV too large to stream from a request: written by a Celery task and kept, gzipped, in the
    database (web and workers share nothing else: a file on one machine's disk would not be there for the
    next request), until its link expires. Served only to the member who asked."""

    class Status(models.TextChoices):
        PENDING = "pending", "Being prepared"
        READY = "ready", "Ready"
        FAILED = "failed", "Failed"

    lender = models.ForeignKey("lenders.Lender", on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    # The inbox filters as the selector takes them (marketplace.selectors.InboxFilters), times in ISO 8601.
    filters = models.JSONField(default=dict)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    rows = models.PositiveIntegerField(default=0)
    content = models.BinaryField(blank=True, editable=False)  # the CSV, gzipped
    # Where and from which address it was asked, for the contact-access log its task writes.
    path = models.CharField(max_length=300, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["created_at"], name="inbox_export_created")]

    def __str__(self) -> str:
        return f"Inbox export #{self.pk} ({self.get_status_display()})"


# Outreach's models live in their own module; imported here so Django finds them in this app.
from .outreach.models import (  # noqa: E402, F401
    Enrolment,
    LeadConfirmation,
    MessageTemplate,
    Sequence,
    SequenceStep,
    SequenceSubscription,
    StepRun,
)
