"""The central guarantee (docs/cursors.md): a reader following a cursor
chain while several writers ingest concurrently over HTTP receives every event of its window exactly
once — late events with old timestamps included, events outside the window never, re-sent duplicates
once — with no sleeps: the reader polls, and after the writers finish it drains to the end."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
import pytest

from siemgate.config import load_settings
from siemgate.model.encoding import V2_ONLY_TOP
from siemgate.model.features import ALL_FEATURES, Feature
from siemgate.model.timestamps import format_ns, parse_ns
from siemgate.store.postgres import PostgresStore
from siemgate.store.sqlite import SQLiteStore
from support.clocks import Clock
from support.events import HOUR, MAKERS, SECOND
from support.servers import LiveServer, start_server, stop_server
from support.stores import BOTH_BACKENDS, make_store

server_backend = BOTH_BACKENDS  # these HTTP tests run on SQLite and PostgreSQL

MINUTE = 60 * SECOND
WRITERS = 4
BATCHES = 12
SHARED_AT = BATCHES // 2
TIME_BOUND_S = 30  # a run takes a second or two; this only keeps a broken server from hanging the suite


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, server_backend: str) -> Iterator[LiveServer]:
    """One server for the module (each run uses its own account); the reader polls without pause,
    so the per-token rate limits are raised out of the way."""
    data_dir = tmp_path_factory.mktemp("exactly-once")
    settings = load_settings(
        data_dir=data_dir, rate_limit_per_minute=10**7, rate_limit_per_hour=10**8, account_rate_limit_per_minute=10**7
    )
    live, uv, thread = start_server(settings, make_store(server_backend, data_dir), Clock())
    yield live
    stop_server(live, uv, thread)


@pytest.fixture(scope="module")
def tight_server(tmp_path_factory: pytest.TempPathFactory, server_backend: str) -> Iterator[LiveServer]:
    """A server whose pages examine at most 3 stored events each, every window read along seq:
    nearly every page stops at its scan budget and moves its cursor past what it examined
    (docs/cursors.md, "Bounded work")."""
    data_dir = tmp_path_factory.mktemp("exactly-once-tight")
    settings = load_settings(data_dir=data_dir, rate_limit_per_minute=10**7, rate_limit_per_hour=10**8)
    store = make_store(server_backend, data_dir)
    if isinstance(store, SQLiteStore):
        store.scan_budget = lambda limit: 3  # type: ignore[method-assign]
        store._window_small = lambda *args: False  # type: ignore[method-assign]
    else:
        assert isinstance(store, PostgresStore)
        store.scan_budget = lambda limit: 3  # type: ignore[method-assign]
        store._plan = lambda *args: "seq"  # type: ignore[method-assign]
    live, uv, thread = start_server(settings, store, Clock())
    yield live
    stop_server(live, uv, thread)


@dataclass
class Window:
    start: int
    end: int | None  # inclusive; None = open-ended

    def __contains__(self, ts: int) -> bool:
        return self.start <= ts and (self.end is None or ts <= self.end)

    def reset(self, limit: int) -> dict[str, Any]:
        body: dict[str, Any] = {"limit": limit, "start_time": format_ns(self.start)}
        if self.end is not None:
            body["end_time"] = format_ns(self.end)
        return body


@dataclass
class Plan:
    """What one writer sends: batches of events; re-sent batches and re-sent events reuse earlier dicts."""

    batches: list[list[dict[str, Any]]] = field(default_factory=list)


def _plan(feature: Feature, window: Window, now: int, rng: random.Random) -> Plan:
    make = MAKERS[feature]
    end = window.end if window.end is not None else now + HOUR
    plan = Plan()
    sent: list[dict[str, Any]] = []

    def fresh(ts: int) -> dict[str, Any]:
        event = make(ts)
        sent.append(event)
        return event

    for number in range(BATCHES):
        if number % 4 == 3:  # re-send an earlier batch whole
            plan.batches.append(list(plan.batches[rng.randrange(len(plan.batches))]))
            continue
        batch = [fresh(rng.randint(window.start, end)) for _ in range(rng.randint(3, 8))]
        if number >= BATCHES // 2:  # late arrivals: old timestamps just inside the window
            batch += [fresh(window.start + rng.randint(0, MINUTE)) for _ in range(3)]
        batch.append(fresh(window.start - rng.randint(1, HOUR)))  # before the window
        if window.end is not None:
            batch.append(fresh(window.end + rng.randint(1, 10 * MINUTE)))  # after the window
        if number == 1:  # the bounds themselves: inclusive, and one nanosecond outside
            batch += [fresh(window.start), fresh(window.start - 1)]
            if window.end is not None:
                batch += [fresh(window.end), fresh(window.end + 1)]
        if number > 1:  # a few events of earlier batches again, mixed with new ones
            batch += rng.sample(sent[: -len(batch)], 2)
        rng.shuffle(batch)
        plan.batches.append(batch)
    return plan


class Writer(threading.Thread):
    def __init__(self, base_url: str, key: str, feature: Feature, plan: Plan, progress: threading.Semaphore) -> None:
        super().__init__(daemon=True)
        self.base_url = base_url
        self.key = key
        self.feature = feature
        self.plan = plan
        self.progress = progress
        self.results: list[dict[str, int]] = []
        self.failure: str | None = None

    def run(self) -> None:
        headers = {"Authorization": f"Bearer {self.key}"}
        with httpx.Client(base_url=self.base_url, timeout=30) as client:
            for batch in self.plan.batches:
                try:
                    response = client.post(f"/api/ingest/v2/{self.feature.value}", json=batch, headers=headers)
                except httpx.HTTPError as exc:
                    self.failure = repr(exc)
                    return
                if response.status_code != 200:
                    self.failure = f"{response.status_code} {response.text}"
                    return
                self.results.append(response.json())
                self.progress.release()


class Reader:
    """Follows one cursor chain, recording every item; asserts envelope invariants on each page."""

    def __init__(self, server: LiveServer, token: str, feature: Feature, version: int) -> None:
        self.server = server
        self.token = token
        self.feature = feature
        self.version = version
        self.items: list[dict[str, Any]] = []
        self.cursor = ""
        self.pages = 0

    def _take(self, body: dict[str, Any]) -> dict[str, Any]:
        response = self.server.page(self.token, self.feature, body, version=self.version)
        assert response.status_code == 200, response.text
        page: dict[str, Any] = orjson.loads(response.content)
        assert isinstance(page["cursor"], str) and page["cursor"]
        assert isinstance(page["has_more"], bool) and isinstance(page["items"], list)
        if not page["items"] and not page["has_more"] and "cursor" in body:
            assert page["cursor"] == body["cursor"], "the end of data must return the cursor it was given"
        self.items.extend(page["items"])
        self.cursor = page["cursor"]
        self.pages += 1
        return page

    def reset(self, body: dict[str, Any]) -> None:
        self._take(body)

    def poll(self) -> dict[str, Any]:
        return self._take({"cursor": self.cursor})

    def drain(self) -> None:
        """After the writers have finished: read until has_more is false twice in a row and the
        second of those pages brings nothing (has_more must be exact once nothing is being written)."""
        quiet = 0
        previous_said_done = False
        while quiet < 2:
            page = self.poll()
            if previous_said_done:
                assert page["items"] == [], "has_more was false but the next page brought events"
            previous_said_done = not page["has_more"]
            quiet = quiet + 1 if previous_said_done and not page["items"] else 0


def _run(
    server: LiveServer,
    feature: Feature,
    version: int,
    window: Window,
    *,
    limit: int,
    seed: int,
    reset_after: int = 0,
    preload: int = 0,
) -> None:
    """Writers ingest their plans concurrently while a reader follows one cursor chain; then check.

    reset_after: the reader resets only after that many batches have been acknowledged (a reset in
    the middle of the writes must still see every in-window event stored before it).
    preload: in-window events stored in one batch before anything starts (a big window).
    """
    account = server.account()
    token = server.token(account, [feature])
    key = server.ingest_key(account, [feature])
    now = server.clock()
    rng = random.Random(seed)
    plans = [_plan(feature, window, now, rng) for _ in range(WRITERS)]
    # each writer also sends, at the same point of its run, a batch its neighbour sends: the same
    # uuids in flight from two writers at once must still be stored once
    shared = [list(plans[(i + 1) % WRITERS].batches[SHARED_AT]) for i in range(WRITERS)]
    for plan, batch in zip(plans, shared, strict=True):
        plan.batches.insert(SHARED_AT, batch)
    sent_batches = [batch for plan in plans for batch in plan.batches]
    if preload:
        end = window.end if window.end is not None else now
        preloaded = [MAKERS[feature](rng.randint(window.start, end)) for _ in range(preload)]
        response = server.ingest(key, feature, preloaded)
        assert response.status_code == 200, response.text
        sent_batches.insert(0, preloaded)

    distinct: dict[str, int] = {}
    for batch in sent_batches:
        for event in batch:
            distinct.setdefault(event["uuid"], parse_ns(event["timestamp"]))
    expected = {uuid for uuid, ts in distinct.items() if ts in window}
    assert 0 < len(expected) < len(distinct)  # the plan really has events on both sides

    progress = threading.Semaphore(0)
    writers = [Writer(server.base_url, key, feature, plan, progress) for plan in plans]
    reader = Reader(server, token, feature, version)
    deadline = time.monotonic() + TIME_BOUND_S
    if not reset_after:
        reader.reset(window.reset(limit))
    for writer in writers:
        writer.start()
    for _ in range(reset_after):
        assert progress.acquire(timeout=TIME_BOUND_S), "the writers made no progress"
    if reset_after:
        reader.reset(window.reset(limit))
    while any(w.is_alive() for w in writers):
        reader.poll()
        assert time.monotonic() < deadline, "the run did not finish in time"
    for writer in writers:
        writer.join(timeout=TIME_BOUND_S)
        assert writer.failure is None, writer.failure
    polls_while_writing = reader.pages
    reader.drain()

    # the writers' replies add up: every distinct uuid stored once, every re-send a duplicate
    results = [r for w in writers for r in w.results]
    assert len(results) == WRITERS * (BATCHES + 1)
    sent_total = sum(len(batch) for batch in sent_batches)
    stored = sum(r["stored"] for r in results) + preload
    duplicates = sum(r["duplicates"] for r in results)
    assert stored == len(distinct)
    assert duplicates == sent_total - len(distinct)

    received = [item["uuid"] for item in reader.items]
    repeated = {u for u in received if received.count(u) > 1}
    assert not repeated, f"{len(repeated)} events delivered more than once"
    outside = [item["timestamp"] for item in reader.items if parse_ns(item["timestamp"]) not in window]
    assert not outside, f"events outside the window were delivered: {outside[:5]}"
    missing = expected - set(received)
    assert not missing, f"{len(missing)} of {len(expected)} in-window events never delivered"
    assert set(received) == expected
    assert polls_while_writing > 1  # the reader really did read while the writers wrote

    # each batch's new events get consecutive seqs, so the reader sees them in batch order
    # (checked for events only one writer sends, whose first sending is known)
    position = {uuid: i for i, uuid in enumerate(received)}
    writers_of = Counter(uuid for plan in plans for uuid in {e["uuid"] for b in plan.batches for e in b})
    for plan in plans:
        seen: set[str] = set()
        for batch in plan.batches:
            fresh = [e["uuid"] for e in batch if e["uuid"] not in seen and writers_of[e["uuid"]] == 1]
            seen.update(e["uuid"] for e in batch)
            order = [position[u] for u in fresh if u in position]
            assert order == sorted(order)

    v2_only = set(V2_ONLY_TOP[feature])
    if version == 1:
        assert all(not (v2_only & set(item)) for item in reader.items)
    else:
        assert all("account_uuid" in item for item in reader.items)


@pytest.mark.parametrize("version", [1, 2])
@pytest.mark.parametrize("feature", ALL_FEATURES)
def test_open_window_reader_gets_every_event_exactly_once_while_writers_ingest(
    server: LiveServer, feature: Feature, version: int
) -> None:
    now = server.clock()
    _run(server, feature, version, Window(now - 2 * HOUR, None), limit=5, seed=version * 10 + feature.code)


@pytest.mark.parametrize(("feature", "version"), [(Feature.SIGNINATTEMPTS, 2), (Feature.AUDITEVENTS, 1)])
def test_a_reset_in_the_middle_of_the_writes_still_gets_every_event_exactly_once(
    server: LiveServer, feature: Feature, version: int
) -> None:
    now = server.clock()
    window = Window(now - 2 * HOUR, None)
    _run(server, feature, version, window, limit=7, seed=100 + feature.code, reset_after=WRITERS * 2)


@pytest.mark.parametrize(
    ("feature", "version", "preload"),
    [
        (Feature.SIGNINATTEMPTS, 1, 0),
        (Feature.ITEMUSAGES, 2, 0),
        (Feature.AUDITEVENTS, 2, 0),
        (Feature.ITEMUSAGES, 1, 2500),  # a window larger than the timestamp-index read plan's threshold
    ],
)
def test_bounded_window_reader_gets_exactly_its_window_once(
    server: LiveServer, feature: Feature, version: int, preload: int
) -> None:
    # Sentinel's connector pages fixed 5-minute [start_time, end_time] windows with the cursor.
    now = server.clock()
    window = Window(now - 20 * MINUTE, now - 15 * MINUTE)
    _run(server, feature, version, window, limit=5, seed=200 + feature.code + preload, preload=preload)


@pytest.mark.parametrize("case", ["open", "open, reset midway", "bounded"])
def test_readers_get_every_event_exactly_once_when_pages_stop_at_their_scan_budget(
    tight_server: LiveServer, case: str
) -> None:
    """Cursors moved past events outside the window (pages stopped at the scan budget, many of
    them empty with has_more true) skip nothing and repeat nothing, while writers ingest."""
    now = tight_server.clock()
    bounded = Window(now - 20 * MINUTE, now - 15 * MINUTE)
    window = bounded if case == "bounded" else Window(now - 2 * HOUR, None)
    reset_after = WRITERS * 2 if "midway" in case else 0
    _run(tight_server, Feature.SIGNINATTEMPTS, 2, window, limit=2, seed=300 + len(case), reset_after=reset_after)


def test_a_bounded_window_reader_and_an_open_reader_of_the_same_stream_agree(server: LiveServer) -> None:
    feature = Feature.AUDITEVENTS
    account = server.account()
    token = server.token(account, [feature])
    key = server.ingest_key(account, [feature])
    now = server.clock()
    window = Window(now - 20 * MINUTE, now - 15 * MINUTE)
    bounded = Reader(server, token, feature, 2)
    bounded.reset(window.reset(3))
    events = [MAKERS[feature](now - 30 * MINUTE + i * 10 * SECOND) for i in range(180)]
    random.Random(7).shuffle(events)
    for i in range(0, len(events), 20):
        assert server.ingest(key, feature, events[i : i + 20]).status_code == 200
        bounded.poll()
    bounded.drain()
    open_reader = Reader(server, token, feature, 2)
    open_reader.reset({"start_time": format_ns(now - HOUR), "limit": 1000})
    open_reader.drain()
    in_window = [item["uuid"] for item in open_reader.items if parse_ns(item["timestamp"]) in window]
    assert [item["uuid"] for item in bounded.items] == in_window  # same events, same (seq) order
    assert len(in_window) == 31  # 10 s apart over 5 inclusive minutes
