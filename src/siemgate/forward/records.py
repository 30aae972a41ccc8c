"""What flows through a pipeline: one event as received from the Events API, with its stream."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import orjson

from siemgate.model.features import Feature
from siemgate.model.timestamps import TimestampError, parse_ns

# The Elastic integration's data stream names and the Splunk add-on's sourcetypes (docs/forwarding.md, "Formats").
DATASETS = {
    Feature.SIGNINATTEMPTS: "signin_attempts",
    Feature.ITEMUSAGES: "item_usages",
    Feature.AUDITEVENTS: "audit_events",
}


@dataclass(slots=True)
class Record:
    """One event. `event` is the Events API item exactly as received; `uuid` is its id (or "")."""

    feature: Feature
    event: dict[str, Any]
    source: str
    uuid: str
    log: tuple[int, str] | None = None  # (log index, hex SHA-256 of the stored v2 bytes) from a siemgate

    @property
    def dataset(self) -> str:
        return DATASETS[self.feature]


def make_record(feature: Feature, event: Any, source: str, log: tuple[int, str] | None = None) -> Record:
    """Wrap one item of a page. Items that are not JSON objects are kept (as {"value": item})."""
    if type(event) is not dict:
        event = {"value": event}
    uuid = event.get("uuid", "")
    return Record(feature, event, source, uuid if type(uuid) is str else "", log)


def log_fields(record: Record) -> dict[str, Any] | None:
    """`{"log": {"idx", "body_sha256"}}`, what ECS and OCSF output carry under `siemgate` for an event
    read from a siemgate with a signed log (matches it to its leaf: docs/integrity.md), or None."""
    if record.log is None:
        return None
    return {"log": {"idx": record.log[0], "body_sha256": record.log[1]}}


def event_key(uuid: Any, timestamp: Any) -> str | None:
    """What identifies an event: `<uuid>-<timestamp as ns since the epoch>`, or None without a
    uuid. siemgate's store tells events apart by uuid *and* timestamp (the instant; docs/events.md,
    "Duplicates"), so a uuid sent again with another timestamp is another event, while the same
    event served or delivered again has the same key. A timestamp that does not parse is stood for
    by a hash of its JSON."""
    if type(uuid) is not str or not uuid:
        return None
    try:
        return f"{uuid}-{parse_ns(timestamp)}"
    except TimestampError:
        return f"{uuid}-x{hashlib.sha256(orjson.dumps(timestamp)).hexdigest()[:16]}"


def event_id(record: Record) -> str | None:
    """The event's id at a destination that deduplicates (event_key)."""
    return event_key(record.uuid, record.event.get("timestamp"))
