"""`Store.read_page` against every backend: the page fragment is exactly the events `read_events`
returns (v2 bodies, or their v1 views), with the right count and last seq, and `has_more` is true
exactly when more matching events exist right now — on open windows, small bounded windows (read
through the timestamp index) and large bounded ones (read along seq).

Only the `Store` interface and the model's encoding are used, as in test_store_contract.py.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from siemgate.model.encoding import encode_event, v1_bytes
from siemgate.model.features import Feature
from siemgate.model.ids import new_id
from siemgate.model.timestamps import format_ns
from siemgate.store.base import Account, NewEvent, PageRows, Store

SIGNIN, ITEMS, AUDIT = Feature.SIGNINATTEMPTS, Feature.ITEMUSAGES, Feature.AUDITEVENTS
T0 = 1_700_000_000_000_000_000  # some instant in 2023, in ns
SECOND = 1_000_000_000
PLAN_THRESHOLD = 2000  # bounded windows with fewer than 2000 + 4 * limit rows use the timestamp index
EMPTY = PageRows(b"", 0, None, False)
NAMES = [
    "Ada Lovelace",
    "Zoë Ünïcødé-Ørsted",
    "渡辺 美咲",
    "Ελένη 🔐✨",
    'quote " and \\ backslash',
    "line\u2028sep\ttab",
]


# --- events and the model -----------------------------------------------------------------------


def _account(store: Store) -> Account:
    return store.create_account(new_id(), f"acct-{new_id()}", T0)


def _event(feature: Feature, ts: int, *, uuid: str | None = None, name: str = "Ada", shape: int = 0) -> NewEvent:
    """A stored event as the writer makes it (model.encoding). `shape` picks the v1 cut:
    0 no v2-only field (v1 = v2), 1 top-level v2-only fields only, 2 v2-only fields in the user too."""
    uuid = uuid or new_id()
    user = {"uuid": new_id(), "name": name, "email": "someone@example.com"}
    if shape == 2:
        user["user_type"] = "user"
    event: dict[str, Any] = {"uuid": uuid, "timestamp": format_ns(ts), "note": name}
    if feature is SIGNIN:
        event.update(category="success", type="credentials_ok", target_user=user)
    elif feature is ITEMS:
        event.update(action="fill", item_uuid=new_id(lower=True), user=user)
    else:
        event.update(action="suspend", object_type="user", actor_details=user)
    if shape:
        event["account_uuid"] = new_id()
        if feature is AUDIT:
            event["actor_type"] = "user"
    body, cut = encode_event(feature, event)
    assert (cut is None) == (shape == 0)
    return NewEvent(uuid, ts, body, cut)


@dataclass
class Row:
    seq: int
    ts: int
    body: bytes
    cut: int | None


class Log:
    """What the store should hold: the events of one (account, feature) stream, in seq order."""

    def __init__(self, store: Store, account: Account, feature: Feature) -> None:
        self.store, self.account, self.feature = store, account, feature
        self.rows: list[Row] = []
        self.keys: set[tuple[str, int]] = set()  # an event is a duplicate by (uuid, timestamp)

    def insert(self, events: list[NewEvent]) -> None:
        result = self.store.insert_events(self.account.id, self.feature, events)
        for event, seq in zip(events, result.seqs, strict=True):
            if (event.uuid, event.ts) in self.keys:
                assert seq is None
                continue
            assert seq is not None
            self.keys.add((event.uuid, event.ts))
            self.rows.append(Row(seq, event.ts, event.body, event.v1_cut))

    def matching(self, after: int, start: int, end: int | None) -> list[Row]:
        return [r for r in self.rows if r.seq > after and start <= r.ts and (end is None or r.ts <= end)]

    def check(self, after: int, start: int, end: int | None, limit: int) -> tuple[PageRows, PageRows]:
        """read_page (v2 and v1) against read_events and the model; returns both pages."""
        want = self.matching(after, start, end)
        found = self.store.read_events(self.account.id, self.feature, after, start, end, limit)
        rows = [(int(s), bytes(b), c) for s, b, c in found]
        assert rows == [(r.seq, r.body, r.cut) for r in want[:limit]], (after, start, end, limit)
        pages = []
        for v1 in (False, True):
            page = self.store.read_page(self.account.id, self.feature, after, start, end, limit, v1=v1)
            bodies = [v1_bytes(body, cut) if v1 else body for _, body, cut in rows]
            where = (after, start, end, limit, "v1" if v1 else "v2")
            assert isinstance(page.items, bytes), where
            assert orjson.loads(b"[" + page.items + b"]") == [orjson.loads(b) for b in bodies], where
            assert page.items == b",".join(bodies), where  # the events' JSON joined by commas, byte for byte
            assert page.count == len(rows), where
            assert page.last_seq == (rows[-1][0] if rows else None), where
            assert page.has_more is (len(want) > limit), where
            if not rows:
                assert page == EMPTY, where
            pages.append(page)
        return pages[0], pages[1]


# --- pages match read_events ---------------------------------------------------------------------


@pytest.mark.parametrize("feature", [SIGNIN, ITEMS, AUDIT])
def test_read_page_is_the_events_read_events_returns_in_v2_and_v1(store: Store, feature: Feature) -> None:
    a, b = _account(store), _account(store)
    log = Log(store, a, feature)
    stamps = [50, 10, 30, 20, 40, 30, 60, 0, 35, 45]
    log.insert([_event(feature, T0 + s * SECOND, shape=n % 3, name=NAMES[n % 3]) for n, s in enumerate(stamps)])
    store.insert_events(b.id, feature, [_event(feature, T0 + s * SECOND) for s in stamps])  # another account
    other = next(f for f in (SIGNIN, ITEMS, AUDIT) if f is not feature)
    store.insert_events(a.id, other, [_event(other, T0 + s * SECOND) for s in stamps])  # another feature
    seqs = [r.seq for r in log.rows]
    cases = [
        (0, T0, None, 100),
        (0, T0, None, 3),
        (0, T0 + 30 * SECOND, None, 100),
        (0, T0 + 20 * SECOND, T0 + 40 * SECOND, 100),  # both bounds inclusive
        (0, T0 + 20 * SECOND + 1, T0 + 40 * SECOND - 1, 2),
        (seqs[2], T0, None, 4),
        (seqs[2], T0 + 30 * SECOND, T0 + 30 * SECOND, 100),
        (seqs[0], T0 + 10 * SECOND, T0 + 50 * SECOND, 2),
        (0, T0 - 1, T0, 1),
        (0, 0, 2**63 - 1, 1000),
    ]
    for after, start, end, limit in cases:
        v2, v1 = log.check(after, start, end, limit)
        assert v2.count > 0
        # The v1 view drops exactly the v2-only fields.
        v2_events, v1_events = orjson.loads(b"[" + v2.items + b"]"), orjson.loads(b"[" + v1.items + b"]")
        for v2_event, v1_event in zip(v2_events, v1_events, strict=True):
            assert set(v1_event) == set(v2_event) - {"account_uuid", "actor_type"}


def test_empty_pages(store: Store) -> None:
    a = _account(store)
    for feature in (SIGNIN, ITEMS, AUDIT):
        for v1 in (False, True):
            assert store.read_page(a.id, feature, 0, 0, None, 10, v1=v1) == EMPTY  # an empty stream
    log = Log(store, a, SIGNIN)
    log.insert([_event(SIGNIN, T0 + n * SECOND, shape=n % 3) for n in range(5)])
    head = log.rows[-1].seq
    cases = [
        (head, T0, None, 10),  # nothing after the head
        (head + 100, T0, None, 10),
        (0, T0 + 5 * SECOND, None, 10),  # nothing that late
        (0, T0 - 10 * SECOND, T0 - 1, 10),  # nothing that early
        (0, T0 + 3 * SECOND, T0 + 1 * SECOND, 10),  # start after end
        (log.rows[2].seq, T0, T0 + 2 * SECOND, 1),  # the window's events are all before the position
    ]
    for after, start, end, limit in cases:
        v2_page, v1_page = log.check(after, start, end, limit)
        assert v2_page == v1_page == EMPTY
    other = _account(store)
    assert store.read_page(other.id, SIGNIN, 0, 0, None, 10, v1=False) == EMPTY  # another account's stream


# --- has_more is exact ---------------------------------------------------------------------------


@pytest.mark.parametrize("limit", [1, 3, 10])
def test_has_more_is_exact_on_small_and_open_windows(store: Store, limit: int) -> None:
    a = _account(store)
    log = Log(store, a, ITEMS)
    # In seq order: 5 events at 10 s, then `limit` events at 20 s, then 5 events at 30 s, then 5 at 20 s.
    stamps = [10] * 5 + [20] * limit + [30] * 5 + [20] * 5
    log.insert([_event(ITEMS, T0 + s * SECOND, shape=i % 3) for i, s in enumerate(stamps)])
    rows = log.rows
    at_20 = [r for r in rows if r.ts == T0 + 20 * SECOND]
    # Exactly `limit` matching events, followed by non-matching ones: no more.
    first_run_end = at_20[limit - 1].seq
    v2, _ = log.check(0, T0 + 20 * SECOND, T0 + 20 * SECOND, len(at_20))
    assert v2.count == len(at_20) and not v2.has_more
    v2, _ = log.check(at_20[-limit - 1].seq, T0 + 20 * SECOND, T0 + 20 * SECOND, limit)
    assert v2.count == limit and not v2.has_more
    v2, _ = log.check(at_20[-limit - 2].seq, T0 + 20 * SECOND, T0 + 20 * SECOND, limit)
    assert v2.count == limit and v2.has_more  # one more
    v2, _ = log.check(0, T0 + 20 * SECOND, T0 + 20 * SECOND, limit)
    assert v2.last_seq == first_run_end and v2.has_more  # the late events at 20 s are still to come
    # Open windows: the last `limit` events exactly, then one more.
    v2, _ = log.check(rows[-limit - 1].seq, T0, None, limit)
    assert v2.count == limit and not v2.has_more
    v2, _ = log.check(rows[-limit - 2].seq, T0, None, limit)
    assert v2.has_more
    # An open window whose last matching event is not the head: the events after it do not count.
    v2, _ = log.check(0, T0 + 25 * SECOND, None, 5)
    assert v2.count == 5 and not v2.has_more
    # Paging the whole stream, has_more is false on the last page only.
    after, pages = 0, []
    while True:
        v2, _ = log.check(after, T0, None, limit)
        pages.append(v2)
        if not v2.has_more:
            break
        after = v2.last_seq  # type: ignore[assignment]
    assert sum(p.count for p in pages) == len(rows)
    assert pages[-1].last_seq == rows[-1].seq
    assert all(p.count == limit for p in pages[:-1])


@pytest.mark.parametrize("limit", [1, 7, 50])
def test_has_more_is_exact_on_large_bounded_windows(store: Store, limit: int) -> None:
    """Windows with more than 2000 + 4*limit rows are read along seq; narrow ones through the
    timestamp index. has_more must be exact on both, including when exactly `limit` events match."""
    rng = random.Random(limit)
    a = _account(store)
    log = Log(store, a, SIGNIN)
    n = 3000
    stamps = [T0 + rng.randrange(0, 1500) * SECOND for _ in range(n)]
    for i in range(0, n, 1000):
        log.insert([_event(SIGNIN, ts, shape=(i + j) % 3) for j, ts in enumerate(stamps[i : i + 1000])])
    # Then events outside every window below, so the last matching event is never the head.
    log.insert([_event(SIGNIN, T0 + (-1 if i % 2 else 1600) * SECOND, shape=i % 3) for i in range(20)])
    ordered = sorted(stamps)
    windows = [
        (ordered[100], ordered[-100]),  # about 2800 rows: along seq
        (ordered[250], ordered[2600]),  # about 2350 rows: along seq
        (ordered[1500], ordered[1530]),  # a few dozen rows: through the timestamp index
        (ordered[700], ordered[700]),  # one instant
    ]
    for start, end in windows:
        matching = log.matching(0, start, end)
        large = end - start > 1000 * SECOND
        if large:
            assert len(matching) > PLAN_THRESHOLD + 4 * limit
        else:
            assert len(matching) < PLAN_THRESHOLD
        assert matching[-1].seq < log.rows[-1].seq
        positions = [0, matching[len(matching) // 2].seq, rng.choice(log.rows).seq]
        if len(matching) > limit:
            positions += [matching[-limit - 1].seq]  # exactly `limit` left: has_more false
        if len(matching) > limit + 1:
            positions += [matching[-limit - 2].seq]  # `limit` + 1 left: has_more true
        positions += [matching[-1].seq, matching[-1].seq - 1]
        # Pages that start right on an event at a bound (both bounds are inclusive).
        for bound in (start, end):
            positions += [r.seq - 1 for r in matching if r.ts == bound][:3]
        for after in positions:
            v2, _ = log.check(after, start, end, limit)
            left = len(log.matching(after, start, end))
            assert v2.count == min(left, limit)
            assert v2.has_more is (left > limit)


# --- non-ASCII text ------------------------------------------------------------------------------


def test_events_with_non_ascii_text_survive_both_views(store: Store) -> None:
    a = _account(store)
    for feature in (SIGNIN, ITEMS, AUDIT):
        log = Log(store, a, feature)
        events = [_event(feature, T0 + i * SECOND, name=name, shape=i % 3) for i, name in enumerate(NAMES * 3)]
        log.insert(events)
        for after, start, end, limit in [(0, T0, None, 1000), (0, T0, T0 + 5 * SECOND, 4), (2, T0, None, 7)]:
            log.check(after, start, end, limit)
        v2, v1 = log.check(0, T0, None, 1000)
        names_v2 = [e["note"] for e in orjson.loads(b"[" + v2.items + b"]")]
        names_v1 = [e["note"] for e in orjson.loads(b"[" + v1.items + b"]")]
        assert names_v2 == names_v1 == NAMES * 3
        user_key = {SIGNIN: "target_user", ITEMS: "user", AUDIT: "actor_details"}[feature]
        users = [e[user_key]["name"] for e in orjson.loads(b"[" + v1.items + b"]")]
        assert users == NAMES * 3


# --- the property ------------------------------------------------------------------------------

_FEATURE = st.sampled_from([SIGNIN, AUDIT])
_EVENT = st.tuples(
    st.integers(0, 25),  # uuid index: repeats are duplicates
    st.integers(0, 40),  # ts, seconds from T0
    st.integers(0, 2),  # shape (v1 cut)
    st.text(max_size=6),  # a name, any text
)
_BATCH = st.tuples(_FEATURE, st.lists(_EVENT, max_size=10))
_WINDOW = st.tuples(
    _FEATURE,
    st.integers(-2, 42),  # start
    st.one_of(st.none(), st.integers(-2, 42)),  # end
    st.integers(1, 6),  # limit
    st.integers(0, 40),  # where to start reading: an index into the stream's seqs, or past the head
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batches=st.lists(_BATCH, max_size=6), windows=st.lists(_WINDOW, min_size=1, max_size=4))
def test_read_page_matches_a_brute_force_model(store: Store, batches: list[Any], windows: list[Any]) -> None:
    account = _account(store)  # a fresh account per example isolates it from earlier ones
    logs = {f: Log(store, account, f) for f in (SIGNIN, AUDIT)}
    for feature, items in batches:
        events = [
            _event(feature, T0 + sec * SECOND, uuid=f"EVENT{index:021d}", name=name, shape=shape)
            for index, sec, shape, name in items
        ]
        logs[feature].insert(events)
    for feature, start_s, end_s, limit, position in windows:
        log = logs[feature]
        start = T0 + start_s * SECOND
        end = None if end_s is None else T0 + end_s * SECOND
        seqs = [0] + [r.seq for r in log.rows]
        first = after = seqs[position] if position < len(seqs) else seqs[-1] + position
        # Page from there to the end of the stream: each page checked, together every matching event once.
        delivered: list[bytes] = []
        for _ in range(100):
            v2, _ = log.check(after, start, end, limit)
            if v2.count:
                delivered.extend(orjson.dumps(e) for e in orjson.loads(b"[" + v2.items + b"]"))
            if not v2.has_more:
                break
            assert v2.last_seq is not None
            after = v2.last_seq
        assert delivered == [orjson.dumps(orjson.loads(r.body)) for r in log.matching(first, start, end)]
