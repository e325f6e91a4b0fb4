"""Staff-set configuration read on every sale (market settings, price floors, guidelines, state housing
costs), kept in each process for a few seconds instead of read from the database per lead. Saving a change
clears this process's copy at once; other processes see it within TTL seconds."""

import time
from collections.abc import Callable
from typing import Any

TTL = 10.0
_cache: dict[str, tuple[float, Any]] = {}


def cached(key: str, loader: Callable[[], Any]) -> Any:
    now = time.monotonic()
    hit = _cache.get(key)
    if hit is not None and now - hit[0] < TTL:
        return hit[1]
    value = loader()
    _cache[key] = (now, value)
    return value


def clear(*args, **kwargs) -> None:
    _cache.clear()


def market_settings():
    from .models import MarketSettings

    return cached("market", MarketSettings.load)


def price_floors() -> list:
    from .models import PriceFloor

    return cached("floors", lambda: list(PriceFloor.objects.all()))
