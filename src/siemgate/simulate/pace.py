"""How fast live activity comes: a constant rate, or the history's own rhythm hour by hour.

A live stream that follows the rhythm produces, in each hour of the week, about as many events as
the history produces in that hour of the week: busy working days, quiet nights and weekends, so a
24-hour chart of history followed by live activity has no seam (README.md, `make demo`).
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass

SECOND = 1_000_000_000
HOUR = 3600 * SECOND
WEEK_HOURS = 7 * 24
_FLOOR = 0.05  # events per hour: an hour the history left empty is quiet, not dead


@dataclass(frozen=True, slots=True)
class Rhythm:
    """Events per hour for each hour of the week (UTC, hour 0 = the hour after a Thursday's midnight,
    as the epoch started), measured from a history."""

    per_hour: tuple[float, ...]

    @classmethod
    def measure(cls, timestamps_ns: Iterable[int], start_ns: int, end_ns: int) -> Rhythm:
        """The rhythm of events timestamped in [start_ns, end_ns): each hour of the week's mean count.

        Hours of the week the window does not cover take the mean of the same hour of the day over
        the covered days (a window shorter than a week). Raises ValueError for a window under an hour.
        """
        first, last = -(-start_ns // HOUR), end_ns // HOUR  # whole hours only
        if last <= first:
            raise ValueError("a rhythm needs at least one whole hour of history")
        counts = [0] * WEEK_HOURS
        seen = [0] * WEEK_HOURS
        for hour in range(first, last):
            seen[hour % WEEK_HOURS] += 1
        for ts in timestamps_ns:
            hour = ts // HOUR
            if first <= hour < last:
                counts[hour % WEEK_HOURS] += 1
        by_day_hour = [0.0] * 24
        for h in range(24):
            same = [(counts[w], seen[w]) for w in range(h, WEEK_HOURS, 24) if seen[w]]
            by_day_hour[h] = sum(c for c, _ in same) / sum(s for _, s in same) if same else 0.0
        total = sum(counts) / max(1, sum(seen))
        rates = []
        for w in range(WEEK_HOURS):
            rate = counts[w] / seen[w] if seen[w] else by_day_hour[w % 24] or total
            rates.append(max(_FLOOR, rate))
        return cls(tuple(rates))

    def at(self, t_ns: int) -> float:
        """Events per hour at t_ns."""
        return self.per_hour[(t_ns // HOUR) % WEEK_HOURS]

    def advance(self, t_ns: int, events: float) -> int:
        """The time after t_ns by which `events` events are due at this rhythm."""
        while True:
            hour_end = (t_ns // HOUR + 1) * HOUR
            rate = self.at(t_ns)
            room = rate * (hour_end - t_ns) / HOUR
            if events <= room:
                return t_ns + int(events / rate * HOUR) + 1
            events -= room
            t_ns = hour_end


class Pace:
    """When the next live action happens: at a constant rate, or following a rhythm.

    With a rhythm, actions are spaced so that the events they produce (`produced`, counted by the
    caller) keep to the rhythm's events per hour, whatever each action yields on average."""

    def __init__(self, rng: random.Random, rate: float | None, rhythm: Rhythm | None) -> None:
        if rate is None and rhythm is None:
            raise ValueError("a pace needs a rate or a rhythm")
        self.rng = rng
        self.rate = rate
        self.rhythm = rhythm
        self.actions = 0
        self.produced = 0

    def next(self, t_ns: int) -> int:
        """The time of the next action after t_ns."""
        self.actions += 1
        if self.rhythm is None:
            assert self.rate is not None
            return t_ns + int(self.rng.expovariate(self.rate) * SECOND) + 1
        per_action = (self.produced + 15) / (self.actions + 10)  # a prior of 1.5 events per action
        return self.rhythm.advance(t_ns, self.rng.expovariate(1.0) * per_action)
