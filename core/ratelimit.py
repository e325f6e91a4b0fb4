"""A fixed-window rate limit on the shared cache (Redis in production): the public form's per-IP limit and
the API's per-key one. One atomic increment per request, so concurrent requests cannot slip past it."""

import logging
import math
import time

from django.core.cache import cache

logger = logging.getLogger(__name__)


def hit(*, scope: str, key: str, limit: int, window_seconds: int) -> int | None:
    """Count one request; None when allowed, else the seconds to wait (Retry-After) when over the limit."""
    now = time.time()
    window = int(now // window_seconds)
    cache_key = f"rl:{scope}:{key}:{window}"
    try:
        # Django's public cache API, atomic on Redis (INCR; add is SET NX) and in LocMemCache (a lock). Count
        # first: within a window the key exists, so the usual request costs one call.
        try:
            count = cache.incr(cache_key)
        except ValueError:  # the window's first request (or, if add loses a race, the second)
            count = 1 if cache.add(cache_key, 1, timeout=window_seconds + 5) else cache.incr(cache_key)
    except Exception as exc:  # noqa: BLE001 - a cache outage must not turn away consumers: fail open
        logger.warning("rate limit %s unavailable (%s); allowing the request", scope, type(exc).__name__)
        return None
    if count <= limit:
        return None
    return max(1, math.ceil((window + 1) * window_seconds - now))
