"""Portal forms for subscriptions, billing, returns and analytics. They parse input; the rules live in
lenders.services.subscription_validate and billing.services, whose errors are shown beside the fields."""

import re
from decimal import Decimal
from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from core.formfields import BoundedIntegerField, choice_field
from leads.choices import LoanPurpose
from leads.geo import US_STATES
from leads.qualification import CREDIT_THRESHOLDS
from lenders.models import Lender, Subscription
from lenders.services import SUBSCRIPTION_FIELDS, subscription_validate

WEEKDAYS = [(str(i), name) for i, name in enumerate(("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"))]
ZIP_SPLIT = re.compile(r"[\s,;]+")

# subscription_validate names problems by these keys; the form shows each beside its own field.
SERVICE_ERROR_FIELDS = {"purposes": "purposes", "zip_codes": "zip_codes"}

# What each threshold decides, so the minimum is picked knowingly (sources: leads.qualification.guidelines).
THRESHOLD_NOTES = {
    300: "any score",
    500: "FHA's minimum",
    580: "FHA with 3.5% down",
    620: "conventional and VA",
    680: "home equity lines",
    700: "jumbo",
}


def credit_minimum_choices(current: int | None = None) -> list[tuple[int, str]]:
    """The thresholds the credit ranges start at, and a saved minimum off them (one migrated from the old
    bands, e.g. 670) so an edit shows and keeps it."""
    scores = sorted({*CREDIT_THRESHOLDS, *([current] if current is not None else [])})
    choices = []
    for score in scores:
        note = THRESHOLD_NOTES.get(score)
        label = "Any score" if score == 300 else f"{score} or higher"
        choices.append((score, f"{label} ({note})" if note and score != 300 else label))
    return choices


def money_input(label: str, **kw: Any) -> forms.DecimalField:
    """A dollar amount field: two places, never negative, a decimal keypad on phones."""
    return forms.DecimalField(
        label=label,
        max_digits=12,
        decimal_places=2,
        min_value=Decimal("0"),
        required=kw.pop("required", False),
        widget=forms.NumberInput(attrs={"inputmode": "decimal", "step": "0.01", "min": "0"}),
        **kw,
    )


# Business limits on a subscription's caps: far above any lender's appetite, far below the column's limit.
MAX_DAILY_CAP = 100_000
MAX_MONTHLY_CAP = 31 * MAX_DAILY_CAP
MAX_RADIUS_MILES = 500  # subscription_validate's limit, so an absurd radius never reaches the forecast


def _count(label: str, *, max_value: int) -> BoundedIntegerField:
    return BoundedIntegerField(
        label=label,
        min_value=1,
        max_value=max_value,
        required=False,
        widget=forms.NumberInput(attrs={"inputmode": "numeric"}),
    )


def _percent(label: str) -> forms.DecimalField:
    return forms.DecimalField(
        label=label,
        max_digits=5,
        decimal_places=2,
        required=False,
        widget=forms.NumberInput(attrs={"inputmode": "decimal", "step": "0.01", "min": "0", "max": "125"}),
    )


class SubscriptionForm(forms.Form):
    """Every filter and term of a subscription. clean() runs the service's own validation, so the page names
    the same problems the service would refuse (price below the floor, unlicensed state, impossible range)."""

    name = forms.CharField(max_length=120)
    purposes = forms.MultipleChoiceField(
        label="Loan purposes",
        choices=LoanPurpose.choices,
        widget=forms.CheckboxSelectMultiple,
        required=False,
    )
    states = forms.MultipleChoiceField(
        label="States",
        choices=[(s, s) for s in US_STATES],
        widget=forms.CheckboxSelectMultiple,
        required=False,
        help_text="Only states your company is licensed in are offered.",
    )
    zip_codes = forms.CharField(
        label="Only these ZIP codes",
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": "78701, 78702 …", "inputmode": "numeric"}),
        help_text="Optional. Separate with commas, spaces or new lines.",
    )
    radius_center_zip = forms.CharField(
        label="Radius center ZIP",
        max_length=5,
        required=False,
        widget=forms.TextInput(attrs={"inputmode": "numeric", "pattern": "[0-9]{5}", "autocomplete": "off"}),
    )
    radius_miles = BoundedIntegerField(
        label="Radius (miles)",
        min_value=1,
        max_value=MAX_RADIUS_MILES,
        required=False,
        widget=forms.NumberInput(attrs={"inputmode": "numeric"}),
    )
    min_credit_score = forms.TypedChoiceField(
        label="Minimum credit score",
        coerce=int,
        choices=credit_minimum_choices(),
        initial=620,
        help_text="A lead counts at the lowest score of its range: 680 takes 680–699 and every range above.",
    )
    min_loan_amount = money_input("Minimum loan ($)")
    max_loan_amount = money_input("Maximum loan ($)")
    max_ltv = _percent("Maximum LTV (%)")
    max_dti = _percent("Maximum DTI (%)")
    exclusive = forms.TypedChoiceField(
        label="How you buy",
        coerce=lambda v: v == "exclusive",
        choices=[
            ("shared", "Shared (up to a few buyers per lead)"),
            ("exclusive", "Exclusive (the only buyer)"),
        ],
        widget=forms.RadioSelect,
        initial="shared",
    )
    price = money_input(
        "Price per lead ($)", required=True, help_text="Your bid. It cannot be below the floor."
    )
    daily_cap = _count("Daily cap (leads)", max_value=MAX_DAILY_CAP)
    monthly_cap = _count("Monthly cap (leads)", max_value=MAX_MONTHLY_CAP)
    monthly_budget = money_input("Monthly budget ($)")
    schedule_days = forms.MultipleChoiceField(
        label="Delivery days",
        choices=WEEKDAYS,
        widget=forms.CheckboxSelectMultiple,
        required=False,
        initial=[d for d, _ in WEEKDAYS],
    )
    schedule_start = forms.TimeField(
        label="From", required=False, widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M")
    )
    schedule_end = forms.TimeField(
        label="Until",
        required=False,
        widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
        help_text="Your local time. Leave both empty for any hour.",
    )

    def __init__(self, *args: Any, lender: Lender, subscription: Subscription | None = None, **kwargs: Any):
        if subscription is not None and "initial" not in kwargs:
            kwargs["initial"] = initial_from_subscription(subscription)
        super().__init__(*args, **kwargs)
        self.lender = lender
        # Offer the licensed states, plus any the order already names (a lapsed licence shows and is refused).
        shown = set(lender.licensed_states) | set(self.initial.get("states") or [])
        if self.is_bound:
            shown |= {s for s in self["states"].data or [] if s in US_STATES}  # as the field reads the post
        self.fields["states"].widget.choices = [(s, s) for s in sorted(shown)]
        # A saved minimum off the thresholds (one migrated from the old bands, e.g. 670) stays choosable, on
        # the edit page and in the forecast that page posts; the service bounds it to 300-850.
        current = subscription.min_credit_score if subscription is not None else None
        posted = self.data.get("min_credit_score") if self.is_bound else None
        if posted and str(posted).isdigit() and 300 <= int(posted) <= 850:
            current = int(posted)
        choice_field(self, "min_credit_score").choices = credit_minimum_choices(current)
        # The floor is said beside the price (portal/_price_floor.html): read with the field's own help.
        self.fields["price"].widget.attrs["aria-describedby"] = (
            f"{self['price'].auto_id}_helptext price-floor"
        )

    def clean_zip_codes(self) -> list[str]:
        raw = [z for z in ZIP_SPLIT.split(self.cleaned_data["zip_codes"] or "") if z]
        bad = [z for z in raw if not re.fullmatch(r"\d{5}", z)]
        if bad:
            raise ValidationError(f"Not a 5-digit ZIP code: {', '.join(bad[:5])}.")
        return sorted(set(raw))

    def clean_radius_center_zip(self) -> str:
        z = (self.cleaned_data["radius_center_zip"] or "").strip()
        if z and not re.fullmatch(r"\d{5}", z):
            raise ValidationError("Enter a 5-digit ZIP code.")
        return z

    def service_data(self) -> dict[str, Any]:
        """The cleaned form as lenders.services expects it (fields with errors are left out)."""
        cd = self.cleaned_data
        data: dict[str, Any] = {}
        for f in SUBSCRIPTION_FIELDS:
            if f in cd:
                data[f] = cd[f]
        # None ticked (or a refused value) means "no purpose", never "leave the purposes as they were".
        data["purposes"] = list(cd.get("purposes") or [])
        if "schedule_days" in cd:
            data["schedule_days"] = "".join(sorted(cd["schedule_days"]))
        data["radius_center_zip"] = cd.get("radius_center_zip") or ""
        for f in ("price", "min_loan_amount", "max_loan_amount", "monthly_budget"):
            if data.get(f) is not None:
                data[f] = data[f].quantize(Decimal("0.01"))  # "20" is shown, and stored, as $20.00
        data.pop("is_active", None)
        return data

    def clean(self) -> dict[str, Any]:
        super().clean()
        cd = self.cleaned_data  # what Form.clean() returns; its stubs say Optional, for overrides
        self.parsed = dict(cd)  # what parsed, before the service's errors take fields out: for the forecast
        try:
            subscription_validate(
                lender=self.lender,
                data=self.service_data(),
                states=cd.get("states", []),
                zips=cd.get("zip_codes", []),
            )
        except ValidationError as exc:
            self.add_service_errors(exc, skip_fields_with_errors=True)
        return cd

    def add_service_errors(self, exc: ValidationError, *, skip_fields_with_errors: bool = False) -> None:
        if not hasattr(exc, "error_dict"):
            self.add_error(None, exc)
            return
        for key, errors in exc.error_dict.items():
            name: str | None = SERVICE_ERROR_FIELDS.get(key, key)
            if name not in self.fields:
                name = None
            if skip_fields_with_errors and name is not None and name in self.errors:
                continue  # "This field is required" already says it
            self.add_error(name, errors)


def initial_from_subscription(sub: Subscription) -> dict[str, Any]:
    initial: dict[str, Any] = {f: getattr(sub, f) for f in SUBSCRIPTION_FIELDS if f != "is_active"}
    initial.update(
        purposes=sub.purposes,
        states=sub.states,
        zip_codes="\n".join(sorted(z.zip_code for z in sub.zip_rows.all() if not z.from_radius)),
        exclusive="exclusive" if sub.exclusive else "shared",
        schedule_days=list(sub.schedule_days),
    )
    return initial


NEW_SUBSCRIPTION_INITIAL = {
    "purposes": LoanPurpose.values,
    "min_credit_score": 620,
    "exclusive": "shared",
    "schedule_days": [d for d, _ in WEEKDAYS],
}
