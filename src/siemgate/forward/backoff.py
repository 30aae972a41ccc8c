"""Exponential backoff with full jitter, and `Retry-After` parsing.

Kept by hand (a dozen lines) rather than through a retry library: every wait in the forwarder must
be interruptible by a stop request, must honour a server's `Retry-After` as a floor, and is counted
in metrics, which is the whole of what a retry library would add glue for.
"""

from __future__ import annotations

import datetime
import email.utils
import random
import time
from collections.abc import Callable


class Backoff:
    """Delays for consecutive failures: uniform in [0, min(maximum, initial * 2**n)] ("full jitter").

    A `retry_after` hint is a floor: the delay is at least that many seconds (capped at `ceiling`).
    `reset()` after a success starts the sequence again.
    """

    def __init__(
        self,
        initial: float = 1.0,
        maximum: float = 30.0,
        *,
        ceiling: float = 300.0,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.initial = initial
        self.maximum = maximum
        self.ceiling = ceiling
        self.failures = 0
        self._rng = rng

    def next_delay(self, retry_after: float | None = None) -> float:
        cap = min(self.maximum, self.initial * float(2 ** min(self.failures, 30)))
        self.failures += 1
        delay = cap * self._rng()
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.ceiling))
        return delay

    def reset(self) -> None:
        self.failures = 0


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a `Retry-After` header: a number of seconds or an HTTP date (UTC);
    0 for a time in the past or a negative number, and "inf" for one too large (Backoff caps it).

    Returns None when the header is absent or unreadable (the caller then uses its own backoff).
    """
    if not value:
        return None
    text = value.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # no zone, or -0000: an HTTP date is UTC, never the machine's zone
        when = when.replace(tzinfo=datetime.UTC)
    return max(0.0, when.timestamp() - (time.time() if now is None else now))
