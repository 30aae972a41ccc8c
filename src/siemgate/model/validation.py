"""Validate and normalise batches of events before they are stored.

Two levels of strictness (docs/events.md):

- strict, for producers (the ingest API, `siemgate ingest`, the simulator): types, enums, ids and
  timestamps are checked against the Events API reference (docs/events.md) and unknown fields are
  refused, so a typo such as `client.ip` is caught at the door instead of being served to every SIEM.
- lenient, for mirrored upstream data (the forwarder's siemgate sink): only `uuid` and `timestamp`
  are checked; fields and enum values newer than the spec are kept exactly as received.

Both fill a missing `uuid` with a new id and a missing `timestamp` with the time of receipt,
normalise every timestamp to the canonical RFC 3339 UTC form, and refuse what no event can hold:
timestamps outside 1970 to 2262, a latitude outside -90..90 or a longitude outside -180..180.
"""

from __future__ import annotations

import difflib
import functools
from dataclasses import dataclass
from typing import Any, get_type_hints

from pydantic import TypeAdapter, ValidationError

from siemgate.model import events
from siemgate.model.enums import SIGNIN_TYPE_ALIASES
from siemgate.model.features import Feature
from siemgate.model.ids import new_id
from siemgate.model.text import excerpt, excerpt_path
from siemgate.model.timestamps import EXAMPLE, TimestampError, format_ns, parse_canonical_ns, parse_stored_ns

SHAPES: dict[Feature, type] = {
    Feature.SIGNINATTEMPTS: events.SignInAttemptV2,
    Feature.ITEMUSAGES: events.ItemUsageV2,
    Feature.AUDITEVENTS: events.AuditEventV2,
}
V1_SHAPES: dict[Feature, type] = {
    Feature.SIGNINATTEMPTS: events.SignInAttempt,
    Feature.ITEMUSAGES: events.ItemUsage,
    Feature.AUDITEVENTS: events.AuditEvent,
}


@functools.cache
def _adapter(feature: Feature) -> TypeAdapter[list[dict[str, Any]]]:
    """Built on first use: building the validators takes a few hundred milliseconds."""
    return TypeAdapter(list[SHAPES[feature]])  # type: ignore[valid-type]


MAX_ISSUES = 100
COORDINATE_BOUNDS = (("latitude", 90), ("longitude", 180))
MAX_UUID_LENGTH = 128


@dataclass(frozen=True)
class Issue:
    """One problem with one event: its index in the batch, the field path, and what is wrong."""

    index: int
    path: str
    message: str

    def __str__(self) -> str:
        where = f"event {self.index}" + (f", field {self.path}" if self.path else "")
        return f"{where}: {self.message}"


class InvalidEvents(ValueError):
    """A batch had invalid events; `issues` lists them (at most MAX_ISSUES)."""

    def __init__(self, issues: list[Issue], total: int | None = None) -> None:
        self.issues = issues[:MAX_ISSUES]
        self.total = total if total is not None else len(issues)
        first = "; ".join(str(i) for i in self.issues[:3])
        more = f" (and {self.total - 3} more)" if self.total > 3 else ""
        super().__init__(f"{self.total} problem(s) in the batch, nothing was stored: {first}{more}")


def validate_events(feature: Feature, items: list[Any], *, strict: bool, now: int) -> list[tuple[int, dict[str, Any]]]:
    """Return the batch's events validated and normalised, in order, each with its timestamp in ns.

    `now` (ns) is the timestamp given to events without one. Raises InvalidEvents listing every
    problem (index and field path) when any event is invalid; the batch is then refused whole.
    """
    issues: list[Issue] = []
    filled: list[Any] = []
    default_ts = format_ns(now)
    aliases = strict and feature is Feature.SIGNINATTEMPTS
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            issues.append(Issue(index, "", f"expected a JSON object, got {_json_type(item)}"))
            filled.append(item)
            continue
        kind = item.get("type") if aliases else None
        if (
            strict  # pydantic returns new dicts: the caller's are not modified
            and type(item) is dict
            and item.get("uuid") is not None
            and item.get("timestamp") is not None
            and not (isinstance(kind, str) and kind in SIGNIN_TYPE_ALIASES)
        ):
            filled.append(item)
            continue
        event = dict(item)
        if event.get("uuid") is None:
            event["uuid"] = new_id()
        if event.get("timestamp") is None:
            event["timestamp"] = default_ts
        if isinstance(kind, str) and kind in SIGNIN_TYPE_ALIASES:
            event["type"] = SIGNIN_TYPE_ALIASES[kind]
        filled.append(event)
    fields: set[tuple[int, str]] = set()  # (index, path) of each problem pydantic found: one per field
    unlisted = 0  # those past the MAX_ISSUES listed
    if strict:
        try:
            filled = _adapter(feature).validate_python(filled)
        except ValidationError as exc:
            filled = [dict(e) if isinstance(e, dict) else e for e in filled]  # checked below, not to be modified
            errors = [e for e in exc.errors(include_url=False) if len(e["loc"]) > 1]  # not the non-objects again
            found = _dedupe([_issue_from_pydantic(feature, err) for err in errors[: MAX_ISSUES * 2]])
            fields = {(at, ".".join(parts)) for at, parts, _ in map(_field_of, errors)}
            unlisted = len(fields) - len(found)
            issues.extend(found)
    else:
        issues.extend(_check_lenient(filled))
    result: list[tuple[int, dict[str, Any]]] = []
    flagged = fields | {(i.index, i.path) for i in issues}
    with_session = feature is Feature.AUDITEVENTS
    for index, event in enumerate(filled):
        if not isinstance(event, dict):
            continue
        ns, problems = _normalize_timestamps(event, with_session=with_session)
        location = event.get("location")
        if location is not None:
            problems += _coordinate_problems(location)
        if problems:
            issues.extend(Issue(index, path, message) for path, message in problems if (index, path) not in flagged)
        if ns is not None:
            result.append((ns, event))
    if issues:
        raise InvalidEvents(sorted(issues, key=lambda i: i.index), total=unlisted + len(issues))
    return result


def _normalize_timestamps(event: dict[str, Any], *, with_session: bool) -> tuple[int | None, list[tuple[str, str]]]:
    """Normalise the event's timestamps in place (`session.login_time` too for audit events);
    return `timestamp` in ns (None when invalid) and the problems found as (field path, message)."""
    problems: list[tuple[str, str]] = []
    text = event["timestamp"]
    ns = parse_canonical_ns(text) if type(text) is str else None
    if ns is None:
        try:
            ns = parse_stored_ns(text)
            if not _is_canonical(text):
                event["timestamp"] = format_ns(ns)
        except TimestampError as exc:
            problems.append(("timestamp", str(exc)))
    session = event.get("session") if with_session else None
    if isinstance(session, dict) and "login_time" in session:
        login = session["login_time"]
        if type(login) is not str or parse_canonical_ns(login) is None:
            try:
                login_ns = parse_stored_ns(login)
                if not _is_canonical(login):
                    event["session"] = {**session, "login_time": format_ns(login_ns)}
            except TimestampError as exc:
                problems.append(("session.login_time", str(exc)))
    return (ns if not problems else None), problems


def _coordinate_problems(location: Any) -> list[tuple[str, str]]:
    """Latitude outside -90..90 or longitude outside -180..180 degrees (NaN included); values
    that are not numbers are the schema's business (and kept as they are when lenient)."""
    problems: list[tuple[str, str]] = []
    if type(location) is dict:  # the common case first: both in range (or absent)
        latitude, longitude = location.get("latitude"), location.get("longitude")
        try:
            if (latitude is None or -90 <= latitude <= 90) and (longitude is None or -180 <= longitude <= 180):
                return problems
        except TypeError:  # not numbers
            pass
    if isinstance(location, dict):
        for name, bound in COORDINATE_BOUNDS:
            value = location.get(name)
            if isinstance(value, int | float) and not isinstance(value, bool) and not -bound <= value <= bound:
                problems.append((f"location.{name}", f"must be from {-bound} to {bound} degrees, got {excerpt(value)}"))
    return problems


def _is_canonical(text: str) -> bool:
    # Already "YYYY-MM-DDTHH:MM:SS[.fraction without trailing zeros]Z"; parse_ns has checked the rest.
    return text[-1] == "Z" and text[10] == "T" and (len(text) == 20 or (text[19] == "." and text[-2] != "0"))


def _check_lenient(items: list[Any]) -> list[Issue]:
    issues: list[Issue] = []
    for index, event in enumerate(items):
        if not isinstance(event, dict):
            continue
        uuid = event["uuid"]
        if not isinstance(uuid, str) or not uuid or len(uuid) > MAX_UUID_LENGTH:
            issues.append(Issue(index, "uuid", f"must be a non-empty string of at most {MAX_UUID_LENGTH} characters"))
    return issues


def _dedupe(issues: list[Issue]) -> list[Issue]:
    """One issue per field: a union (int | float) reports each member's failure."""
    seen: set[tuple[int, str]] = set()
    result = []
    for issue in issues:
        if (issue.index, issue.path) not in seen:
            seen.add((issue.index, issue.path))
            result.append(issue)
    return result[:MAX_ISSUES]


def _field_of(err: Any) -> tuple[int, tuple[str, ...], bool]:
    """A pydantic error's event index, field path, and whether it is a member's failure of an
    int | float union (each member fails: one problem of the field, reported twice)."""
    loc = err["loc"]
    index = loc[0] if loc and isinstance(loc[0], int) else 0
    parts = tuple(str(p) for p in loc[1:])
    union = len(parts) > 1 and parts[-1] in ("int", "float")
    return index, parts[:-1] if union else parts, union


def _issue_from_pydantic(feature: Feature, err: Any) -> Issue:
    index, parts, union = _field_of(err)
    path = excerpt_path(".".join(parts))
    if union:
        return Issue(index, path, f"expected a JSON number (got {excerpt(err.get('input'))})")
    kind = err["type"]
    if kind == "extra_forbidden":
        known = _known_fields(SHAPES[feature], list(parts[:-1]))
        close = difflib.get_close_matches(parts[-1], known, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else f"; known fields here: {', '.join(known)}"
        return Issue(index, path, "unknown field" + hint)
    if kind == "missing":
        return Issue(index, path, "required field is missing")
    if kind == "string_type" and path in ("timestamp", "session.login_time"):
        return Issue(
            index, path, f"expected an RFC 3339 timestamp string such as {EXAMPLE}, got {excerpt(err.get('input'))}"
        )
    if kind == "string_pattern_mismatch":
        return Issue(
            index,
            path,
            f"{excerpt(err.get('input'))} is not an id: ids are 26 base32 characters (letters and the digits 2-7)",
        )
    if kind == "literal_error":
        expected = err.get("ctx", {}).get("expected", "")
        values = [v.strip().strip("'") for v in expected.replace(" or ", ", ").split(",")]
        shown = ", ".join(values[:10]) + (
            f", ... ({len(values)} values, see docs/events.md)" if len(values) > 10 else ""
        )
        return Issue(index, path, f"unknown value {excerpt(err.get('input'))}; expected one of: {shown}")
    if kind in ("greater_than_equal", "less_than_equal"):
        return Issue(
            index,
            path,
            f"must be from -{events.MAX_SAFE_INTEGER} to {events.MAX_SAFE_INTEGER} (2**53-1, the integers every"
            f" JSON reader reads exactly), got {excerpt(err.get('input'))}",
        )
    message = str(err["msg"]).removeprefix("Value error, ")
    if kind != "value_error":
        message += f" (got {excerpt(err.get('input'))})"
    return Issue(index, path, message)


def _known_fields(shape: Any, path: list[str]) -> list[str]:
    for name in path:
        hints = get_type_hints(shape)
        inner = hints.get(name)
        if inner is None:
            return []
        shape = next((a for a in getattr(inner, "__args__", (inner,)) if hasattr(a, "__annotations__")), inner)
    try:
        return list(get_type_hints(shape))
    except TypeError:
        return []


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    return {list: "an array", str: "a string", bool: "a boolean", int: "a number", float: "a number"}.get(
        type(value), type(value).__name__
    )
