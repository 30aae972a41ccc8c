"""Purge records: the audit events in which siemgate recorded each retention run that purged
events (docs/retention.md, "Retention and the signed log"), as verifiers read them.

A record is the audit event's stored v2 bytes and its index in the account's auditevents log. Its
`aux_info` (a JSON string) holds `{"kind": "retention-purge", "feature", "cutoff_ns",
"index_bound", ...}`: the run could purge only indices below `index_bound` whose committed
timestamp was older than `cutoff_ns`, the cutoff of the policy in force. A purged index is
legitimate only if such a record covers it. The record is itself a leaf of the auditevents log, so
it is proven by that log (`entry` is what its leaf commits to).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from siemgate.tlog.entry import Entry, EntryError, body_timestamp_ns, entry_for

KIND = "retention-purge"
NO_BOUND = 2**63
ARCHIVED = ("jsonl", "parquet")  # formats of runs that archive before they purge


@dataclass(frozen=True)
class Purge:
    """A recorded purge: indices below `bound` with a committed timestamp before `cutoff_ns` could go.
    `archive` is the run's archive format (`none`, `jsonl`, `parquet`; None when not recorded): a run
    with a format purged only what it had archived."""

    audit_index: int
    cutoff_ns: int
    bound: int
    entry: Entry
    archive: str | None = None

    @property
    def archived(self) -> bool:
        """Whatever this run purged, it had archived first."""
        return self.archive in ARCHIVED


def parse_purge(audit_index: int, body: bytes, feature: str) -> Purge | None:
    """The purge `body` records for the stream `feature`, or None when it records another stream's.

    Raises ValueError saying why the record is not a purge record."""
    try:
        event = json.loads(body)
        info = json.loads(event["aux_info"])
        if not isinstance(info, dict) or info.get("kind") != KIND:
            raise ValueError(f"its aux_info is not a {KIND} record")
        if info.get("feature") != feature:
            return None

        bound = info.get("index_bound")
        return Purge(
            audit_index,
            int(info["cutoff_ns"]),
            NO_BOUND if bound is None else int(bound),
            entry_for(body_timestamp_ns(body), body),
            info.get("archive") if isinstance(info.get("archive"), str) else None,
        )
    except (KeyError, TypeError, EntryError, json.JSONDecodeError) as exc:
        raise ValueError(f"not a purge record ({exc})") from None


def covering(purges: Sequence[Purge], index: int, ts_ns: int) -> Purge | None:
    """The first recorded purge under which `index` (committed at `ts_ns`) could legitimately go."""
    for purge in purges:
        if index < purge.bound and ts_ns < purge.cutoff_ns:
            return purge
    return None


def archiving(purges: Sequence[Purge], index: int, ts_ns: int) -> Purge | None:
    """The recorded purge that must have archived `index` (committed at `ts_ns`) before purging it:
    the first covering one, when every purge that covers it archived first; None when none covers
    it or one purged without archiving."""
    found = [p for p in purges if index < p.bound and ts_ns < p.cutoff_ns]
    return found[0] if found and all(p.archived for p in found) else None
