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
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import psycopg

from siemgate.errors import StoreError
from siemgate.model.features import Feature
from siemgate.store.base import EventRow, InsertResult, NewEvent, PageRows
from siemgate.store.pg_base import IntegrityConflict, PgBase
from siemgate.tlog.entry import entry_bytes

DAY = 86_400 * 1_000_000_000
_MIN_TS, _MAX_TS = -(2**63), 2**63 - 1
# A bounded window with fewer rows than this is read through the timestamp index; larger or open
# windows are read along seq (docs/cursors.md, "Query plans").
_WINDOW_PLAN_MIN = 2000
_V1_BODY = (
    "CASE WHEN v1_cut IS NULL THEN body ELSE substring(body FROM 1 FOR (v1_cut >> 2)::int)"
    " || CASE WHEN v1_cut & 3 = 2 THEN '\\x7d7d'::bytea ELSE '\\x7d'::bytea END END"
)
_COPY_TYPES = ["int8", "int8", "int8", "int8", "int8", "text", "bytea", "int8"]
_LOG_TYPES = ["int8", "int8", "int8", "bytea"]
_FACET_TYPES = ["int8", "int8", "int8", "int8", "text", "text", "text", "text", "text", "text"]


def bucket_of(ts: int) -> int:
    """The start of the UTC day holding `ts`: the partition key."""
    return ts - ts % DAY


def partition_name(code: int, bucket: int, table: str = "events") -> str:
    """The day partition of `table` (events, or their facets) for a feature code and bucket."""
    day = dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=bucket // 1000)
    return f"{table}_{code}_{day:%Y%m%d}"


_PARTITIONED = ("events", "facets")


class PgEvents(PgBase):
    log_entries_on = True  # off only in the benchmark that measures what the log costs
    _partitions: set[tuple[int, int]]  # (feature code, bucket) known to exist (set by PostgresStore)

    # partitions -----------------------------------------------------------------------------------
    def _ensure_partitions(self, code: int, buckets: Iterable[int]) -> None:
        """Create the missing day partitions of `feature` (one DDL transaction, one process at a time)."""
        missing = sorted(b for b in set(buckets) if (code, b) not in self._partitions)
        if not missing:
            return
        with self._write("cannot create event partitions") as conn:
            conn.execute("SET LOCAL lock_timeout = '30s'")
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (self._ddl_key,))
            for bucket, table in ((b, t) for b in missing for t in _PARTITIONED):
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
        self._partitions.update((code, b) for b in missing)

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
            if log:
                with cur.copy("COPY log_entries (account_id, feature, idx, entry) FROM STDIN (FORMAT BINARY)") as copy:
                    copy.set_types(_LOG_TYPES)
                    for row in rows:  # (account_id, feature, seq, ts, max_ts, uuid, body, v1_cut)
                        copy.write_row((row[0], row[1], row[2] - 1, entry_bytes(row[3], row[6])))

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
        # The first event with a timestamp >= start: the smallest min_seq of the days wholly at or
        # after `start`, or an earlier event in the day holding `start` (one index lookup on max_ts:
        # the first event whose max_ts reaches `start` is that event).
        code = feature.code
        with self._conn("cannot find where the window starts") as conn:
            rows = conn.execute(
                "SELECT bucket, min_seq FROM event_buckets WHERE account_id = %s AND feature = %s AND bucket > %s",
                (account_id, code, max(start - DAY, _MIN_TS)),
            ).fetchall()
            seqs = [int(s) for b, s in rows if b >= start]
            for bucket, _ in rows:
                if bucket < start:
                    found = conn.execute(
                        f"SELECT seq FROM {partition_name(code, bucket)} WHERE account_id = %s AND feature = %s"
                        " AND ts >= %s AND max_ts >= %s ORDER BY max_ts, seq LIMIT 1",
                        (account_id, code, start, start),
                    ).fetchone()
                    if found is not None:
                        seqs.append(int(found[0]))
        return min(seqs) - 1 if seqs else self.head_seq(account_id, feature)

    def _days(
        self, conn: psycopg.Connection[Any], account_id: int, code: int, after_seq: int, start: int, end: int | None
    ) -> list[tuple[int, int, int]]:
        """(bucket, min seq, rows) of the days that may hold an event of the window after the
        cursor, by min seq: only these partitions are read (docs/cursors.md, "PostgreSQL")."""
        rows = conn.execute(
            "SELECT bucket, min_seq, rows FROM event_buckets WHERE account_id = %s AND feature = %s"
            " AND max_seq > %s AND bucket > %s AND bucket <= %s ORDER BY min_seq, bucket",
            (account_id, code, after_seq, max(start - DAY, _MIN_TS), _MAX_TS if end is None else end),
        ).fetchall()
        return [(int(b), int(s), int(n)) for b, s, n in rows]

    def _plan(
        self, conn: psycopg.Connection[Any], code: int, days: list[tuple[int, int, int]], params: dict[str, Any]
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
        """The first n matching rows after the cursor of each day partition, merged in seq order.

        The plan is ours, not the planner's (as on SQLite): `seq + 0` makes a small window read by
        timestamp. A day wholly inside the window gets no timestamp condition at all, so the
        planner sees that every row after the cursor matches and walks the seq index."""
        order = "seq + 0" if plan == "ts" else "seq"
        parts = []
        for b in buckets:
            inside = b >= start and b + DAY - 1 <= end
            when = "" if inside else " AND ts >= %(start)s AND ts <= %(end)s"
            parts.append(
                f"(SELECT {columns} FROM {partition_name(code, b)} WHERE account_id = %(a)s AND feature = %(f)s"
                f" AND seq > %(after)s{when} ORDER BY {order} LIMIT %(n)s)"
            )
        return " UNION ALL ".join(parts)

    def _page_query(
        self,
        account_id: int,
        code: int,
        after_seq: int,
        start: int,
        end: int | None,
        limit: int,
        run: Callable[[psycopg.Connection[Any], str, dict[str, Any]], tuple[int, int | None, Any]],
        columns: str,
    ) -> tuple[int, int | None, Any] | None:
        """Run `run` over the fewest day partitions that certainly hold the page's limit + 1 rows.

        Days are taken in min-seq order; a page read from the first k days is exact when its
        limit-th row comes before the smallest min seq of the days left out and a row follows it."""
        for attempt in range(2):
            try:
                with self._conn("cannot read events") as conn:
                    days = self._days(conn, account_id, code, after_seq, start, end)
                    if not days:
                        return None
                    params = {"a": account_id, "f": code, "after": after_seq, "start": start, "n": limit + 1}
                    params["end"] = _MAX_TS if end is None else end
                    plan = self._plan(conn, code, days, params)
                    k, total = 0, 0
                    while k < len(days) and total <= limit:  # at least the days that could fill the page
                        total += days[k][2]
                        k += 1
                    while True:
                        union = self._union(code, [b for b, _, _ in days[:k]], columns, plan, start, params["end"])
                        result = run(conn, union, params)
                        count, last_seq, _ = result
                        if k == len(days) or (count > limit and last_seq is not None and last_seq < days[k][1]):
                            return result
                        k = min(len(days), 2 * k)
            except StoreError:
                if attempt:  # a purge may have dropped a partition between two statements: look again
                    raise
        return None  # pragma: no cover - the loop returns or raises

    def _window_rows(
        self, account_id: int, code: int, after_seq: int, start: int, end: int | None, limit: int, columns: str
    ) -> list[tuple[Any, ...]]:
        """Up to limit + 1 rows (seq first) of the window after the cursor, in seq order."""

        def run(conn: psycopg.Connection[Any], union: str, params: dict[str, Any]) -> tuple[int, int | None, Any]:
            rows = conn.cursor(binary=True).execute(f"SELECT * FROM ({union}) u ORDER BY 1 LIMIT %(n)s", params)
            found = rows.fetchall()
            return len(found), int(found[limit - 1][0]) if len(found) > limit else None, found

        result = self._page_query(account_id, code, after_seq, start, end, limit, run, columns)
        return [] if result is None else list(result[2])

    def read_events(
        self, account_id: int, feature: Feature, after_seq: int, start: int, end: int | None, limit: int
    ) -> list[EventRow]:
        rows = self._window_rows(account_id, feature.code, after_seq, start, end, limit, "seq, body, v1_cut")
        return [(int(s), bytes(b), None if c is None else int(c)) for s, b, c in rows[:limit]]

    def read_page(
        self, account_id: int, feature: Feature, after_seq: int, start: int, end: int | None, limit: int, *, v1: bool
    ) -> PageRows:
        # v1 views are cut in SQL; the bodies are joined here (one join of up to 1000 bytes objects:
        # measured faster than string_agg, whose single large value costs more to send).
        rows = self._window_rows(
            account_id, feature.code, after_seq, start, end, limit, f"seq, {_V1_BODY if v1 else 'body'}"
        )
        if not rows:
            return PageRows(b"", 0, None, False)
        page = rows[:limit]
        return PageRows(b",".join(bytes(r[1]) for r in page), len(page), int(page[-1][0]), len(rows) > limit)
