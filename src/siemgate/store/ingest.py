"""Writing events: validate, normalise, encode and store a batch atomically.

The one path every producer takes (ingest API, `siemgate ingest`, the simulator, the mirror sink,
archive replay), so every event in a store has passed the same checks. Listeners registered with
`on_stored` see each stored batch after it commits (alert rules use this).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from siemgate.errors import BadRequest, InvalidEventBatch
from siemgate.model.encoding import encode_event
from siemgate.model.facets import extract_facets
from siemgate.model.features import Feature
from siemgate.model.validation import InvalidEvents, validate_events
from siemgate.store.base import InsertResult, NewEvent, Store


@dataclass(frozen=True, slots=True)
class StoredBatch:
    """A batch after commit: the events that were new, with their seqs."""

    account_id: int
    feature: Feature
    events: list[tuple[int, dict[str, Any]]]  # (seq, event)


@dataclass(frozen=True, slots=True)
class WriteResult:
    received: int
    stored: int
    duplicates: int

    def as_dict(self) -> dict[str, int]:
        return {"received": self.received, "stored": self.stored, "duplicates": self.duplicates}


Listener = Callable[[StoredBatch], None]


class EventWriter:
    def __init__(self, store: Store, clock: Callable[[], int], *, max_event_bytes: int = 64 * 1024) -> None:
        self.store = store
        self.clock = clock
        self.max_event_bytes = max_event_bytes
        self._listeners: list[Listener] = []

    def on_stored(self, listener: Listener) -> None:
        """Call `listener` with every batch that stored at least one event."""
        self._listeners.append(listener)

    def check(self, feature: Feature, items: Sequence[Any], *, strict: bool = True) -> None:
        """Validate without storing; raises InvalidEventBatch as `write` would."""
        self._validate(feature, items, strict=strict)

    def _validate(self, feature: Feature, items: Sequence[Any], *, strict: bool) -> list[tuple[int, dict[str, Any]]]:
        try:
            return validate_events(feature, list(items), strict=strict, now=self.clock())
        except InvalidEvents as exc:
            details = [{"index": i.index, "field": i.path, "message": i.message} for i in exc.issues]
            raise InvalidEventBatch(str(exc), details) from None

    def write(self, account_id: int, feature: Feature, items: Sequence[Any], *, strict: bool = True) -> WriteResult:
        """Validate and store `items` (event objects) as one atomic batch.

        strict=True for producers, False for mirrored upstream data (see model.validation).
        Raises InvalidEventBatch (nothing stored) listing each problem with its index and field path.
        """
        stamped = [isinstance(i, dict) and i.get("timestamp") is None and i.get("uuid") is not None for i in items]
        validated = self._validate(feature, items, strict=strict)
        new = []
        too_big = []
        for index, (ts, event) in enumerate(validated):
            body, v1_cut = encode_event(feature, event)
            if len(body) > self.max_event_bytes:
                too_big.append(
                    {
                        "index": index,
                        "field": "",
                        "message": f"the event is {len(body)} bytes; at most {self.max_event_bytes}",
                    }
                )
            new.append(NewEvent(event["uuid"], ts, body, v1_cut, stamped[index], extract_facets(feature, event)))
        if too_big:
            raise InvalidEventBatch(
                f"{len(too_big)} event(s) over {self.max_event_bytes} bytes, nothing was stored"
                f" (first: event {too_big[0]['index']})",
                too_big,
            )
        result: InsertResult = self.store.insert_events(account_id, feature, new)
        if self._listeners and result.stored:
            batch = StoredBatch(
                account_id,
                feature,
                [(seq, event) for seq, (_, event) in zip(result.seqs, validated, strict=True) if seq is not None],
            )
            for listener in self._listeners:
                listener(batch)
        return WriteResult(len(new), result.stored, result.duplicates)


def parse_batch(body: bytes) -> list[Any]:
    """The events in a request body (see the module docstring); raises BadRequest naming the line."""
    text = body.removeprefix(b"\xef\xbb\xbf")
    stripped = text.strip()
    if not stripped:
        raise BadRequest("the body is empty: send a JSON array of events or one event per line (NDJSON)")
    if stripped[:1] in (b"[", b"{"):
        try:
            data = orjson.loads(stripped)
        except orjson.JSONDecodeError:
            if stripped[:1] == b"[":
                raise BadRequest("the body starts with '[' but is not a valid JSON array") from None
            data = None  # several objects: NDJSON
        if isinstance(data, list):
            return data
        if isinstance(data, dict):
            items = data.get("items")
            return items if isinstance(items, list) else [data]  # an Events API page, or one event
    events: list[Any] = []
    for number, line in enumerate(text.split(b"\n"), start=1):
        line = line.strip()
        if not line:
            continue
        try:
            events.append(orjson.loads(line))
        except orjson.JSONDecodeError as exc:
            raise BadRequest(f"line {number} is not valid JSON ({exc}); send one JSON object per line") from None
    return events
