"""The Store contract (store/base.py), run against every backend through the `store` fixture.

Only the `Store` interface is used here: no SQL, no backend internals, so a new backend passes this
suite exactly when it keeps the contract.
"""

from __future__ import annotations

import itertools
import random
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from siemgate.errors import Conflict, NotFound
from siemgate.model.encoding import encode_event
from siemgate.model.features import ALL_FEATURES, Feature
from siemgate.model.ids import new_id
from siemgate.store.base import Account, IngestKey, InsertResult, NewEvent, Store, TokenRecord, TokenUse

SIGNIN, ITEMS, AUDIT = Feature.SIGNINATTEMPTS, Feature.ITEMUSAGES, Feature.AUDITEVENTS
T0 = 1_700_000_000_000_000_000  # some instant in 2023, in ns
SECOND = 1_000_000_000


# --- helpers ------------------------------------------------------------------------------------


def _account(store: Store, name: str | None = None, now: int = T0) -> Account:
    return store.create_account(new_id(), name or f"acct-{new_id()}", now)


def _event(ts: int, uuid: str | None = None, tag: str = "") -> NewEvent:
    uuid = uuid or new_id()
    return NewEvent(uuid, ts, f'{{"uuid":"{uuid}","tag":"{tag}"}}'.encode(), None)


def _rows(rows: Any) -> list[tuple[int, bytes, int | None]]:
    return [(int(seq), bytes(body), cut) for seq, body, cut in rows]


def _token(
    store: Store,
    account: Account,
    *,
    kid: str = "kid-1",
    expires_at: int | None = None,
    created_at: int = T0,
    features: tuple[Feature, ...] = ALL_FEATURES,
) -> TokenRecord:
    integration = store.create_integration(account.id, new_id(), "splunk", f"int-{new_id()}", "", T0)
    record = TokenRecord(
        id=new_id(),
        account_id=account.id,
        integration_id=integration.id,
        name="SIEM token",
        features=features,
        kid=kid,
        token_sha256=new_id() + new_id(),
        created_at=created_at,
        expires_at=expires_at,
    )
    store.create_token(record)
    return record


def _ingest_key(store: Store, account: Account, features: tuple[Feature, ...] = ALL_FEATURES) -> IngestKey:
    key = IngestKey(
        id=new_id(),
        account_id=account.id,
        name="producer",
        features=features,
        key_sha256=new_id() + new_id(),
        prefix="sgk_" + new_id()[:6],
        created_at=T0,
    )
    store.create_ingest_key(key)
    return key


def _seqs(result: InsertResult) -> list[int]:
    """The seqs of a batch that had no duplicate (each event stored)."""
    seqs = [seq for seq in result.seqs if seq is not None]
    assert len(seqs) == len(result.seqs), result.seqs
    return seqs


def _drain(
    store: Store, account: Account, feature: Feature, after: int, start: int, end: int | None, limit: int
) -> list[tuple[int, bytes, int | None]]:
    """Page with read_events from `after` until a page comes back empty."""
    out: list[tuple[int, bytes, int | None]] = []
    for _ in range(100_000):
        page = _rows(store.read_events(account.id, feature, after, start, end, limit))
        assert len(page) <= limit
        if not page:
            return out
        out.extend(page)
        after = page[-1][0]
    raise AssertionError("read_events never ran dry")


# --- accounts -----------------------------------------------------------------------------------


def test_create_and_get_account(store: Store) -> None:
    uuid = new_id()
    created = store.create_account(uuid, "Acme Corp", T0)
    assert (created.uuid, created.name, created.created_at) == (uuid, "Acme Corp", T0)
    assert store.get_account(uuid) == created
    assert store.get_account("Acme Corp") == created
    assert store.get_account("aCME cORP") == created
    assert store.get_account_by_id(created.id) == created


def test_accounts_are_distinct_and_listed(store: Store) -> None:
    a = _account(store)
    b = _account(store)
    assert a.id != b.id
    assert store.get_account(a.uuid) == a
    assert store.get_account(b.uuid) == b
    listed = store.list_accounts()
    assert set(listed) == {a, b}
    assert len(listed) == 2


def test_account_uuid_wins_over_another_accounts_name(store: Store) -> None:
    b = _account(store)
    a = store.create_account(new_id(), b.uuid, T0)  # a's *name* is b's uuid
    assert store.get_account(b.uuid) == b
    assert store.get_account(a.uuid) == a


def test_duplicate_account_name_is_a_conflict(store: Store) -> None:
    _account(store, "Acme")
    with pytest.raises(Conflict):
        store.create_account(new_id(), "Acme", T0)
    with pytest.raises(Conflict):
        store.create_account(new_id(), "ACME", T0)  # names are looked up case-insensitively
    assert len(store.list_accounts()) == 1


def test_unknown_account_is_not_found(store: Store) -> None:
    a = _account(store)
    with pytest.raises(NotFound):
        store.get_account(new_id())
    with pytest.raises(NotFound):
        store.get_account("no such account")
    with pytest.raises(NotFound):
        store.get_account_by_id(a.id + 1000)


# --- integrations -------------------------------------------------------------------------------


def test_create_and_get_integration(store: Store) -> None:
    a = _account(store)
    uuid = new_id()
    created = store.create_integration(a.id, uuid, "splunk", "Splunk prod", "the main one", T0 + 5)
    assert (created.uuid, created.account_id, created.type, created.name, created.description, created.created_at) == (
        uuid,
        a.id,
        "splunk",
        "Splunk prod",
        "the main one",
        T0 + 5,
    )
    assert store.get_integration(a.id, uuid) == created
    assert store.get_integration(a.id, "Splunk prod") == created
    assert store.get_integration_by_id(created.id) == created


def test_integration_of_another_account_is_not_found(store: Store) -> None:
    a, b = _account(store), _account(store)
    mine = store.create_integration(a.id, new_id(), "elastic", "Elastic", "", T0)
    with pytest.raises(NotFound):
        store.get_integration(b.id, mine.uuid)
    with pytest.raises(NotFound):
        store.get_integration(b.id, "Elastic")
    with pytest.raises(NotFound):
        store.get_integration(a.id, new_id())
    with pytest.raises(NotFound):
        store.get_integration_by_id(mine.id + 1000)


def test_integration_names_are_unique_per_account(store: Store) -> None:
    a, b = _account(store), _account(store)
    first = store.create_integration(a.id, new_id(), "splunk", "SIEM", "", T0)
    with pytest.raises(Conflict):
        store.create_integration(a.id, new_id(), "elastic", "SIEM", "", T0)
    other = store.create_integration(b.id, new_id(), "splunk", "SIEM", "", T0)
    assert other.id != first.id
    assert store.get_integration(a.id, "SIEM") == first
    assert store.get_integration(b.id, "SIEM") == other
    assert store.list_integrations(a.id) == [first]
    assert store.list_integrations(b.id) == [other]


def test_list_integrations(store: Store) -> None:
    a, b = _account(store), _account(store)
    assert store.list_integrations(a.id) == []
    made = {store.create_integration(a.id, new_id(), "other", f"i{n}", "", T0) for n in range(3)}
    store.create_integration(b.id, new_id(), "other", "elsewhere", "", T0)
    listed = store.list_integrations(a.id)
    assert set(listed) == made and len(listed) == 3


# --- SIEM tokens --------------------------------------------------------------------------------


def test_create_get_and_list_tokens(store: Store) -> None:
    a, b = _account(store), _account(store)
    t1 = _token(store, a, features=(SIGNIN,), expires_at=T0 + 90 * 86400 * SECOND)
    t2 = _token(store, a, features=(ITEMS, AUDIT), kid="kid-2")
    t3 = _token(store, b)
    for t in (t1, t2, t3):
        assert store.get_token(t.id) == t
    assert store.get_token(t1.id).features == (SIGNIN,)
    assert store.get_token(t2.id).features == (ITEMS, AUDIT)
    listed_a = store.list_tokens(a.id)
    assert set(listed_a) == {t1, t2} and len(listed_a) == 2
    assert store.list_tokens(b.id) == [t3]
    everything = store.list_tokens()
    assert set(everything) == {t1, t2, t3} and len(everything) == 3


def test_unknown_token_is_not_found(store: Store) -> None:
    with pytest.raises(NotFound):
        store.get_token(new_id())
    with pytest.raises(NotFound):
        store.revoke_token(new_id(), T0)


def test_revoke_token_is_idempotent_and_keeps_the_first_time(store: Store) -> None:
    a = _account(store)
    t = _token(store, a)
    other = _token(store, a)
    revoked = store.revoke_token(t.id, T0 + 10)
    assert revoked.revoked_at == T0 + 10
    assert revoked.id == t.id
    assert store.get_token(t.id).revoked_at == T0 + 10
    again = store.revoke_token(t.id, T0 + 99)
    assert again.revoked_at == T0 + 10
    assert store.get_token(t.id).revoked_at == T0 + 10
    assert store.get_token(other.id).revoked_at is None


def test_record_token_uses_keeps_the_latest_use(store: Store) -> None:
    a = _account(store)
    t, other = _token(store, a), _token(store, a)
    store.record_token_uses([])  # nothing to do, must not fail
    assert store.get_token(t.id).last_used_at is None
    store.record_token_uses([TokenUse(t.id, T0 + 100, SIGNIN, 7)])
    assert store.get_token(t.id).last_used_at == T0 + 100
    store.record_token_uses([TokenUse(t.id, T0 + 50, SIGNIN, 3)])  # an older use arriving late
    assert store.get_token(t.id).last_used_at == T0 + 100
    store.record_token_uses([TokenUse(t.id, T0 + 200)])  # a use without a feature (e.g. introspect)
    assert store.get_token(t.id).last_used_at == T0 + 200
    # Several uses in one batch, newest first: the newest still wins.
    store.record_token_uses(
        [
            TokenUse(t.id, T0 + 400, ITEMS, 11),
            TokenUse(t.id, T0 + 300, ITEMS, 9),
            TokenUse(other.id, T0 + 250, AUDIT, 1),
        ]
    )
    assert store.get_token(t.id).last_used_at == T0 + 400
    assert store.get_token(other.id).last_used_at == T0 + 250


def test_live_token_kids(store: Store) -> None:
    a = _account(store)
    now = T0 + 1000 * SECOND
    assert store.live_token_kids(now) == set()
    _token(store, a, kid="forever")
    _token(store, a, kid="later", expires_at=now + 1)
    _token(store, a, kid="expired", expires_at=now - 1)
    _token(store, a, kid="expires-now", expires_at=now)  # is_live: now < expires_at
    revoked = _token(store, a, kid="revoked")
    store.revoke_token(revoked.id, now - 5)
    shared_revoked = _token(store, a, kid="shared")
    _token(store, a, kid="shared")
    store.revoke_token(shared_revoked.id, now - 5)
    assert store.live_token_kids(now) == {"forever", "later", "shared"}
    assert store.live_token_kids(now - 2) == {"forever", "later", "expired", "expires-now", "shared"}
    assert store.live_token_kids(now + 1) == {"forever", "shared"}


def test_token_record_is_live_matches_live_token_kids(store: Store) -> None:
    a = _account(store)
    now = T0 + 10 * SECOND
    tokens = [
        _token(store, a, kid=f"k{n}", expires_at=exp)
        for n, exp in enumerate([None, now - 1, now, now + 1, now + 100 * SECOND])
    ]
    store.revoke_token(tokens[-1].id, now - 1)
    live = {t.kid for t in (store.get_token(t.id) for t in tokens) if t.is_live(now)}
    assert store.live_token_kids(now) == live == {"k0", "k3"}


# --- ingest keys --------------------------------------------------------------------------------


def test_ingest_keys(store: Store) -> None:
    a, b = _account(store), _account(store)
    k1 = _ingest_key(store, a, (SIGNIN,))
    k2 = _ingest_key(store, a)
    k3 = _ingest_key(store, b)
    assert store.get_ingest_key_by_hash(k1.key_sha256) == k1
    assert store.get_ingest_key_by_hash(k2.key_sha256).features == ALL_FEATURES
    with pytest.raises(NotFound):
        store.get_ingest_key_by_hash("0" * 64)
    listed = store.list_ingest_keys(a.id)
    assert set(listed) == {k1, k2} and len(listed) == 2
    assert store.list_ingest_keys(b.id) == [k3]
    everything = store.list_ingest_keys()
    assert set(everything) == {k1, k2, k3} and len(everything) == 3


def test_revoke_ingest_key(store: Store) -> None:
    a = _account(store)
    k, other = _ingest_key(store, a), _ingest_key(store, a)
    revoked = store.revoke_ingest_key(k.id, T0 + 7)
    assert revoked.id == k.id and revoked.revoked_at == T0 + 7
    assert store.get_ingest_key_by_hash(k.key_sha256).revoked_at == T0 + 7
    assert store.revoke_ingest_key(k.id, T0 + 70).revoked_at == T0 + 7  # the first revocation stands
    assert store.get_ingest_key_by_hash(other.key_sha256).revoked_at is None
    with pytest.raises(NotFound):
        store.revoke_ingest_key(new_id(), T0)


def test_touch_ingest_keys(store: Store) -> None:
    a = _account(store)
    k1, k2 = _ingest_key(store, a), _ingest_key(store, a)
    store.touch_ingest_keys({})
    assert store.get_ingest_key_by_hash(k1.key_sha256).last_used_at is None
    store.touch_ingest_keys({k1.id: T0 + 100, k2.id: T0 + 5})
    assert store.get_ingest_key_by_hash(k1.key_sha256).last_used_at == T0 + 100
    assert store.get_ingest_key_by_hash(k2.key_sha256).last_used_at == T0 + 5
    store.touch_ingest_keys({k1.id: T0 + 50})  # older: never moves the time back
    assert store.get_ingest_key_by_hash(k1.key_sha256).last_used_at == T0 + 100
    store.touch_ingest_keys({k2.id: T0 + 500})
    assert store.get_ingest_key_by_hash(k2.key_sha256).last_used_at == T0 + 500
    assert store.get_ingest_key_by_hash(k1.key_sha256).last_used_at == T0 + 100


# --- inserting events ---------------------------------------------------------------------------


def test_empty_stream(store: Store) -> None:
    a = _account(store)
    for feature in ALL_FEATURES:
        assert store.head_seq(a.id, feature) == 0
        assert store.count_events(a.id, feature) == 0
        assert store.read_events(a.id, feature, 0, 0, None, 10) == []
    assert store.insert_events(a.id, SIGNIN, []).seqs == []
    assert store.head_seq(a.id, SIGNIN) == 0


def test_insert_assigns_increasing_seqs_in_batch_order(store: Store) -> None:
    a = _account(store)
    # Timestamps deliberately out of order: seq follows the batch, not the time.
    first = [_event(T0 + n * SECOND) for n in (5, 1, 9, 3)]
    result = store.insert_events(a.id, SIGNIN, first)
    seqs = _seqs(result)
    assert len(seqs) == 4 and None not in seqs
    assert seqs[0] > 0
    assert all(x < y for x, y in itertools.pairwise(seqs))
    assert store.head_seq(a.id, SIGNIN) == seqs[-1]
    later = [_event(T0), _event(T0)]
    second = _seqs(store.insert_events(a.id, SIGNIN, later))
    assert None not in second
    assert seqs[-1] < second[0] < second[1]
    assert store.head_seq(a.id, SIGNIN) == second[1]
    assert store.count_events(a.id, SIGNIN) == 6
    # Each event is stored under the seq it was given, with its body.
    stored = _rows(store.read_events(a.id, SIGNIN, 0, 0, None, 100))
    assert stored == [(s, e.body, None) for s, e in zip(seqs + second, first + later, strict=True)]


def test_each_stream_is_sequenced_independently(store: Store) -> None:
    a, b = _account(store), _account(store)
    s1 = _seqs(store.insert_events(a.id, SIGNIN, [_event(T0) for _ in range(5)]))
    i1 = _seqs(store.insert_events(a.id, ITEMS, [_event(T0) for _ in range(2)]))
    b1 = _seqs(store.insert_events(b.id, SIGNIN, [_event(T0) for _ in range(3)]))
    assert store.head_seq(a.id, SIGNIN) == s1[-1]
    assert store.head_seq(a.id, ITEMS) == i1[-1]
    assert store.head_seq(a.id, AUDIT) == 0
    assert store.head_seq(b.id, SIGNIN) == b1[-1]
    assert store.head_seq(b.id, ITEMS) == 0
    # A busy neighbour does not move a stream's head.
    store.insert_events(b.id, SIGNIN, [_event(T0) for _ in range(10)])
    store.insert_events(a.id, AUDIT, [_event(T0)])
    assert store.head_seq(a.id, SIGNIN) == s1[-1]
    assert store.head_seq(a.id, ITEMS) == i1[-1]
    assert (store.count_events(a.id, SIGNIN), store.count_events(a.id, ITEMS)) == (5, 2)
    assert (store.count_events(b.id, SIGNIN), store.count_events(a.id, AUDIT)) == (13, 1)
    more = _seqs(store.insert_events(a.id, ITEMS, [_event(T0)]))
    assert more[0] > i1[-1]
    assert store.head_seq(a.id, ITEMS) == more[0]


def test_duplicates_are_counted_not_stored(store: Store) -> None:
    a = _account(store)
    u1, u2, u3 = new_id(), new_id(), new_id()
    first = store.insert_events(a.id, SIGNIN, [_event(T0, u1, "a"), _event(T0, u2, "b")])
    assert (first.stored, first.duplicates) == (2, 0)
    head = store.head_seq(a.id, SIGNIN)
    # u1 is already in the stream; u3 appears twice in the batch (the first copy is kept).
    batch = [_event(T0, u1, "again"), _event(T0, u3, "c"), _event(T0, u3, "c-copy"), _event(T0, u2, "b2")]
    result = store.insert_events(a.id, SIGNIN, batch)
    assert result.seqs[0] is None and result.seqs[2] is None and result.seqs[3] is None
    assert result.seqs[1] is not None and result.seqs[1] > head
    assert (result.stored, result.duplicates) == (1, 3)
    assert store.head_seq(a.id, SIGNIN) == result.seqs[1]
    assert store.count_events(a.id, SIGNIN) == 3
    bodies = [r[1] for r in _rows(store.read_events(a.id, SIGNIN, 0, 0, None, 100))]
    assert bodies == [batch_event.body for batch_event in (_event(T0, u1, "a"), _event(T0, u2, "b"), batch[1])]
    # A batch of nothing but duplicates changes nothing.
    again = store.insert_events(a.id, SIGNIN, [_event(T0, u1), _event(T0, u3)])
    assert again.seqs == [None, None]
    assert store.head_seq(a.id, SIGNIN) == result.seqs[1]
    assert store.count_events(a.id, SIGNIN) == 3


def test_seqs_are_dense_whatever_the_batch_held(store: Store) -> None:
    """Seqs are 1, 2, 3, ... with no gap: duplicates (in the batch, of the stream, re-sent without a
    timestamp), a failed batch and a batch of nothing new take no seq (the tamper-evident log's leaf
    index is seq - 1, docs/integrity.md)."""
    a = _account(store)
    u1, u2, u3, u4 = (new_id() for _ in range(4))
    assert store.insert_events(a.id, SIGNIN, [_event(T0, u1), _event(T0 + 1, u2)]).seqs == [1, 2]
    # A duplicate of the stream first, then one inside the batch, then a new event after them.
    batch = [_event(T0, u1), _event(T0 + 5, u3), _event(T0 + 5, u3, "copy"), _event(T0 + 86_400 * SECOND, u4)]
    assert store.insert_events(a.id, SIGNIN, batch).seqs == [None, 3, None, 4]
    assert store.insert_events(a.id, SIGNIN, [_event(T0 + 1, u2), _event(T0 + 2, u2)]).seqs == [None, 5]
    stamped = NewEvent(new_id(), T0 + 7, b'{"uuid":"s"}', None, ts_assigned=True)
    assert store.insert_events(a.id, SIGNIN, [stamped]).seqs == [6]
    again = NewEvent(stamped.uuid, T0 + 8, b'{"uuid":"s"}', None, ts_assigned=True)
    assert store.insert_events(a.id, SIGNIN, [again, _event(T0 + 9)]).seqs == [None, 7]
    with pytest.raises(Exception):  # noqa: B017 - the backend's own error type; what matters is the seqs
        store.insert_events(a.id, SIGNIN, [_event(T0 + 10), NewEvent(new_id(), 2**63, b"{}", None)])
    assert store.insert_events(a.id, SIGNIN, [_event(T0 + 11)]).seqs == [8]
    assert store.head_seq(a.id, SIGNIN) == 8
    assert [r[0] for r in store.read_events(a.id, SIGNIN, 0, 0, None, 100)] == list(range(1, 9))


def test_same_uuid_in_another_stream_is_not_a_duplicate(store: Store) -> None:
    a, b = _account(store), _account(store)
    uuid = new_id()
    for account in (a, b):
        for feature in ALL_FEATURES:
            result = store.insert_events(account.id, feature, [_event(T0, uuid, f"{account.id}-{feature}")])
            assert result.stored == 1, (account, feature)
    for account in (a, b):
        for feature in ALL_FEATURES:
            assert store.count_events(account.id, feature) == 1
            [(_, body, _)] = _rows(store.read_events(account.id, feature, 0, 0, None, 10))
            assert body == _event(T0, uuid, f"{account.id}-{feature}").body


def test_insert_result_counts() -> None:
    result = InsertResult([1, None, 2, None, None])
    assert (result.stored, result.duplicates) == (2, 3)
    assert (InsertResult().stored, InsertResult().duplicates) == (0, 0)


def test_bodies_and_v1_cuts_round_trip(store: Store) -> None:
    a = _account(store)
    events: list[dict[str, Any]] = [
        {"uuid": new_id(), "timestamp": "2024-01-01T00:00:00Z", "action": "create", "object_type": "user"},
        {
            "uuid": new_id(),
            "timestamp": "2024-01-01T00:00:01Z",
            "action": "create",
            "object_type": "user",
            "actor_details": {"name": "Zoë ✓", "user_type": "user"},
            "actor_type": "user",
        },
    ]
    news = []
    for n, event in enumerate(events):
        body, cut = encode_event(AUDIT, event)
        news.append(NewEvent(event["uuid"], T0 + n, body, cut))
    assert news[0].v1_cut is None and news[1].v1_cut is not None
    seqs = _seqs(store.insert_events(a.id, AUDIT, news))
    rows = store.read_events(a.id, AUDIT, 0, 0, None, 10)
    for row in rows:
        assert isinstance(row[1], bytes)
    assert _rows(rows) == [(s, e.body, e.v1_cut) for s, e in zip(seqs, news, strict=True)]


class _Unbindable:
    """A value no database driver knows how to store."""


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param(lambda: NewEvent(new_id(), T0, _Unbindable(), None), id="unstorable-body"),  # type: ignore[arg-type]
        pytest.param(lambda: NewEvent(new_id(), 2**63, b'{"uuid":"x"}', None), id="timestamp-beyond-int64"),
    ],
)
def test_a_failed_batch_stores_nothing(store: Store, bad: Any) -> None:
    a = _account(store)
    kept = [_event(T0 + n) for n in range(3)]
    store.insert_events(a.id, SIGNIN, kept)
    head, count = store.head_seq(a.id, SIGNIN), store.count_events(a.id, SIGNIN)
    before = _rows(store.read_events(a.id, SIGNIN, 0, 0, None, 100))
    fresh = [_event(T0 + 10 + n) for n in range(4)]
    batch = [fresh[0], fresh[1], bad(), kept[0], fresh[2], fresh[3]]
    with pytest.raises(Exception):  # noqa: B017 - the backend's own error type; what matters is what's left
        store.insert_events(a.id, SIGNIN, batch)
    assert store.head_seq(a.id, SIGNIN) == head
    assert store.count_events(a.id, SIGNIN) == count
    assert _rows(store.read_events(a.id, SIGNIN, 0, 0, None, 100)) == before
    # Nothing of the failed batch is remembered: its events are new, not duplicates, next time.
    result = store.insert_events(a.id, SIGNIN, fresh)
    assert result.stored == 4 and result.duplicates == 0
    assert result.seqs[0] is not None and result.seqs[0] > head
    assert store.count_events(a.id, SIGNIN) == count + 4


# --- reading events -----------------------------------------------------------------------------


def test_read_events_filters_and_orders(store: Store) -> None:
    a, b = _account(store), _account(store)
    stamps = [50, 10, 30, 20, 40, 30, 60, 0]
    events = [_event(T0 + s * SECOND, tag=str(n)) for n, s in enumerate(stamps)]
    seqs = _seqs(store.insert_events(a.id, ITEMS, events))
    store.insert_events(b.id, ITEMS, [_event(T0 + s * SECOND) for s in stamps])  # another account
    store.insert_events(a.id, AUDIT, [_event(T0 + s * SECOND) for s in stamps])  # another feature
    log = list(zip(seqs, [T0 + s * SECOND for s in stamps], events, strict=True))

    def expected(after: int, start: int, end: int | None, limit: int) -> list[tuple[int, bytes, None]]:
        hits = [(s, e.body, None) for s, ts, e in log if s > after and start <= ts and (end is None or ts <= end)]
        return hits[:limit]

    cases = [
        (0, T0, None, 100),
        (0, T0 + 30 * SECOND, None, 100),
        (0, T0 + 20 * SECOND, T0 + 40 * SECOND, 100),  # both bounds inclusive
        (0, T0 + 20 * SECOND + 1, T0 + 40 * SECOND - 1, 100),
        (seqs[2], T0, None, 100),
        (seqs[2], T0 + 30 * SECOND, T0 + 30 * SECOND, 100),
        (0, T0, None, 3),
        (seqs[0], T0 + 10 * SECOND, T0 + 50 * SECOND, 2),
        (seqs[-1], T0, None, 100),  # nothing after the head
        (0, T0 + 61 * SECOND, None, 100),  # nothing that late
        (0, T0 + 40 * SECOND, T0 + 20 * SECOND, 100),  # empty window
        (0, T0 - 1, T0, 1),
    ]
    for after, start, end, limit in cases:
        got = _rows(store.read_events(a.id, ITEMS, after, start, end, limit))
        assert got == expected(after, start, end, limit), (after, start, end, limit)


@pytest.mark.parametrize("limit", [1, 7, 50])
def test_read_events_small_and_large_windows_match_brute_force(store: Store, limit: int) -> None:
    """A narrow bounded window (few rows) and a wide one (more than 2000 + 4*limit rows) page the same."""
    rng = random.Random(limit)
    a = _account(store)
    n = 3000
    stamps = [T0 + rng.randrange(0, 1500) * SECOND for _ in range(n)]
    events = [_event(ts, tag=str(i)) for i, ts in enumerate(stamps)]
    seqs = _seqs(store.insert_events(a.id, SIGNIN, events))
    assert None not in seqs
    log = list(zip(seqs, stamps, events, strict=True))

    def brute(start: int, end: int | None) -> list[tuple[int, bytes, None]]:
        return [(s, e.body, None) for s, ts, e in log if start <= ts and (end is None or ts <= end)]

    # Bounds are stored timestamps (shared by several events), so inclusive ends are exercised.
    ordered = sorted(stamps)
    windows = [
        (ordered[1500], ordered[1512]),  # a handful of rows
        (ordered[700], ordered[700]),  # one instant
        (ordered[0], ordered[-1]),  # every row
        (ordered[250], ordered[-250]),  # 2500 rows or so
        (ordered[100], None),  # open
    ]
    for start, end in windows:
        want = brute(start, end)
        assert want
        if end is not None and end - start > 1000 * SECOND:
            assert len(want) > 2000 + 4 * limit  # the other query plan
        if limit == 1 and len(want) > 100:
            # Paging one row at a time over thousands of rows is slow and adds nothing: sample pages,
            # including the pages that should start with an event right on a bound.
            edges = [seq - 1 for seq, ts, _ in log if ts in (start, end)][:10]
            assert edges
            for after in [0, *edges, *rng.sample(seqs, 20)]:
                got = _rows(store.read_events(a.id, SIGNIN, after, start, end, 1))
                assert got == [r for r in want if r[0] > after][:1]
            continue
        assert _drain(store, a, SIGNIN, 0, start, end, limit) == want, (start, end)
        middle = seqs[n // 2]
        page = _rows(store.read_events(a.id, SIGNIN, middle, start, end, limit))
        assert page == [r for r in want if r[0] > middle][:limit]


# --- start_position -----------------------------------------------------------------------------


def test_start_position_on_an_empty_stream_is_the_head(store: Store) -> None:
    a = _account(store)
    assert store.start_position(a.id, SIGNIN, T0) == store.head_seq(a.id, SIGNIN) == 0
    store.insert_events(a.id, ITEMS, [_event(T0)])  # other streams do not count
    other = _account(store)
    store.insert_events(other.id, SIGNIN, [_event(T0)])
    assert store.start_position(a.id, SIGNIN, T0) == 0
    assert store.start_position(a.id, SIGNIN, 0) == 0


def test_start_position_in_order(store: Store) -> None:
    a = _account(store)
    stamps = [T0 + n * 10 * SECOND for n in range(40)]
    seqs = _seqs(store.insert_events(a.id, AUDIT, [_event(ts) for ts in stamps]))
    log = list(zip(seqs, stamps, strict=True))
    probes = [0, T0 - 1, T0, T0 + 1, T0 + 55 * SECOND, T0 + 200 * SECOND, stamps[-1] - 1, stamps[-1]]
    for start in probes:
        first = min(s for s, ts in log if ts >= start)
        assert store.start_position(a.id, AUDIT, start) == first - 1, start
    # Beyond every timestamp: the last seq (a reader starts at the head and waits for new events).
    assert store.start_position(a.id, AUDIT, stamps[-1] + 1) == seqs[-1]
    assert store.start_position(a.id, AUDIT, 2**63 - 1) == seqs[-1]


def test_start_position_with_late_events_is_a_lower_bound(store: Store) -> None:
    a = _account(store)
    rng = random.Random(7)
    stamps = [T0 + n * SECOND for n in range(200)]
    # Mostly in order, with late arrivals carrying old timestamps.
    for i in range(0, 200, 9):
        stamps[i] = T0 + rng.randrange(0, 200) * SECOND
    seqs = _seqs(store.insert_events(a.id, SIGNIN, [_event(ts) for ts in stamps]))
    late = _seqs(store.insert_events(a.id, SIGNIN, [_event(T0 + 3 * SECOND), _event(T0 + 150 * SECOND)]))
    log = list(zip(seqs + late, [*stamps, T0 + 3 * SECOND, T0 + 150 * SECOND], strict=True))
    head = store.head_seq(a.id, SIGNIN)
    for start in [T0 - 1, *(T0 + k * SECOND for k in range(0, 205, 4)), T0 + 199 * SECOND + 1]:
        pos = store.start_position(a.id, SIGNIN, start)
        assert 0 <= pos <= head
        missed = [(s, ts) for s, ts in log if ts >= start and s <= pos]
        assert not missed, (start, pos, missed)


# --- the whole guarantee, as a property ---------------------------------------------------------

# (feature, [(uuid index, ts in seconds from T0)]) and (feature, start, end, limit, pages read before phase 2)
Batch = tuple[Feature, list[tuple[int, int]]]
Window = tuple[Feature, int, int | None, int, int]
_FEATURES = st.sampled_from([SIGNIN, AUDIT])
_EVENT = st.tuples(st.integers(0, 30), st.integers(0, 60))  # (uuid index, ts in seconds from T0)
_BATCH = st.tuples(_FEATURES, st.lists(_EVENT, min_size=0, max_size=12))
_WINDOW = st.tuples(
    _FEATURES,
    st.integers(-2, 62),  # start
    st.one_of(st.none(), st.integers(-2, 62)),  # end
    st.integers(1, 6),  # limit
    st.integers(0, 3),  # pages read before the second phase of batches
)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    phase1=st.lists(_BATCH, max_size=5),
    phase2=st.lists(_BATCH, max_size=4),
    windows=st.lists(_WINDOW, min_size=1, max_size=3),
)
def test_paging_from_start_position_delivers_each_matching_event_once(
    store: Store, phase1: list[Batch], phase2: list[Batch], windows: list[Window]
) -> None:
    account = _account(store)  # a fresh account per example isolates it from earlier ones
    neighbour = _account(store)
    model: dict[Feature, list[tuple[int, int, bytes]]] = {SIGNIN: [], AUDIT: []}  # (seq, ts, body)
    seen: dict[Feature, set[tuple[str, int]]] = {SIGNIN: set(), AUDIT: set()}  # duplicates: (uuid, timestamp)
    counter = [0]

    def insert(batches: list[Batch]) -> None:
        for feature, items in batches:
            events = []
            for index, sec in items:
                counter[0] += 1
                events.append(_event(T0 + sec * SECOND, f"EVENT{index:021d}", tag=str(counter[0])))
            head = store.head_seq(account.id, feature)
            result = store.insert_events(account.id, feature, events)
            # The same uuids in another account are never duplicates of these.
            store.insert_events(neighbour.id, feature, events[:2])
            assert len(result.seqs) == len(events)
            last = head
            for event, seq in zip(events, result.seqs, strict=True):
                if (event.uuid, event.ts) in seen[feature]:
                    assert seq is None, event.uuid
                    continue
                assert seq is not None and seq > last
                last = seq
                seen[feature].add((event.uuid, event.ts))
                model[feature].append((seq, event.ts, event.body))
            assert store.head_seq(account.id, feature) == last
            assert store.count_events(account.id, feature) == len(model[feature])

    def matching(feature: Feature, start: int, end: int | None) -> list[tuple[int, bytes]]:
        return [(s, body) for s, ts, body in model[feature] if ts >= start and (end is None or ts <= end)]

    insert(phase1)
    readers = []
    for feature, start_s, end_s, limit, early_pages in windows:
        start = T0 + start_s * SECOND
        end = None if end_s is None else T0 + end_s * SECOND
        after = store.start_position(account.id, feature, start)
        assert after <= store.head_seq(account.id, feature)
        assert all(s > after for s, _ in matching(feature, start, None))
        got: list[tuple[int, bytes]] = []
        for _ in range(early_pages):
            page = _rows(store.read_events(account.id, feature, after, start, end, limit))
            assert len(page) <= limit
            got.extend((s, body) for s, body, _ in page)
            if page:
                after = page[-1][0]
        readers.append((feature, start, end, limit, after, got))

    insert(phase2)  # late and new events arrive while the readers are part-way through
    for feature, start, end, limit, after, got in readers:
        got = got + [(s, body) for s, body, _ in _drain(store, account, feature, after, start, end, limit)]
        assert got == matching(feature, start, end)
