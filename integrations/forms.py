"""Portal forms for API keys and webhook endpoints."""

from django import forms
from django.core.exceptions import ValidationError

from .models import ApiKey, WebhookEvent
from .webhooks import UnsafeURL, url_check


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
