"""What ties retention to the stream's signed log (docs/retention.md, "Retention and the signed
log"): the day-close checkpoint a run may go up to, the check of the events it archives against
their log entries, and finding the audit event that recorded a purge as it was stored."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from siemgate.model.features import Feature
from siemgate.retention.archive import ArchiveError
from siemgate.store.base import Store, StoredEvent
from siemgate.tlog.entry import entry_bytes

DAY = 86400
GAP = 1024  # indices closer than this are read with one range query


@dataclass(frozen=True)
class DayClose:
    """The newest day-close checkpoint of a stream: the first checkpoint signed after a UTC
    midnight (unix seconds `time`), covering `size` indices; `note` is the signed note."""

    time: int
    size: int
    note: str


def day_close(store: Store, account_id: int, feature: Feature) -> DayClose | None:
    """The stream's newest day-close checkpoint, or None when it has no checkpoint: the first of
    the newest UTC day that has one. Two reads by the stream's key (a stream checkpointed every
    10 s holds 3 million a year; reading them all took 0.8 s per 300,000 each retention run)."""
    newest = store.last_log_checkpoint(account_id, feature)
    if newest is None:
        return None
    first = store.first_log_checkpoint_since(account_id, feature, newest.time - newest.time % DAY)
    if first is None:  # deleted since (the account's deletion)
        return None
    return DayClose(first.time, first.size, first.note)


def index_runs(indices: Sequence[int]) -> list[tuple[int, int]]:
    """[begin, end) ranges covering `indices`, indices closer than GAP sharing one (one query each)."""
    runs: list[tuple[int, int]] = []
    for idx in sorted(indices):
        if runs and idx - runs[-1][1] < GAP:
            runs[-1] = (runs[-1][0], idx + 1)
        else:
            runs.append((idx, idx + 1))
    return runs


def check_entries(store: Store, account_id: int, feature: Feature, events: Sequence[StoredEvent]) -> None:
    """Check that each event (seq, ts, uuid, body) is what its log entry (index seq - 1) commits to.

    Raises ArchiveError naming the first index whose event does not match or has no entry: the
    store was changed outside siemgate, and nothing of the day is archived or purged."""
    by_index = {seq - 1: (ts, uuid, body) for seq, ts, uuid, body in events}
    for begin, end in index_runs(list(by_index)):
        stored = dict(store.log_entry_rows(account_id, feature, begin, end))
        for idx in range(begin, end):
            event = by_index.get(idx)
            if event is None:
                continue
            ts, uuid, body = event
            entry = stored.get(idx)
            if entry is None:
                raise ArchiveError(
                    f"index {idx} (event {uuid}) has no log entry; nothing of its day is archived or purged"
                    " (docs/integrity.md)"
                )
            if entry != entry_bytes(ts, body):
                raise ArchiveError(
                    f"index {idx} (event {uuid}): the stored event does not match its log entry (changed outside"
                    " siemgate); nothing of its day is archived or purged (docs/integrity.md)"
                )


def purge_record(store: Store, account_id: int, after_seq: int, uuid: str) -> tuple[int, bytes]:
    """(log index, stored bytes) of the audit event `uuid` written after seq `after_seq` of the
    account's audit stream. Raises ArchiveError when it is not there."""
    while True:
        rows = store.read_events(account_id, Feature.AUDITEVENTS, after_seq, -(2**63), None, 500)
        if not rows:
            raise ArchiveError(f"the audit event {uuid} recording the purge was not found in the audit stream")
        for seq, body, _ in rows:
            if f'"uuid":"{uuid}"'.encode() in body:
                return seq - 1, body
        after_seq = rows[-1][0]
