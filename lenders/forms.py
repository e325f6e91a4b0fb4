"""Forms of the lender portal. They parse input; the rules live in services (delivery_set_status)."""

from decimal import Decimal

from django import forms

from marketplace.models import Delivery


class InboxFilterForm(forms.Form):
    status = forms.ChoiceField(
        choices=[("", "All statuses"), *Delivery.Status.choices], required=False, label="Status"
    )
    q = forms.CharField(
        required=False,
        max_length=100,
        label="Search",
        widget=forms.TextInput(attrs={"type": "search", "placeholder": "Name, e-mail or phone"}),
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
