"""Forms of the lender portal. They parse input; the rules live in services (delivery_set_status,
activity_log, lenders.team)."""

from collections.abc import Iterable
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from django import forms
from django.contrib.auth.forms import SetPasswordForm
from django.core.exceptions import ValidationError
from django.utils import timezone

from core.formfields import BoundedDateField, BoundedDateTimeField, BoundedIntegerField, choice_field
from integrations.models import ApiKey, WebhookEvent
from integrations.webhooks import UnsafeURL, url_check
from leads.choices import LoanPurpose
from leads.forms import us_phone_digits
from leads.geo import US_STATES
from lenders.models import Membership
from marketplace.models import Activity, Delivery, ReturnRequest
from marketplace.selectors import UNASSIGNED, InboxFilters

from .subscription_form import money_input


class InboxFilterForm(forms.Form):
    """The inbox's filters. Subscription and officer are plain integers here (their choices are filled in
    by the page) so validating a live refresh costs no query; the scoped queryset makes a foreign id
    simply match nothing."""

    status = forms.ChoiceField(
        choices=[("", "All statuses"), *Delivery.Status.choices], required=False, label="Status"
    )
    purpose = forms.ChoiceField(
        choices=[("", "All purposes"), *LoanPurpose.choices], required=False, label="Purpose"
    )
    state = forms.ChoiceField(choices=[("", "All states"), *((s, s) for s in US_STATES)], required=False)
    subscription = BoundedIntegerField(required=False, min_value=1, widget=forms.Select, label="Subscription")
    officer = forms.CharField(required=False, max_length=20, widget=forms.Select, label="Officer")
    delivered_from = BoundedDateField(
        required=False, label="Delivered from", widget=forms.DateInput(attrs={"type": "date"})
    )
    delivered_to = BoundedDateField(
        required=False, label="Delivered to", widget=forms.DateInput(attrs={"type": "date"})
    )
    q = forms.CharField(
        required=False,
        max_length=100,
        label="Search",
        widget=forms.TextInput(attrs={"type": "search", "placeholder": "Name, e-mail or phone"}),
    )

    def __init__(self, *args, subscriptions=(), officers=(), show_officer: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["subscription"].widget.choices = [("", "All subscriptions"), *subscriptions]
        if show_officer:
            self.fields["officer"].widget.choices = [("", "Everyone"), (UNASSIGNED, "Unassigned"), *officers]
        else:
            del self.fields["officer"]

    def clean_officer(self) -> str:
        value = self.cleaned_data.get("officer", "")
        if value and value != UNASSIGNED and not value.isdigit():
            raise forms.ValidationError("Choose an officer from the list.")
        return value

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data  # what Form.clean() returns; its stubs say Optional, for overrides
        start, end = data.get("delivered_from"), data.get("delivered_to")
        if start and end and start > end:
            self.add_error("delivered_to", "The end date is before the start date.")
        return data

    def filters(self) -> InboxFilters:
        """The filters as the selector takes them; dates are whole days in the lender's time zone (the
        portal's views run inside timezone.override of the lender's zone)."""
        if not self.is_valid():
            return InboxFilters()
        d = self.cleaned_data
        tz = timezone.get_current_timezone()

        def day_start(day) -> datetime:
            return timezone.make_aware(datetime.combine(day, time.min), tz)

        officer = d.get("officer") or None
        return InboxFilters(
            status=d["status"],
            q=d["q"].strip(),
            purpose=d["purpose"],
            state=d["state"],
            subscription_id=d["subscription"],
            assigned_to=officer if officer in (None, UNASSIGNED) else int(officer),
            delivered_from=day_start(d["delivered_from"]) if d["delivered_from"] else None,
            delivered_before=day_start(d["delivered_to"] + timedelta(days=1)) if d["delivered_to"] else None,
        )


class DeliveryStatusForm(forms.Form):
    """One pipeline move. The status field accepts any pipeline status on purpose: whether a move is legal
    is decided by delivery_set_status under a row lock, not by a choice list rendered seconds earlier."""

    status = forms.ChoiceField(choices=Delivery.Status.choices, widget=forms.HiddenInput)
    funded_amount = forms.DecimalField(
        label="Funded loan amount ($)",
        required=False,
        max_digits=12,
        decimal_places=2,
        min_value=Decimal("0.01"),
        # What the page says (portal.js) when "Mark funded" is pressed with no amount; the server says the
        # same in its own words when the script does not run.
        widget=forms.NumberInput(
            attrs={
                "inputmode": "decimal",
                "step": "0.01",
                "min": "0.01",
                "data-missing": "Enter the funded loan amount, in dollars, to mark this lead funded.",
            }
        ),
    )
    lost_reason = forms.CharField(
        label="Why was it lost?",
        required=False,
        max_length=200,
        widget=forms.TextInput(
            attrs={
                "placeholder": "e.g. chose another lender",
                "data-missing": "Say why the lead was lost to mark it lost.",
            }
        ),
    )


class ActivityForm(forms.Form):
    kind = forms.ChoiceField(choices=Activity.Kind.choices, label="What did you do?", initial="call")
    outcome = forms.ChoiceField(
        choices=[("", "— (for notes)"), *Activity.OFFICER_OUTCOMES],
        required=False,
        label="Outcome",
        # Said where the officer chooses it, so the move that follows is no surprise.
        help_text="“Reached” moves a new lead to Contacted.",
    )
    note = forms.CharField(
        required=False, max_length=2000, label="Note", widget=forms.Textarea(attrs={"rows": 2})
    )


class FollowUpForm(forms.Form):
    due_at = BoundedDateTimeField(
        label="Remind me at",
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"],
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        help_text="Your lender's local time.",
    )
    note = forms.CharField(required=False, max_length=200, label="About")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # Shares the lead page with the activity form, whose note is "id_note": its own ids, so each label
        # points at its own field.
        kwargs.setdefault("auto_id", "id_followup_%s")
        super().__init__(*args, **kwargs)


class ReassignForm(forms.Form):
    assignee = forms.ChoiceField(label="Assigned to", required=False)

    def __init__(self, *args: Any, members: Iterable[tuple[str, str]] = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        choice_field(self, "assignee").choices = [("", "Unassigned (owners and managers)"), *members]


class InvitationForm(forms.Form):
    # Invitation.email's column (an address longer than 254 characters is not deliverable anyway).
    email = forms.EmailField(label="E-mail", max_length=254)
    role = forms.ChoiceField(label="Role")

    def __init__(self, *args: Any, roles: Iterable[str] = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        labels = dict(Membership.Role.choices)
        choice_field(self, "role").choices = [(r, labels[r]) for r in roles]
        self.fields["role"].initial = Membership.Role.OFFICER


class MemberRoleForm(forms.Form):
    role = forms.ChoiceField(label="Role")

    def __init__(self, *args: Any, roles: Iterable[str] = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        labels = dict(Membership.Role.choices)
        choice_field(self, "role").choices = [(r, labels[r]) for r in roles]


class AcceptInvitationForm(SetPasswordForm):
    """Name and password for a new member; the password goes through AUTH_PASSWORD_VALIDATORS."""

    first_name = forms.CharField(max_length=150, label="First name")
    last_name = forms.CharField(max_length=150, label="Last name")
    field_order = ["first_name", "last_name", "new_password1", "new_password2"]

    def __init__(self, user, *args, **kwargs):
        super().__init__(user, *args, **kwargs)
        self.fields["new_password1"].widget.attrs["autocomplete"] = "new-password"

    def clean(self):
        # Let the similarity validator compare the password with the name being typed.
        self.user.first_name = self.cleaned_data.get("first_name", "")
        self.user.last_name = self.cleaned_data.get("last_name", "")
        return super().clean()


class ProfileForm(forms.Form):
    """A member's name and the details letters and messages sign with (lenders.team.membership_profile_update
    decides who may change whose)."""

    first_name = forms.CharField(max_length=150, label="First name")
    last_name = forms.CharField(max_length=150, label="Last name")
    nmls_id = forms.CharField(
        max_length=20,
        required=False,
        label="NMLS id",
        help_text="The loan officer's own NMLS number (not the company's), printed on letters.",
        widget=forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "off"}),
    )
    phone = forms.CharField(
        max_length=25,
        required=False,
        label="Phone",
        help_text="The number borrowers call you on, printed on letters.",
        widget=forms.TextInput(attrs={"type": "tel", "autocomplete": "tel"}),
    )
    booking_url = forms.URLField(
        max_length=300,
        required=False,
        assume_scheme="https",
        label="Booking link",
        help_text="Where a borrower books a call with you (a plain URL).",
        widget=forms.URLInput(attrs={"placeholder": "https://calendly.com/your-name"}),
    )

    def clean_nmls_id(self) -> str:
        # People write it "NMLS #1234567" or with spaces; the id itself is the digits.
        value = self.cleaned_data["nmls_id"].strip()
        digits = "".join(ch for ch in value if "0" <= ch <= "9")
        if value and (not digits or len(digits) > 12):
            raise ValidationError("An NMLS id is up to 12 digits, like 1234567.")
        return digits

    def clean_phone(self) -> str:
        raw = self.cleaned_data["phone"].strip()
        return us_phone_digits(raw) if raw else ""


class AssignmentRuleForm(forms.Form):
    membership = forms.ChoiceField(label="Officer")
    states = forms.CharField(
        required=False,
        max_length=200,
        label="States",
        help_text="Two-letter codes separated by commas, e.g. TX, CA. Leave empty for every state.",
    )
    purposes = forms.MultipleChoiceField(
        choices=LoanPurpose.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="Loan purposes",
        help_text="None ticked: every purpose.",
    )
    is_active = forms.BooleanField(required=False, initial=True, label="In the rotation")

    def __init__(self, *args: Any, members: Iterable[tuple[str, str]] = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        choice_field(self, "membership").choices = list(members)

    def state_list(self) -> list[str]:
        raw = self.cleaned_data.get("states", "")
        return [s for s in raw.replace(";", ",").replace(" ", ",").split(",") if s]


# --- integrations: API keys and webhook endpoints -------------------------------------------------------


class ApiKeyForm(forms.Form):
    name = forms.CharField(
        label="What will use it?", max_length=80, widget=forms.TextInput(attrs={"placeholder": "CRM sync"})
    )
    scope = forms.ChoiceField(
        choices=ApiKey.Scope.choices,
        initial=ApiKey.Scope.READ,
        widget=forms.RadioSelect,
        help_text="Read: list and read deliveries and the ledger. Read and write: also update statuses, log "
        "activity and request returns.",
    )


class WebhookEndpointForm(forms.Form):
    url = forms.URLField(
        label="Endpoint URL",
        max_length=500,
        assume_scheme="https",
        widget=forms.URLInput(attrs={"placeholder": "https://crm.example.com/hooks/leadmarket"}),
    )
    description = forms.CharField(max_length=120, required=False)
    events = forms.MultipleChoiceField(
        choices=WebhookEvent.choices,
        widget=forms.CheckboxSelectMultiple,
        initial=[WebhookEvent.DELIVERY_CREATED],
    )

    def clean_url(self) -> str:
        url = self.cleaned_data["url"]
        try:
            url_check(url)
        except UnsafeURL as exc:
            raise ValidationError(exc.messages[0]) from None
        return url


# --- billing, returns, analytics ----------------------------------------------------------------------


class LowBalanceThresholdForm(forms.Form):
    low_balance_threshold = money_input("Warn me when the balance falls below ($)", required=True)


class ReturnRequestForm(forms.Form):
    reason = forms.ChoiceField(
        label="Why is this lead bad?", choices=ReturnRequest.Reason.choices, widget=forms.RadioSelect
    )
    note = forms.CharField(
        label="Note",
        required=False,
        max_length=1000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Required when the reason is “Other”. Say what you found (no consumer data needed).",
    )

    def clean(self) -> dict[str, Any]:
        super().clean()
        cd = self.cleaned_data  # what Form.clean() returns; its stubs say Optional, for overrides
        if cd.get("reason") == ReturnRequest.Reason.OTHER and not (cd.get("note") or "").strip():
            self.add_error("note", "Say what was wrong with the lead.")
        return cd


class AnalyticsFilterForm(forms.Form):
    start = BoundedDateField(label="From", widget=forms.DateInput(attrs={"type": "date"}))
    end = BoundedDateField(label="To", widget=forms.DateInput(attrs={"type": "date"}))
    revenue = forms.DecimalField(
        label="Your revenue per funded loan ($)",
        max_digits=12,
        decimal_places=2,
        min_value=Decimal("1"),
        widget=forms.NumberInput(attrs={"inputmode": "decimal", "step": "1", "min": "1"}),
    )

    DEFAULT_REVENUE = Decimal("3000.00")
    MAX_DAYS = 3660

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        today = timezone.localdate()
        return {"start": today - timedelta(days=29), "end": today, "revenue": cls.DEFAULT_REVENUE}

    def clean(self) -> dict[str, Any]:
        super().clean()
        cd = self.cleaned_data  # what Form.clean() returns; its stubs say Optional, for overrides
        start, end = cd.get("start"), cd.get("end")
        if isinstance(start, date) and isinstance(end, date):
            if start > end:
                self.add_error("end", "The end date is before the start date.")
            elif (end - start).days > self.MAX_DAYS:
                self.add_error("start", "Choose a range of at most ten years.")
        return cd

    def refused(self) -> bool:
        """True when a value was given and is not valid (backwards, too long, a date in year 9999); a value
        left out of the query string just takes its default."""
        return self.is_bound and any(name not in self.fields or name in self.data for name in self.errors)

    def values(self) -> dict[str, Any]:
        """The cleaned range, or the defaults for whatever is missing or invalid."""
        values = self.defaults()
        if self.is_bound and self.is_valid():
            values.update(self.cleaned_data)
        return values


# --- Settings: the first touch, sequences, call tasks (integrations.outreach) ----------------------------


class FirstTouchForm(forms.Form):
    send_email = forms.BooleanField(label="Send the first-touch e-mail", required=False)
    email_subject = forms.CharField(label="E-mail subject", max_length=200)
    email_body = forms.CharField(
        label="E-mail body", max_length=5000, widget=forms.Textarea(attrs={"rows": 12})
    )
    send_text = forms.BooleanField(
        label="Send the first-touch text",
        required=False,
        help_text="Only to consumers whose consent covers texts, and only from 8 am to 9 pm their time.",
    )
    text_body = forms.CharField(
        label="Text message",
        max_length=480,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Up to 480 characters. “Reply STOP to opt out.” is added if you leave it out.",
    )


class SequenceForm(forms.Form):
    name = forms.CharField(max_length=80)
    is_active = forms.BooleanField(
        label="Active", required=False, help_text="A paused sequence enrols no new leads."
    )
    is_default = forms.BooleanField(
        label="Default sequence",
        required=False,
        help_text="For subscriptions without a sequence of their own.",
    )
    subscriptions = forms.MultipleChoiceField(
        required=False, widget=forms.CheckboxSelectMultiple, label="Subscriptions that use it"
    )

    def __init__(self, *args, subscriptions=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["subscriptions"].choices = list(subscriptions)


class SequenceStepForm(forms.Form):
    action = forms.ChoiceField(choices=[("call", "Call task"), ("email", "E-mail"), ("text", "Text")])
    timing = forms.ChoiceField(
        choices=[("after", "After a delay"), ("next_morning", "Next morning, 9 am their time")], label="When"
    )
    delay_minutes = BoundedIntegerField(
        label="Minutes after the sale", min_value=0, max_value=60 * 24 * 30, required=False, initial=0
    )
    skip_if_reached = forms.BooleanField(label="Only if not reached yet", required=False)
    subject = forms.CharField(max_length=200, required=False, label="Subject (e-mail)")
    body = forms.CharField(
        max_length=5000,
        required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
        label="Message, or what to say on the call",
    )


SequenceStepFormSet = forms.formset_factory(
    SequenceStepForm, extra=1, can_delete=True, max_num=20, absolute_max=20, validate_max=True
)


class CallTaskLogForm(forms.Form):
    outcome = forms.ChoiceField(
        choices=[
            c
            for c in Activity.OFFICER_OUTCOMES
            if c[0] in ("reached", "voicemail", "no_answer", "wrong_number")
        ]
    )
    note = forms.CharField(
        max_length=2000, required=False, widget=forms.TextInput(attrs={"placeholder": "Note"})
    )
