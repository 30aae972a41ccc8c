"""Writing events: validate, normalise, encode and store a batch atomically.

The one path every producer takes (ingest API, `siemgate ingest`, the simulator, the mirror sink,
archive replay), so every event in a store has passed the same checks. Listeners registered with
`on_stored` see each stored batch after it commits (alert rules use this).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from siemgate.errors import InvalidEventBatch
from siemgate.model.encoding import encode_event
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
            new.append(NewEvent(event["uuid"], ts, body, v1_cut))
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
