"""Durations as people write them: `30d`, `12h`, `45m`, `2w`, `90s`; `never` for none.

Token expiries and rotation grace periods are bounded (docs/tokens.md): an expiry at most
MAX_EXPIRY (100 years; `never` for longer), a grace period at most MAX_GRACE, so that every time
computed from them fits a stored timestamp (int64 nanoseconds, up to 2262).
"""

from __future__ import annotations

import re

from siemgate.model.text import excerpt
from siemgate.model.timestamps import NS_PER_SECOND

_DURATION = re.compile(r"([0-9]+)\s*([smhdw])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
MAX_EXPIRY, MAX_EXPIRY_NS = "36500d (100 years)", 36500 * 86400 * NS_PER_SECOND
MAX_GRACE, MAX_GRACE_NS = "90d", 90 * 86400 * NS_PER_SECOND
# A retention period, in days: event timestamps end in 2262 (model.timestamps), so longer only overflows.
MAX_RETENTION_DAYS = 36500


def parse_duration(text: str, *, allow_never: bool = True, allow_zero: bool = False) -> int | None:
    """Nanoseconds, or None for `never`. Raises ValueError with the accepted forms."""
    value = text.strip().lower()
    if allow_never and value in ("never", "none"):
        return None
    if allow_zero and value in ("0", "now"):
        return 0
    match = _DURATION.fullmatch(value)
    if match is None or int(match.group(1)) == 0:
        forms = "never, 30d, 90d, 180d, or a duration such as 12h, 45d, 2w" if allow_never else "e.g. 12h, 30m, 2d"
        raise ValueError(f"{excerpt(text)} is not a duration; use {forms}")
    return int(match.group(1)) * _UNITS[match.group(2)] * NS_PER_SECOND


def parse_grace(text: str) -> int:
    """How long a rotated token stays valid, in nanoseconds: `0` (or `now`) for not at all, else a
    duration of at most MAX_GRACE. Raises ValueError saying what to write."""
    grace = parse_duration(text, allow_never=False, allow_zero=True)
    assert grace is not None  # allow_never=False
    if grace > MAX_GRACE_NS:
        raise ValueError(f"{excerpt(text)} is longer than {MAX_GRACE}, the longest grace period; use e.g. 2h or 7d")
    return grace


# Token expiries: minutes and months spelled out, since `3m` could mean either (docs/tokens.md).
DEFAULT_EXPIRY = "90d"
_EXPIRY = re.compile(r"([0-9]+)\s*(min|mo|h|d|w)")
_EXPIRY_UNITS = {"min": 60, "h": 3600, "d": 86400, "w": 7 * 86400, "mo": 30 * 86400}
_AMBIGUOUS = re.compile(r"([0-9]+)\s*m")


def parse_expiry(text: str) -> int | None:
    """A token's lifetime in nanoseconds, or None for `never`: `30min`, `12h`, `45d`, `2w`, `3mo`
    (30 days each), at most MAX_EXPIRY. Raises ValueError saying what to write; `3m` is refused
    as ambiguous."""
    value = text.strip().lower()
    if value in ("never", "none"):
        return None
    ambiguous = _AMBIGUOUS.fullmatch(value)
    if ambiguous is not None:
        n = ambiguous.group(1)
        raise ValueError(f"{excerpt(text)} is ambiguous: write {n}min for minutes or {n}mo for months (30 days each)")
    match = _EXPIRY.fullmatch(value)
    if match is None or int(match.group(1)) == 0:
        raise ValueError(
            f"{excerpt(text)} is not an expiry; use never, 30d, 90d, 180d, or e.g. 12h, 45d, 2w, 3mo, 30min"
        )
    expiry = int(match.group(1)) * _EXPIRY_UNITS[match.group(2)] * NS_PER_SECOND
    if expiry > MAX_EXPIRY_NS:
        raise ValueError(f"{excerpt(text)} is longer than {MAX_EXPIRY}, the longest expiry; use never for no expiry")
    return expiry
