"""PostgresStore, retention part: reading a stream by time for archives, and purging it (the contract is
in store/base.py): days wholly before the horizon are dropped as partitions when they hold
nothing else, other events are deleted row by row."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg

from siemgate.model.features import Feature
from siemgate.store.postgres.connection import PgBase
from siemgate.store.postgres.events import _MAX_TS, DAY, partition_name
from siemgate.store.records import StoredEvent

# How long a purge waits for the exclusive lock that dropping a day's partition takes (seconds).
# Statements that come while it waits queue behind it, every account's: past this, it deletes the
# day's rows instead (which blocks no one) and a later purge drops the emptied partition.
DROP_LOCK_WAIT = 1.0


class PgRetention(PgBase):
    _partitions: set[tuple[int, int]]  # shared with PgEvents (set by PostgresStore)

    # archiving and retention -------------------------------------------------------------------------
    def iter_events(
        self, account_id: int, feature: Feature, start_ts: int, end_ts: int, batch: int = 5000
    ) -> Iterator[list[StoredEvent]]:
        if batch < 1:
            raise ValueError("batch must be at least 1")
        code = feature.code
        after: tuple[int, str] | None = None
        while True:
            if after is None:
                sql = (
                    "SELECT seq, ts, uuid, body FROM events WHERE account_id = %s AND feature = %s"
                    " AND ts >= %s AND ts < %s ORDER BY ts, uuid LIMIT %s"
                )
                params: tuple[Any, ...] = (account_id, code, start_ts, end_ts, batch)
            else:
                sql = (
                    "SELECT seq, ts, uuid, body FROM events WHERE account_id = %s AND feature = %s"
                    " AND ts >= %s AND (ts, uuid) > (%s, %s) AND ts < %s ORDER BY ts, uuid LIMIT %s"
                )
                params = (account_id, code, after[0], after[0], after[1], end_ts, batch)
            with self._conn("cannot read events") as conn:
                rows = conn.cursor(binary=True).execute(sql, params).fetchall()
            if not rows:
                return
            yield [(int(s), int(t), str(u), bytes(b)) for s, t, u, b in rows]
            if len(rows) < batch:
                return
            after = (int(rows[-1][1]), str(rows[-1][2]))

    def purge_events(self, account_id: int, feature: Feature, before_ts: int, *, max_seq: int | None = None) -> int:
        """Days wholly before `before_ts` (and, with `max_seq`, holding no later seq) whose partition
        holds no other account's events are dropped as a whole; otherwise rows are deleted."""
        code = feature.code
        limit = _MAX_TS if max_seq is None else max_seq
        buckets = self._rows(
            "SELECT bucket, max_seq FROM event_buckets WHERE account_id = %s AND feature = %s AND bucket < %s"
            " ORDER BY bucket",
            (account_id, code, before_ts),
        )
        removed = 0
        for bucket, bucket_max_seq in buckets:
            if bucket + DAY <= before_ts and bucket_max_seq <= limit:
                removed += self._purge_day(account_id, code, int(bucket), limit)
            else:
                removed += self._delete_rows(account_id, code, int(bucket), before_ts, limit)
        return removed

    def _delete_rows(self, account_id: int, code: int, bucket: int, before_ts: int, max_seq: int) -> int:
        """Delete the stream's events of one day with ts < before_ts and seq <= max_seq; returns how many."""
        with self._write("cannot purge events") as conn:
            cur = conn.execute(
                "DELETE FROM events WHERE account_id = %s AND feature = %s AND ts >= %s AND ts < %s AND seq <= %s",
                (account_id, code, bucket, min(before_ts, bucket + DAY), max_seq),
            )
            removed = cur.rowcount
            conn.execute(
                "DELETE FROM facets WHERE account_id = %s AND feature = %s AND ts >= %s AND ts < %s AND seq <= %s",
                (account_id, code, bucket, min(before_ts, bucket + DAY), max_seq),
            )
            self._count_removed(conn, account_id, code, bucket, removed)
        return removed

    def _purge_day(self, account_id: int, code: int, bucket: int, max_seq: int) -> int:
        """Remove the stream's events of a day wholly before the horizon: drop the partition when it
        holds nothing else (no other account's events, no seq after `max_seq`), else delete rows."""
        name = partition_name(code, bucket)
        others = "SELECT 1 FROM event_buckets WHERE feature = %s AND bucket = %s AND account_id <> %s LIMIT 1"
        mine = "SELECT rows, max_seq FROM event_buckets WHERE account_id = %s AND feature = %s AND bucket = %s"
        dropped = False
        with self._write("cannot purge events") as conn:
            conn.execute("SET LOCAL lock_timeout = '30s'")
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (self._ddl_key,))
            exists = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (name,)).fetchone()
            if not (exists and exists[0]):
                conn.execute(
                    "DELETE FROM event_buckets WHERE feature = %s AND bucket = %s", (code, bucket)
                )  # the partition is gone, and its rows with it
                return 0
            droppable = conn.execute(others, (code, bucket, account_id)).fetchone() is None
            locked = droppable and self._lock_for_drop(conn)
            if locked:  # nobody can add a row now: look again
                droppable = conn.execute(others, (code, bucket, account_id)).fetchone() is None
            row = conn.execute(mine, (account_id, code, bucket)).fetchone()
            if locked and droppable and (row is None or row[1] <= max_seq):
                removed = int(row[0]) if row else 0
                conn.execute(f"DROP TABLE IF EXISTS {name}, {partition_name(code, bucket, 'facets')}")
                conn.execute("DELETE FROM event_buckets WHERE feature = %s AND bucket = %s", (code, bucket))
                dropped = True
            else:
                removed = conn.execute(
                    f"DELETE FROM {name} WHERE account_id = %s AND feature = %s AND seq <= %s",
                    (account_id, code, max_seq),
                ).rowcount
                conn.execute(
                    f"DELETE FROM {partition_name(code, bucket, 'facets')} WHERE account_id = %s AND feature = %s"
                    " AND seq <= %s",
                    (account_id, code, max_seq),
                )
                # Droppable but for a statement under way: the emptied day's record stays, so the
                # next purge drops the partition.
                self._count_removed(conn, account_id, code, bucket, removed, keep=droppable and not locked)
        if dropped:
            self._partitions.discard((code, bucket))
        return removed

    @staticmethod
    def _lock_for_drop(conn: psycopg.Connection[Any]) -> bool:
        """Lock the events tables exclusively (what dropping a partition needs), waiting for
        statements under way at most DROP_LOCK_WAIT; False when they take longer (the lock is not
        taken, the transaction goes on)."""
        try:
            with conn.transaction():  # a savepoint: the timeout undoes only this
                conn.execute(f"SET LOCAL lock_timeout = '{int(DROP_LOCK_WAIT * 1000)}ms'")
                conn.execute("LOCK TABLE events, facets IN ACCESS EXCLUSIVE MODE")
        except psycopg.errors.LockNotAvailable:
            return False
        finally:
            conn.execute("SET LOCAL lock_timeout = '30s'")
        return True

    @staticmethod
    def _count_removed(
        conn: psycopg.Connection[Any], account_id: int, code: int, bucket: int, removed: int, *, keep: bool = False
    ) -> None:
        """Count the day's rows removed; its record goes once it holds none (`keep`: stays)."""
        conn.execute(
            "UPDATE event_buckets SET rows = rows - %s WHERE account_id = %s AND feature = %s AND bucket = %s",
            (removed, account_id, code, bucket),
        )
        if keep:
            return
        conn.execute(
            "DELETE FROM event_buckets WHERE account_id = %s AND feature = %s AND bucket = %s AND rows <= 0",
            (account_id, code, bucket),
        )
