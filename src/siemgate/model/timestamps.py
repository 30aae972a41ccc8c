"""RFC 3339 timestamps as integer nanoseconds since the Unix epoch, UTC.

Input: every RFC 3339 variant SIEM clients send (`Z`/`z`, numeric offsets including `-00:00`,
`T`/`t`/space separator, 0 to 9 fractional digits). Output: one canonical form, UTC with `Z` and
the fraction's trailing zeros trimmed (Go's RFC3339Nano, what the Events API emits):
`2021-08-11T14:28:03Z`, `2024-12-02T11:54:19.710457472Z`.
"""

from __future__ import annotations

import re
import time
from functools import lru_cache

from siemgate.model.text import excerpt

NS_PER_SECOND = 1_000_000_000
_RFC3339 = re.compile(
    r"([0-9]{4}-[0-9]{2}-[0-9]{2})[Tt ]([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]+))?"
    r"(?:([Zz])|([+-])([0-9]{2}):?([0-9]{2}))"
)
_DAYS_IN_MONTH = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
_FRACTION_SCALE: tuple[int, ...] = tuple(int("1" + "0" * (9 - n)) for n in range(10))
EXAMPLE = "2024-01-31T09:30:00Z"
# Stored timestamps must fit a signed 64-bit nanosecond count: 1970-01-01 up to 2262-04-11.
MIN_STORED_NS = 0
MAX_STORED_NS = 2**63 - 1
STORED_RANGE = "1970-01-01T00:00:00Z to 2262-04-11T23:47:16.854775807Z"


class TimestampError(ValueError):
    """The text is not an RFC 3339 date-time this system can represent."""


def _days_from_civil(y: int, m: int, d: int) -> int:
    # Howard Hinnant's days_from_civil: proleptic Gregorian date -> days since 1970-01-01.
    y -= m <= 2
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def _civil_from_days(z: int) -> tuple[int, int, int]:
    z += 719468
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    y = yoe + era * 400
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = mp + (3 if mp < 10 else -9)
    return y + (m <= 2), m, d


def _is_leap(y: int) -> bool:
    return y % 4 == 0 and (y % 100 != 0 or y % 400 == 0)


@lru_cache(maxsize=4096)
def _days(date: str) -> int:
    """Days since the epoch of a `YYYY-MM-DD` date; raises TimestampError for an impossible date."""
    y, mo, d = int(date[:4]), int(date[5:7]), int(date[8:10])
    if not 1 <= mo <= 12:
        raise TimestampError(f"month {mo} in {date!r}; months are 01 to 12")
    days_in_month = 29 if mo == 2 and _is_leap(y) else _DAYS_IN_MONTH[mo - 1]
    if not 1 <= d <= days_in_month:
        raise TimestampError(f"day {d} in {date!r}; that month has {days_in_month} days")
    return _days_from_civil(y, mo, d)


@lru_cache(maxsize=4096)
def _date(days: int) -> str:
    y, mo, d = _civil_from_days(days)
    return f"{y:04d}-{mo:02d}-{d:02d}T"


def parse_ns(text: object) -> int:
    """Parse an RFC 3339 date-time into nanoseconds since the epoch (UTC).

    Raises TimestampError with a message that says what is wrong and shows a valid example.
    """
    if not isinstance(text, str):
        raise TimestampError(f"expected an RFC 3339 timestamp string such as {EXAMPLE}, got {excerpt(text)}")
    match = _RFC3339.fullmatch(text)
    if match is None:
        raise TimestampError(f"{excerpt(text)} is not an RFC 3339 timestamp; use a form such as {EXAMPLE}")
    date, hh, mm, ss, frac, zulu, sign, oh, om = match.groups()
    try:
        days = _days(date)
    except TimestampError as exc:
        raise TimestampError(f"{excerpt(text)} is not a valid date: {exc}") from None
    h, mi, s = int(hh), int(mm), int(ss)
    if h > 23 or mi > 59 or s > 59:
        raise TimestampError(f"{excerpt(text)} has an invalid time of day (hours 00-23, minutes and seconds 00-59)")
    seconds = days * 86400 + h * 3600 + mi * 60 + s
    if zulu is None:
        offset_h, offset_m = int(oh), int(om)
        if offset_h > 23 or offset_m > 59:
            raise TimestampError(f"{excerpt(text)} has an invalid UTC offset")
        offset = offset_h * 3600 + offset_m * 60
        seconds += offset if sign == "-" else -offset
    if not frac:
        return seconds * NS_PER_SECOND
    if len(frac) > 9:
        raise TimestampError(f"{excerpt(text)} has {len(frac)} fractional digits; at most 9 (nanoseconds)")
    return seconds * NS_PER_SECOND + int(frac) * _FRACTION_SCALE[len(frac)]


def format_ns(ns: int) -> str:
    """The canonical RFC 3339 UTC form of ns (trailing fractional zeros trimmed)."""
    seconds, frac = divmod(ns, NS_PER_SECOND)
    days, rem = divmod(seconds, 86400)
    h, rem = divmod(rem, 3600)
    mi, s = divmod(rem, 60)
    base = f"{_date(days)}{h:02d}:{mi:02d}:{s:02d}"
    if frac:
        return f"{base}.{frac:09d}".rstrip("0") + "Z"
    return base + "Z"


def normalize(text: object) -> str:
    """Parse and re-format: any accepted RFC 3339 variant becomes the canonical UTC form."""
    return format_ns(parse_ns(text))


def parse_stored_ns(text: object) -> int:
    """parse_ns, restricted to the range an event timestamp may take (1970 to 2262)."""
    return check_stored_ns(parse_ns(text), text)


def check_stored_ns(ns: int, text: object) -> int:
    """`ns` (parsed from `text`) when an event timestamp may take it; else TimestampError."""
    if not MIN_STORED_NS <= ns <= MAX_STORED_NS:
        raise TimestampError(f"{excerpt(text)} is outside the supported range {STORED_RANGE}")
    return ns


_MINUTE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}")
_SECONDS = {f"{s:02d}": s * NS_PER_SECOND for s in range(60)}
_MINUTES: dict[str, int] = {}  # "YYYY-MM-DDTHH:MM" -> ns, for parse_canonical_ns


def _minute_ns(prefix: str) -> int | None:
    """ns of a valid `YYYY-MM-DDTHH:MM` from 1970 on (remembered), else None."""
    if _MINUTE.fullmatch(prefix) is None:
        return None
    try:
        days = _days(prefix[:10])
    except TimestampError:
        return None
    h, mi = int(prefix[11:13]), int(prefix[14:16])
    if days < 0 or h > 23 or mi > 59:
        return None
    if len(_MINUTES) >= 4096:
        _MINUTES.clear()
    ns = _MINUTES[prefix] = (days * 86400 + h * 3600 + mi * 60) * NS_PER_SECOND
    return ns


def parse_canonical_ns(text: str) -> int | None:
    """parse_stored_ns for a timestamp already in the canonical form (what format_ns returns),
    in a fraction of the time; None for anything else, which then needs parse_stored_ns."""
    if len(text) < 20 or text[-1] != "Z" or text[16] != ":":
        return None
    prefix = text[:16]
    minute = _MINUTES.get(prefix)
    if minute is None and (minute := _minute_ns(prefix)) is None:
        return None
    second = _SECONDS.get(text[17:19])
    if second is None:
        return None
    ns: int = minute + second
    if len(text) > 20:
        frac = text[20:-1]
        if text[19] != "." or len(frac) > 9 or not frac.isascii() or not frac.isdigit() or frac[-1] == "0":
            return None
        ns += int(frac) * _FRACTION_SCALE[len(frac)]
    return ns if ns <= MAX_STORED_NS else None


def now_ns() -> int:
    """The current wall-clock time in nanoseconds since the epoch."""
    return time.time_ns()
