"""No skipped events with concurrent writers (docs/cursors.md), on every backend: several
writer *processes* insert into one stream while several reader processes follow cursor chains with
`start_position` and `read_page`, for a bounded time. Afterwards every reader has received every
stored event of its window exactly once, in seq order — late events and duplicates included.

A backend that let a reader see seq n+1 while seq n was still uncommitted would fail this: the
reader's cursor would pass n, and n would never be delivered. The "days-late" run sends 7% of the
events 1-3 days old, so that batches span day partitions: a page read with one snapshot for its
partition choice and another for its rows would skip some of them (docs/cursors.md, "One
snapshot per page").
"""

from __future__ import annotations

import multiprocessing
import random
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from siemgate.model.features import Feature
from siemgate.model.ids import new_id
from siemgate.store.base import NewEvent, Store
from support.stores import STORE_BACKENDS, make_store

FEATURE = Feature.SIGNINATTEMPTS
SECOND = 1_000_000_000
DAY = 86_400 * SECOND
T0 = 1_750_000_000 * SECOND
WRITERS, READERS = 3, 3
WRITE_SECONDS = 4.0
DEADLINE_SECONDS = 90.0  # a broken store must not hang the suite
WINDOWS: list[tuple[int, int | None]] = [
    (T0, None),  # everything, open
    (T0 + 100 * SECOND, None),  # late events before the start are outside
    (T0 + 50 * SECOND, T0 + 250 * SECOND),  # bounded
]
LATE_WINDOWS: list[tuple[int, int | None]] = [
    (T0 - 4 * DAY, None),  # everything, open
    (T0 - 2 * DAY, None),  # some of the days-late events are before the start
    (T0 - 4 * DAY, T0 + 250 * SECOND),  # bounded
]
LATE_FRACTION = 0.07


def _open(kind: str, where: str) -> Store:
    if kind == "sqlite":
        from siemgate.store.sqlite import SQLiteStore

        return SQLiteStore(where)
    from siemgate.store.postgres import PostgresStore

    return PostgresStore(where, max_size=2)


def _writer(kind: str, where: str, account_id: int, seed: int, seconds: float, days_late: bool, out: Any) -> None:
    """Insert random batches for `seconds`; report the (uuid, ts) of every event stored."""
    store = _open(kind, where)
    stop_at = time.time() + seconds
    rng = random.Random(seed)
    stored: list[tuple[str, int]] = []
    sent: list[NewEvent] = []
    try:
        n = 0
        while time.time() < stop_at:
            batch = []
            for _ in range(rng.randint(1, 40)):
                n += 1
                # Mostly in time order, some late with old timestamps.
                offset = rng.randint(0, 50) if rng.random() < 0.2 else min(300, n // 10 + rng.randint(0, 60))
                ts = T0 + offset * SECOND
                if days_late and rng.random() < LATE_FRACTION:
                    ts -= rng.randint(1 * DAY, 3 * DAY)
                uuid = new_id()
                event = NewEvent(uuid, ts, orjson.dumps({"uuid": uuid, "ts": ts}), None)
                batch.append(event)
            if sent and rng.random() < 0.3:
                batch += rng.sample(sent, min(len(sent), 3))  # re-sent: duplicates
            rng.shuffle(batch)
            result = store.insert_events(account_id, FEATURE, batch)
            stored += [(e.uuid, e.ts) for e, seq in zip(batch, result.seqs, strict=True) if seq is not None]
            sent += batch[:5]
            time.sleep(0.002)  # keeps the volume moderate on a fast backend; interleaving stays dense
        out.put(("writer", seed, stored))
    except BaseException as exc:
        out.put(("error", seed, repr(exc)))
    finally:
        store.close()


def _reader(
    kind: str, where: str, account_id: int, seed: int, window: tuple[int, int | None], done: Any, out: Any
) -> None:
    """Follow one cursor chain from the window's start until the writers are done and it is drained."""
    store = _open(kind, where)
    rng = random.Random(seed)
    start, end = window
    got: list[tuple[str, int]] = []
    pages: list[int] = []
    try:
        after = store.start_position(account_id, FEATURE, start)
        deadline = time.time() + DEADLINE_SECONDS
        while time.time() < deadline:
            finished = done.is_set()  # read before the page: a page after `done` sees every commit
            limit = rng.choice([1, 7, 50, 200])
            page = store.read_page(account_id, FEATURE, after, start, end, limit, v1=False)
            if page.count:
                items = orjson.loads(b"[" + page.items + b"]")
                assert page.last_seq is not None
                got += [(item["uuid"], item["ts"]) for item in items]
                pages.append(page.last_seq)
                after = page.last_seq
            if finished and not page.has_more and page.count < limit:
                break
        out.put(("reader", seed, (got, pages)))
    except BaseException as exc:
        out.put(("error", seed, repr(exc)))
    finally:
        store.close()


@pytest.mark.parametrize("days_late", [False, True], ids=["seconds-late", "days-late"])
@pytest.mark.parametrize("kind", STORE_BACKENDS)
def test_readers_get_every_event_exactly_once_while_writer_processes_insert(
    kind: str, days_late: bool, tmp_path: Path
) -> None:
    windows = LATE_WINDOWS if days_late else WINDOWS
    store = make_store(kind, tmp_path)
    try:
        account = store.create_account(new_id(), "Concurrent", T0)
        where = str(tmp_path / "siemgate.db") if kind == "sqlite" else store.url  # type: ignore[attr-defined]
        ctx = multiprocessing.get_context("spawn")
        out = ctx.Queue()
        done = ctx.Event()
        readers = [
            ctx.Process(target=_reader, args=(kind, where, account.id, i, windows[i % len(windows)], done, out))
            for i in range(READERS)
        ]
        writers = [
            ctx.Process(target=_writer, args=(kind, where, account.id, 100 + i, WRITE_SECONDS, days_late, out))
            for i in range(WRITERS)
        ]
        for p in readers + writers:
            p.start()
        results: dict[str, dict[int, Any]] = {"writer": {}, "reader": {}}
        try:
            # Results are taken off the queue as they come (a process cannot exit while what it
            # put is unread); the readers are told to finish once every writer has reported.
            for _ in range(WRITERS + READERS):
                role, seed, value = out.get(timeout=DEADLINE_SECONDS)
                assert role != "error", f"process {seed} failed: {value}"
                results[role][seed] = value
                if len(results["writer"]) == WRITERS:
                    done.set()
        finally:
            for p in readers + writers:
                p.join(10)
                if p.is_alive():
                    p.kill()
        stored = {uuid: ts for events in results["writer"].values() for uuid, ts in events}
        assert len(stored) > 500, "the writers should have stored plenty of events"
        assert sum(len(v) for v in results["writer"].values()) == len(stored), "an event was stored twice"
        for seed, (got, pages) in results["reader"].items():
            start, end = windows[seed % len(windows)]
            want = {u for u, ts in stored.items() if ts >= start and (end is None or ts <= end)}
            uuids = [u for u, _ in got]
            assert len(uuids) == len(set(uuids)), f"reader {seed} got an event twice"
            assert set(uuids) == want, (
                f"reader {seed} {window_text(start, end)}: missing {len(want - set(uuids))},"
                f" unexpected {len(set(uuids) - want)}"
            )
            assert pages == sorted(set(pages)), f"reader {seed}: pages went backwards"
        assert store.count_events(account.id, FEATURE) == len(stored)
    finally:
        store.close()


def window_text(start: int, end: int | None) -> str:
    return f"[{(start - T0) // SECOND}s, {'open' if end is None else f'{(end - T0) // SECOND}s'}] from T0"
