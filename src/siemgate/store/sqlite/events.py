"""SQLiteStore's event logs (the contract is in store/base.py; the design in docs/cursors.md): a
batch takes consecutive seqs under the one writer, duplicates are turned away by the unique
(ts, uuid) index, and pages are read along seq or through the timestamp index, whichever the
window's size makes cheaper, from one snapshot, examining a bounded number of stored events.
"""

from __future__ import annotations

import functools
import itertools
import sqlite3
from collections.abc import Sequence
from typing import Any

from siemgate.errors import NotFound, StoreError
from siemgate.model.features import Feature
from siemgate.store.errors import ACCOUNT_GONE, LIVE
from siemgate.store.interfaces import ScanBudget
from siemgate.store.records import EventRow, InsertResult, NewEvent, PageRows
from siemgate.store.sqlite.connection import SQLiteBase
from siemgate.tlog.entry import entry_bytes

MAX_TS = 2**63 - 1
# The v1 view of a stored event, computed in SQL from the v1 cut (see model.encoding).
_V1_BODY = (
    "CASE WHEN v1_cut IS NULL THEN body ELSE substr(body, 1, v1_cut >> 2)"
    " || CASE WHEN v1_cut & 3 = 2 THEN X'7D7D' ELSE X'7D' END END"
)
# A bounded window with fewer rows than this is read through the timestamp index; larger or open
# windows are read along seq (docs/cursors.md, "Query plans").
_WINDOW_PLAN_MIN = 2000


_MAX_ROWS_PER_INSERT = 1024


@functools.lru_cache(maxsize=64)
def _values_sql(head: str, tail: str, width: int, count: int) -> str:
    row = "(" + ",".join("?" * width) + ")"
    return f"{head} {','.join([row] * count)}{tail}"


def _insert_rows(conn: sqlite3.Connection, head: str, tail: str, rows: Sequence[tuple[Any, ...]]) -> None:
    """`head VALUES (..), (..), .. tail` for the rows, in order: one statement per power-of-two
    chunk (so that a few statement texts are prepared and cached) instead of executemany's one
    step per row. Each step releases and retakes the GIL, and while another request's thread
    waits for it that was a thread switch per row (docs/benchmarks.md, "Ingest")."""
    width = len(rows[0]) if rows else 0
    done = 0
    while done < len(rows):
        count = min(1 << ((len(rows) - done).bit_length() - 1), _MAX_ROWS_PER_INSERT)
        chunk = rows[done : done + count]
        conn.execute(_values_sql(head, tail, width, count), list(itertools.chain.from_iterable(chunk)))
        done += count


class SQLiteEvents(SQLiteBase, ScanBudget):
    log_entries_on = True  # off only in the benchmark that measures what the log costs

    # writing --------------------------------------------------------------------------------------
    def insert_events(self, account_id: int, feature: Feature, events: Sequence[NewEvent]) -> InsertResult:
        if not events:
            return InsertResult([])
        code = feature.code
        with self._write() as conn:
            # One writer: an account deleted (or being deleted) before this transaction stays so through it.
            if conn.execute(f"SELECT 1 FROM accounts WHERE id = ? AND {LIVE}", (account_id,)).fetchone() is None:
                raise NotFound(ACCOUNT_GONE.format(account_id=account_id))
            row = conn.execute(
                "SELECT head_seq, max_ts FROM streams WHERE account_id = ? AND feature = ?",
                (account_id, code),
            ).fetchone()
            head, max_ts = (row[0], row[1]) if row else (0, -(2**63))
            stamped_again = self._stamped_before(conn, account_id, code, events)
            fresh = [i for i, event in enumerate(events) if event.uuid not in stamped_again]
            # Seqs are dense (docs/cursors.md, "Sequence"): the batch is written with consecutive
            # seqs; when the unique (ts, uuid) index turned some away as duplicates (of the stream or
            # of an earlier row of this batch), it is written again without them.
            conn.execute("SAVEPOINT batch")
            stored = self._insert_batch(conn, account_id, code, head, max_ts, events, fresh)
            if stored < len(fresh):
                kept = self._seqs_present(conn, account_id, code, head + 1, head + len(fresh))
                fresh = [i for n, i in enumerate(fresh, start=head + 1) if n in kept]
                conn.execute("ROLLBACK TO batch")
                self._insert_batch(conn, account_id, code, head, max_ts, events, fresh)
            conn.execute("RELEASE batch")
            seqs: list[int | None] = [None] * len(events)
            for seq, i in enumerate(fresh, start=head + 1):
                seqs[i] = seq
            facet_rows = [
                (account_id, code, events[i].ts, seq, *facets)
                for seq, i in enumerate(fresh, start=head + 1)
                if (facets := events[i].facets) is not None
            ]
            if facet_rows:
                _insert_rows(conn, "INSERT INTO facets VALUES", "", facet_rows)
            if fresh and self.log_entries_on:  # the stream's log, in the same transaction (docs/integrity.md)
                entries = b"".join([entry_bytes(events[i].ts, events[i].body) for i in fresh])
                try:  # one row: the batch's entries from index `head` (seq head + 1) on
                    conn.execute("INSERT INTO log_entries VALUES (?, ?, ?, ?)", (account_id, code, head, entries))
                except sqlite3.IntegrityError:
                    raise StoreError(
                        f"cannot store the events: the log of the stream already has an entry at index {head}"
                        " or after, for a seq never given (an integrity error: docs/integrity.md)"
                    ) from None
            if fresh:
                conn.execute(
                    "INSERT INTO streams (account_id, feature, head_seq, max_ts) VALUES (?, ?, ?, ?)"
                    " ON CONFLICT (account_id, feature) DO UPDATE SET head_seq = excluded.head_seq,"
                    " max_ts = excluded.max_ts",
                    (account_id, code, head + len(fresh), max([max_ts, *(events[i].ts for i in fresh)])),
                )
        return InsertResult(seqs)

    @staticmethod
    def _insert_batch(
        conn: sqlite3.Connection,
        account_id: int,
        code: int,
        head: int,
        max_ts: int,
        events: Sequence[NewEvent],
        chosen: Sequence[int],
    ) -> int:
        """Insert events[i] for i in `chosen` with seqs head + 1, head + 2, ...; duplicates of the
        (ts, uuid) index are skipped. Returns how many rows were stored."""
        rows = []
        for seq, i in enumerate(chosen, start=head + 1):
            event = events[i]
            max_ts = max(max_ts, event.ts)
            rows.append((account_id, code, seq, event.ts, max_ts, event.uuid, event.body, event.v1_cut))
        before = conn.total_changes
        tail = " ON CONFLICT (account_id, feature, ts, uuid) DO NOTHING"
        _insert_rows(conn, "INSERT INTO events VALUES", tail, rows)
        return conn.total_changes - before

    @staticmethod
    def _seqs_present(conn: sqlite3.Connection, account_id: int, code: int, first: int, last: int) -> set[int]:
        rows = conn.execute(
            "SELECT seq FROM events WHERE account_id = ? AND feature = ? AND seq BETWEEN ? AND ?",
            (account_id, code, first, last),
        )
        return {int(r[0]) for r in rows}

    @staticmethod
    def _stamped_before(conn: sqlite3.Connection, account_id: int, code: int, events: Sequence[NewEvent]) -> set[str]:
        """Of the events that came without a timestamp, the uuids already seen that way; records the rest."""
        uuids = [e.uuid for e in events if e.ts_assigned]
        if not uuids:
            return set()
        found: set[str] = set()
        for i in range(0, len(uuids), 500):
            chunk = uuids[i : i + 500]
            marks = ",".join("?" * len(chunk))
            found.update(
                r[0]
                for r in conn.execute(
                    f"SELECT uuid FROM stamped_uuids WHERE account_id = ? AND feature = ? AND uuid IN ({marks})",
                    (account_id, code, *chunk),
                )
            )
        conn.executemany(
            "INSERT OR IGNORE INTO stamped_uuids VALUES (?, ?, ?)",
            [(account_id, code, u) for u in uuids if u not in found],
        )
        return found

    def start_position(self, account_id: int, feature: Feature, start: int) -> int:
        with self._snapshot() as conn:
            return self._start_position(conn, account_id, feature.code, start)

    @staticmethod
    def _start_position(conn: sqlite3.Connection, account_id: int, code: int, start: int) -> int:
        # Two statements: SQLite answers a lone min() or max() from the primary key in O(log n).
        first = conn.execute("SELECT min(seq) FROM events WHERE account_id = ? AND feature = ?", (account_id, code))
        lo = first.fetchone()[0]
        if lo is None:  # the head of the same snapshot: whatever is stored after it comes after the cursor
            head = conn.execute("SELECT head_seq FROM streams WHERE account_id = ? AND feature = ?", (account_id, code))
            row = head.fetchone()
            return int(row[0]) if row else 0
        last = conn.execute("SELECT max(seq) FROM events WHERE account_id = ? AND feature = ?", (account_id, code))
        hi = last.fetchone()[0] + 1  # find the first seq in [lo, hi) whose max_ts >= start
        probe = "SELECT seq, max_ts FROM events WHERE account_id = ? AND feature = ? AND seq >= ? ORDER BY seq LIMIT 1"
        while lo < hi:
            mid = (lo + hi) // 2
            row = conn.execute(probe, (account_id, code, mid)).fetchone()
            if row is None or row[0] >= hi:
                hi = mid
            elif row[1] >= start:
                hi = row[0]
            else:
                lo = row[0] + 1
        return int(lo) - 1

    def _window_plan(
        self, conn: sqlite3.Connection, account_id: int, code: int, start: int, end: int | None, limit: int
    ) -> str:
        """Which index to read a window through: along seq (open or large windows) or by timestamp."""
        if end is None:
            return "seq"
        return "ts" if self._window_small(conn, account_id, code, start, end, limit) else "seq"

    @staticmethod
    def _window_small(conn: sqlite3.Connection, account_id: int, code: int, start: int, last: int, limit: int) -> bool:
        """Whether [start, last] holds fewer than 2000 + 4 * limit events (counted through the
        timestamp index, reading at most that many entries)."""
        small = _WINDOW_PLAN_MIN + 4 * limit
        window = conn.execute(
            "SELECT count(*) FROM (SELECT 1 FROM events INDEXED BY events_by_time WHERE account_id = ?"
            " AND feature = ? AND ts BETWEEN ? AND ? LIMIT ?)",
            (account_id, code, start, last, small),
        ).fetchone()[0]
        return bool(window < small)

    @staticmethod
    def _window_sql(plan: str, columns: str) -> str:
        # `+ts` keeps SQLite from reading the timestamp index on the seq-ordered plan.
        if plan == "ts":
            return (
                f"SELECT {columns} FROM events INDEXED BY events_by_time WHERE account_id = ? AND feature = ?"
                " AND seq > ? AND seq <= ? AND ts BETWEEN ? AND ? ORDER BY seq LIMIT ?"
            )
        return (
            f"SELECT {columns} FROM events WHERE account_id = ? AND feature = ? AND seq > ? AND seq <= ?"
            " AND +ts BETWEEN ? AND ? ORDER BY seq LIMIT ?"
        )

    def read_events(
        self, account_id: int, feature: Feature, after_seq: int, start: int, end: int | None, limit: int
    ) -> list[EventRow]:
        code = feature.code
        last = MAX_TS if end is None else end
        with self._snapshot() as conn:
            plan = self._window_plan(conn, account_id, code, start, end, limit)
            sql = self._window_sql(plan, "seq, body, v1_cut")
            return conn.execute(sql, (account_id, code, after_seq, MAX_TS, start, last, limit)).fetchall()

    def read_page(
        self, account_id: int, feature: Feature, after_seq: int, start: int, end: int | None, limit: int, *, v1: bool
    ) -> PageRows:
        """Bounded work (docs/cursors.md, "Bounded work"): a small bounded window is read through
        the timestamp index; anything else along seq, examining at most scan_budget(limit) stored
        events. A page that reaches that budget before the stream's head with at most `limit`
        matches stops there: it returns its matches and the last seq it examined (every seq up to
        it is committed in this snapshot, and no event ever gets a seq below the head again), unless
        the window is an open one with few events, which is then read through the timestamp index."""
        code = feature.code
        last = MAX_TS if end is None else end
        body = _V1_BODY if v1 else "body"
        with self._snapshot() as conn:  # the plan, the page and has_more from one snapshot
            plan = self._window_plan(conn, account_id, code, start, end, limit)
            if plan == "ts":
                return self._page(conn, plan, body, (account_id, code, after_seq, MAX_TS, start, last), limit)
            while True:
                stop = after_seq + self.scan_budget(limit)
                page = self._page(conn, plan, body, (account_id, code, after_seq, stop, start, last), limit)
                if page.has_more:
                    return page
                head = conn.execute(
                    "SELECT head_seq FROM streams WHERE account_id = ? AND feature = ?", (account_id, code)
                ).fetchone()
                if head is None or head[0] <= stop:  # examined up to the head: the page is exact
                    return page
                if end is None and self._window_small(conn, account_id, code, start, last, limit):
                    return self._page(conn, "ts", body, (account_id, code, after_seq, MAX_TS, start, last), limit)
                if page.count == 0:  # a cursor behind the retention horizon starts from the oldest kept event
                    first = conn.execute(
                        "SELECT min(seq) FROM events WHERE account_id = ? AND feature = ?", (account_id, code)
                    ).fetchone()[0]
                    if first is not None and first - 1 > stop:
                        after_seq = first - 1
                        continue
                return PageRows(page.items, page.count, page.last_seq, True, stop)

    def _page(self, conn: sqlite3.Connection, plan: str, body: str, params: tuple[int, ...], limit: int) -> PageRows:
        """The page of the window read through `plan`: params are (account, feature, after seq,
        last seq to examine, start, end); has_more is whether a match follows up to that last seq."""
        # SQLite aggregates the subquery's rows in its ORDER BY order; the JSON is joined in C.
        inner = self._window_sql(plan, f"seq, {body} AS b")
        count, last_seq, items = conn.execute(
            f"SELECT count(*), max(seq), CAST(group_concat(b, ',') AS BLOB) FROM ({inner})", (*params, limit)
        ).fetchone()
        has_more = False
        if count == limit:
            probe = self._window_sql(plan, "1")
            account_id, code, _, stop, start, last = params
            has_more = conn.execute(probe, (account_id, code, last_seq, stop, start, last, 1)).fetchone() is not None
        return PageRows(items or b"", count, last_seq, has_more)

    def head_seq(self, account_id: int, feature: Feature) -> int:
        rows = self._rows(
            "SELECT head_seq FROM streams WHERE account_id = ? AND feature = ?", (account_id, feature.code)
        )
        return int(rows[0][0]) if rows else 0

    def count_events(self, account_id: int, feature: Feature, after_seq: int = 0) -> int:
        sql = "SELECT count(*) FROM events WHERE account_id = ? AND feature = ? AND seq > ?"
        return int(self._rows(sql, (account_id, feature.code, after_seq))[0][0])

    def first_unread_time(self, account_id: int, feature: Feature, after_seq: int) -> int | None:
        sql = "SELECT max_ts FROM events WHERE account_id = ? AND feature = ? AND seq > ? ORDER BY seq LIMIT 1"
        rows = self._rows(sql, (account_id, feature.code, after_seq))
        return int(rows[0][0]) if rows else None
