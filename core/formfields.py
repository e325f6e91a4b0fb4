"""Form fields with sane bounds, for every form of the portal, the public site and admin.

A date, a time stamp or a count that a person can type must come back as a message beside the field when it
is absurd, never as a 500 later: year 9999 in the lender's zone is year 10000 in UTC, which PostgreSQL
stores but Python cannot read back (the lead page would fail for everyone), a day after 9999-12-31 does not
exist, and 10^14 leads a day does not fit an integer column.
"""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.utils import timezone

# Nothing in the marketplace (a delivery, a ledger entry, a follow-up) predates it.
EARLIEST_DATE = date(2000, 1, 1)
# How far ahead a person may plan: a follow-up, a report's end. Further is a typing slip.
YEARS_AHEAD = 5
# PostgreSQL's integer, the column behind PositiveIntegerField.
INT_MAX = 2_147_483_647


def choice_field(form: forms.BaseForm, name: str) -> forms.ChoiceField:
    """The form's choice field `name`, to fill its choices in at run time. The stubs type `form.fields` by
    name only (plain Field, which has no choices); this checks the field is one rather than casting."""
    field = form.fields[name]
    if not isinstance(field, forms.ChoiceField):
        raise TypeError(f"{type(form).__name__}.{name} is not a choice field")
    return field


def latest_date(years_ahead: int = YEARS_AHEAD) -> date:
    """The last day a form accepts: the end of the year `years_ahead` from today (in the current zone)."""
    return date(timezone.localdate().year + years_ahead, 12, 31)


def _day(value: date) -> str:
    return f"{value:%b} {value.day}, {value.year}"


class BoundedDateField(forms.DateField):
    """A date from EARLIEST_DATE to the end of the year `years_ahead` from now."""

    def __init__(self, *, earliest: date = EARLIEST_DATE, years_ahead: int = YEARS_AHEAD, **kwargs: Any):
        self.earliest, self.years_ahead = earliest, years_ahead
        super().__init__(**kwargs)

    def widget_attrs(self, widget: forms.Widget) -> dict[str, Any]:
        # The browser's date picker opens inside the range (the upper bound moves with the year, so it is
        # checked on the server only).
        return {**super().widget_attrs(widget), "min": self.earliest.isoformat()}

    def validate(self, value: date | None) -> None:
        super().validate(value)
        if value is None:
            return
        latest = latest_date(self.years_ahead)
        if value < self.earliest:
            raise ValidationError(f"Choose a date from {_day(self.earliest)} on.", code="min_value")
        if value > latest:
            raise ValidationError(f"Choose a date no later than {_day(latest)}.", code="max_value")


class BoundedDateTimeField(forms.DateTimeField):
    """A time stamp from EARLIEST_DATE to the end of the year `years_ahead` from now, in the current zone.

    The bounds are compared as dates in the current zone, so no arithmetic on the value can overflow."""

    def __init__(self, *, earliest: date = EARLIEST_DATE, years_ahead: int = YEARS_AHEAD, **kwargs: Any):
        self.earliest, self.years_ahead = earliest, years_ahead
        super().__init__(**kwargs)

    def widget_attrs(self, widget: forms.Widget) -> dict[str, Any]:
        attrs = super().widget_attrs(widget)
        if getattr(widget, "input_type", "") == "datetime-local":
            attrs["min"] = datetime.combine(self.earliest, time.min).strftime("%Y-%m-%dT%H:%M")
        return attrs

    def validate(self, value: datetime | None) -> None:
        super().validate(value)
        if value is None:
            return
        day = value.date()  # the wall-clock date in the zone it was typed in
        latest = latest_date(self.years_ahead)
        if day < self.earliest:
            raise ValidationError(f"Choose a time from {_day(self.earliest)} on.", code="min_value")
        if day > latest:
            raise ValidationError(f"Choose a time no later than {_day(latest)}.", code="max_value")


class BoundedIntegerField(forms.IntegerField):
    """A whole number that fits its column: from 0 to INT_MAX unless a tighter business limit is given."""

    def __init__(self, *, min_value: int = 0, max_value: int = INT_MAX, **kwargs: Any):
        if not -INT_MAX - 1 <= min_value <= max_value <= INT_MAX:
            raise ValueError(f"bounds {min_value}..{max_value} do not fit an integer column")
        super().__init__(min_value=min_value, max_value=max_value, **kwargs)


def form_problems(form: forms.BaseForm) -> str:
    """A form's errors as one line ("Delivered to: Choose a date no later than Dec 31, 2031."), for answers
    that are not a page: a CSV export or an htmx partial refused for its query string."""
    return " ".join(
        f"{form.fields[name].label if name in form.fields else 'Form'}: {' '.join(str(e) for e in errors)}"
        for name, errors in form.errors.items()
    )
