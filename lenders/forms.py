"""Forms of the lender portal. They parse input; the rules live in services (delivery_set_status,
activity_log, lenders.team)."""

from datetime import datetime, time, timedelta
from decimal import Decimal

from django import forms
from django.contrib.auth.forms import SetPasswordForm
from django.utils import timezone

from leads.choices import LoanPurpose
from leads.geo import US_STATES
from marketplace.formfields import BoundedDateField, BoundedDateTimeField, BoundedIntegerField
from marketplace.models import Activity, Delivery
from marketplace.selectors import UNASSIGNED, InboxFilters

from .models import Membership


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

    def clean(self):
        data = super().clean()
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
        widget=forms.NumberInput(attrs={"inputmode": "decimal", "step": "0.01", "min": "0.01"}),
    )
    lost_reason = forms.CharField(
        label="Why was it lost?",
        required=False,
        max_length=200,
        widget=forms.TextInput(attrs={"placeholder": "e.g. chose another lender"}),
    )


class ActivityForm(forms.Form):
    kind = forms.ChoiceField(choices=Activity.Kind.choices, label="What did you do?", initial="call")
    outcome = forms.ChoiceField(
        choices=[("", "— (for notes)"), *Activity.Outcome.choices], required=False, label="Outcome"
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


class ReassignForm(forms.Form):
    assignee = forms.ChoiceField(label="Assigned to", required=False)

    def __init__(self, *args, members=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["assignee"].choices = [("", "Unassigned (owners and managers)"), *members]


class InvitationForm(forms.Form):
    # Invitation.email's column (an address longer than 254 characters is not deliverable anyway).
    email = forms.EmailField(label="E-mail", max_length=254)
    role = forms.ChoiceField(label="Role")

    def __init__(self, *args, roles=(), **kwargs):
        super().__init__(*args, **kwargs)
        labels = dict(Membership.Role.choices)
        self.fields["role"].choices = [(r, labels[r]) for r in roles]
        self.fields["role"].initial = Membership.Role.OFFICER


class MemberRoleForm(forms.Form):
    role = forms.ChoiceField(label="Role")

    def __init__(self, *args, roles=(), **kwargs):
        super().__init__(*args, **kwargs)
        labels = dict(Membership.Role.choices)
        self.fields["role"].choices = [(r, labels[r]) for r in roles]


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

    def __init__(self, *args, members=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["membership"].choices = list(members)

    def state_list(self) -> list[str]:
        raw = self.cleaned_data.get("states", "")
        return [s for s in raw.replace(";", ",").replace(" ", ",").split(",") if s]
