"""Template helpers for returns: the window a delivered lead can be returned in."""

from typing import Any

from django import template
from django.utils import timezone

from ..models import MarketSettings
from ..returns import return_deadline

register = template.Library()


@register.simple_tag
def return_window(delivery: Any) -> dict[str, Any]:
    """{% return_window delivery as window %}: window.deadline, window.open and window.days (one query)."""
    days = MarketSettings.load().return_window_days
    deadline = return_deadline(delivery=delivery, window_days=days)
    return {"deadline": deadline, "open": timezone.now() <= deadline, "days": days}
