"""`Store.iter_events` and `Store.purge_events` (what retention and archives build on) against every
backend: iteration by time in batches, purges by time (PostgreSQL drops whole day partitions when it
can), `max_seq`, other streams untouched, seqs never reused, and paging still exact afterwards."""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator
from typing import Any

import pytest

from siemgate.model.facets import Facets
from siemgate.model.features import Feature
from siemgate.model.ids import new_id
from siemgate.store.base import Account, NewEvent, Store
from siemgate.store.sqlite.retention import PURGE_CHUNK

SIGNIN, AUDIT = Feature.SIGNINATTEMPTS, Feature.AUDITEVENTS
DAY = 86_400 * 1_000_000_000
T0 = 20_000 * DAY  # a UTC midnight (2024-10-04)
HOUR = DAY // 24


def _account(store: Store) -> Account:
    return store.create_account(new_id(), f"acct-{new_id()}", T0)


def _events(stamps: list[int]) -> list[NewEvent]:
    out = []
    for ts in stamps:
        uuid = new_id()
        out.append(NewEvent(uuid, ts, f'{{"uuid":"{uuid}","ts":{ts}}}'.encode(), None))
    return out


def _all(store: Store, account: Account, feature: Feature) -> list[tuple[int, int, str]]:
    rows = store.read_events(account.id, feature, 0, 0, None, 1_000_000)
    return [(int(seq), *_stamp(body)) for seq, body, _ in rows]


def _stamp(body: bytes) -> tuple[int, str]:
    text = bytes(body).decode()
    return int(text.split('"ts":')[1].rstrip("}")), text.split('"uuid":"')[1].split('"')[0]


def test_iter_events_in_batches_by_time(store: Store) -> None:
    a = _account(store)
    rng = random.Random(3)
    stamps = [T0 + rng.randrange(0, 5 * DAY) for _ in range(700)]
    stamps += stamps[:20]  # several events at the same instant
    events = _events(stamps)
    seqs = store.insert_events(a.id, SIGNIN, events).seqs
    store.insert_events(a.id, AUDIT, _events(stamps[:50]))  # another stream
    by_uuid = {e.uuid: (s, e) for s, e in zip(seqs, events, strict=True)}
    start, end = T0 + DAY + 7, T0 + 4 * DAY
    batches = list(store.iter_events(a.id, SIGNIN, start, end, 64))
    assert batches and all(0 < len(b) <= 64 for b in batches)
    assert all(len(b) == 64 for b in batches[:-1])
    rows = [row for b in batches for row in b]
    want = {e.uuid for e in events if start <= e.ts < end}
    assert [r[2] for r in rows if r[2] in want] == [r[2] for r in rows]
    assert {r[2] for r in rows} == want and len(rows) == len(want)
    assert [r[1] for r in rows] == sorted(r[1] for r in rows)  # by time
    for seq, ts, uuid, body in rows:
        assert by_uuid[uuid][0] == seq and by_uuid[uuid][1].ts == ts and bytes(body) == by_uuid[uuid][1].body
    assert list(store.iter_events(a.id, SIGNIN, end, end, 10)) == []
    assert list(store.iter_events(a.id, SIGNIN, T0 + 9 * DAY, T0 + 10 * DAY, 10)) == []


def test_purge_removes_what_is_older_and_nothing_else(store: Store) -> None:
    a, b = _account(store), _account(store)
    stamps = [T0 + d * DAY + h * HOUR for d in range(6) for h in (1, 12, 23)]
    store.insert_events(a.id, SIGNIN, _events(stamps))
    store.insert_events(a.id, AUDIT, _events(stamps))  # same days, another feature
    store.insert_events(b.id, SIGNIN, _events(stamps))  # same days, another account
    head = store.head_seq(a.id, SIGNIN)
    before = _all(store, a, SIGNIN)
    # Two whole days, then a horizon in the middle of a day.
    assert store.purge_events(a.id, SIGNIN, T0 + 2 * DAY) == 6
    assert store.purge_events(a.id, SIGNIN, T0 + 2 * DAY + 13 * HOUR) == 2
    kept = _all(store, a, SIGNIN)
    assert kept == [r for r in before if r[1] >= T0 + 2 * DAY + 13 * HOUR]
    assert store.purge_events(a.id, SIGNIN, T0 + 2 * DAY + 13 * HOUR) == 0  # nothing left to take
    assert store.count_events(a.id, SIGNIN) == len(kept) == 10
    assert store.count_events(a.id, AUDIT) == store.count_events(b.id, SIGNIN) == 18
    assert store.head_seq(a.id, SIGNIN) == head  # seqs are never reused
    fresh = store.insert_events(a.id, SIGNIN, _events([T0 + HOUR])).seqs  # a late event for a purged day
    assert fresh[0] is not None and fresh[0] > head
    assert store.count_events(a.id, SIGNIN) == 11


def test_purge_of_every_stream_of_a_day_then_paging_and_positions_are_exact(store: Store) -> None:
    """When every stream of some days is purged (PostgreSQL drops those partitions), reading,
    iterating, start positions and new inserts into those days still behave."""
    accounts = [_account(store), _account(store)]
    stamps = [T0 + d * DAY + h * HOUR for d in range(5) for h in range(0, 24, 6)]
    for acct in accounts:
        store.insert_events(acct.id, AUDIT, _events(stamps))
    for acct in accounts:
        assert store.purge_events(acct.id, AUDIT, T0 + 3 * DAY) == 12
    for acct in accounts:
        rows = _all(store, acct, AUDIT)
        assert len(rows) == 8 and all(ts >= T0 + 3 * DAY for _, ts, _ in rows)
        pos = store.start_position(acct.id, AUDIT, T0)
        assert store.read_events(acct.id, AUDIT, pos, T0, None, 100)[0][0] == rows[0][0]
        assert sum(len(x) for x in store.iter_events(acct.id, AUDIT, 0, T0 + 10 * DAY, 3)) == 8
        page = store.read_page(acct.id, AUDIT, 0, T0, T0 + 4 * DAY - 1, 5, v1=False)
        assert (page.count, page.has_more) == (4, False)
    # An old event arriving after the purge goes back into a (re-created) day.
    late = store.insert_events(accounts[0].id, AUDIT, _events([T0 + 5]))
    assert late.stored == 1
    assert [r[1] for r in _all(store, accounts[0], AUDIT)][-1] == T0 + 5
    assert store.purge_events(accounts[0].id, AUDIT, T0 + DAY) == 1


def test_purge_with_max_seq_keeps_later_events(store: Store) -> None:
    a = _account(store)
    store.insert_events(a.id, SIGNIN, _events([T0 + HOUR, T0 + 2 * HOUR, T0 + DAY + HOUR]))
    head = store.head_seq(a.id, SIGNIN)
    later = store.insert_events(a.id, SIGNIN, _events([T0 + 3 * HOUR])).seqs  # stored after the archive
    assert store.purge_events(a.id, SIGNIN, T0 + 2 * DAY, max_seq=head) == 3
    assert [seq for seq, _, _ in _all(store, a, SIGNIN)] == later
    assert store.purge_events(a.id, SIGNIN, T0 + 2 * DAY) == 1
    assert store.count_events(a.id, SIGNIN) == 0


@pytest.mark.parametrize("batch", [1, 1000])
def test_iter_events_of_an_empty_stream(store: Store, batch: int) -> None:
    a = _account(store)
    assert list(store.iter_events(a.id, SIGNIN, 0, 2**62, batch)) == []
    assert store.purge_events(a.id, SIGNIN, 2**62) == 0


def _steps_per_event(store: Store, events: int) -> float:
    """SQLite virtual machine steps per event of iterating a day of `events` events ten at a time."""
    a = _account(store)
    store.insert_events(a.id, SIGNIN, _events([T0 + i * 1000 for i in range(events)]))
    steps = [0]

    def count() -> int:
        steps[0] += 1
        return 0

    conn = store._reader()  # type: ignore[attr-defined]
    conn.set_progress_handler(count, 100)
    try:
        assert sum(len(b) for b in store.iter_events(a.id, SIGNIN, T0, T0 + DAY, 10)) == events
    finally:
        conn.set_progress_handler(None, 0)
    return steps[0] / events


@pytest.mark.parametrize("store", ["sqlite"], indirect=True)
def test_iterating_a_day_reads_each_event_once_however_many_the_day_holds(store: Store) -> None:
    """SQLite's keyset condition `(ts > ? OR (ts = ? AND uuid > ?))` gave the index only the day's
    start as its lower bound, so each batch read the day from its start again: iterating a day of
    n events took n²/batch steps (400,000 events: 7 s at 5,000 a batch, 30 s at 1,000; a day of
    millions, hours of `retention apply`). The lower bound is now the last row's timestamp."""
    small, large = _steps_per_event(store, 2_000), _steps_per_event(store, 8_000)
    assert large < 1.5 * small, (small, large)


@pytest.mark.parametrize("store", ["sqlite"], indirect=True)
def test_a_purge_holds_the_writer_for_a_chunk_at_a_time(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """SQLite deleted every event (and facet) a purge takes in one write transaction: a day of
    200,000 events held SQLite's one writer 1.2 s, every account's ingest waiting (a day of
    millions, or a first run of years without archive: minutes). It now deletes PURGE_CHUNK rows
    per transaction (the longest wait of a concurrent write: 0.08 s)."""
    a = _account(store)
    events = [
        e._replace(facets=Facets("actor", "kind", "detail", "FR", "app", "ip"))
        for e in _events([T0 + i for i in range(12_000)])
    ]
    store.insert_events(a.id, SIGNIN, events)
    store.insert_events(a.id, SIGNIN, _events([T0 + DAY]))  # kept
    sizes: list[int] = []
    write = store._write  # type: ignore[attr-defined]

    @contextlib.contextmanager
    def measured() -> Iterator[Any]:
        with write() as conn:
            before = conn.total_changes
            yield conn
            sizes.append(conn.total_changes - before)

    monkeypatch.setattr(store, "_write", measured)
    assert store.purge_events(a.id, SIGNIN, T0 + DAY) == 12_000
    assert sizes and max(sizes) <= PURGE_CHUNK, sizes
    assert sum(sizes) == 24_000  # the events and their facets
    assert store.count_events(a.id, SIGNIN) == 1
