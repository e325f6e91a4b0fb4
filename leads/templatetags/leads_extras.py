"""Template filters for showing a lead's qualification."""

from decimal import ROUND_DOWN, ROUND_UP, Decimal, InvalidOperation

from django import template

from leads.choices import BINDING_CONSTRAINT_LABELS

register = template.Library()


@register.filter
def constraint_label(code: str) -> str:
    """'front_end_dti' -> 'Housing ratio (front-end DTI)'; unknown codes are shown as they are."""
    return BINDING_CONSTRAINT_LABELS.get(code, code.replace("_", " ") if code else "—")


@register.filter
def dollars(value, rounding: str = "down") -> str:
    """'158408.58' or Decimal -> '$158,408': whole dollars, rounded down (a loan is never shown as more than
    the engine found) or, with "up", up (what a consumer must bring). Qualification JSON keeps money as
    strings; anything that is not a number shows as a dash."""
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError, TypeError):
        return "—"
    if not amount.is_finite():
        return "—"
    return f"${amount.to_integral_value(rounding=ROUND_UP if rounding == 'up' else ROUND_DOWN):,}"
