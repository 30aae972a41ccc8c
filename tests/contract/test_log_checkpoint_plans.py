"""The reads of a stream's signed checkpoints that run periodically (retention's day-close) and on
request (a proof for a checkpoint of one size) do the same work for a stream of 20,000
checkpoints (two days at one every 10 s) as for one of 20, on both backends (support/plans.py:
SQLite virtual machine steps, PostgreSQL pages). Before, the day-close read every checkpoint of
the stream, and the checkpoint of a size read the stream's newest first until one had it (on
PostgreSQL a scan of every stream's). Figures: docs/benchmarks.md, "Checkpoints of a long log"."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

import pytest

from siemgate.model.features import Feature
from siemgate.model.ids import new_id
from siemgate.retention.signed import DAY, DayClose, day_close
from siemgate.store.base import Store
from siemgate.store.shared.log import StoredCheckpoint
from support.plans import analyze, call_work
from support.stores import STORE_BACKENDS, make_store

AUDIT = Feature.AUDITEVENTS
START = 1_800_000_000 - 1_800_000_000 % DAY + 3600  # 01:00 UTC
EVERY = 10  # seconds between checkpoints
SIZE_STEP = 5  # entries added between checkpoints


@pytest.fixture(scope="module", params=STORE_BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    """Accounts `big` and `small` whose audit stream has 20,000 and 20 checkpoints, from START."""
    s: Any = make_store(request.param, tmp_path_factory.mktemp("checkpoint-plans"))
    rows = "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < ?) "
    for name, count in (("big", 20_000), ("small", 20)):
        account_id = s.create_account(new_id(), name, 0).id
        with s._tx() as conn:
            conn.execute(
                s._q(
                    rows + "INSERT INTO log_checkpoints (account_id, feature, time, size, note)"
                    f" SELECT ?, ?, {START} + i * {EVERY}, (i + 1) * {SIZE_STEP}, 'note ' || i FROM n"
                ),
                (count - 1, account_id, AUDIT.code),
            )
    analyze(s, "log_checkpoints")
    yield s
    s.close()


def bounded(store: Store, monkeypatch: pytest.MonkeyPatch, call: Callable[[int], Any]) -> None:
    """`call(account_id)` does about the same work for the big stream as for the small one."""
    big, small = (store.get_account(name).id for name in ("big", "small"))
    work = {a: call_work(store, partial(call, a), monkeypatch, "log_checkpoints") for a in (big, small)}
    assert work[big] <= 3 * work[small] + 10, work


def test_retention_finds_the_day_close_by_two_reads(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """The day-close is the first checkpoint of the newest day that has one."""
    big = store.get_account("big").id
    newest = START + 19_999 * EVERY
    first_of_its_day = newest - newest % DAY
    first_index = -(-(first_of_its_day - START) // EVERY)  # the first checkpoint at or after midnight
    closing = day_close(store, big, AUDIT)
    assert closing is not None and closing.time == START + first_index * EVERY > first_of_its_day - EVERY
    assert closing.size == (first_index + 1) * SIZE_STEP
    assert store.first_log_checkpoint_since(big, AUDIT, newest + 1) is None
    bounded(store, monkeypatch, lambda account_id: day_close(store, account_id, AUDIT))


@pytest.mark.parametrize("size", [7, 50], ids=["no-checkpoint-of-that-size", "an-old-size"])
def test_a_proof_finds_the_checkpoint_of_its_size_by_index(
    store: Store, monkeypatch: pytest.MonkeyPatch, size: int
) -> None:
    found = store.log_checkpoint_of_size(store.get_account("big").id, AUDIT, size)
    assert (found and found.size) == (size if size % SIZE_STEP == 0 else None)
    bounded(store, monkeypatch, lambda account_id: store.log_checkpoint_of_size(account_id, AUDIT, size))


def _whole_read_day_close(store: Store, account_id: int, feature: Feature) -> DayClose | None:
    """day_close as it was before the two reads (ed6015f): every checkpoint of the stream."""
    newest: DayClose | None = None
    day = None
    for cp in store.log_checkpoints(account_id, feature):  # oldest first
        if cp.time // DAY != day:
            day = cp.time // DAY
            newest = DayClose(cp.time, cp.size, cp.note)
    return newest


def test_the_day_close_is_what_the_whole_read_found_on_random_histories(store: Store) -> None:
    """Random streams of checkpoints (added out of time order as a skewed clock would, times at
    midnight, a second before it and after it, several days with none, a stream with none) beside
    the other account's streams: the two reads find the day-close the whole read found."""
    rng = random.Random(20261208)
    midnight = START - START % DAY + 40 * DAY
    for round_ in range(40):
        account_id = store.create_account(new_id(), f"random-{round_}", 0).id
        days = rng.sample(range(-30, 30), rng.randint(0, 4))
        times: set[int] = set()
        for day in days:
            base = midnight + day * DAY
            times.update(
                rng.choice([base, base - 1, base + 1, base + rng.randrange(DAY)]) for _ in range(rng.randint(1, 4))
            )
        for feature in (AUDIT, Feature.SIGNINATTEMPTS):
            for time in rng.sample(sorted(times), len(times)):  # stored in random order
                store.add_log_checkpoint(
                    account_id, feature, StoredCheckpoint(time, rng.randrange(1, 10**6), f"n{time}")
                )
            times = {t + rng.choice([0, DAY]) for t in times}  # the other stream: other days
        for feature in (AUDIT, Feature.SIGNINATTEMPTS):
            assert day_close(store, account_id, feature) == _whole_read_day_close(store, account_id, feature), times
