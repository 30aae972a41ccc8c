"""Writing events: validate, normalise, encode and store a batch atomically.

The one path every producer takes (ingest API, `siemgate ingest`, the simulator, the mirror sink,
archive replay), so every event in a store has passed the same checks. Listeners registered with
`on_stored` see each stored batch after it commits (alert rules use this).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, overload

import orjson

from siemgate.errors import BadRequest, InvalidEventBatch, PayloadTooLarge
from siemgate.model.encoding import encode_event
from siemgate.model.facets import extract_facets
from siemgate.model.features import Feature
from siemgate.model.json_keys import RepeatedKey, find_repeated_key, may_repeat_keys
from siemgate.model.text import excerpt, excerpt_path, find_unstorable, may_hold_unstorable_json
from siemgate.model.timestamps import format_ns
from siemgate.model.validation import InvalidEvents, validate_events
from siemgate.store.base import Store
from siemgate.store.records import InsertResult, NewEvent


class SeqEvents(Sequence[tuple[int, dict[str, Any]]]):
    """(seq, event) pairs over two parallel lists, made only when read: a batch handed to listeners
    allocates no object per event (objects that live while a batch is evaluated make the garbage
    collector run more often and promote the whole batch to older generations)."""

    __slots__ = ("events", "seqs")

    def __init__(self, seqs: Sequence[int], events: Sequence[dict[str, Any]]) -> None:
        self.seqs, self.events = seqs, events

    def __len__(self) -> int:
        return len(self.seqs)

    @overload
    def __getitem__(self, index: int) -> tuple[int, dict[str, Any]]: ...
    @overload
    def __getitem__(self, index: slice) -> SeqEvents: ...
    def __getitem__(self, index: int | slice) -> tuple[int, dict[str, Any]] | SeqEvents:
        if isinstance(index, slice):
            return SeqEvents(self.seqs[index], self.events[index])
        return self.seqs[index], self.events[index]

    def __iter__(self) -> Iterator[tuple[int, dict[str, Any]]]:
        return zip(self.seqs, self.events, strict=True)


@dataclass(frozen=True, slots=True)
class StoredBatch:
    """A batch after commit: the events that were new, with their seqs."""

    account_id: int
    feature: Feature
    events: Sequence[tuple[int, dict[str, Any]]]  # (seq, event)
    times: Sequence[int] = ()  # the events' timestamps (ns), when known
    history: bool = False  # past activity written in bulk (a simulation): it pages no one


@dataclass(frozen=True, slots=True)
class WriteResult:
    received: int
    stored: int
    duplicates: int

    def as_dict(self) -> dict[str, int]:
        return {"received": self.received, "stored": self.stored, "duplicates": self.duplicates}


@dataclass(frozen=True, slots=True)
class TimeWindow:
    """The event times a producer may send (ns): from `oldest` (the stream's retention cutoff, or
    ingest_max_past_days when that is later) to `newest` (the server's clock plus
    ingest_max_future_seconds); `why_*` say what sets each bound."""

    oldest: int
    newest: int
    why_oldest: str
    why_newest: str

    def check(self, events: Sequence[NewEvent], items: Sequence[Any]) -> None:
        """Raise InvalidEventBatch naming each event dated outside the window (nothing is stored).
        `items` are the events as sent (validation dates copies): one sent without a timestamp was
        dated on receipt, after the window's time was read, and is within it."""
        refused = []
        for index, event in enumerate(events):
            if self.oldest <= event.ts <= self.newest or _sent_undated(items[index]):
                continue
            if event.ts < self.oldest:
                bound = f"before {format_ns(self.oldest)} ({self.why_oldest})"
            else:
                bound = f"after {format_ns(self.newest)} ({self.why_newest})"
            message = f"{format_ns(event.ts)} is {bound}"
            refused.append({"index": index, "field": "timestamp", "message": message})
        if refused:
            raise InvalidEventBatch(_refusal(refused), refused)


def _sent_undated(item: Any) -> bool:
    return isinstance(item, dict) and item.get("timestamp") is None


def _refusal(refused: list[dict[str, Any]]) -> str:
    """The message of a batch refused for `refused` (index, field, message) problems."""
    first = refused[0]
    where = f"event {first['index']}" + (f", field {first['field']}" if first["field"] else "")
    return f"{len(refused)} event(s) cannot be stored, nothing was stored (first: {where}: {first['message']})"


Listener = Callable[[StoredBatch], None]
# Bodies larger than this are checked for the number of JSON values they hold before parsing
# (counting costs ~2 ms per MB: the 1000-event batches of the ingest hot path are not counted).
DENSE_CHECK_BYTES = 4 * 1024 * 1024
MAX_VALUES_PER_EVENT = 64  # commas, objects and arrays: a real event has about 30


class EventWriter:
    def __init__(self, store: Store, clock: Callable[[], int], *, max_event_bytes: int = 64 * 1024) -> None:
        self.store = store
        self.clock = clock
        self.max_event_bytes = max_event_bytes
        self._listeners: list[Listener] = []
        self._uuids: dict[int, str] = {}

    def on_stored(self, listener: Listener) -> None:
        """Call `listener` with every batch that stored at least one event."""
        self._listeners.append(listener)

    def check(self, feature: Feature, items: Sequence[Any], *, strict: bool = True) -> None:
        """Validate and encode without storing; raises InvalidEventBatch as `write` would."""
        self._prepare(feature, items, strict=strict)

    def _validate(self, feature: Feature, items: Sequence[Any], *, strict: bool) -> list[tuple[int, dict[str, Any]]]:
        try:
            return validate_events(feature, list(items), strict=strict, now=self.clock())
        except InvalidEvents as exc:
            details = [{"index": i.index, "field": i.path, "message": i.message} for i in exc.issues]
            raise InvalidEventBatch(str(exc), details) from None

    def _prepare(
        self, feature: Feature, items: Sequence[Any], *, strict: bool, account_id: int | None = None
    ) -> tuple[list[tuple[int, dict[str, Any]]], list[NewEvent]]:
        """The validated events and their stored form; raises InvalidEventBatch for invalid events,
        events over max_event_bytes and text no store backend can hold (model.text)."""
        stamped = [isinstance(i, dict) and i.get("timestamp") is None and i.get("uuid") is not None for i in items]
        validated = self._validate(feature, items, strict=strict)
        if strict and account_id is not None:  # producers; a mirror keeps what upstream served (docs/events.md)
            self._own_account(account_id, validated)
        new = []
        refused = []
        for index, (ts, event) in enumerate(validated):
            try:
                body, v1_cut = encode_event(feature, event)
            except orjson.JSONEncodeError:  # orjson writes UTF-8 only: a lone surrogate
                if (found := find_unstorable(event)) is None:
                    raise
                body, v1_cut = b"", None
            else:  # NUL is written escaped (a backslash is rare: one memchr); a match needs the exact search
                found = find_unstorable(event) if b"\\" in body and b"\\u0000" in body else None
            if found is not None:
                refused.append({"index": index, "field": excerpt_path(found[0]), "message": found[1]})
            elif len(body) > self.max_event_bytes:
                refused.append(
                    {
                        "index": index,
                        "field": "",
                        "message": f"the event is {len(body)} bytes; at most {self.max_event_bytes}",
                    }
                )
            new.append(NewEvent(event["uuid"], ts, body, v1_cut, stamped[index], extract_facets(feature, event)))
        if refused:
            raise InvalidEventBatch(_refusal(refused), refused)
        return validated, new

    def write(
        self,
        account_id: int,
        feature: Feature,
        items: Sequence[Any],
        *,
        strict: bool = True,
        history: bool = False,
        window: TimeWindow | None = None,
    ) -> WriteResult:
        """Validate and store `items` (event objects) as one atomic batch.

        strict=True for producers, False for mirrored upstream data (see model.validation).
        history=True for past activity written in bulk (a simulation): listeners are told, so alert
        rules learn from it without paging anyone.
        window: the timestamps the caller accepts (the ingest API's; docs/events.md, "Event times").
        Raises InvalidEventBatch (nothing stored) listing each problem with its index and field path.
        """
        validated, new = self._prepare(feature, items, strict=strict, account_id=account_id)
        if window is not None:
            window.check(new, items)
        result: InsertResult = self.store.insert_events(account_id, feature, new)
        if self._listeners and result.stored:
            seqs = [seq for seq in result.seqs if seq is not None]
            if len(seqs) == len(validated):  # every event was new (the usual case)
                events, times = [event for _, event in validated], [ts for ts, _ in validated]
            else:
                kept = [i for i, seq in enumerate(result.seqs) if seq is not None]
                events, times = [validated[i][1] for i in kept], [validated[i][0] for i in kept]
            batch = StoredBatch(account_id, feature, SeqEvents(seqs, events), times, history)
            for listener in self._listeners:
                listener(batch)
        return WriteResult(len(new), result.stored, result.duplicates)

    def _own_account(self, account_id: int, validated: list[tuple[int, dict[str, Any]]]) -> None:
        """The server owns account identity: an `account_uuid` a producer sends is replaced by the
        uuid of the account the events are stored in (docs/events.md); one left out stays out."""
        uuid = self._uuids.get(account_id)
        if uuid is None:
            uuid = self._uuids[account_id] = self.store.get_account_by_id(account_id).uuid
        for index, (ts, event) in enumerate(validated):
            if "account_uuid" in event and event["account_uuid"] != uuid:
                validated[index] = (ts, {**event, "account_uuid": uuid})  # the caller's event stays as sent


def parse_batch(body: bytes, *, max_events: int | None = None, max_lines: int | None = None) -> list[Any]:
    """The events in a request body (see the module docstring); raises BadRequest naming the line,
    PayloadTooLarge past `max_events` events or, for NDJSON, `max_lines` lines (blank ones
    included), counted before any line is parsed. Linear in the size of the body."""
    text = body.removeprefix(b"\xef\xbb\xbf")
    stripped = text.strip()
    if not stripped:
        raise BadRequest("the body is empty: send a JSON array of events or one event per line (NDJSON)")
    if max_events is not None and len(text) > DENSE_CHECK_BYTES:
        _check_density(text, max_events)
    if stripped[:1] in (b"[", b"{"):
        try:
            data = _loads(text)
        except orjson.JSONDecodeError as exc:
            if stripped[:1] == b"[":
                raise BadRequest(f"the body starts with '[' but is not a valid JSON array: {exc}") from None
            data = None  # several objects: NDJSON
        if isinstance(data, dict | list) and may_repeat_keys(text, data):
            _refuse_repeated_key(text, data)
        if isinstance(data, dict):
            items = data.get("items")
            data = items if isinstance(items, list) else [data]  # an Events API page, or one event
        if isinstance(data, list):
            _check_count(len(data), max_events)
            return data
    if max_lines is not None and (lines := text.count(b"\n") + 1) > max_lines:
        raise PayloadTooLarge(f"the body has {lines} lines; the limit is {max_lines}: split it")
    numbered = [(number, line) for number, line in enumerate(text.split(b"\n"), start=1) if not line.isspace() and line]
    _check_count(len(numbered), max_events)
    events: list[Any] = []
    for number, line in numbered:
        try:
            events.append(_loads(line))
        except orjson.JSONDecodeError as exc:
            raise BadRequest(f"line {number} is not valid JSON ({exc}); send one JSON object per line") from None
    if may_repeat_keys(text, events):
        for index, (number, line) in enumerate(numbered):
            if (found := find_repeated_key(line)) is not None:
                raise _repeated(index, found, found.field(), f"line {number}")
    return events


def _refuse_repeated_key(text: bytes, data: dict[str, Any] | list[Any]) -> None:
    """Raise BadRequest (InvalidEventBatch for a key twice inside an event) when JSON `text`, which
    parsed to `data` (an array of events, a page or one event), has an object with a key twice."""
    found = find_repeated_key(text)
    if found is None:
        return
    page = isinstance(data, dict) and isinstance(data.get("items"), list)
    if page and (not found.path or found.path[0] != "items"):
        where = f" at {excerpt_path(found.field())}" if found.path else ""
        raise BadRequest(
            f"the page has the key {excerpt(found.key)} twice{where}: JSON parsers differ on which value they keep;"
            " send each key once"
        )
    if isinstance(data, list) or page:
        at = 1 if page else 0
        index = found.path[at] if len(found.path) > at else 0
        raise _repeated(index if isinstance(index, int) else 0, found, found.field(at + 1), "")
    raise _repeated(0, found, found.field(), "")


def _repeated(index: int, found: RepeatedKey, field: str, where: str) -> InvalidEventBatch:
    field = excerpt_path(field)
    message = f"the key {excerpt(found.key)} appears twice in one object: JSON parsers differ on which value they keep;"
    message += " send it once"
    return InvalidEventBatch(
        f"1 problem(s) in the batch, nothing was stored: event {index}{' (' + where + ')' if where else ''},"
        f" field {field}: {message}",
        [{"index": index, "field": field, "message": message}],
    )


def _loads(raw: bytes) -> Any:
    """The JSON value of `raw`; raises orjson.JSONDecodeError (with line, column and byte position).
    orjson refuses a string escaping a lone surrogate (`"\\ud800"`); such text is decoded by the
    standard library instead, as orjson would decode it otherwise, so that the event writer refuses
    the event naming the field (docs/security.md, "Text and values")."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        if "surrogate" not in exc.msg or not may_hold_unstorable_json(raw):
            raise
        try:
            return json.loads(raw, parse_int=_number, parse_float=_number, parse_constant=_no_constant)
        except (ValueError, RecursionError):  # anything orjson also refuses: its message says where
            raise exc from None


def _number(text: str) -> int | float:
    """A JSON number as orjson reads it: an integer within 64 bits, else a finite float."""
    if text.lstrip("-").isdigit() and -(2**63) <= (number := int(text)) < 2**64:
        return number
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"{text} is out of range")
    return value


def _no_constant(text: str) -> float:
    raise ValueError(f"{text} is not JSON")


def json_values(text: bytes) -> int:
    """About the number of values (objects, arrays, members, elements) JSON `text` parses into,
    counted without parsing it: its commas, `{` and `[` (those inside strings too). What bounds the
    memory a parse takes, which the size alone does not (`[{},{},...]` takes 30 times its size)."""
    return text.count(b",") + text.count(b"{") + text.count(b"[")


def _check_density(text: bytes, max_events: int) -> None:
    """Refuse a large body with more JSON values than `max_events` events can hold before it is
    parsed: `[{},{},...]` takes 30 times its size in memory once parsed, a real event about 5."""
    values = json_values(text)
    if values > max_events * MAX_VALUES_PER_EVENT:
        raise PayloadTooLarge(
            f"the body holds about {values} JSON values; a batch of at most {max_events} events holds at most"
            f" {max_events * MAX_VALUES_PER_EVENT} (each event at most {MAX_VALUES_PER_EVENT}): split it"
        )


def _check_count(count: int, limit: int | None) -> None:
    if limit is not None and count > limit:
        raise PayloadTooLarge(f"the batch has {count} events; the limit is {limit}: split it")
