"""The fields a rule may name, per source, and how a dotted path is read from an event.

Sources are the three event streams plus two checked on a schedule: `tokens`, the SIEM tokens of
the account, and `integrity`, the health of the account's signed event logs.
Paths name nested fields with dots (`target_user.email`, `client.ip_address`). `aux_info` is free
text that is often a JSON object; a path below it
(`aux_info.role`) reads that object.
"""

from __future__ import annotations

import difflib
import functools
import types
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, get_args, get_origin, get_type_hints

import orjson

from siemgate.alerts.caseless import fold
from siemgate.model import events
from siemgate.model.features import SCHEDULED_SOURCES, Feature

SOURCES = ("signinattempts", "itemusages", "auditevents", "tokens", "integrity")
SCHEDULED = SCHEDULED_SOURCES  # checked on a schedule, one record per token or stream
_SHAPES: dict[str, Any] = {
    Feature.SIGNINATTEMPTS.value: events.SignInAttemptV2,
    Feature.ITEMUSAGES.value: events.ItemUsageV2,
    Feature.AUDITEVENTS.value: events.AuditEventV2,
}
# The record the scheduled check builds for each SIEM token (alerts.scheduled.token_records).
TOKEN_FIELDS = (
    "id",
    "name",
    "timestamp",
    "status",
    "features",
    "created_at",
    "last_used_at",
    "expires_at",
    "idle_seconds",
    "integration",
    "integration.uuid",
    "integration.name",
    "integration.type",
)
# The record the scheduled check builds for each stream's log (integrity.health.StreamHealth.record).
INTEGRITY_FIELDS = (
    "id",
    "feature",
    "timestamp",
    "status",
    "reason",
    "log_size",
    "checkpoint_size",
    "checkpoint_age_seconds",
    "checkpoint_time",
    "witness_failures",
)
JSON_TEXT_FIELDS = ("aux_info",)


class _Missing:
    """A field that is absent (distinct from JSON null)."""

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


def _unwrap(hint: Any) -> list[Any]:
    """The concrete types inside NotRequired/Annotated/Optional/Union hints."""
    origin = get_origin(hint)
    if origin in (typing.NotRequired, typing.Required, typing.Annotated):
        return _unwrap(get_args(hint)[0])
    if origin in (typing.Union, types.UnionType):
        found: list[Any] = []
        for arg in get_args(hint):
            found.extend(_unwrap(arg))
        return found
    return [hint]


def _paths(shape: Any, prefix: str = "") -> set[str]:
    result: set[str] = set()
    for name, hint in get_type_hints(shape, include_extras=True).items():
        path = f"{prefix}{name}"
        result.add(path)
        for inner in _unwrap(hint):
            if isinstance(inner, type) and hasattr(inner, "__annotations__") and issubclass(inner, dict):
                result |= _paths(inner, path + ".")
    return result


@functools.cache
def known_fields(source: str) -> frozenset[str]:
    """Every field path of the source's events (v2 shape)."""
    if source == "tokens":
        return frozenset(TOKEN_FIELDS)
    if source == "integrity":
        return frozenset(INTEGRITY_FIELDS)
    return frozenset(_paths(_SHAPES[source]))


def check_field(source: str, path: str) -> None:
    """Raise ValueError naming close matches when `path` is not a field of the source."""
    head = path.split(".", 1)[0]
    if head in JSON_TEXT_FIELDS and source == "auditevents":
        return
    fields = known_fields(source)
    if path not in fields:
        close = difflib.get_close_matches(path, sorted(fields), n=3, cutoff=0.6)
        hint = f"; did you mean {', '.join(close)}?" if close else f"; known fields: {', '.join(sorted(fields))}"
        raise ValueError(f"{path!r} is not a field of {source} events{hint}")


def get_path(event: Mapping[str, Any], path: str | tuple[str, ...]) -> Any:
    """The value at the dotted path (or its parts), or MISSING. Strings holding a JSON object are
    looked into."""
    if isinstance(path, str) and "." not in path:
        return event.get(path, MISSING)
    value: Any = event
    for part in path.split(".") if isinstance(path, str) else path:
        if isinstance(value, str) and value.startswith("{"):
            try:
                value = orjson.loads(value)
            except orjson.JSONDecodeError:
                return MISSING
        if not isinstance(value, Mapping) or part not in value:
            return MISSING
        value = value[part]
    return value


Getter = Any  # Callable[[Mapping[str, Any]], Any]


def getter(path: str) -> Getter:
    """A function reading `path` from an event as get_path does, faster for the common shapes
    (a top-level field, or a field of a nested object)."""
    parts = path.split(".")
    if parts[0] in JSON_TEXT_FIELDS or len(parts) > 2:
        split = tuple(parts)
        return lambda event: get_path(event, split)
    if len(parts) == 1:
        name = parts[0]
        return lambda event: event.get(name, MISSING)
    outer, inner = parts

    def read(event: Mapping[str, Any]) -> Any:
        value = event.get(outer)
        if type(value) is dict:
            return value.get(inner, MISSING)
        return get_path(event, (outer, inner))

    return read


def hashable(value: Any) -> Any:
    """A field value as a dict key: scalars as they are, anything else as its JSON text."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


Key = tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class KeyReader:
    """Reads the values at some paths as a tuple usable as a dict key: of one event (`one`), or
    of many at once (`many(events, positions)`: the key of events[i] for each i in positions, in
    order; the same keys as `one`, without a call per event in the common shapes). `column`, for
    a reader of one path: the one value of each of those keys (`[k for (k,) in many(...)]`) when
    it is a string in every event, read without a tuple per event; else None."""

    one: Callable[[Mapping[str, Any]], Key]
    many: Callable[[Sequence[Mapping[str, Any]], Iterable[int]], list[Key]]
    column: Callable[[Sequence[Mapping[str, Any]], Iterable[int]], list[str] | None] = lambda events, positions: None


def _each(one: Callable[[Mapping[str, Any]], Key]) -> Callable[[Sequence[Mapping[str, Any]], Iterable[int]], list[Key]]:
    """`KeyReader.many` for a reader that has no faster batch form: `one` for each event."""
    return lambda events, positions: [one(events[i]) for i in positions]


def key_reader(paths: list[str] | tuple[str, ...], nocase: bool) -> KeyReader:
    """A reader of the values at `paths` as a tuple usable as a dict key: absent values are None,
    other values `hashable`, strings folded with `nocase` (alerts.caseless)."""
    readers = tuple(getter(p) for p in paths)

    def value(raw: Any) -> Any:
        if type(raw) is str:
            return fold(raw) if nocase else raw
        return None if raw is MISSING else hashable(raw)

    if len(readers) != 1:

        def several(event: Mapping[str, Any]) -> Key:
            return tuple(value(read(event)) for read in readers)

        return KeyReader(several, _each(several))
    [read] = readers
    parts = paths[0].split(".")
    if parts[0] in JSON_TEXT_FIELDS or len(parts) > 2:

        def deep(event: Mapping[str, Any]) -> Key:
            return (value(read(event)),)

        return KeyReader(deep, _each(deep))
    outer, inner = parts if len(parts) == 2 else (None, parts[0])

    def one(event: Mapping[str, Any]) -> Key:  # a top-level field, or a field of a nested object, read inline
        found: Any = event if outer is None else event.get(outer)
        raw = found.get(inner, MISSING) if type(found) is dict else read(event)
        if type(raw) is str:
            return (fold(raw),) if nocase else (raw,)
        return (value(raw),)

    each = _each(one)

    def column(events: Sequence[Mapping[str, Any]], positions: Iterable[int]) -> list[str] | None:
        try:  # the usual batch: the field is a string in every event (one pass each, no call per event)
            if outer is None:
                raws = [events[i][inner] for i in positions]
            else:
                raws = [events[i][outer][inner] for i in positions]
        except (KeyError, TypeError, IndexError):
            return None
        if raws and {*map(type, raws)} != {str}:  # one C pass: faster than all(... for ...)
            return None
        if not nocase:
            return raws
        return list(map(str.lower, raws)) if all(map(str.isascii, raws)) else list(map(fold, raws))  # fold's ASCII case

    def many(events: Sequence[Mapping[str, Any]], positions: Iterable[int]) -> list[Key]:
        found = column(events, positions)
        return each(events, positions) if found is None else [(value,) for value in found]

    return KeyReader(one, many, column)
