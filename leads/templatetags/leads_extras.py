"""Template filters for showing a lead's qualification."""

from django import template

from leads.choices import BINDING_CONSTRAINT_LABELS

register = template.Library()


@register.filter
def constraint_label(code: str) -> str:
    """'front_end_dti' -> 'Housing ratio (front-end DTI)'; unknown codes are shown as they are."""
    return BINDING_CONSTRAINT_LABELS.get(code, code.replace("_", " ") if code else "—")
