"""Finding a lead or a consumer by what staff type, each kind of term on an index of its own: a number is a
lead's (or a consumer's) id, eight hex characters a lead's reference, a whole UUID its public id, an address
with @ an e-mail, ten digits a phone, words a name. Exact matches only (names and e-mails ignoring case):
a million rows searched with `LIKE '%term%'` would be read in full, every time.

The functions return a Q over any model that reaches the lead (or consumer) through `path`, e.g.
`lead__` from a delivery, so every admin that lists something about a lead finds it the same way.
"""

from __future__ import annotations

import re
import uuid

from django.db.models import Q

from .models import Consumer

MAX_ID = 2**63 - 1
# The most consumers of one name a lead search reads (the admin counts its rows up to 2,000 too).
NAME_MATCHES = 2000
_HEX8 = re.compile(r"[0-9a-fA-F]{8}")
_PHONE_CHARS = re.compile(r"[\s().+-]")

LEAD_SEARCH_HELP = (
    "Exact matches: a lead number, its reference (8 characters) or public id, the consumer's e-mail or "
    "phone, or their last name (or first and last; the newest 2,000 people of that name)."
)
CONSUMER_SEARCH_HELP = "Exact matches: a consumer number, e-mail, phone, or last name (or first and last)."


def phone_digits(term: str) -> str | None:
    """Ten digits from a phone as people type it ("(512) 555-0142", "+1 512 555 0142"), or None."""
    digits = _PHONE_CHARS.sub("", term)
    if not digits.isdigit():
        return None
    if len(digits) == 11 and digits.startswith("1"):
        digits = digits[1:]
    return digits if len(digits) == 10 else None


def consumers_search_q(term: str, *, path: str = "") -> Q | None:
    """Consumers matching `term` exactly (see above); None when the term cannot name one."""
    term = term.strip()
    if not term:
        return None
    if "@" in term:
        return Q(**{f"{path}email__iexact": term})  # the upper(email) index
    phone = phone_digits(term)
    if phone:
        return Q(**{f"{path}phone": phone})
    if term.isdigit():
        return Q(**{f"{path}pk": int(term)}) if int(term) <= MAX_ID else None
    return Q(**{f"{path}{k}": v for k, v in _name_lookups(term).items()})


def _name_lookups(term: str) -> dict[str, str]:
    words = term.split()
    if len(words) >= 2:
        return {"first_name__iexact": words[0], "last_name__iexact": " ".join(words[1:])}
    return {"last_name__iexact": term}  # the upper(last_name), id index


def _is_name(term: str) -> bool:
    return "@" not in term and not phone_digits(term) and not term.isdigit()


def reference_q(term: str, *, path: str = "") -> Q | None:
    """Leads whose reference (the first 8 hex characters of the public id) is `term`, or whose public id
    it is: a range on the public id's unique index, never its text."""
    term = term.strip()
    if _HEX8.fullmatch(term):
        low = uuid.UUID(term.lower() + "0" * 24)
        high = uuid.UUID(term.lower() + "f" * 24)
        return Q(**{f"{path}public_id__gte": low, f"{path}public_id__lte": high})
    try:
        return Q(**{f"{path}public_id": uuid.UUID(term)}) if len(term) >= 32 else None
    except ValueError:
        return None


def leads_search_q(term: str, *, path: str = "") -> Q | None:
    """Leads matching `term`: its id, reference or public id, or its consumer's e-mail, phone or name.
    Each kind of term is looked up on one table only, so the database seeks an index instead of joining
    everything to test an OR across tables."""
    term = term.strip()
    if not term:
        return None
    if phone_digits(term):
        return consumers_search_q(term, path=f"{path}consumer__")
    if term.isdigit():
        if int(term) > MAX_ID:
            return None
        by_id = Q(**{f"{path}pk": int(term)})
        reference = reference_q(term, path=path)  # eight digits are hex too
        return by_id | reference if reference is not None else by_id
    reference = reference_q(term, path=path)
    if reference is not None:
        return reference
    if _is_name(term):
        # A common last name is thousands of consumers: the leads of the newest NAME_MATCHES of them (one
        # indexed range; every lead has a consumer row of its own, made with it), not a join of them all.
        newest = Consumer.objects.filter(**_name_lookups(term)).order_by("-id").values("id")[:NAME_MATCHES]
        return Q(**{f"{path}consumer_id__in": newest})
    return consumers_search_q(term, path=f"{path}consumer__")
