"""Staff-set configuration read on every sale (each app names its own keys and loaders), kept in each
process for a few seconds instead of read from the database per lead. Saving a change clears this
process's copy at once; other processes see it within TTL seconds."""

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


def clear(*args: Any, **kwargs: Any) -> None:
    """Forget every cached value (connected to post_save/post_delete of the staff-edited models)."""
    _cache.clear()


# Settings an app above owns and an app below reads (the market's duplicate window, read by lead intake):
# the owner registers how to load each in its AppConfig.ready(), so the reader imports nothing above it.
_providers: dict[str, Callable[[], Any]] = {}


def provide(key: str, loader: Callable[[], Any]) -> None:
    _providers[key] = loader


def value(key: str) -> Any:
    """The setting `key`, through the cache; a KeyError names a key no installed app provides."""
    try:
        loader = _providers[key]
    except KeyError:
        raise KeyError(f"no installed app provides the staff setting {key!r}") from None
    return cached(key, loader)
