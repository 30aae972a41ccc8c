"""The log entry of one event: what its leaf commits to (docs/integrity.md, "Leaves").

    entry = 0x01 || timestamp as int64 big-endian nanoseconds since the epoch || SHA-256(body)
    leaf  = SHA-256(0x00 || entry)

41 bytes. `body` is the event's stored v2 bytes, exactly as the v2 API serves them; the timestamp
is the event's `timestamp` field. Committing a digest of the body rather than the body lets the
server later reveal an entry (timestamp, digest) without the body: a purged, filtered-out or erased
event keeps a verifiable place in the tree. The first byte is the entry format version.
"""

from __future__ import annotations

import hashlib
import json
import struct
from typing import Any, NamedTuple

from siemgate.model.timestamps import TimestampError, parse_stored_ns
from siemgate.tlog.merkle import leaf_hash

ENTRY_FORMAT = 1
# The timestamp of a hole entry: an index the store held no event for when its log began
# (docs/integrity.md, "Backfill"); older than any retention cutoff.
HOLE_TS = -(2**63)
ENTRY_SIZE = 41
_ENTRY = struct.Struct(">Bq32s")


class EntryError(ValueError):
    """An entry or an event body is malformed; the message says what is wrong."""


class Entry(NamedTuple):
    """A decoded entry: the event's timestamp (ns) and the SHA-256 of its stored v2 bytes."""

    ts_ns: int
    body_sha256: bytes

    def encode(self) -> bytes:
        """The 41 committed bytes."""
        return _ENTRY.pack(ENTRY_FORMAT, self.ts_ns, self.body_sha256)

    def leaf(self) -> bytes:
        """The RFC 9162 leaf hash of this entry."""
        return leaf_hash(self.encode())


def entry_for(ts_ns: int, body: bytes) -> Entry:
    """The entry of an event with timestamp `ts_ns` stored as `body`."""
    return Entry(ts_ns, hashlib.sha256(body).digest())


def entry_bytes(ts_ns: int, body: bytes, _pack: Any = _ENTRY.pack, _sha256: Any = hashlib.sha256) -> bytes:
    """The 41 entry bytes of an event (the ingest hot path: no Entry object)."""
    return bytes(_pack(ENTRY_FORMAT, ts_ns, _sha256(body).digest()))


def decode_entry(data: bytes) -> Entry:
    """Parse 41 entry bytes; EntryError if the length or format version is wrong."""
    if len(data) != ENTRY_SIZE:
        raise EntryError(f"an entry has {ENTRY_SIZE} bytes, got {len(data)}")
    version, ts_ns, digest = _ENTRY.unpack(data)
    if version != ENTRY_FORMAT:
        raise EntryError(f"entry format {version} is unknown; this verifier reads format {ENTRY_FORMAT}")
    return Entry(ts_ns, digest)


def body_timestamp_ns(body: bytes) -> int:
    """The `timestamp` field of stored event bytes, in ns; EntryError if absent or invalid."""
    try:
        event = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise EntryError(f"the event body is not JSON: {exc}") from None
    return event_timestamp_ns(event)


def event_timestamp_ns(event: Any) -> int:
    """The `timestamp` field of a decoded event, in ns; EntryError if absent or invalid."""
    if not isinstance(event, dict) or "timestamp" not in event:
        raise EntryError("the event body has no timestamp field")
    try:
        return parse_stored_ns(event["timestamp"])
    except TimestampError as exc:
        raise EntryError(f"the event timestamp is invalid: {exc}") from None
