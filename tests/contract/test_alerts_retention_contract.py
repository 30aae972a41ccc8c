"""Store contract for alerting (rules, state, checkpoints, alerts, deliveries) and retention
(policies, iter_events, purge_events), run against every backend through the `store` fixture."""

from __future__ import annotations

import contextlib
import itertools
import random
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from siemgate.errors import Conflict, NotFound
from siemgate.model.features import Feature
from siemgate.model.ids import new_id
from siemgate.store.base import (
    AlertCommit,
    AlertRecord,
    AlertRuleRecord,
    AlertStateEntry,
    DeliveryRecord,
    NewEvent,
    RetentionPolicy,
    RuleRoom,
    Store,
)
from siemgate.store.errors import RoomExhausted, RuleExists

T0 = 1_700_000_000_000_000_000
S = 1_000_000_000
AUDIT, SIGNIN = Feature.AUDITEVENTS, Feature.SIGNINATTEMPTS


def _alert(account_id: int, rule_id: str = "r", at: int = T0) -> AlertRecord:
    return AlertRecord(new_id(), account_id, rule_id, at, at - S, "high", "auditevents", "{}", "summary", '{"id":1}')


def _delivery(alert: AlertRecord, kind: str = "webhook", due: int = T0) -> DeliveryRecord:
    return DeliveryRecord(new_id(), alert.id, alert.account_id, alert.rule_id, '{"type":"x"}', kind, "pending", 0,
                          due, "", due)  # fmt: skip


def test_alert_rules_are_upserted_listed_and_deleted_with_their_state(store: Store) -> None:
    a = store.create_account(new_id(), "A", T0)
    b = store.create_account(new_id(), "B", T0)
    store.put_alert_rule(AlertRuleRecord(a.id, "r1", '{"x":1}', "api", True, T0, T0))
    store.put_alert_rule(AlertRuleRecord(a.id, "r1", '{"x":2}', "file", False, T0 + S, T0 + S))
    store.put_alert_rule(AlertRuleRecord(b.id, "r1", '{"x":3}', "api", True, T0, T0))
    [r] = store.list_alert_rules(a.id)
    assert (r.definition, r.origin, r.enabled, r.created_at, r.updated_at) == ('{"x":2}', "file", False, T0, T0 + S)
    assert len(store.list_alert_rules()) == 2
    store.commit_alert_evaluation(AlertCommit(a.id, None, None, 0, [AlertStateEntry("r1", "seen", "k", "[1]")]))
    store.delete_alert_rule(a.id, "r1")
    assert store.list_alert_rules(a.id) == [] and store.load_alert_state(a.id) == []
    with pytest.raises(NotFound):
        store.delete_alert_rule(a.id, "r1")
    assert len(store.list_alert_rules(b.id)) == 1


def test_enabling_a_rule_sets_its_flag_and_keeps_its_definition(store: Store) -> None:
    a = store.create_account(new_id(), "A", T0)
    store.put_alert_rule(AlertRuleRecord(a.id, "own", '{"x":"stored"}', "api", True, T0, T0))
    read_earlier = AlertRuleRecord(a.id, "own", '{"x":"read earlier"}', "api", False, T0, T0 + S)
    assert store.set_alert_rule_enabled(read_earlier, insert=False) == 2
    [r] = store.list_alert_rules(a.id)
    assert (r.definition, r.enabled, r.created_at, r.updated_at) == ('{"x":"stored"}', False, T0, T0 + S)
    store.delete_alert_rule(a.id, "own")
    with pytest.raises(NotFound):
        store.set_alert_rule_enabled(read_earlier, insert=False)
    assert store.list_alert_rules(a.id) == []
    starter = AlertRuleRecord(a.id, "starter", '{"x":"shipped"}', "starter", False, T0, T0)
    assert store.set_alert_rule_enabled(starter, insert=True) == 1  # a starter rule exists unstored
    assert [(r.rule_id, r.definition, r.enabled) for r in store.list_alert_rules(a.id)] == [
        ("starter", '{"x":"shipped"}', False)
    ]
    store.put_alert_rule(AlertRuleRecord(a.id, "starter", '{"x":"override"}', "starter", False, T0, T0))
    enable = AlertRuleRecord(a.id, "starter", '{"x":"shipped"}', "starter", True, T0, T0 + S)
    assert store.set_alert_rule_enabled(enable, insert=True) == 3  # an override stored meanwhile: only its flag
    assert [(r.definition, r.enabled) for r in store.list_alert_rules(a.id)] == [('{"x":"override"}', True)]


def test_put_alert_rules_keeps_an_account_within_its_room_under_concurrent_saves(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """RuleRoom bounds the account's rules (ids in `uncounted` aside) in the save's own
    transaction. Two saves into an account one short of the limit, each waiting (up to a second)
    for the other to have counted the rules too before it writes: one is saved, the other refused,
    since the second cannot count before the first commits. A save past the limit writes nothing;
    replacing rules is always possible; another account's room is its own."""
    a = store.create_account(new_id(), "A", T0)
    b = store.create_account(new_id(), "B", T0)
    room = RuleRoom(3, frozenset({"starter"}))

    def rule(account_id: int, rule_id: str) -> tuple[AlertRuleRecord, None]:
        return AlertRuleRecord(account_id, rule_id, "{}", "api", True, T0, T0), None

    assert store.put_alert_rules([rule(a.id, "starter"), rule(a.id, "r0"), rule(a.id, "r1")], room) == [1, 1, 1]
    counted = threading.Barrier(2)
    put = store._put_rule

    def put_once_both_counted(conn: Any, record: AlertRuleRecord, *rest: Any, **options: Any) -> int:
        with contextlib.suppress(threading.BrokenBarrierError):
            counted.wait(timeout=1)  # times out when the other save cannot have counted yet: the bound holds
        return int(put(conn, record, *rest, **options))

    monkeypatch.setattr(store, "_put_rule", put_once_both_counted)
    started = threading.Barrier(2, timeout=30)

    def add(i: int) -> str:
        started.wait()
        try:
            store.put_alert_rules([rule(a.id, f"new-{i}")], room)
        except RoomExhausted as exc:
            return f"refused: {exc.held} held + {exc.adding} > {exc.limit}"
        return "saved"

    with ThreadPoolExecutor(2) as pool:
        outcomes = list(pool.map(add, range(2)))
    monkeypatch.undo()
    assert sorted(outcomes) == ["refused: 3 held + 1 > 3", "saved"]
    ids = {r.rule_id for r in store.list_alert_rules(a.id)}
    assert len(ids - {"starter"}) == 3
    with pytest.raises(RoomExhausted):
        store.put_alert_rules([rule(a.id, "r0"), rule(a.id, "later")], room)
    assert {r.rule_id: r.version for r in store.list_alert_rules(a.id)}["r0"] == 1  # r0 not replaced either
    assert store.put_alert_rules([rule(a.id, "r0"), rule(a.id, "starter")], room) == [2, 2]
    assert store.put_alert_rules([rule(b.id, f"b{i}") for i in range(3)], room) == [1, 1, 1]
    with pytest.raises(RuleExists, match="'b1'"):  # only new rules: one that exists stops the whole call
        store.put_alert_rules([rule(b.id, "b3"), rule(b.id, "b1")], only_new=True)
    assert {r.rule_id: r.version for r in store.list_alert_rules(b.id)} == {"b0": 1, "b1": 1, "b2": 1}
    assert store.put_alert_rules([rule(b.id, "b3")], only_new=True) == [1]


def test_commit_moves_the_checkpoint_atomically_or_not_at_all(store: Store) -> None:
    a = store.create_account(new_id(), "A", T0)
    assert store.alert_checkpoint(a.id, AUDIT) is None
    alert = _alert(a.id)
    state = [AlertStateEntry("r", "window", "k", "[[1]]", T0), AlertStateEntry("r", "seen", "k", '["x"]')]
    store.commit_alert_evaluation(AlertCommit(a.id, AUDIT, None, 10, state, [alert], [_delivery(alert)]))
    assert store.alert_checkpoint(a.id, AUDIT) == 10 and store.alert_checkpoint(a.id, SIGNIN) is None
    stale = _alert(a.id)
    with pytest.raises(Conflict):
        store.commit_alert_evaluation(AlertCommit(a.id, AUDIT, 5, 12, [], [stale], [_delivery(stale)]))
    assert store.alert_checkpoint(a.id, AUDIT) == 10
    assert [x.id for x in store.list_alerts(a.id)] == [alert.id]
    assert len(store.list_deliveries(a.id)) == 1
    store.commit_alert_evaluation(AlertCommit(a.id, AUDIT, 10, 20, [AlertStateEntry("r", "window", "k", "")]))
    assert {(e.kind, e.key, e.value) for e in store.load_alert_state(a.id)} == {("seen", "k", '["x"]')}


def test_alerts_list_newest_first_with_keyset_paging_and_stats(store: Store) -> None:
    a = store.create_account(new_id(), "A", T0)
    alerts = [_alert(a.id, "r1" if i % 2 else "r2", T0 + i * S) for i in range(5)]
    store.commit_alert_evaluation(AlertCommit(a.id, None, None, 0, [], alerts, [_delivery(x) for x in alerts]))
    listed = store.list_alerts(a.id, limit=2)
    assert [x.id for x in listed] == [alerts[4].id, alerts[3].id]
    rest = store.list_alerts(a.id, before=(listed[-1].fired_at, listed[-1].id))
    assert [x.id for x in rest] == [alerts[2].id, alerts[1].id, alerts[0].id]
    assert [x.id for x in store.list_alerts(a.id, rule_id="r1")] == [alerts[3].id, alerts[1].id]
    assert store.get_alert(alerts[0].id) == alerts[0]
    stats = store.alert_rule_stats(a.id)
    assert (stats["r1"].fired, stats["r1"].last_fired_at, stats["r1"].pending) == (2, T0 + 3 * S, 2)


def test_alert_pages_go_through_alerts_fired_at_the_same_time_by_id(store: Store) -> None:
    """Alerts of one time are ordered by id, and a page starts after the previous one's last."""
    a = store.create_account(new_id(), "A", T0)
    alerts = [_alert(a.id, at=T0 + (i // 3) * S) for i in range(7)]
    store.commit_alert_evaluation(AlertCommit(a.id, None, None, 0, [], alerts))
    paged: list[str] = []
    before = None
    while page := store.list_alerts(a.id, before=before, limit=2):
        paged += [x.id for x in page]
        before = (page[-1].fired_at, page[-1].id)
    assert paged == [x.id for x in sorted(alerts, key=lambda x: (x.fired_at, x.id), reverse=True)]


def test_deliveries_are_claimed_once_finished_and_retried(store: Store) -> None:
    a = store.create_account(new_id(), "A", T0)
    alert = _alert(a.id)
    due, later = _delivery(alert, due=T0), _delivery(alert, due=T0 + 60 * S)
    store.commit_alert_evaluation(AlertCommit(a.id, None, None, 0, [], [alert], [due, later]))
    [claimed] = store.claim_deliveries(T0, T0 + 300 * S, 10)
    assert claimed.id == due.id
    assert store.claim_deliveries(T0, T0 + 300 * S, 10) == []  # leased
    store.finish_delivery(due.id, "failed", 1, None, "HTTP 404", T0)
    store.finish_delivery(later.id, "delivered", 1, None, "", T0 + S)
    assert [d.status for d in store.list_deliveries(a.id, status="failed")] == ["failed"]
    assert store.get_delivery(later.id).delivered_at == T0 + S
    retried = store.retry_delivery(due.id, T0 + 2 * S)
    assert (retried.status, retried.attempts, retried.next_attempt_at) == ("pending", 1, T0 + 2 * S)
    with pytest.raises(NotFound):
        store.finish_delivery(new_id(), "failed", 1, None, "", T0)


@pytest.mark.parametrize("store", ["sqlite"], indirect=True)
def test_claiming_deliveries_holds_the_writer_for_the_claimed_ones_only(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The due deliveries were chosen (a window over every due one of every account) inside the
    write transaction that leases them: one account's 200,000 due deliveries (a flood to a
    destination that times out) held SQLite's one writer 0.8 s at each claim, every account's
    ingest waiting. Chosen by a read now: the transaction's work does not grow with them
    (SQLite virtual-machine steps, counted)."""
    account = store.create_account(new_id(), "Flood", T0)
    write = store._write  # type: ignore[attr-defined]
    steps: list[int] = []

    @contextlib.contextmanager
    def counted() -> Any:
        with write() as conn:
            counter = [0]
            conn.set_progress_handler(lambda: counter.__setitem__(0, counter[0] + 1), 10)
            try:
                yield conn
            finally:
                conn.set_progress_handler(None, 0)
                steps.append(counter[0])

    def claim_steps(due: int) -> int:
        alerts = [_alert(account.id) for _ in range(due)]
        deliveries = [_delivery(alert) for alert in alerts]
        store.commit_alert_evaluation(AlertCommit(account.id, None, None, 0, [], alerts, deliveries))
        monkeypatch.setattr(store, "_write", counted)
        assert len(store.claim_deliveries(T0, T0 + 300 * S, 4, 4)) == 4
        monkeypatch.setattr(store, "_write", write)
        store.claim_deliveries(T0, T0 + 300 * S, 1_000_000)  # lease the rest: the next count starts anew
        return steps[-1]

    small, large = claim_steps(100), claim_steps(5000)
    assert large < 2 * small + 50, (small, large)


def test_only_a_failed_delivery_is_retried(store: Store) -> None:
    """A retry is one statement that takes only a failed delivery: one delivered, cancelled or
    pending (perhaps leased to a dispatcher that is attempting it) by the time it runs is left as it
    is (retrying it made it due again: sent twice, or to a destination the account removed)."""
    a = store.create_account(new_id(), "A", T0)
    alert = _alert(a.id)
    leased, delivered, failed = (_delivery(alert, due=T0) for _ in range(3))
    store.commit_alert_evaluation(AlertCommit(a.id, None, None, 0, [], [alert], [leased, delivered, failed]))
    assert len(store.claim_deliveries(T0, T0 + 300 * S, 10)) == 3
    store.finish_delivery(delivered.id, "delivered", 1, None, "", T0 + S)
    store.finish_delivery(failed.id, "failed", 1, None, "HTTP 404", T0 + S)
    for d, status in ((leased, "pending"), (delivered, "delivered")):
        before = store.get_delivery(d.id)
        with pytest.raises(Conflict, match=f"is {status}: only a failed delivery"):
            store.retry_delivery(d.id, T0 + 2 * S)
        assert store.get_delivery(d.id) == before
    assert store.claim_deliveries(T0 + 2 * S, T0 + 300 * S, 10) == []  # the lease holds
    assert store.retry_delivery(failed.id, T0 + 2 * S).status == "pending"
    with pytest.raises(NotFound):
        store.retry_delivery(new_id(), T0)


def test_retention_policies(store: Store) -> None:
    a = store.create_account(new_id(), "A", T0)
    assert store.retention_policies(a.id) == {}
    store.set_retention_policy(RetentionPolicy(a.id, AUDIT, 30, "parquet", T0))
    store.set_retention_policy(RetentionPolicy(a.id, AUDIT, 400, "none", T0 + S))
    assert store.retention_policies(a.id) == {AUDIT: RetentionPolicy(a.id, AUDIT, 400, "none", T0 + S)}


def _events(n: int, start: int) -> list[NewEvent]:
    out = []
    for i in range(n):
        uuid = new_id()
        out.append(NewEvent(uuid, start + i * S, f'{{"uuid":"{uuid}"}}'.encode(), None))
    return out


def test_iter_events_by_time_in_batches_and_purge_bounded_by_seq(store: Store) -> None:
    a = store.create_account(new_id(), "A", T0)
    b = store.create_account(new_id(), "B", T0)
    store.insert_events(a.id, AUDIT, _events(10, T0 + 10 * S))
    first_head = store.head_seq(a.id, AUDIT)
    store.insert_events(a.id, AUDIT, _events(5, T0))  # late: older timestamps, higher seqs
    store.insert_events(b.id, AUDIT, _events(3, T0))
    batches = list(store.iter_events(a.id, AUDIT, T0 + 2 * S, T0 + 12 * S, batch=4))
    assert [len(x) for x in batches] == [4, 1]
    rows = [r for x in batches for r in x]
    assert [r[1] for r in rows] == [T0 + i * S for i in (2, 3, 4, 10, 11)]  # by time, not by seq
    assert all(r[0] > first_head for r in rows[:3]) and all(r[0] <= first_head for r in rows[3:])
    assert all(r[3] == f'{{"uuid":"{r[2]}"}}'.encode() for r in rows)
    assert list(store.iter_events(a.id, AUDIT, T0 + 100 * S, T0 + 200 * S)) == []
    head = store.head_seq(a.id, AUDIT)
    assert store.purge_events(a.id, AUDIT, T0 + 12 * S, max_seq=first_head) == 2  # the first batch's only
    assert store.purge_events(a.id, AUDIT, T0 + 12 * S) == 5
    assert store.count_events(a.id, AUDIT) == 8 and store.count_events(b.id, AUDIT) == 3
    assert store.head_seq(a.id, AUDIT) == head  # seqs are never reused


def test_alerts_and_deliveries_paged_by_keyset_under_any_filter_match_one_read(store: Store) -> None:
    """Random alerts of two accounts sharing a few detection times (ties cross every page
    boundary), with ids of mixed case and punctuation (collation), random rule, state and
    severity, one delivery each of a random status: paging by (time, id) with every filter, the
    cursor taken from the last row, lists exactly the rows of one unpaged read of that filter, in
    its order, once each; a position from another account or another filter lists this account's
    rows after it under this filter, and nothing of the other account."""
    rng = random.Random(20261208)
    accounts = [store.create_account(new_id(), f"keyset-{i}", T0).id for i in range(2)]
    alerts, deliveries = [], []
    for i in range(240):
        account_id = rng.choice(accounts)
        ident = rng.choice(["a", "A", "b-", "B_", "z", "Z", "-", "0"]) + f"{rng.randrange(1000):03}-{i}"
        at = T0 + rng.randrange(4) * S
        alert = AlertRecord(ident, account_id, rng.choice(["r1", "r2"]), at, at, rng.choice(["low", "high"]),
                            "auditevents", "{}", "s", "{}", 0, rng.choice(["open", "resolved"]))  # fmt: skip
        alerts.append(alert)
        status = rng.choice(["pending", "failed", "delivered"])
        deliveries.append(DeliveryRecord("d" + ident, ident, account_id, alert.rule_id, "{}", "webhook", status, 1,
                                         None, "", at))  # fmt: skip
    store.commit_alert_evaluation(AlertCommit(accounts[0], None, None, 0, alerts=alerts, deliveries=deliveries))

    def alert_pages(account_id: int, before: tuple[int, str] | None, **filters: Any) -> list[str]:
        rule_id = filters.pop("rule_id", None)
        listed: list[str] = []
        while (page := store.list_alerts(account_id, rule_id, before, 7, **filters)) and len(listed) <= len(alerts):
            listed += [a.id for a in page]
            before = (page[-1].fired_at, page[-1].id)
        return listed

    def delivery_pages(account_id: int, before: tuple[int, str] | None, status: str | None) -> list[str]:
        listed: list[str] = []
        while (page := store.list_deliveries(account_id, status, limit=7, before=before)) and len(listed) <= len(
            alerts
        ):
            listed += [d.id for d in page]
            before = (page[-1].created_at, page[-1].id)
        return listed

    raw: Any = store  # every alert's place in the database's order (its collation of ids)
    rank = {row[0]: n for n, row in enumerate(raw._select("SELECT id FROM alerts ORDER BY fired_at DESC, id DESC", ()))}
    for account_id in accounts:
        for rule_id, state, severity in itertools.product([None, "r1"], [None, "open"], [None, "high"]):
            filters = {"rule_id": rule_id, "state": state, "severity": severity}
            whole = store.list_alerts(account_id, rule_id, None, 10**6, state=state, severity=severity)
            expected = {
                a.id
                for a in alerts
                if a.account_id == account_id and all(v is None or getattr(a, k) == v for k, v in filters.items())
            }
            assert [a.fired_at for a in whole] == sorted((a.fired_at for a in whole), reverse=True)
            assert {a.id for a in whole} == expected and len(whole) == len(expected)
            assert alert_pages(account_id, None, **filters) == [a.id for a in whole]
            for other in alerts[:40]:  # a cursor of any alert: of another account, or another filter
                after = [a.id for a in whole if rank[a.id] > rank[other.id]]
                assert alert_pages(account_id, (other.fired_at, other.id), **filters) == after
        for wanted in (None, "failed"):
            whole_d = store.list_deliveries(account_id, wanted, limit=10**6)
            assert {d.id for d in whole_d} == {
                d.id for d in deliveries if d.account_id == account_id and wanted in (None, d.status)
            }
            assert delivery_pages(account_id, None, wanted) == [d.id for d in whole_d]
