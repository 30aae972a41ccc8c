"""SQLiteStore's retention part: reading a stream by time for archives, and purging it (the
contract is in store/base.py): rows are deleted, with their facets."""

from __future__ import annotations

from collections.abc import Iterator

from siemgate.model.features import Feature
from siemgate.store.records import StoredEvent
from siemgate.store.sqlite.connection import SQLiteBase
from siemgate.store.sqlite.events import MAX_TS


class SQLiteRetention(SQLiteBase):
    # retention: reading by time, purging ---------------------------------------------------------
    def iter_events(
        self, account_id: int, feature: Feature, start_ts: int, end_ts: int, batch: int = 5000
    ) -> Iterator[list[StoredEvent]]:
        conn = self._reader()
        code = feature.code
        after: tuple[int, str] | None = None
        sql = (
            "SELECT seq, ts, uuid, body FROM events INDEXED BY events_by_time WHERE account_id = ? AND feature = ?"
            " AND ts >= ? AND ts < ?"
        )
        while True:
            if after is None:
                rows = conn.execute(sql + " ORDER BY ts, uuid LIMIT ?", (account_id, code, start_ts, end_ts, batch))
            else:  # from the last row's time (the index's lower bound), not the day's start again
                rows = conn.execute(
                    sql + " AND (ts > ? OR uuid > ?) ORDER BY ts, uuid LIMIT ?",
                    (account_id, code, after[0], end_ts, after[0], after[1], batch),
                )
            page = [(int(r[0]), int(r[1]), str(r[2]), bytes(r[3])) for r in rows]
            if not page:
                return
            yield page
            after = (page[-1][1], page[-1][2])
            if len(page) < batch:
                return

    def purge_events(self, account_id: int, feature: Feature, before_ts: int, *, max_seq: int | None = None) -> int:
        code = feature.code
        limit = MAX_TS if max_seq is None else max_seq
        with self._write() as conn:
            before = conn.total_changes
            conn.execute(
                "DELETE FROM events WHERE account_id = ? AND feature = ? AND ts < ? AND seq <= ?",
                (account_id, code, before_ts, limit),
            )
            deleted = conn.total_changes - before
            has_facets = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'facets'").fetchone()
            if has_facets:  # the explorer's per-event rows go with their events
                conn.execute(
                    "DELETE FROM facets WHERE account_id = ? AND feature = ? AND ts < ? AND seq <= ?",
                    (account_id, code, before_ts, limit),
                )
        return deleted
