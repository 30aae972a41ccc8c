"""Every Events API poll does work bounded by what it returns, whatever timestamps the stream holds
(docs/cursors.md, "Bounded work"): events dated far ahead of their arrival, or a backfill of old
events stored after live ones, must not make each poll of a cursor re-read the stream.

The work is counted, not timed: SQLite calls a progress handler every few virtual-machine
instructions of the server's page reads, and reading a stored event costs several of them, so a
poll that reads every event of a backfill costs more instructions than the backfill has events.
The store's scan budget is lowered so that a few thousand events show it. On PostgreSQL the rows
each page statement examines are counted by running it again under EXPLAIN ANALYZE.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from siemgate.config import load_settings
from siemgate.model.encoding import encode_event
from siemgate.model.features import Feature
from siemgate.model.timestamps import MAX_STORED_NS, format_ns, parse_ns
from siemgate.store.base import Account, NewEvent
from siemgate.store.postgres import PostgresStore
from siemgate.store.postgres.events import bucket_of
from siemgate.store.sqlite import SQLiteStore
from support.clocks import Clock
from support.events import HOUR, SECOND, signin
from support.servers import LiveServer, start_server, stop_server
from support.stores import make_store

SIGNIN = Feature.SIGNINATTEMPTS
SCAN_ROWS = 100  # the store's budget in these tests: a page examines at most 100 + 10 * limit events
LIMIT = 10
# Events outside the window: a poll reading them all runs several instructions per event. A poll
# examines at most 100 + 10 * limit events along seq and counts at most 2000 + 4 * limit entries of
# the timestamp index, well under one instruction per backfilled event.
BACKFILL = 40_000
STEP = 10  # instructions between two calls of the progress handler


class Work:
    """Counts the SQLite instructions the server's page reads run (every reader connection)."""

    def __init__(self) -> None:
        self.calls = 0
        self.lock = threading.Lock()

    def tick(self) -> int:
        with self.lock:
            self.calls += 1
        return 0

    @property
    def instructions(self) -> int:
        return self.calls * STEP


@pytest.fixture
def server(tmp_path: Any) -> Iterator[tuple[LiveServer, Work]]:
    settings = load_settings(data_dir=tmp_path, rate_limit_per_minute=10**7, rate_limit_per_hour=10**8)
    store = make_store("sqlite", tmp_path)
    assert isinstance(store, SQLiteStore)
    store.scan_rows = SCAN_ROWS
    work = Work()
    reader = store._reader
    counted: set[int] = set()

    def counting_reader() -> sqlite3.Connection:
        conn = reader()
        if id(conn) not in counted:
            conn.set_progress_handler(work.tick, STEP)
            counted.add(id(conn))
        return conn

    store._reader = counting_reader  # type: ignore[method-assign]
    live, uv, thread = start_server(settings, store, Clock())
    yield live, work
    stop_server(live, uv, thread)


def _page(live: LiveServer, token: str, body: dict[str, Any], work: Work) -> tuple[dict[str, Any], int]:
    before = work.instructions
    response = live.page(token, SIGNIN, body)
    assert response.status_code == 200, response.text
    return orjson.loads(response.content), work.instructions - before


def _ingest(live: LiveServer, key: str, events: list[dict[str, Any]]) -> None:
    for i in range(0, len(events), 1000):
        response = live.ingest(key, SIGNIN, events[i : i + 1000])
        assert response.status_code == 200, response.text
        assert response.json()["stored"] == len(events[i : i + 1000])


def _backfill(live: LiveServer, account: Account, ts: int) -> None:
    """BACKFILL events dated from `ts` back, stored as the ingest API stores them (faster than HTTP)."""
    events = [signin(ts - i * SECOND) for i in range(BACKFILL)]
    for i in range(0, BACKFILL, 1000):
        rows = [NewEvent(e["uuid"], parse_ns(e["timestamp"]), *encode_event(SIGNIN, e)) for e in events[i : i + 1000]]
        assert live.store.insert_events(account.id, SIGNIN, rows).stored == len(rows)


def _drain(live: LiveServer, token: str, cursor: str, work: Work) -> tuple[list[str], str, list[int]]:
    """Follow the chain until has_more is false; the uuids delivered, the last cursor, each poll's work."""
    uuids: list[str] = []
    costs: list[int] = []
    for _ in range(1000):
        page, cost = _page(live, token, {"cursor": cursor}, work)
        costs.append(cost)
        uuids += [item["uuid"] for item in page["items"]]
        if not page["items"] and not page["has_more"]:
            assert page["cursor"] == cursor  # the end of data returns the cursor it was given
        cursor = page["cursor"]
        if not page["has_more"]:
            return uuids, cursor, costs
    raise AssertionError("the chain never reached the end of data")


@pytest.mark.parametrize("window_events", [5, 2100], ids=["small window", "large window"])
def test_a_backfill_stored_after_the_window_does_not_make_every_poll_read_it(
    server: tuple[LiveServer, Work], window_events: int
) -> None:
    """A reader at the end of its open window; then the producer stores a backfill of old events
    (before the window) and nothing new in it. Before, every poll read the whole backfill again
    and returned the same cursor, for ever (no matching event ever moved the cursor past it). Now
    a small window is read through the timestamp index, and a large one (more than 2000 + 4 *
    limit events) moves its cursor through the backfill, a bounded stretch per poll."""
    live, work = server
    account = live.account()
    token, key = live.token(account, [SIGNIN]), live.ingest_key(account, [SIGNIN])
    now = live.clock()
    window = [signin(now - 30 * 60 * SECOND + i * SECOND) for i in range(window_events)]
    _ingest(live, key, window)
    page, _ = _page(live, token, {"limit": LIMIT, "start_time": format_ns(now - HOUR)}, work)
    delivered, cursor, _ = _drain(live, token, page["cursor"], work)
    assert [item["uuid"] for item in page["items"]] + delivered == [e["uuid"] for e in window]

    _backfill(live, account, now - 2 * HOUR)
    delivered, cursor, costs = _drain(live, token, cursor, work)
    assert delivered == []
    assert max(costs) < BACKFILL, f"a poll ran {max(costs)} instructions: it read the whole backfill"
    for _ in range(3):  # at the end of data, polls stay bounded too
        page, cost = _page(live, token, {"cursor": cursor}, work)
        assert page == {"cursor": cursor, "has_more": False, "items": []}
        assert cost < BACKFILL

    late = signin(now - 5 * SECOND)  # an event of the window stored after the backfill still comes, once
    _ingest(live, key, [late])
    delivered, cursor, _ = _drain(live, token, cursor, work)
    assert delivered == [late["uuid"]]


def test_an_event_dated_far_ahead_does_not_make_a_reset_read_the_stream(
    server: tuple[LiveServer, Work],
) -> None:
    """An event dated 2262 stored first makes every later event's max_ts 2262, so a reset's start
    position is before the whole stream. Before, the reset and every poll after it read every
    event stored since; now the reset reads the small open window through the timestamp index."""
    live, work = server
    account = live.account()
    token, key = live.token(account, [SIGNIN]), live.ingest_key(account, [SIGNIN])
    now = live.clock()
    ahead = signin(MAX_STORED_NS - SECOND)  # the ingest API refuses it; a mirror or `siemgate ingest` stores it
    row = NewEvent(ahead["uuid"], parse_ns(ahead["timestamp"]), *encode_event(SIGNIN, ahead))
    assert live.store.insert_events(account.id, SIGNIN, [row]).stored == 1
    _backfill(live, account, now - 2 * HOUR)
    recent = [signin(now - 10 * SECOND + i) for i in range(3)]
    _ingest(live, key, recent)

    page, cost = _page(live, token, {"limit": LIMIT, "start_time": format_ns(now - HOUR)}, work)
    assert [item["uuid"] for item in page["items"]] == [ahead["uuid"]] + [e["uuid"] for e in recent]
    assert not page["has_more"]
    assert cost < BACKFILL, f"the reset ran {cost} instructions: it read the whole stream"
    for _ in range(3):
        again, cost = _page(live, token, {"cursor": page["cursor"]}, work)
        assert again == {"cursor": page["cursor"], "has_more": False, "items": []}
        assert cost < BACKFILL

    # Only the far-ahead event in the window: every poll stays bounded, and nothing is repeated.
    page, cost = _page(live, token, {"limit": LIMIT, "start_time": format_ns(now + HOUR)}, work)
    assert [item["uuid"] for item in page["items"]] == [ahead["uuid"]] and not page["has_more"]
    assert cost < BACKFILL
    for _ in range(3):
        again, cost = _page(live, token, {"cursor": page["cursor"]}, work)
        assert again == {"cursor": page["cursor"], "has_more": False, "items": []}
        assert cost < BACKFILL


class Examined:
    """Counts the stored rows the server's page statements examine on PostgreSQL: each statement
    is recorded and, after the poll, run again under EXPLAIN ANALYZE (the data has not changed),
    summing the rows every scan returned and removed by its filters."""

    def __init__(self, store: PostgresStore) -> None:
        self.store = store
        self.statements: list[tuple[str, dict[str, Any]]] = []
        page_sql = store._page_sql

        def recording(code: int, read: list[int], columns: str, plan: str, params: dict[str, Any]) -> str:
            sql = page_sql(code, read, columns, plan, params)
            self.statements.append((sql, dict(params)))
            return sql

        store._page_sql = recording  # type: ignore[method-assign]

    def take(self) -> int:
        rows = 0
        with self.store._conn() as conn:
            for sql, params in self.statements:
                plan = conn.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}", params).fetchone()
                assert plan is not None
                rows += self._examined(plan[0][0]["Plan"])
        self.statements.clear()
        return rows

    def _examined(self, node: dict[str, Any]) -> int:
        here = 0
        if "Scan" in node["Node Type"]:
            here = node["Actual Rows"] * node["Actual Loops"] + node.get("Rows Removed by Filter", 0)
        return here + sum(self._examined(child) for child in node.get("Plans", []))


@pytest.fixture
def pg_server(tmp_path: Any) -> Iterator[tuple[LiveServer, Examined]]:
    settings = load_settings(data_dir=tmp_path, rate_limit_per_minute=10**7, rate_limit_per_hour=10**8)
    store = make_store("postgres", tmp_path)
    assert isinstance(store, PostgresStore)
    store.scan_rows = SCAN_ROWS
    examined = Examined(store)
    live, uv, thread = start_server(settings, store, Clock())
    yield live, examined
    stop_server(live, uv, thread)


def _pg_page(live: LiveServer, token: str, body: dict[str, Any], examined: Examined) -> tuple[dict[str, Any], int]:
    response = live.page(token, SIGNIN, body)
    assert response.status_code == 200, response.text
    return orjson.loads(response.content), examined.take()


def _pg_drain(live: LiveServer, token: str, cursor: str, examined: Examined) -> tuple[list[str], str, list[int]]:
    uuids: list[str] = []
    costs: list[int] = []
    for _ in range(1000):
        page, cost = _pg_page(live, token, {"cursor": cursor}, examined)
        costs.append(cost)
        uuids += [item["uuid"] for item in page["items"]]
        if not page["items"] and not page["has_more"]:
            assert page["cursor"] == cursor
        cursor = page["cursor"]
        if not page["has_more"]:
            return uuids, cursor, costs
    raise AssertionError("the chain never reached the end of data")


PG_BACKFILL = 3000


def test_on_postgres_events_before_the_window_in_its_first_day_are_not_read_by_every_poll(
    pg_server: tuple[LiveServer, Examined],
) -> None:
    """PostgreSQL reads only the window's day partitions, but events of the window's first day
    dated before its start (a backfill dated 00:00 to 12:00 of a window opened at 12:00) are in
    them. Before, every poll of a quiet chain, and every reset to that start, read all of them
    again; now a page examines at most scan_budget(limit) stored events past its cursor."""
    live, examined = pg_server
    account = live.account()
    token, key = live.token(account, [SIGNIN]), live.ingest_key(account, [SIGNIN])
    day = bucket_of(live.clock()) - 24 * HOUR  # yesterday, wholly in the past
    start = day + 12 * HOUR
    window = [signin(start + HOUR + i * SECOND) for i in range(5)]
    _ingest(live, key, window)
    page, _ = _pg_page(live, token, {"limit": LIMIT, "start_time": format_ns(start)}, examined)
    delivered, cursor, _ = _pg_drain(live, token, page["cursor"], examined)
    assert [item["uuid"] for item in page["items"]] + delivered == [e["uuid"] for e in window]

    backfill = [signin(day + i * SECOND) for i in range(PG_BACKFILL)]  # dated 00:00 to 00:50
    rows = [NewEvent(e["uuid"], parse_ns(e["timestamp"]), *encode_event(SIGNIN, e)) for e in backfill]
    assert live.store.insert_events(account.id, SIGNIN, rows).stored == PG_BACKFILL
    budget = SCAN_ROWS + 10 * LIMIT
    delivered, cursor, costs = _pg_drain(live, token, cursor, examined)
    assert delivered == []
    assert max(costs) <= 2 * budget, f"a poll examined {max(costs)} rows: it read the whole backfill"
    for _ in range(3):  # at the end of data, polls stay bounded too
        page, cost = _pg_page(live, token, {"cursor": cursor}, examined)
        assert page == {"cursor": cursor, "has_more": False, "items": []}
        assert cost <= 2 * budget

    late = signin(start + 2 * SECOND)  # an event of the window stored after the backfill still comes, once
    _ingest(live, key, [late])
    delivered, cursor, _ = _pg_drain(live, token, cursor, examined)
    assert delivered == [late["uuid"]]

    # A reset to the same start: its position is before the backfill (max_ts), and it reads on in
    # bounded pages to exactly the window's events.
    page, cost = _pg_page(live, token, {"limit": LIMIT, "start_time": format_ns(start)}, examined)
    delivered, _, costs = _pg_drain(live, token, page["cursor"], examined) if page["has_more"] else ([], "", [])
    assert [item["uuid"] for item in page["items"]] + delivered == [e["uuid"] for e in window] + [late["uuid"]]
    assert max([cost, *costs]) <= 2 * budget
