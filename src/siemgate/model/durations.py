"""Durations as people write them: `30d`, `12h`, `45m`, `2w`, `90s`; `never` for none."""

from __future__ import annotations

import re

from siemgate.model.timestamps import NS_PER_SECOND

_DURATION = re.compile(r"([0-9]+)\s*([smhdw])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


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
        raise ValueError(f"{text!r} is not a duration; use {forms}")
    return int(match.group(1)) * _UNITS[match.group(2)] * NS_PER_SECOND


# Token expiries: minutes and months spelled out, since `3m` could mean either (docs/tokens.md).
DEFAULT_EXPIRY = "90d"
_EXPIRY = re.compile(r"([0-9]+)\s*(min|mo|h|d|w)")
_EXPIRY_UNITS = {"min": 60, "h": 3600, "d": 86400, "w": 7 * 86400, "mo": 30 * 86400}
_AMBIGUOUS = re.compile(r"([0-9]+)\s*m")


def parse_expiry(text: str) -> int | None:
    """A token's lifetime in nanoseconds, or None for `never`: `30min`, `12h`, `45d`, `2w`, `3mo`
    (30 days each). Raises ValueError saying what to write; `3m` is refused as ambiguous."""
    value = text.strip().lower()
    if value in ("never", "none"):
        return None
    ambiguous = _AMBIGUOUS.fullmatch(value)
    if ambiguous is not None:
        n = ambiguous.group(1)
        raise ValueError(f"{text!r} is ambiguous: write {n}min for minutes or {n}mo for months (30 days each)")
    match = _EXPIRY.fullmatch(value)
    if match is None or int(match.group(1)) == 0:
        raise ValueError(f"{text!r} is not an expiry; use never, 30d, 90d, 180d, or e.g. 12h, 45d, 2w, 3mo, 30min")
    return int(match.group(1)) * _EXPIRY_UNITS[match.group(2)] * NS_PER_SECOND
