"""Template helpers for money pages: dollar amounts, and the window a delivered lead can be returned in."""

from decimal import Decimal, InvalidOperation
from typing import Any

from django import template
from django.utils import timezone

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


@register.simple_tag
def return_window(delivery: Any) -> dict[str, Any]:
    """{% return_window delivery as window %}: window.deadline, window.open and window.days (one query)."""
    from marketplace.models import MarketSettings

    from ..services import return_deadline

    days = MarketSettings.load().return_window_days
    deadline = return_deadline(delivery=delivery, window_days=days)
    return {"deadline": deadline, "open": timezone.now() <= deadline, "days": days}
