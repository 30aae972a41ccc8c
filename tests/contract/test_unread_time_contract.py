"""Store.first_unread_time on every backend: the stream's newest activity time when the first
event after a position was stored (what integration health measures lag with)."""

from __future__ import annotations

from siemgate.model.features import Feature
from siemgate.model.ids import new_id
from siemgate.store.base import NewEvent, Store

T0 = 1_700_000_000_000_000_000
S = 1_000_000_000


def _event(ts: int) -> NewEvent:
    uuid = new_id()
    return NewEvent(uuid, ts, f'{{"uuid":"{uuid}"}}'.encode(), None)


def test_first_unread_time_is_the_streams_newest_time_when_stored(store: Store) -> None:
    account = store.create_account(new_id(), f"acct-{new_id()}", T0)
    other = store.create_account(new_id(), f"acct-{new_id()}", T0)
    feature = Feature.SIGNINATTEMPTS
    assert store.first_unread_time(account.id, feature, 0) is None
    store.insert_events(account.id, feature, [_event(T0 + 10 * S), _event(T0 + 20 * S)])
    store.insert_events(account.id, feature, [_event(T0 + 5 * S)])  # late: stored after newer activity
    store.insert_events(other.id, feature, [_event(T0 + 99 * S)])
    head = store.head_seq(account.id, feature)
    assert store.first_unread_time(account.id, feature, 0) == T0 + 10 * S
    assert store.first_unread_time(account.id, feature, head - 1) == T0 + 20 * S  # the late event waits since then
    assert store.first_unread_time(account.id, feature, head) is None
    assert store.first_unread_time(account.id, Feature.AUDITEVENTS, 0) is None
