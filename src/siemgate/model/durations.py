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
