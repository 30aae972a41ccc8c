"""RFC 3339 timestamps <-> integer nanoseconds (model/timestamps.py)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from siemgate.model.timestamps import (
    MAX_STORED_NS,
    MIN_STORED_NS,
    TimestampError,
    format_ns,
    normalize,
    parse_canonical_ns,
    parse_ns,
    parse_stored_ns,
)

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Canonical output: UTC, "Z", 0-9 fraction digits with no trailing zero, ASCII digits only.
CANONICAL = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{0,8}[1-9])?Z", re.ASCII)
SECOND = 1_000_000_000


def _ns(dt: datetime) -> int:
    """Exact ns since the epoch of an aware datetime (integer arithmetic, no float)."""
    return (dt - EPOCH) // timedelta(microseconds=1) * 1000


# --- round trip and canonical form --------------------------------------------------------------


@given(st.integers(MIN_STORED_NS, MAX_STORED_NS))
def test_round_trip_over_the_storable_range(ns: int) -> None:
    text = format_ns(ns)
    assert parse_ns(text) == ns
    assert parse_stored_ns(text) == ns
    assert normalize(text) == text


@given(st.integers(MIN_STORED_NS, MAX_STORED_NS))
def test_format_is_canonical(ns: int) -> None:
    text = format_ns(ns)
    assert CANONICAL.fullmatch(text), text
    fraction = text[20:-1]
    assert len(fraction) <= 9
    assert (fraction == "") == (ns % SECOND == 0)


@given(st.integers(_ns(datetime(1, 1, 1, tzinfo=UTC)), _ns(datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC))))
def test_round_trip_over_four_digit_years(ns: int) -> None:
    ns += 999_999_999 if ns % 7 == 0 else 0  # reach the last ns of a second now and then
    text = format_ns(ns)
    assert CANONICAL.fullmatch(text), text
    assert parse_ns(text) == ns


@given(st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(2262, 4, 10)), st.integers(0, 999))
def test_format_agrees_with_datetime(naive: datetime, extra_ns: int) -> None:
    dt = naive.replace(tzinfo=UTC)
    ns = _ns(dt) + extra_ns
    text = format_ns(ns)
    assert text[:19] == dt.strftime("%Y-%m-%dT%H:%M:%S")
    digits = f"{dt.microsecond:06d}{extra_ns:03d}".rstrip("0")
    assert text[19:] == (f".{digits}Z" if digits else "Z")


def test_canonical_examples() -> None:
    assert format_ns(0) == "1970-01-01T00:00:00Z"
    assert format_ns(1) == "1970-01-01T00:00:00.000000001Z"
    assert format_ns(1_628_692_083 * SECOND) == "2021-08-11T14:28:03Z"
    assert format_ns(1_630_349_862_484_000_000) == "2021-08-30T18:57:42.484Z"
    assert format_ns(1_733_140_459_710_457_472) == "2024-12-02T11:54:19.710457472Z"
    assert format_ns(1_733_140_459_500_000_000) == "2024-12-02T11:54:19.5Z"
    assert format_ns(MAX_STORED_NS) == "2262-04-11T23:47:16.854775807Z"


# --- every accepted input variant ---------------------------------------------------------------

OFFSETS = st.integers(-23 * 60 - 59, 23 * 60 + 59).map(lambda m: timezone(timedelta(minutes=m)))


@given(
    st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(2262, 4, 10), timezones=OFFSETS),
    st.sampled_from(["T", "t", " "]),
    st.integers(0, 3),  # zeros appended to the fraction (still <= 9 digits)
)
def test_parse_agrees_with_datetime_for_any_offset(dt: datetime, sep: str, pad: int) -> None:
    text = dt.isoformat(sep=sep)
    if dt.microsecond:
        head, _, tail = text.partition(".")
        text = f"{head}.{tail[:6]}{'0' * pad}{tail[6:]}"
    assert parse_ns(text) == _ns(dt)
    assert normalize(text) == format_ns(_ns(dt))


@given(st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(2262, 4, 10)))
def test_utc_spellings_are_the_same_instant(naive: datetime) -> None:
    base = naive.isoformat(timespec="microseconds")
    want = _ns(naive.replace(tzinfo=UTC))
    for suffix in ("Z", "z", "+00:00", "-00:00"):
        assert parse_ns(base + suffix) == want, suffix


SPEC_VARIANTS = [
    # what SIEM clients send (docs/events-api.md, "Requests")
    ("2021-06-11T16:32:50-03:00", "2021-06-11T19:32:50Z"),
    ("2021-06-11T16:32:50Z", "2021-06-11T16:32:50Z"),
    ("2021-06-11T16:32:50.000Z", "2021-06-11T16:32:50Z"),
    ("2021-06-11T16:32:50.123456Z", "2021-06-11T16:32:50.123456Z"),
    ("2021-06-11T16:32:50.123456+00:00", "2021-06-11T16:32:50.123456Z"),
    ("2021-06-11T16:32:50-00:00", "2021-06-11T16:32:50Z"),
    ("2021-06-11T16:32:50+05:30", "2021-06-11T11:02:50Z"),
    ("2021-06-11t16:32:50z", "2021-06-11T16:32:50Z"),
    ("2021-06-11 16:32:50Z", "2021-06-11T16:32:50Z"),
    ("2021-06-11T16:32:50.1Z", "2021-06-11T16:32:50.1Z"),
    ("2021-06-11T16:32:50.100000000Z", "2021-06-11T16:32:50.1Z"),
    ("2022-10-24T21:16:52.827288935Z", "2022-10-24T21:16:52.827288935Z"),
    # offsets that cross a day, a month, a year
    ("2021-01-01T00:30:00+01:00", "2020-12-31T23:30:00Z"),
    ("2020-12-31T23:30:00-01:00", "2021-01-01T00:30:00Z"),
    ("2024-03-01T01:00:00+05:30", "2024-02-29T19:30:00Z"),
    ("2023-03-01T01:00:00+05:30", "2023-02-28T19:30:00Z"),
    ("2024-02-28T20:00:00-04:00", "2024-02-29T00:00:00Z"),
    ("2021-06-11T00:00:00+23:59", "2021-06-10T00:01:00Z"),
    ("2021-06-11T23:59:59.999999999-23:59", "2021-06-12T23:58:59.999999999Z"),
    # leap days that exist
    ("2000-02-29T00:00:00Z", "2000-02-29T00:00:00Z"),
    ("2024-02-29T12:00:00Z", "2024-02-29T12:00:00Z"),
]


@pytest.mark.parametrize(("text", "canonical"), SPEC_VARIANTS)
def test_spec_variants(text: str, canonical: str) -> None:
    assert normalize(text) == canonical
    assert parse_ns(text) == parse_ns(canonical)


@pytest.mark.parametrize("digits", range(10))
def test_zero_to_nine_fraction_digits(digits: int) -> None:
    base = parse_ns("2024-01-31T09:30:00Z")
    fraction = "987654321"[:digits]
    text = "2024-01-31T09:30:00" + (f".{fraction}" if digits else "") + "Z"
    expected = base + (int(fraction) * 10 ** (9 - digits) if digits else 0)
    assert parse_ns(text) == expected
    assert normalize(text) == text


# --- refused input, with a helpful message ------------------------------------------------------

INVALID = [
    ("2024-13-01T00:00:00Z", "month"),
    ("2024-00-10T00:00:00Z", "month"),
    ("2023-02-29T00:00:00Z", "28 days"),
    ("1900-02-29T00:00:00Z", "28 days"),
    ("2024-04-31T00:00:00Z", "30 days"),
    ("2024-01-00T00:00:00Z", "day"),
    ("2024-01-32T00:00:00Z", "day"),
    ("2024-01-31T24:00:00Z", "time of day"),
    ("2024-01-31T23:60:00Z", "time of day"),
    ("2024-01-31T09:30:00.1234567891Z", "at most 9"),
    ("2024-01-31T09:30:00.0000000000Z", "at most 9"),
    ("2024-01-31T09:30:00+24:00", "offset"),
    ("2024-01-31T09:30:00+01:60", "offset"),
    ("2024-01-31T09:30:00", "RFC 3339"),  # no offset
    ("2024-01-31", "RFC 3339"),
    ("2024-01-31T09:30Z", "RFC 3339"),
    ("2024-01-31T09:30:00.Z", "RFC 3339"),
    ("24-01-31T09:30:00Z", "RFC 3339"),
    ("2024/01/31T09:30:00Z", "RFC 3339"),
    ("2024-01-31T09:30:00Z ", "RFC 3339"),
    (" 2024-01-31T09:30:00Z", "RFC 3339"),
    ("2024-01-31T09:30:00ZZ", "RFC 3339"),
    ("2024-01-31T09:30:00UTC", "RFC 3339"),
    ("", "RFC 3339"),
    ("yesterday", "RFC 3339"),
]


@pytest.mark.parametrize(("text", "hint"), INVALID)
def test_invalid_timestamps_are_refused_with_a_helpful_message(text: str, hint: str) -> None:
    with pytest.raises(TimestampError) as info:
        parse_ns(text)
    message = str(info.value)
    assert repr(text) in message  # says which value was wrong
    assert hint in message
    with pytest.raises(TimestampError):
        parse_stored_ns(text)
    with pytest.raises(ValueError, match=re.escape(repr(text))):  # TimestampError is a ValueError
        normalize(text)


def test_syntax_errors_show_a_valid_example() -> None:
    with pytest.raises(TimestampError, match=r"2024-01-31T09:30:00Z"):
        parse_ns("31/01/2024 09:30")


@pytest.mark.parametrize("value", [None, 1706693400, 1706693400.5, b"2024-01-31T09:30:00Z", ["x"], datetime.now(UTC)])
def test_non_strings_are_refused(value: object) -> None:
    with pytest.raises(TimestampError, match="RFC 3339"):
        parse_ns(value)


@pytest.mark.parametrize(
    "text",
    [
        "\u0662\u0660\u0662\u0664-01-31T09:30:00Z",  # Arabic-Indic digits in the year
        "\uff12\uff10\uff12\uff14-01-31T09:30:00Z",  # full-width digits
        "2024-01-31T09:30:00.\u0665Z",  # a non-ASCII digit in the fraction
        "2024-01-31T09:30:00+\u0660\u0661:00",  # in the offset
    ],
)
def test_only_ascii_digits_are_accepted(text: str) -> None:
    """RFC 3339's DIGIT is %x30-39: other Unicode digits are not a timestamp."""
    with pytest.raises(TimestampError):
        parse_ns(text)


# --- the stored range ---------------------------------------------------------------------------


def test_parse_stored_ns_range() -> None:
    assert parse_stored_ns("1970-01-01T00:00:00Z") == MIN_STORED_NS == 0
    assert parse_stored_ns("1970-01-01T01:00:00+01:00") == 0
    assert parse_stored_ns("2262-04-11T23:47:16.854775807Z") == MAX_STORED_NS == 2**63 - 1
    for outside in (
        "1969-12-31T23:59:59.999999999Z",
        "1970-01-01T00:59:59+01:00",
        "0001-01-01T00:00:00Z",
        "2262-04-11T23:47:16.854775808Z",
        "2262-04-11T23:47:16.854775807-00:01",
        "9999-12-31T23:59:59Z",
    ):
        with pytest.raises(TimestampError, match="range") as info:
            parse_stored_ns(outside)
        assert repr(outside) in str(info.value)
    # parse_ns itself is not limited to the stored range.
    assert parse_ns("1969-12-31T23:59:59Z") == -SECOND
    assert parse_ns("2262-04-11T23:47:16.854775808Z") == 2**63


@settings(max_examples=200)
@given(
    st.one_of(
        st.integers(-(10**6), 10**6),
        st.integers(MAX_STORED_NS - 10**6, MAX_STORED_NS + 10**6),
        st.integers(-(2**64), 2**65),
    )
)
def test_parse_stored_ns_accepts_exactly_the_int64_range(ns: int) -> None:
    text = format_ns(ns)
    assert parse_ns(text) == ns
    if MIN_STORED_NS <= ns <= MAX_STORED_NS:
        assert parse_stored_ns(text) == ns
    else:
        with pytest.raises(TimestampError, match="range"):
            parse_stored_ns(text)


# --- the fast path for canonical timestamps -----------------------------------------------------


@given(st.integers(MIN_STORED_NS, MAX_STORED_NS))
def test_canonical_fast_path_reads_every_canonical_timestamp(ns: int) -> None:
    assert parse_canonical_ns(format_ns(ns)) == ns


_TIMESTAMP_CHARS = st.sampled_from([*"0123456789-:.TtZz +\u0662\u00b2", "999", ""])


@st.composite
def _near_canonical(draw: st.DrawFn) -> str:
    """A canonical timestamp with a few characters replaced, inserted or removed."""
    text = list(format_ns(draw(st.sampled_from([0, MAX_STORED_NS, MAX_STORED_NS + 1]) | st.integers(0, 2**64))))
    for _ in range(draw(st.integers(0, 3))):
        at = draw(st.integers(0, len(text)))
        text[at : at + draw(st.integers(0, 1))] = [draw(_TIMESTAMP_CHARS)]
    return "".join(text)


@settings(max_examples=500)
@given(st.one_of(_near_canonical(), st.text(max_size=32)))
def test_canonical_fast_path_accepts_only_what_parse_stored_ns_reads_as_canonical(text: str) -> None:
    """Whatever the fast path reads is a canonical timestamp that parse_stored_ns reads alike;
    anything else (None) goes the slow way, which normalises it or says what is wrong."""
    ns = parse_canonical_ns(text)
    if ns is not None:
        assert format_ns(ns) == text
        assert parse_stored_ns(text) == ns


@pytest.mark.parametrize(
    "text",
    [
        "2024-01-31T09:30:00.50Z",  # trailing zero: not canonical
        "2024-01-31T09:30:00.Z",
        "2024-01-31t09:30:00Z",
        "2024-01-31T09:30:00z",
        "2024-01-31T09:30:00+00:00",
        "2024-02-30T09:30:00Z",
        "2024-01-31T24:00:00Z",
        "2024-01-31T09:60:00Z",
        "2024-01-31T09:30:60Z",
        "1969-12-31T23:59:59.999999999Z",
        "2262-04-11T23:47:16.854775808Z",
        "2262-04-12T00:00:00Z",
        "2024-01-31T09:30:00.1234567891Z",
        "\u0662024-01-31T09:30:00Z",
        "2024-01-31T09:30:0\u00b2Z",
    ],
)
def test_canonical_fast_path_leaves_the_rest_to_parse_stored_ns(text: str) -> None:
    assert parse_canonical_ns(text) is None
