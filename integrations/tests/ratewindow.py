"""Timing for tests of the fixed-window rate limits (core.ratelimit)."""

import time


def start_of_a_window(seconds: int, *, room: float) -> None:
    """Wait, if need be, until the current fixed window has `room` seconds left, so that a burst counted
    in one window is not split over two (which would rightly allow twice the limit)."""
    left = seconds - time.time() % seconds
    if left < room:
        time.sleep(left + 0.05)
