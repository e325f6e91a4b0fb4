"""Quiet hours: no automated text, and no call task falls due, outside 8 am to 9 pm in the consumer's own
time zone (from their ZIP: leads.geo.zip_time_zones). A step due in quiet hours waits for the morning.

Pure functions of an instant and the consumer's zones, so tests pass a frozen `now` rather than patch a clock.
With several zones (a ZIP whose zone is unknown counts as both coasts) a time must be allowed in all of them.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

ALLOWED_FROM = time(8, 0)
ALLOWED_UNTIL = time(21, 0)  # 9 pm: a text at 8:59 pm goes, one at 9:00 pm waits
# "E-mail next morning": at this hour of the consumer's next day.
NEXT_MORNING = time(9, 0)


def _zones(names: tuple[str, ...] | list[str]) -> list[ZoneInfo]:
    return [ZoneInfo(n) for n in names] or [ZoneInfo("America/New_York")]


def is_quiet(at: datetime, zones: tuple[str, ...] | list[str]) -> bool:
    """Is `at` (aware) inside quiet hours anywhere the consumer may be?"""
    return any(not (ALLOWED_FROM <= at.astimezone(z).time() < ALLOWED_UNTIL) for z in _zones(zones))


def next_allowed(at: datetime, zones: tuple[str, ...] | list[str]) -> datetime:
    """The first instant at or after `at` outside quiet hours in every zone: `at` itself when it is allowed,
    else 8 am where the consumer is (the later of the zones' mornings)."""
    candidate = at
    for _ in range(8):  # two zones settle in two steps; the bound only guards against a bad zone table
        late = [
            z for z in _zones(zones) if not (ALLOWED_FROM <= candidate.astimezone(z).time() < ALLOWED_UNTIL)
        ]
        if not late:
            return candidate
        zone = late[0]
        local = candidate.astimezone(zone)
        day = local.date() if local.time() < ALLOWED_FROM else local.date() + timedelta(days=1)
        candidate = datetime.combine(day, ALLOWED_FROM, tzinfo=zone)
    return candidate


def next_morning(after: datetime, zones: tuple[str, ...] | list[str]) -> datetime:
    """NEXT_MORNING on the consumer's day after `after` (in the first zone), then kept out of quiet hours."""
    zone = _zones(zones)[0]
    day = after.astimezone(zone).date() + timedelta(days=1)
    return next_allowed(datetime.combine(day, NEXT_MORNING, tzinfo=zone), zones)
