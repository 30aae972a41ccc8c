"""One snapshot per page and per window start (docs/cursors.md, "One snapshot per page"), shown
with a deterministic interleaving: a batch commits between a read's first statement and the
rest of it. On PostgreSQL the first statement picks the day partitions to read; a batch with one
event in an older day and one in today's, committed right after it, must not put today's event in
the page without the older one (the cursor would pass it for ever). A window start that finds no
event must be the head of the same snapshot, or a batch committed meanwhile is skipped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import psycopg
import pytest

from siemgate.model.features import Feature
from siemgate.model.ids import new_id
from siemgate.store.base import NewEvent, Store
from siemgate.store.sqlite import SQLiteStore
from support.stores import make_store

FEATURE = Feature.ITEMUSAGES
SECOND = 1_000_000_000
DAY = 86_400 * SECOND
T0 = 1_750_000_000 * SECOND  # 2025-06-15 15:06:40 UTC


def _event(ts: int) -> NewEvent:
    uuid = new_id()
    return NewEvent(uuid, ts, orjson.dumps({"uuid": uuid, "ts": ts}), None)


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    s = make_store(request.param, tmp_path)
    yield s
    s.close()


def _after_first_statement(
    store: Store, monkeypatch: pytest.MonkeyPatch, marker: str, action: Callable[[], object]
) -> list[bool]:
    """Run `action` (a concurrent commit) once, right after the reader's first statement whose SQL
    contains `marker` has run (PostgreSQL) or right before it runs (SQLite: the trace callback)."""
    fired: list[bool] = []
    if isinstance(store, SQLiteStore):
        reader = store._reader()

        def trace(sql: str) -> None:
            if marker in sql and not fired:
                fired.append(True)
                action()

        reader.set_trace_callback(trace)
        return fired
    original = psycopg.Cursor.execute

    def execute(self: psycopg.Cursor[Any], query: Any, *args: Any, **kwargs: Any) -> Any:
        result = original(self, query, *args, **kwargs)
        if isinstance(query, str) and marker in query and not fired:
            fired.append(True)
            action()
        return result

    monkeypatch.setattr(psycopg.Cursor, "execute", execute)
    return fired


def _delivered(store: Store, account_id: int, items: bytes) -> list[int]:
    """The seqs of a page's items (looked up by uuid among the stored events)."""
    seq_of = {
        orjson.loads(body)["uuid"]: int(seq)
        for seq, body, _ in store.read_events(account_id, FEATURE, 0, 0, None, 1000)
    }
    return [seq_of[item["uuid"]] for item in orjson.loads(b"[" + items + b"]")]


def _chain_seqs(store: Store, account_id: int, after: int, start: int) -> list[int]:
    """The seqs a reader following the cursor from `after` receives until the end of data."""
    got: list[int] = []
    while True:
        page = store.read_page(account_id, FEATURE, after, start, None, 100, v1=False)
        if page.last_seq is None:
            return got
        got += _delivered(store, account_id, page.items)
        after = page.last_seq


def test_a_batch_committed_after_the_partition_choice_is_read_whole_or_not_at_all(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    account = store.create_account(new_id(), "Snapshot", T0)
    store.insert_events(account.id, FEATURE, [_event(T0 - 2 * DAY)])  # seq 1, two days ago
    store.insert_events(account.id, FEATURE, [_event(T0 + n * SECOND) for n in range(3)])  # seqs 2-4, today
    # The reader has seq 1: only today's partition holds anything after its cursor, until a batch
    # with a late event (two days ago, seq 5) and one of today (seq 6) commits mid-page.
    late = [_event(T0 - 2 * DAY + SECOND), _event(T0 + 10 * SECOND)]
    marker = "event_buckets" if not isinstance(store, SQLiteStore) else "SELECT count(*), max(seq)"
    fired = _after_first_statement(store, monkeypatch, marker, lambda: store.insert_events(account.id, FEATURE, late))
    first = store.read_page(account.id, FEATURE, 1, T0 - 3 * DAY, None, 100, v1=False)
    assert fired, "the interleaving did not happen"
    monkeypatch.undo()
    assert first.last_seq is not None
    rest = _chain_seqs(store, account.id, first.last_seq, T0 - 3 * DAY)
    delivered = _delivered(store, account.id, first.items) + rest
    assert delivered == [2, 3, 4, 5, 6], f"a cursor chain from seq 1 delivered {delivered}"


def test_a_window_start_with_nothing_after_it_is_the_head_of_the_same_snapshot(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    account = store.create_account(new_id(), "Snapshot start", T0)
    store.insert_events(account.id, FEATURE, [_event(T0 - 2 * DAY), _event(T0 - DAY)])  # seqs 1-2, before S
    store.purge_events(account.id, FEATURE, T0)  # retention took them: the stream is empty, its head 2
    # A reset at S = T0 finds no event at or after S, so it starts at the head; a batch of events
    # inside the window commits while it looks (seqs 3-4): they come after the cursor.
    batch = [_event(T0 + SECOND), _event(T0 + 2 * SECOND)]
    marker = "event_buckets" if not isinstance(store, SQLiteStore) else "SELECT head_seq"
    fired = _after_first_statement(store, monkeypatch, marker, lambda: store.insert_events(account.id, FEATURE, batch))
    start = store.start_position(account.id, FEATURE, T0)
    assert fired, "the interleaving did not happen"
    monkeypatch.undo()
    if isinstance(store, SQLiteStore):
        store._reader().set_trace_callback(None)
    assert start <= 2, f"the window starts after seq {start}: the batch stored meanwhile is skipped"
    assert _chain_seqs(store, account.id, start, T0) == [3, 4]
