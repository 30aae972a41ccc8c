"""SQLiteStore's retention part: reading a stream by time for archives, and purging it (the
contract is in store/base.py): rows are deleted, with their facets."""

from __future__ import annotations

from collections.abc import Iterator

from siemgate.model.features import Feature
from siemgate.store.records import StoredEvent
from siemgate.store.sqlite.connection import SQLiteBase
from siemgate.store.sqlite.events import MAX_TS

PURGE_CHUNK = 5000  # events (or facets) deleted per write transaction


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
        """Rows are deleted at most PURGE_CHUNK per write transaction, oldest first, so that a purge
        of a day (or years) of millions of events never holds SQLite's one writer for long: other
        accounts' ingest waits for one chunk, not for the whole purge."""
        code = feature.code
        limit = MAX_TS if max_seq is None else max_seq
        deleted = self._purge_chunks(
            "DELETE FROM events WHERE account_id = ? AND feature = ? AND seq IN (SELECT seq FROM events INDEXED BY"
            " events_by_time WHERE account_id = ? AND feature = ? AND ts < ? AND seq <= ? ORDER BY ts LIMIT ?)",
            (account_id, code, account_id, code, before_ts, limit),
        )
        has_facets = self._reader().execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'facets'")
        if has_facets.fetchone():  # the explorer's per-event rows go with their events
            self._purge_chunks(
                "DELETE FROM facets WHERE account_id = ? AND feature = ? AND (ts, seq) IN (SELECT ts, seq FROM facets"
                " WHERE account_id = ? AND feature = ? AND ts < ? AND seq <= ? ORDER BY ts LIMIT ?)",
                (account_id, code, account_id, code, before_ts, limit),
            )
        return deleted

    def _purge_chunks(self, sql: str, params: tuple[int, ...]) -> int:
        """Run the DELETE `sql` (its last parameter the chunk size) in write transactions until it
        deletes fewer than PURGE_CHUNK rows; how many it deleted in all."""
        deleted = 0
        while True:
            with self._write() as conn:
                before = conn.total_changes
                conn.execute(sql, (*params, PURGE_CHUNK))
                count = conn.total_changes - before
            deleted += count
            if count < PURGE_CHUNK:
                return deleted
