"""PostgresStore, part 3: the event logs (the contract is in store/base.py; the design in
docs/cursors.md, "PostgreSQL").

- Seqs: a writer locks its stream's row in `streams` for its whole transaction, so seqs are given
  in commit order and a reader can never see seq n+1 before seq n.
- Writes: duplicates are looked up under that lock, then the new rows go in with binary COPY.
- Storage: `events` is partitioned by (feature, UTC day of ts); partitions are created on demand.
  `event_buckets` records, per stream and day, how many events and which seqs it holds: readers
  skip the days with nothing after their cursor, purges drop whole days.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

import psycopg

from siemgate.errors import NotFound, StoreError
from siemgate.model.features import Feature
from siemgate.store.errors import ACCOUNT_GONE, LIVE, IntegrityConflict
from siemgate.store.interfaces import ScanBudget
from siemgate.store.postgres.connection import PgBase
from siemgate.store.records import EventRow, InsertResult, NewEvent, PageRows
from siemgate.tlog.entry import entry_bytes

DAY = 86_400 * 1_000_000_000
_MIN_TS, _MAX_TS = -(2**63), 2**63 - 1
# A bounded window with fewer rows than this is read through the timestamp index; larger or open
# windows are read along seq (docs/cursors.md, "Query plans").
_WINDOW_PLAN_MIN = 2000
# Pages whose chosen days are remembered for the chain's next page (docs/cursors.md, "PostgreSQL").
_PAGE_DAYS_KEPT = 4096
_V1_BODY = (
    "CASE WHEN v1_cut IS NULL THEN body ELSE substring(body FROM 1 FOR (v1_cut >> 2)::int)"
    " || CASE WHEN v1_cut & 3 = 2 THEN '\\x7d7d'::bytea ELSE '\\x7d'::bytea END END"
)
_COPY_TYPES = ["int8", "int8", "int8", "int8", "int8", "text", "bytea", "int8"]
_FACET_TYPES = ["int8", "int8", "int8", "int8", "text", "text", "text", "text", "text", "text"]


def _width(columns: str) -> int:
    """How many columns a select list of plain names and parenthesised expressions has."""
    depth, width = 0, 1
    for char in columns:
        depth += (char == "(") - (char == ")")
        width += char == "," and depth == 0
    return width


def _next_days(rows: Sequence[tuple[Any, ...]], day_at: int, unread: Sequence[tuple[int, int, int]]) -> tuple[int, ...]:
    """The days to read first for the chain's next page: those this page's rows came from (the
    row at `day_at` of each), and the first of the `unread` (min seq, day, rows) days by min seq."""
    days = {int(r[day_at]) for r in rows}
    if unread:
        days.add(int(unread[0][1]))
    return tuple(sorted(days))


def bucket_of(ts: int) -> int:
    """The start of the UTC day holding `ts`: the partition key."""
    return ts - ts % DAY


def partition_name(code: int, bucket: int, table: str = "events") -> str:
    """The day partition of `table` (events, or their facets) for a feature code and bucket."""
    day = dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=bucket // 1000)
    return f"{table}_{code}_{day:%Y%m%d}"


_PARTITIONED = ("events", "facets")
# Days whose partitions one DDL transaction creates: about 0.2 s under the store-wide DDL lock on
# the 2-core test machine (500 days in one transaction held it 13 s).
_PARTITION_DAYS = 8


class PgEvents(PgBase, ScanBudget):
    log_entries_on = True  # off only in the benchmark that measures what the log costs
    _partitions: set[tuple[int, int]]  # (feature code, bucket) known to exist (set by PostgresStore)
    # (account, feature, a page's last seq) -> the days that page was read from, and its plan
    _page_days: dict[tuple[int, int, int], tuple[tuple[int, ...], str]]

    # partitions -----------------------------------------------------------------------------------
    def _ensure_partitions(self, code: int, buckets: Iterable[int]) -> None:
        """Create the missing day partitions of `feature`, one process at a time, at most
        _PARTITION_DAYS days per DDL transaction: another account's first event of a new day waits
        for one such transaction, not for a batch's thousands of days (docs/events.md, "Event times")."""
        missing = sorted(b for b in set(buckets) if (code, b) not in self._partitions)
        for start in range(0, len(missing), _PARTITION_DAYS):
            chunk = missing[start : start + _PARTITION_DAYS]
            self._create_partitions(code, chunk)
            self._partitions.update((code, b) for b in chunk)

    def _create_partitions(self, code: int, buckets: Sequence[int]) -> None:
        """Create the day partitions of `buckets` that do not exist yet, in one DDL transaction."""
        with self._write("cannot create event partitions") as conn:
            conn.execute("SET LOCAL lock_timeout = '30s'")
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (self._ddl_key,))
            for bucket, table in ((b, t) for b in buckets for t in _PARTITIONED):
                name = partition_name(code, bucket, table)
                row = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (name,)).fetchone()
                if not (row and row[0]):
                    upper = f"({code}, {bucket + DAY})" if bucket + DAY <= _MAX_TS else f"({code}, MAXVALUE)"
                    # Created beside the table and then attached: attaching takes a lighter lock on
                    # the parent than CREATE ... PARTITION OF, so readers are not held up.
                    conn.execute(f"CREATE TABLE {name} (LIKE {table} INCLUDING DEFAULTS)")
                    conn.execute(
                        f"ALTER TABLE {table} ATTACH PARTITION {name} FOR VALUES FROM ({code}, {bucket}) TO {upper}"
                    )

    # writing --------------------------------------------------------------------------------------
    def insert_events(self, account_id: int, feature: Feature, events: Sequence[NewEvent]) -> InsertResult:
        if not events:
            return InsertResult([])
        for event in events:
            if not _MIN_TS <= event.ts <= _MAX_TS:
                raise StoreError(f"event {event.uuid}: its timestamp is outside the storable range")
        code = feature.code
        buckets = {bucket_of(e.ts) for e in events}
        self._ensure_partitions(code, buckets)
        try:
            return self._insert(account_id, code, events)
        except (StoreError, IntegrityConflict):
            # A partition may have been dropped by a purge in another process since we saw it: the
            # failed attempt stored nothing, so look again and retry once.
            self._partitions.clear()
            self._ensure_partitions(code, buckets)
            return self._insert(account_id, code, events)

    def _insert(self, account_id: int, code: int, events: Sequence[NewEvent]) -> InsertResult:
        with self._write("cannot store the events") as conn:
            # The account's row, shared with other writers until commit: a deletion (which locks it
            # first, store/shared/deletion.py) waits for this batch and then deletes it, or ran
            # first and the account is gone (or being deleted). Without it, a batch landing after the
            # deletion was kept with no account.
            sql = f"SELECT 1 FROM accounts WHERE id = %s AND {LIVE} FOR KEY SHARE"
            if conn.execute(sql, (account_id,)).fetchone() is None:
                raise NotFound(ACCOUNT_GONE.format(account_id=account_id))
            # The stream's row lock (created with the stream), held until commit: writers of one
            # stream commit in seq order. DO UPDATE takes the lock and returns the head in one trip.
            head, max_ts = conn.execute(
                "INSERT INTO streams VALUES (%s, %s, 0, %s) ON CONFLICT (account_id, feature)"
                " DO UPDATE SET head_seq = streams.head_seq RETURNING head_seq, max_ts",
                (account_id, code, _MIN_TS),
            ).fetchone() or (0, _MIN_TS)
            stamped_again = self._stamped_before(conn, account_id, code, events)
            seen = self._present(conn, account_id, code, events)
            seqs: list[int | None] = []
            rows: list[tuple[Any, ...]] = []
            facet_rows: list[tuple[Any, ...]] = []
            buckets: dict[int, list[int]] = {}  # bucket -> [min seq, max seq, rows]
            for event in events:
                key = (event.ts, event.uuid)
                if key in seen or event.uuid in stamped_again:
                    seqs.append(None)
                    continue
                seen.add(key)
                head += 1
                max_ts = max(max_ts, event.ts)
                seqs.append(head)
                rows.append((account_id, code, head, event.ts, max_ts, event.uuid, event.body, event.v1_cut))
                if event.facets is not None:
                    facet_rows.append((account_id, code, event.ts, head, *event.facets))
                b = buckets.setdefault(bucket_of(event.ts), [head, head, 0])
                b[1], b[2] = head, b[2] + 1
            if rows:
                # the stream's log, in the same transaction (docs/integrity.md)
                self._copy_rows(conn, rows, facet_rows, log=self.log_entries_on)
                self._add_buckets(conn, account_id, code, buckets)
                conn.execute(
                    "UPDATE streams SET head_seq = %s, max_ts = %s WHERE account_id = %s AND feature = %s",
                    (head, max_ts, account_id, code),
                )
        return InsertResult(seqs)

    @staticmethod
    def _present(
        conn: psycopg.Connection[Any], account_id: int, code: int, events: Sequence[NewEvent]
    ) -> set[tuple[int, str]]:
        """The (timestamp, uuid) of the batch already stored, looked up in each day's partition."""
        by_day: dict[int, tuple[list[int], list[str]]] = {}
        for event in events:
            tss, uuids = by_day.setdefault(bucket_of(event.ts), ([], []))
            tss.append(event.ts)
            uuids.append(event.uuid)
        parts, params = [], []
        for bucket, (tss, uuids) in sorted(by_day.items()):
            parts.append(
                f"(SELECT e.ts, e.uuid FROM unnest(%s::bigint[], %s::text[]) AS k(ts, uuid)"
                f" JOIN {partition_name(code, bucket)} e ON e.account_id = %s AND e.feature = %s"
                " AND e.ts = k.ts AND e.uuid = k.uuid)"
            )
            params += [tss, uuids, account_id, code]
        return {(int(ts), str(uuid)) for ts, uuid in conn.execute(" UNION ALL ".join(parts), params)}

    def import_events(
        self, account_id: int, code: int, rows: Sequence[Sequence[Any]], facets: Sequence[Sequence[Any]] = ()
    ) -> None:
        """Store events copied from another store as they are, seqs and max_ts included, in one
        transaction (`siemgate db copy`). Rows: (account_id, feature, seq, ts, max_ts, uuid, body,
        v1_cut); facets: (account_id, feature, ts, seq, actor, kind, detail, country, app, ip)."""
        buckets: dict[int, list[int]] = {}
        for row in rows:
            seq, ts = int(row[2]), int(row[3])
            b = buckets.setdefault(bucket_of(ts), [seq, seq, 0])
            b[0], b[1], b[2] = min(b[0], seq), max(b[1], seq), b[2] + 1
        self._ensure_partitions(code, buckets)
        with self._write("cannot copy events") as conn:
            self._copy_rows(conn, rows, facets)
            self._add_buckets(conn, account_id, code, buckets)

    @staticmethod
    def _copy_rows(
        conn: psycopg.Connection[Any],
        rows: Sequence[Sequence[Any]],
        facets: Sequence[Sequence[Any]],
        *,
        log: bool = False,
    ) -> None:
        """COPY event rows, their facet rows and (with `log`) the events' log entries (binary); a
        value of the wrong type is a StoreError."""
        try:
            PgEvents._copy(conn, rows, facets, log)
        except (TypeError, ValueError) as exc:
            raise StoreError(f"cannot store the events: a value has the wrong type ({type(exc).__name__})") from None

    @staticmethod
    def _copy(
        conn: psycopg.Connection[Any],
        rows: Sequence[Sequence[Any]],
        facets: Sequence[Sequence[Any]],
        log: bool,
    ) -> None:
        with conn.cursor() as cur:
            with cur.copy(
                "COPY events (account_id, feature, seq, ts, max_ts, uuid, body, v1_cut) FROM STDIN (FORMAT BINARY)"
            ) as copy:
                copy.set_types(_COPY_TYPES)
                for row in rows:
                    copy.write_row(row)
            if facets:
                with cur.copy(
                    "COPY facets (account_id, feature, ts, seq, actor, kind, detail, country, app, ip)"
                    " FROM STDIN (FORMAT BINARY)"
                ) as copy:
                    copy.set_types(_FACET_TYPES)
                    for row in facets:
                        copy.write_row(row)
            if log and rows:  # one row: the batch's entries (consecutive seqs) from its first index on
                entries = b"".join([entry_bytes(row[3], row[6]) for row in rows])
                cur.execute(
                    "INSERT INTO log_entries (account_id, feature, idx, entries) VALUES (%s, %s, %s, %s)",
                    (rows[0][0], rows[0][1], rows[0][2] - 1, entries),
                )

    @staticmethod
    def _add_buckets(conn: psycopg.Connection[Any], account_id: int, code: int, buckets: dict[int, list[int]]) -> None:
        keys = sorted(buckets)
        conn.execute(
            "INSERT INTO event_buckets (account_id, feature, bucket, min_seq, max_seq, rows)"
            " SELECT %s, %s, b, lo, hi, n FROM unnest(%s::bigint[], %s::bigint[], %s::bigint[], %s::bigint[])"
            " AS t(b, lo, hi, n)"
            " ON CONFLICT (account_id, feature, bucket) DO UPDATE SET"
            " min_seq = least(event_buckets.min_seq, excluded.min_seq),"
            " max_seq = greatest(event_buckets.max_seq, excluded.max_seq), rows = event_buckets.rows + excluded.rows",
            (
                account_id,
                code,
                keys,
                [buckets[k][0] for k in keys],
                [buckets[k][1] for k in keys],
                [buckets[k][2] for k in keys],
            ),
        )

    @staticmethod
    def _stamped_before(
        conn: psycopg.Connection[Any], account_id: int, code: int, events: Sequence[NewEvent]
    ) -> set[str]:
        """Of the events that came without a timestamp, the uuids already seen that way; records the rest."""
        uuids = sorted({e.uuid for e in events if e.ts_assigned})
        if not uuids:
            return set()
        found = {
            r[0]
            for r in conn.execute(
                "SELECT uuid FROM stamped_uuids WHERE account_id = %s AND feature = %s AND uuid = ANY(%s)",
                (account_id, code, uuids),
            )
        }
        fresh = [u for u in uuids if u not in found]
        if fresh:
            conn.execute(
                "INSERT INTO stamped_uuids SELECT %s, %s, u FROM unnest(%s::text[]) AS u ON CONFLICT DO NOTHING",
                (account_id, code, fresh),
            )
        return found

    # reading --------------------------------------------------------------------------------------
    def head_seq(self, account_id: int, feature: Feature) -> int:
        value = self._value(
            "SELECT head_seq FROM streams WHERE account_id = %s AND feature = %s", (account_id, feature.code)
        )
        return int(value) if value is not None else 0

    def count_events(self, account_id: int, feature: Feature, after_seq: int = 0) -> int:
        return int(
            self._value(
                "SELECT count(*) FROM events WHERE account_id = %s AND feature = %s AND seq > %s",
                (account_id, feature.code, after_seq),
            )
        )

    def first_unread_time(self, account_id: int, feature: Feature, after_seq: int) -> int | None:
        value = self._value(
            "SELECT max_ts FROM events WHERE account_id = %s AND feature = %s AND seq > %s ORDER BY seq LIMIT 1",
            (account_id, feature.code, after_seq),
        )
        return None if value is None else int(value)

    def start_position(self, account_id: int, feature: Feature, start: int) -> int:
        # One statement, so one snapshot (docs/cursors.md, "One snapshot per page"): the first event
        # with a timestamp >= start is the smallest min_seq of the days wholly at or after `start`,
        # or an earlier event in the day holding `start` (one index lookup on max_ts: the first
        # event whose max_ts reaches `start` is that event); with neither, the stream's head.
        day = bucket_of(start)
        row = self._row(
            "SELECT (SELECT min(min_seq) FROM event_buckets WHERE account_id = %(a)s AND feature = %(f)s"
            " AND bucket >= %(s)s),"
            " (SELECT seq FROM events WHERE account_id = %(a)s AND feature = %(f)s AND ts >= %(s)s"
            " AND ts < %(day_end)s AND max_ts >= %(s)s ORDER BY max_ts, seq LIMIT 1),"
            " (SELECT head_seq FROM streams WHERE account_id = %(a)s AND feature = %(f)s)",
            {"a": account_id, "f": feature.code, "s": start, "day_end": min(day + DAY, _MAX_TS)},
        )
        assert row is not None  # a SELECT of scalar subqueries returns one row
        firsts = [int(seq) for seq in row[:2] if seq is not None]
        if firsts:
            return min(firsts) - 1
        return int(row[2]) if row[2] is not None else 0

    def _plan(
        self, conn: psycopg.Connection[Any], code: int, days: Sequence[tuple[int, int, int]], params: dict[str, Any]
    ) -> str:
        """Read a bounded window with few rows through the timestamp index, anything else along seq."""
        if params["end"] == _MAX_TS:
            return "seq"
        small = _WINDOW_PLAN_MIN + 4 * (params["n"] - 1)
        parts = " UNION ALL ".join(
            f"(SELECT 1 FROM {partition_name(code, b)} WHERE account_id = %(a)s AND feature = %(f)s"
            " AND ts >= %(start)s AND ts <= %(end)s LIMIT %(small)s)"
            for b, _, _ in days
        )
        row = conn.execute(
            f"SELECT count(*) FROM (SELECT 1 FROM ({parts}) w LIMIT %(small)s) x", {**params, "small": small}
        ).fetchone()
        return "ts" if row is not None and row[0] < small else "seq"

    @staticmethod
    def _union(code: int, buckets: list[int], columns: str, plan: str, start: int, end: int) -> str:
        """The first n matching rows after the cursor of each day partition (each row with its day
        after the `columns`), merged in seq order.

        The plan is ours, not the planner's (as on SQLite): `seq + 0` makes a small window read by
        timestamp. A day wholly inside the window gets no timestamp condition at all, so the
        planner sees that every row after the cursor matches and walks the seq index."""
        order = "seq + 0" if plan == "ts" else "seq"
        parts = []
        for b in buckets:
            inside = b >= start and b + DAY - 1 <= end
            when = "" if inside else " AND ts >= %(start)s AND ts <= %(end)s"
            parts.append(
                f"(SELECT {columns}, {b}::bigint FROM {partition_name(code, b)} WHERE account_id = %(a)s"
                f" AND feature = %(f)s AND seq > %(after)s AND seq <= %(stop)s{when} ORDER BY {order} LIMIT %(n)s)"
            )
        return " UNION ALL ".join(parts)

    def _window_rows(
        self,
        account_id: int,
        code: int,
        after_seq: int,
        start: int,
        end: int | None,
        limit: int,
        columns: str,
        scan: int = _MAX_TS,
    ) -> tuple[list[tuple[Any, ...]], int | None]:
        """Up to limit + 1 rows (the `columns`, their day, then five NULLs) of the window after the
        cursor, in seq order, and the page's position when it stopped at its scan budget (`scan`
        stored events examined along seq before the stream's head with at most `limit` matches:
        docs/cursors.md, "Bounded work")."""
        try:
            return self._window_read(account_id, code, after_seq, start, end, limit, columns, scan)
        except StoreError:  # a purge may have dropped a partition between two statements: look again
            self._page_days.pop((account_id, code, after_seq), None)
            return self._window_read(account_id, code, after_seq, start, end, limit, columns, scan)

    def _window_read(
        self,
        account_id: int,
        code: int,
        after_seq: int,
        start: int,
        end: int | None,
        limit: int,
        columns: str,
        scan: int,
    ) -> tuple[list[tuple[Any, ...]], int | None]:
        """Read the page from the day partitions that hold it, each attempt one statement.

        The statement reads the chosen days and lists, in the same snapshot, the days it did not
        read that hold a seq after the cursor. The page is exact when none of them can hold a seq up
        to the page's last (its min seq comes after the page's limit-th row); otherwise the first of
        them by min seq, as many as can fill the page, are added and the page is read again. So the
        page, its days and `has_more` come from one snapshot, even when a batch with events in
        several days commits meanwhile (docs/cursors.md, "One snapshot per page"). The first
        choice is the days the previous page of the chain was read from (remembered by its last
        seq), so a reader following its cursor usually needs one statement per page. Only the days the
        page's rows came from and the next day by min seq are remembered: the days a chain has left
        behind are not read again (they would make every later page of a long chain slower).

        Read along seq, a page examines only seqs up to its cursor + `scan`; when the stream's head
        (in the same snapshot) is beyond that and at most `limit` rows matched, the page stops
        there and that seq is its position. A page that finds nothing starts again from the first
        seq of the window's days (their min seq in event_buckets), skipping seqs no day of the
        window holds."""
        params: dict[str, Any] = {"a": account_id, "f": code, "after": after_seq, "start": start, "n": limit + 1}
        params["end"] = _MAX_TS if end is None else end
        params["lo"] = max(start - DAY, _MIN_TS)
        known, plan = self._page_days.get((account_id, code, after_seq), ((), "seq"))
        read, planned = list(known), end is None or bool(known)
        with self._conn("cannot read events") as conn:
            while True:
                params["read"] = read
                params["stop"] = min(params["after"] + scan, _MAX_TS) if plan == "seq" else _MAX_TS
                sql = self._page_sql(code, read, columns, plan, params)
                found = conn.cursor(binary=True).execute(sql, params, prepare=True)
                rows = found.fetchall()
                # The row of arrays is the last in practice; the page's rows keep their order whatever.
                at = len(rows) - 1 if rows[-1][0] is None else next(i for i, r in enumerate(rows) if r[0] is None)
                buckets, mins, counts, head, first = rows.pop(at)[-5:]
                unread = sorted(zip(mins or [], buckets or [], counts or [], strict=True))
                later = unread
                if len(rows) > limit:  # only the unread days that could hold a seq up to the limit-th row
                    unread = [u for u in unread if u[0] <= rows[limit - 1][0]]
                if not planned and unread:
                    plan, planned = self._plan(conn, code, [(b, m, n) for m, b, n in unread], params), True
                stop = min(params["after"] + scan, _MAX_TS) if plan == "seq" else _MAX_TS
                unread = [u for u in unread if u[0] <= stop]  # days holding only seqs past the stop wait
                if not unread:
                    if rows or first is None or first - 1 <= stop:
                        break
                    params["after"] = first - 1  # no day of the window holds a seq up to first - 1
                    continue
                total = sum(1 for r in rows if r[0] < unread[0][0])
                for _, bucket, count in unread:  # by min seq: the days that could fill the page
                    read.append(int(bucket))
                    total += int(count)
                    if total > limit:
                        break
        position = stop if len(rows) <= limit and head is not None and head > stop else None
        if rows or position is not None:
            if len(self._page_days) >= _PAGE_DAYS_KEPT:
                self._page_days.clear()
            last = position if position is not None else int(rows[min(limit, len(rows)) - 1][0])
            self._page_days[(account_id, code, last)] = (_next_days(rows, _width(columns), later), plan)
        return rows, position  # rows each with its day and five trailing NULL columns

    def _page_sql(self, code: int, read: list[int], columns: str, plan: str, params: dict[str, Any]) -> str:
        """The page's rows from the `read` days (with their day and five NULL columns), then one row
        of three arrays: the bucket, min seq and row count of each other day holding a seq after the
        cursor; the stream's head; and the smallest min seq of the window's days holding a seq after
        the cursor."""
        unread = (
            f"SELECT {', '.join(['NULL'] * (_width(columns) + 1))},"
            " array_agg(bucket), array_agg(min_seq), array_agg(rows),"
            " (SELECT head_seq FROM streams WHERE account_id = %(a)s AND feature = %(f)s),"
            " (SELECT min(min_seq) FROM event_buckets WHERE account_id = %(a)s AND feature = %(f)s"
            " AND max_seq > %(after)s AND bucket > %(lo)s AND bucket <= %(end)s) FROM event_buckets"
            " WHERE account_id = %(a)s AND feature = %(f)s AND max_seq > %(after)s AND bucket > %(lo)s"
            " AND bucket <= %(end)s AND bucket <> ALL(%(read)s::bigint[])"
        )
        if not read:
            return unread
        union = self._union(code, read, columns, plan, params["start"], params["end"])
        return (
            "SELECT *, NULL::bigint[], NULL::bigint[], NULL::bigint[], NULL::bigint, NULL::bigint"
            f" FROM (SELECT * FROM ({union}) u"
            f" ORDER BY 1 LIMIT %(n)s) p UNION ALL {unread}"
        )

    def read_events(
        self, account_id: int, feature: Feature, after_seq: int, start: int, end: int | None, limit: int
    ) -> list[EventRow]:
        rows, _ = self._window_rows(account_id, feature.code, after_seq, start, end, limit, "seq, body, v1_cut")
        return [(int(r[0]), bytes(r[1]), None if r[2] is None else int(r[2])) for r in rows[:limit]]

    def read_page(
        self, account_id: int, feature: Feature, after_seq: int, start: int, end: int | None, limit: int, *, v1: bool
    ) -> PageRows:
        # v1 views are cut in SQL; the bodies are joined here (one join of up to 1000 bytes objects:
        # measured faster than string_agg, whose single large value costs more to send).
        rows, position = self._window_rows(
            account_id,
            feature.code,
            after_seq,
            start,
            end,
            limit,
            f"seq, {_V1_BODY if v1 else 'body'}",
            self.scan_budget(limit),
        )
        page = rows[:limit]
        last_seq = int(page[-1][0]) if page else None
        return PageRows(
            b",".join(bytes(r[1]) for r in page),
            len(page),
            last_seq,
            len(rows) > limit or position is not None,
            position,
        )
