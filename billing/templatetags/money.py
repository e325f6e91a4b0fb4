"""Template helpers for money pages: dollar amounts."""

from decimal import Decimal, InvalidOperation
from typing import Any

from django import template

register = template.Library()


@register.filter
def money(value: Any, signed: bool = False) -> str:
    """$1,234.50 and −$40.00 (a real minus sign); with `signed`, positive amounts get a plus: +$40.00."""
    if value is None or value == "":
        return "—"
    try:
        d = Decimal(value).quantize(Decimal("0.01"))
    except (InvalidOperation, TypeError, ValueError):
        return str(value)
    text = f"${abs(d):,.2f}"
    if d < 0:
        return "−" + text
    return ("+" + text) if signed and d > 0 else text
