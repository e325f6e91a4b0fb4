"""Rate limits per API key, counted in the cache (Redis when configured, so every web process shares them).

The count is one atomic increment per request (core.ratelimit: INCR on a counter per fixed window).
DRF's SimpleRateThrottle reads the key's request history, appends and writes it back, so concurrent
requests overwrite each other's entries and a busy key passed its limit more than twice over (issue 11.4).
"""

from django.conf import settings
from rest_framework.throttling import BaseThrottle

from core import ratelimit

from .models import ApiKey

PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_rate(rate: str) -> tuple[int, int]:
    """ "120/min" -> (120, 60): requests per window of seconds, in DRF's notation (s, m, h, d)."""
    count, period = rate.split("/")
    return int(count), PERIODS[period.strip()[0]]


class ApiKeyRateThrottle(BaseThrottle):
    def __init__(self) -> None:
        self._wait: int | None = None

    def allow_request(self, request, view) -> bool:
        key = request.auth
        if not isinstance(key, ApiKey):
            return True  # unauthenticated requests fail before they count
        # The rate is read per request (partner or lender), so tests and operators can change it.
        limit, window = parse_rate(settings.API_RATE_LIMITS["partner" if key.is_partner else "lender"])
        self._wait = ratelimit.hit(scope="api_key", key=str(key.pk), limit=limit, window_seconds=window)
        return self._wait is None

    def wait(self) -> int | None:
        return self._wait
