"""What a store method's statements cost, on both backends, without timing them: the statements
recorded while the method runs, their plans (EXPLAIN), and the work a read does (SQLite virtual
machine steps, PostgreSQL pages read), which grows with the rows it examines."""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest

Statement = tuple[str, Sequence[Any]]


class _Recording:
    """A connection whose statements are also appended to `seen` (sql, params)."""

    def __init__(self, conn: Any, seen: list[Statement]) -> None:
        self._conn, self._seen = conn, seen

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        self._seen.append((sql, params))
        return self._conn.execute(sql, params)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


def statements(store: Any, call: Callable[[], Any], monkeypatch: pytest.MonkeyPatch) -> list[Statement]:
    """The statements the store runs during `call()` (reads and writes)."""
    seen: list[Statement] = []
    rows, tx = store._rows, store._tx

    def recorded_rows(sql: str, params: Sequence[Any] = ()) -> Any:
        seen.append((sql, params))
        return rows(sql, params)

    @contextlib.contextmanager
    def recorded_tx(*args: Any) -> Iterator[Any]:
        with tx(*args) as conn:
            yield _Recording(conn, seen)

    with monkeypatch.context() as patch:
        patch.setattr(store, "_rows", recorded_rows)
        patch.setattr(store, "_tx", recorded_tx)
        call()
    return seen


def plan(store: Any, sql: str, params: Sequence[Any]) -> list[str]:
    """The statement's plan, one line per step."""
    if store.dialect.name == "sqlite":
        return [str(row[-1]) for row in store._rows("EXPLAIN QUERY PLAN " + sql, params)]
    return [str(row[0]) for row in store._rows("EXPLAIN " + sql, params)]


def full_scans(store: Any, sql: str, params: Sequence[Any], table: str) -> list[str]:
    """The whole plan when a step of it reads all of `table` (a scan of a partial index, which
    holds only the rows its condition picks, is not one), else []."""
    steps = plan(store, sql, params)
    whole = rf"^SCAN {table}$" if store.dialect.name == "sqlite" else rf"Seq Scan on {table}\b"
    return steps if any(re.search(whole, step.strip()) for step in steps) else []


def reads_of(seen: list[Statement], table: str) -> list[Statement]:
    return [
        (sql, params) for sql, params in seen if sql.lstrip().upper().startswith("SELECT") and f"FROM {table}" in sql
    ]


def read_work(store: Any, sql: str, params: Sequence[Any]) -> int:
    """How much work the read `sql` does, run once more: on SQLite the virtual machine steps it
    takes, on PostgreSQL the pages (of tables and indexes) it reads (EXPLAIN ANALYZE's buffers,
    which count index entries an Index Cond passes over, as rows read do not). Either grows with
    the rows the read examines, not with those it returns."""
    if store.dialect.name == "sqlite":
        steps = 0

        def step() -> int:
            nonlocal steps
            steps += 1
            return 0

        conn = store._reader()
        conn.execute(sql, params).fetchall()  # once first: a schema changed since (ANALYZE) is read now, not counted
        conn.set_progress_handler(step, 1)
        try:
            conn.execute(sql, params).fetchall()
        finally:
            conn.set_progress_handler(None, 0)
        return steps
    [(found,)] = store._rows("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + sql, params)
    top = (found if isinstance(found, list) else json.loads(found))[0]["Plan"]
    return int(top["Shared Hit Blocks"] + top["Shared Read Blocks"])


def call_work(store: Any, call: Callable[[], Any], monkeypatch: pytest.MonkeyPatch, table: str) -> int:
    """The work (read_work) of the reads of `table` that `call()` makes."""
    return sum(read_work(store, sql, params) for sql, params in reads_of(statements(store, call, monkeypatch), table))


def analyze(store: Any, *tables: str) -> None:
    """Gather the planner's statistics of `tables`, as autovacuum would have (by name: a bare
    ANALYZE on PostgreSQL reads every schema's tables, and deadlocks with tests filling theirs)."""
    with store._tx() as conn:
        for table in tables:
            conn.execute(f"ANALYZE {table}")
