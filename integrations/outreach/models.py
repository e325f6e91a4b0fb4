"""Outreach's rows: message templates, sequences and their steps, a delivery's enrolment and its step runs
(the one record that a step ran: a unique key per enrolment, claimed before anything is sent)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone


class MessageTemplate(models.Model):
    """A lender's first-touch wording (e-mail subject and body, text body), or with `is_default` the
    marketplace's, which staff edit in admin and every lender without its own uses. Merge fields only
    (integrations.outreach.merge), never Django template code."""

    lender = models.OneToOneField(
        "lenders.Lender", on_delete=models.CASCADE, null=True, blank=True, related_name="message_template"
    )
    is_default = models.BooleanField(default=False, editable=False)
    send_email = models.BooleanField("send the first-touch e-mail", default=True)
    email_subject = models.CharField(max_length=200)
    email_body = models.TextField(max_length=5000)
    send_text = models.BooleanField(
        "send the first-touch text", default=True, help_text="Only to consumers whose consent covers texts."
    )
    text_body = models.TextField(max_length=480, help_text="Up to three text segments.")
    updated_at = models.DateTimeField(default=timezone.now)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        constraints = [
            # The marketplace's default is one row; a lender's row is the lender's.
            models.UniqueConstraint(
                fields=["is_default"], condition=Q(is_default=True), name="one_default_message_template"
            ),
            models.CheckConstraint(
                condition=(Q(is_default=True) & Q(lender__isnull=True))
                | (Q(is_default=False) & Q(lender__isnull=False)),
                name="message_template_default_xor_lender",
            ),
        ]

    def __str__(self) -> str:
        return (
            "Marketplace default first touch"
            if self.is_default
            else f"First touch of lender #{self.lender_id}"
        )


class Action(models.TextChoices):
    CALL = "call", "Call task"
    EMAIL = "email", "E-mail"
    TEXT = "text", "Text"


class Sequence(models.Model):
    """A lender's routine for a new delivery: ordered steps, each "after T: call task / e-mail / text". A
    delivery enrols in its subscription's sequence, else its lender's default (`is_default`)."""

    lender = models.ForeignKey("lenders.Lender", on_delete=models.CASCADE, related_name="sequences")
    name = models.CharField(max_length=80)
    is_default = models.BooleanField(
        "the lender's default",
        default=False,
        help_text="Used for subscriptions without a sequence of their own.",
    )
    is_active = models.BooleanField(
        "active", default=True, help_text="A paused sequence enrols nothing new; enrolled leads finish it."
    )
    subscriptions = models.ManyToManyField(
        "lenders.Subscription", through="SequenceSubscription", related_name="+", blank=True
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-is_default", "name", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["lender"], condition=Q(is_default=True), name="one_default_sequence_per_lender"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class SequenceSubscription(models.Model):
    """A subscription's sequence: at most one (the unique subscription), of the same lender (services)."""

    sequence = models.ForeignKey(Sequence, on_delete=models.CASCADE, related_name="subscription_rows")
    subscription = models.OneToOneField("lenders.Subscription", on_delete=models.CASCADE, related_name="+")

    def __str__(self) -> str:
        return f"Subscription #{self.subscription_id} → sequence #{self.sequence_id}"


class SequenceStep(models.Model):
    class Timing(models.TextChoices):
        AFTER = "after", "After a delay"
        NEXT_MORNING = "next_morning", "Next morning (9 am the consumer's time)"

    sequence = models.ForeignKey(Sequence, on_delete=models.CASCADE, related_name="steps")
    position = models.PositiveSmallIntegerField()
    action = models.CharField(max_length=8, choices=Action.choices)
    timing = models.CharField(max_length=16, choices=Timing.choices, default=Timing.AFTER)
    delay_minutes = models.PositiveIntegerField(default=0, help_text="After the sale, in minutes.")
    skip_if_reached = models.BooleanField(
        "only if not reached", default=False, help_text="Skipped once an officer has reached the consumer."
    )
    subject = models.CharField(max_length=200, blank=True)
    body = models.TextField(max_length=5000, blank=True, help_text="The message, or for a call what to say.")

    class Meta:
        ordering = ["sequence", "position"]
        constraints = [
            models.UniqueConstraint(fields=["sequence", "position"], name="one_step_per_position"),
            models.CheckConstraint(
                condition=Q(delay_minutes__lte=60 * 24 * 30), name="sequence_step_within_30_days"
            ),
        ]

    def __str__(self) -> str:
        return f"Step {self.position} of sequence #{self.sequence_id}"


class Enrolment(models.Model):
    """A delivery's automated outreach: its first touch and its sequence's steps (StepRun rows, written
    together when it enrols). Stopped for good when the consumer replies, opts out, is erased, or the lead
    reaches application or lost."""

    class State(models.TextChoices):
        ACTIVE = "active", "Running"
        STOPPED = "stopped", "Stopped"
        COMPLETED = "completed", "Completed"

    class StopReason(models.TextChoices):
        REPLIED = "replied", "The consumer replied"
        OPTED_OUT = "opted_out", "The consumer opted out"
        APPLICATION = "application", "The lead reached application"
        LOST = "lost", "The lead was lost"
        ERASED = "erased", "The consumer's details were erased"
        RETURNED = "returned", "The lead was returned"

    delivery = models.OneToOneField(
        "marketplace.Delivery", on_delete=models.CASCADE, related_name="enrolment"
    )
    sequence = models.ForeignKey(Sequence, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    # Where the consumer lives, read from the ZIP once (leads.geo.zip_time_zones): quiet hours use it.
    time_zones = models.JSONField(default=list)
    state = models.CharField(max_length=10, choices=State.choices, default=State.ACTIVE)
    stop_reason = models.CharField(max_length=12, choices=StopReason.choices, blank=True)
    stopped_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["sequence", "created_at"])]

    def __str__(self) -> str:
        return f"Enrolment of delivery #{self.delivery_id} ({self.state})"


class StepRun(models.Model):
    """One step of one delivery's outreach, and the proof it ran once: unique by (enrolment, key), so a step
    exists once however often the enrolment is written; claimed (`sending`, committed) before its message
    goes, finished after. What it sends is a copy of the step's template taken at enrolment, so editing a
    sequence changes what new leads get, never a message half-way through its routine."""

    class State(models.TextChoices):
        PENDING = "pending", "Waiting"
        SENDING = "sending", "Sending"
        OPEN = "open", "Call task open"
        DONE = "done", "Done"
        SKIPPED = "skipped", "Skipped"
        MISSED = "missed", "Call task missed"
        CANCELLED = "cancelled", "Cancelled"
        FAILED = "failed", "Failed"

    FINISHED = (State.DONE, State.SKIPPED, State.MISSED, State.CANCELLED, State.FAILED)

    enrolment = models.ForeignKey(Enrolment, on_delete=models.CASCADE, related_name="runs")
    # "first_touch:email", "first_touch:text", "step:3": what this run is, stable however often it is written.
    key = models.CharField(max_length=32)
    title = models.CharField(max_length=120)
    action = models.CharField(max_length=8, choices=Action.choices)
    subject = models.CharField(max_length=200, blank=True)
    body = models.TextField(max_length=5000, blank=True)
    skip_if_reached = models.BooleanField(default=False)
    # First touch is transactional (the answer to the consumer's request); sequence e-mail is marketing.
    transactional = models.BooleanField(default=False)
    due_at = models.DateTimeField()
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING)
    claimed_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    # What happened, for the lead page and staff: never the consumer's name, address or number.
    result = models.CharField(max_length=300, blank=True)
    text_message = models.ForeignKey(
        "integrations.TextMessage", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    completed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["due_at", "id"]
        constraints = [models.UniqueConstraint(fields=["enrolment", "key"], name="one_step_run_per_key")]
        indexes = [
            # Beat's look for due work: only waiting rows.
            models.Index(fields=["due_at"], condition=Q(state="pending"), name="step_run_due"),
            # A claim whose worker died: only rows being sent.
            models.Index(fields=["claimed_at"], condition=Q(state="sending"), name="step_run_sending"),
            # My day: call tasks waiting or open, by due time.
            models.Index(
                fields=["due_at"],
                condition=Q(action="call", state__in=["pending", "open"]),
                name="step_run_call_tasks",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.title} on enrolment #{self.enrolment_id} ({self.state})"


class LeadConfirmation(models.Model):
    """The consumer's confirmation e-mail after their lead is sold (from the marketplace, naming who will
    contact them, with a signed link back to their result page): one per lead."""

    lead = models.OneToOneField("leads.Lead", on_delete=models.CASCADE, related_name="+")
    sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"Confirmation of lead #{self.lead_id}"
