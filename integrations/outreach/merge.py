"""Merge fields in a lender's message templates: `{{first_name}}` and the like, substituted from a fixed list.

Lender input is never run as a Django template (that would let a template reach any attribute the context
holds, and `{% %}` tags run code); it is text in which each `{{name}}` from MERGE_FIELDS is replaced by its
value, and nothing else happens. A line holding a field that has no value for this lead (no booking link, no
officer assigned) is left out, so a template needs no conditionals: "Book a time: {{booking_url}}" simply
disappears for an officer without a link. HTML escaping is the e-mail template's job (it autoescapes), not
this module's: what it returns is plain text.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

# name -> what the editor says it is, in the order the editor lists them.
MERGE_FIELDS: dict[str, str] = {
    "first_name": "The consumer's first name",
    "estimate": "The most they may qualify for ($350,000)",
    "best_product": "The best loan that fits (FHA, Conventional, ...)",
    "loan_purpose": "Purchase, refinance or home equity",
    "city": "The property's city",
    "officer_name": "The assigned loan officer's name",
    "officer_nmls": "The officer's NMLS id",
    "officer_phone": "The officer's phone number",
    "booking_url": "The officer's booking link",
    "lender_name": "Your company's name",
    "lender_nmls": "Your company's NMLS id",
}

FIELD = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
# Anything left that looks like template syntax is refused at save time: a lender who typed `{{ first name }}`
# or `{% if %}` should hear so, not find it in a consumer's inbox.
STRAY = re.compile(r"\{\{|\}\}|\{%|%\}")


class TemplateInvalid(ValueError):
    """A template names a field we do not have, or holds template syntax we do not run."""


def template_check(text: str) -> None:
    """Raise TemplateInvalid naming the problem; return quietly for a template render() can fill."""
    unknown = sorted({m.group(1) for m in FIELD.finditer(text)} - set(MERGE_FIELDS))
    if unknown:
        names = ", ".join("{{" + n + "}}" for n in unknown)
        raise TemplateInvalid(
            f"Unknown merge field {names}. Use one of: " + ", ".join("{{" + n + "}}" for n in MERGE_FIELDS)
        )
    if STRAY.search(FIELD.sub("", text)):
        raise TemplateInvalid(
            "Only merge fields like {{first_name}} are filled in; remove the other braces or {% %} tags."
        )


def render(text: str, values: Mapping[str, str]) -> str:
    """The template with each known field replaced by its value. A line with a field whose value is empty is
    dropped (and so is a blank line it would leave doubled); unknown fields render as nothing."""
    lines: list[str] = []
    for line in text.replace("\r\n", "\n").split("\n"):
        names = [m.group(1) for m in FIELD.finditer(line)]
        if any(not (values.get(n) or "").strip() for n in names):
            continue
        lines.append(FIELD.sub(lambda m: (values.get(m.group(1)) or "").strip(), line).rstrip())
    kept: list[str] = []
    for line in lines:
        if not line and kept and not kept[-1]:
            continue
        kept.append(line)
    return "\n".join(kept).strip()


def render_line(text: str, values: Mapping[str, str]) -> str:
    """A one-line template (an e-mail subject): fields with no value become nothing, the line stays, and any
    line breaks a value could bring are flattened (a header must be one line)."""
    filled = FIELD.sub(lambda m: (values.get(m.group(1)) or "").strip(), text)
    return " ".join(filled.split())
