"""Event times a hostile or broken producer chooses: the ingest API accepts events dated within the
stream's retention window and at most ingest_max_future_seconds ahead; anything else is a 400
naming the event and field, nothing stored. On PostgreSQL one batch of events on 500 distinct days
took 13.7 s creating 3,000 day partitions, and another account's first event of a new day waited
12.8 s behind it; mirrors and archive replays, which write old events on purpose, are not bounded."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import psycopg
import pytest

from siemgate.accounts.actor import CLI
from siemgate.config import load_settings
from siemgate.errors import ConfigError
from siemgate.model.features import Feature
from siemgate.model.ids import new_id
from siemgate.model.timestamps import format_ns
from siemgate.store.ingest import EventWriter
from siemgate.store.postgres import PostgresStore
from support.soak import sized
from support.stores import make_store

from .bounds_support import SECOND, failed_signin, live_server

SIGNIN = Feature.SIGNINATTEMPTS
DAY = 86400 * SECOND


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_events_dated_far_ahead_or_before_retention_are_a_400(tmp_path: Path, backend: str) -> None:
    with live_server(tmp_path, backend) as server:
        account = server.account()
        key, token = server.ingest_key(account), server.token(account)
        now = server.clock()
        days = [failed_signin(now - d * DAY + DAY // 2) for d in range(1, 300)]  # 299 days, 179 before retention
        future = failed_signin(now + 2 * DAY)
        response = server.ingest(key, SIGNIN, [failed_signin(now), *days, future])
        assert response.status_code == 400, response.text
        details = response.json()["Error"]["Details"]
        assert [d["index"] for d in details] == [*range(121, 300), 300], details
        assert {d["field"] for d in details} == {"timestamp"}
        assert "the stream keeps 120 days" in details[0]["message"], details[0]
        assert "ingest_max_future_seconds = 86400" in details[-1]["message"], details[-1]
        assert server.page(token, SIGNIN, {"start_time": format_ns(now - 119 * DAY)}).json()["items"] == []
        store = server.services.store
        if backend == "postgres":
            created = [b for code, b in store._partitions if code == SIGNIN.code]  # type: ignore[attr-defined]
            assert created == [], "the refused batch created partitions"
        within = [failed_signin(now - 119 * DAY), failed_signin(now + DAY - SECOND), failed_signin(now)]
        assert server.ingest(key, SIGNIN, within).json()["stored"] == 3
        # a mirror (lenient writer, no window) keeps an old event as upstream served it
        old = failed_signin(now - 400 * DAY)
        assert server.services.writer.write(account.id, SIGNIN, [old], strict=False).stored == 1


def test_the_future_bound_is_a_setting_and_follows_the_streams_retention(tmp_path: Path) -> None:
    with live_server(tmp_path, ingest_max_future_seconds=0) as server:
        account = server.account()
        key = server.ingest_key(account)
        now = server.clock()
        response = server.ingest(key, SIGNIN, [failed_signin(now + 60 * SECOND)])
        assert response.status_code == 400 and "ingest_max_future_seconds = 0" in response.text, response.text
        assert server.ingest(key, SIGNIN, [failed_signin(now - 200 * DAY)]).status_code == 400
        server.services.retention.set_policy(CLI, account, SIGNIN, 365)
        assert server.ingest(key, SIGNIN, [failed_signin(now - 200 * DAY)]).json()["stored"] == 1


def test_an_event_sent_without_a_timestamp_is_dated_on_receipt_whatever_the_future_bound(tmp_path: Path) -> None:
    """The server dates it after it computed the window: with no room ahead (0) it was refused as
    'after' the server's own time."""
    with live_server(tmp_path, ingest_max_future_seconds=0) as server:
        account = server.account()
        key, token = server.ingest_key(account), server.token(account)
        undated = {k: v for k, v in failed_signin(server.clock()).items() if k != "timestamp"}
        no_uuid = {k: v for k, v in undated.items() if k != "uuid"}
        response = server.ingest(key, SIGNIN, [undated, no_uuid])
        assert response.status_code == 200 and response.json()["stored"] == 2, response.text
        items = server.page(token, SIGNIN, {"start_time": format_ns(server.clock() - DAY)}).json()["items"]
        assert len(items) == 2 and undated["uuid"] in {item["uuid"] for item in items}, items


def test_an_event_before_a_shortened_retention_says_how_to_keep_it(tmp_path: Path) -> None:
    """The refusal named `siemgate archive replay`, which reads siemgate's own archive folders, not
    a producer's events; raising the stream's retention is what lets them in (and keeps them)."""
    with live_server(tmp_path) as server:
        account = server.account()
        key = server.ingest_key(account)
        server.services.retention.set_policy(CLI, account, SIGNIN, 30)
        response = server.ingest(key, SIGNIN, [failed_signin(server.clock() - 60 * DAY)])
        assert response.status_code == 400, response.text
        message = response.json()["Error"]["Details"][0]["message"]
        assert "the stream keeps 30 days" in message and "siemgate retention set" in message, message
        assert "archive replay" not in message, message
        # Older than ingest_max_past_days too: raising the retention alone would not let it in.
        response = server.ingest(key, SIGNIN, [failed_signin(server.clock() - 3000 * DAY)])
        message = response.json()["Error"]["Details"][0]["message"]
        assert "ingest_max_past_days = 2000" in message, message


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_the_ingest_api_takes_no_event_older_than_ingest_max_past_days_whatever_the_retention(
    tmp_path: Path, backend: str
) -> None:
    """A stream kept 36,500 days let a producer date events back to 1926: on PostgreSQL one day
    partition per day and table, shared by every account. Before, the event 3,000 days old was stored."""
    with live_server(tmp_path, backend) as server:
        account = server.account()
        key, token = server.ingest_key(account), server.token(account)
        server.services.retention.set_policy(CLI, account, SIGNIN, 36500)
        now = server.clock()
        within, old = failed_signin(now - 1999 * DAY), failed_signin(now - 3000 * DAY)
        response = server.ingest(key, SIGNIN, [within, old])
        assert response.status_code == 400, response.text
        details = response.json()["Error"]["Details"]
        assert [(d["index"], d["field"]) for d in details] == [(1, "timestamp")], details
        assert "ingest_max_past_days = 2000" in details[0]["message"], details[0]
        assert "siemgate ingest" in details[0]["message"], details[0]
        start = {"start_time": format_ns(now - 3001 * DAY)}
        assert server.page(token, SIGNIN, start).json()["items"] == []
        assert server.ingest(key, SIGNIN, [within]).json()["stored"] == 1
        # the operator's paths (`siemgate ingest`, the simulator, replay) write old events on purpose
        assert server.services.writer.write(account.id, SIGNIN, [old]).stored == 1


def test_ingest_max_past_days_bounds_the_partitions_one_account_can_create(tmp_path: Path) -> None:
    """One event per day back 30 days, one request each, on a stream kept 36,500 days: the store
    gains the partitions of the bound's 11 days and no more (before: 31 days' worth)."""
    with live_server(tmp_path, "postgres", ingest_max_past_days=10) as server:
        account = server.account()
        key = server.ingest_key(account)
        server.services.retention.set_policy(CLI, account, SIGNIN, 36500)
        store = server.services.store
        assert isinstance(store, PostgresStore)
        count = "SELECT count(*) FROM pg_inherits WHERE inhparent = 'events'::regclass"
        with psycopg.connect(store.url) as conn:
            before = conn.execute(count).fetchone()
            now = server.clock()
            days = [failed_signin(now - d * DAY + DAY // 2) for d in range(31)]
            statuses = [server.ingest(key, SIGNIN, [event]).status_code for event in days]
            after = conn.execute(count).fetchone()
        assert statuses == [200] * 11 + [400] * 20, statuses
        assert before is not None and after is not None
        assert after[0] - before[0] <= 11, f"{after[0] - before[0]} day partitions created"


@pytest.mark.parametrize(("days", "says"), [(0, "greater than or equal to 1"), (36501, "less than or equal to 36500")])
def test_a_bad_ingest_max_past_days_is_refused_naming_it(days: int, says: str) -> None:
    with pytest.raises(ConfigError, match=f"ingest_max_past_days: Input should be {says}"):
        load_settings(ingest_max_past_days=days)


@pytest.mark.soak
def test_old_days_written_in_bulk_hold_other_accounts_new_days_briefly(tmp_path: Path) -> None:
    """A replay or mirror batch over many distinct days (not bounded: they write old events on
    purpose) creates its partitions a few days per DDL transaction; before, one transaction for
    the whole batch held the store-wide DDL lock, and another account's first event of a new day
    waited for all of it (500 days: 13.7 s batch, 12.8 s wait)."""
    days = sized(120, 500)  # more: dropping the test's schema needs more locks than the server allows
    store = make_store("postgres", tmp_path)
    assert isinstance(store, PostgresStore)
    other = PostgresStore(store.url, max_size=2)  # another process: its own partition cache
    try:
        now = time.time_ns()
        a = store.create_account(new_id(), "bulk", now)
        b = store.create_account(new_id(), "other", now)
        old = now - now % DAY - 20 * 365 * DAY
        batch = [failed_signin(old + d * DAY) for d in range(days)]
        waits: list[float] = []
        done = threading.Event()

        def other_account_new_days() -> None:
            writer = EventWriter(other, time.time_ns)
            for day in range(days):  # each write is the account's first event of a new day
                if done.is_set():
                    return
                started = time.perf_counter()
                writer.write(b.id, SIGNIN, [failed_signin(now - day * DAY)])
                waits.append(time.perf_counter() - started)

        thread = threading.Thread(target=other_account_new_days)
        started = time.perf_counter()
        thread.start()
        EventWriter(store, time.time_ns).write(a.id, SIGNIN, batch, strict=False)
        took = time.perf_counter() - started
        done.set()
        thread.join(timeout=30)
        assert len(waits) > 3 and max(waits) < took / 3, f"batch {took:.2f} s, other account waited {max(waits):.2f} s"
    finally:
        other.close()
        store.close()
