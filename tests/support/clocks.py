"""Clocks for services under test: nanoseconds since the epoch, moved by the test."""

from __future__ import annotations

import time

SECOND = 1_000_000_000


class Clock:
    """Real time plus an offset the test can move forward (token expiry, default windows)."""

    def __init__(self) -> None:
        self.offset = 0

    def __call__(self) -> int:
        return time.time_ns() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += int(seconds * SECOND)


class FixedClock:
    """A clock that stands still at `now` until the test moves it."""

    def __init__(self, now: int) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += int(seconds * SECOND)
