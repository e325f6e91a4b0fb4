"""Model fields every app shares: money, a Decimal with two places."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Literal, overload

from django.db import models
from django.db.models.expressions import Combinable

# Up to 9,999,999,999.99: larger than any loan, balance or price the marketplace sees.
MONEY_DIGITS = 12
MONEY_PLACES = 2


@overload
def money_field(
    *, null: Literal[False] = False, **options: Any
) -> models.DecimalField[str | float | Decimal | Combinable, Decimal]: ...
@overload
def money_field(
    *, null: Literal[True], **options: Any
) -> models.DecimalField[str | float | Decimal | Combinable | None, Decimal | None]: ...
def money_field(*, null: bool = False, **options: Any) -> models.DecimalField:
    """A money column (a Decimal with two places); `options` are DecimalField's others (blank, default,
    validators, help_text, ...). Typed by `null`, so that mypy knows whether the value may be None."""
    return models.DecimalField(max_digits=MONEY_DIGITS, decimal_places=MONEY_PLACES, null=null, **options)
