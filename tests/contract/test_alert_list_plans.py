"""The console's and the API's lists of alerts, deliveries and evaluation failures read a page of
rows, however many an account holds: on both backends, a page of one account with 20,000 newer
alerts (deliveries, failures) beside the ones it shows does no more work than the same page of an
account that holds only them (SQLite virtual machine steps, PostgreSQL rows read; support/plans.py).
Before migrations SQLite 0016 / PostgreSQL 0012 and the bounded `before` of list_alerts, each read
all the account's rows on SQLite, and the severity, failures and retention reads on PostgreSQL
(there the planner found bounded ways for the other two). Figures: docs/benchmarks.md, "Indexes of
the alert lists"."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

import pytest

from siemgate.model.features import Feature
from siemgate.model.ids import new_id
from siemgate.store.base import AlertFailure, AlertRecord, AlertRuleStats, DeliveryRecord, Store
from support.plans import analyze, call_work, statements
from support.stores import STORE_BACKENDS, make_store

SHOWN, MORE = 20, 20_000  # the rows a page shows; the big account's rows besides them
SECOND = 10**9


def _fill(store: Any, account_id: int, more: int) -> None:
    """The account's SHOWN oldest alerts are `high` alerts of rule r1, their deliveries `failed`;
    `more` newer ones are `low` alerts of r2 and `delivered`; SHOWN + `more` evaluation failures,
    as many of each rule."""
    alerts, deliveries, failures = [], [], []
    for i in range(1, SHOWN + more + 1):
        shown = i <= SHOWN
        alert_id, rule_id = new_id(), "r1" if shown else "r2"
        alerts.append((alert_id, account_id, rule_id, i * SECOND, i * SECOND, "high" if shown else "low",
                       "signinattempts", "g", "s", "{}", 1, "open", ""))  # fmt: skip
        deliveries.append((new_id(), alert_id, account_id, rule_id, "{}", "webhook",
                           "failed" if shown else "delivered", 1, None, "", i * SECOND, None))  # fmt: skip
        failures.append((new_id(), account_id, rule_id, Feature.SIGNINATTEMPTS.code, i * SECOND, "e", 1, 2, 3))
    with store._tx() as conn:
        cur = conn.cursor()
        cur.executemany(
            store._q(
                "INSERT INTO alerts (id, account_id, rule_id, fired_at, event_ts, severity, source, group_key,"
                " summary, payload, rule_version, state, state_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            ),
            alerts,
        )
        cur.executemany(
            store._q(
                "INSERT INTO alert_deliveries (id, alert_id, account_id, rule_id, action, kind, status, attempts,"
                " next_attempt_at, last_error, created_at, delivered_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            ),
            deliveries,
        )
        cur.executemany(
            store._q(
                "INSERT INTO alert_failures (id, account_id, rule_id, feature, at, error, first_seq, last_seq, events)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
            ),
            failures,
        )


@pytest.fixture(scope="module", params=STORE_BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    s: Any = make_store(request.param, tmp_path_factory.mktemp("alert-plans"))
    for name, more in (("big", MORE), ("small", SHOWN)):
        _fill(s, s.create_account(new_id(), name, 0).id, more)
    analyze(s, "alerts", "alert_deliveries", "alert_failures")
    yield s
    s.close()


def accounts(store: Store) -> tuple[int, int]:
    big, small = (store.get_account(name).id for name in ("big", "small"))
    return big, small


def bounded(store: Store, monkeypatch: pytest.MonkeyPatch, table: str, call: Callable[[int], Any]) -> None:
    """`call(account_id)` reads `table` doing about the same work (call_work) for the big account
    as for the small one (a few pages or steps more allowed: a deeper index), not the hundreds of
    times more it would reading all the big account's rows."""
    big, small = accounts(store)
    work = {account_id: call_work(store, partial(call, account_id), monkeypatch, table) for account_id in (big, small)}
    assert work[big] <= 3 * work[small] + 10, work


def test_alerts_of_one_severity(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """Before: the account's alerts newest first until a page of the severity was found (20,020
    rows of the big account)."""

    def page(account_id: int) -> list[AlertRecord]:
        return store.list_alerts(account_id, severity="high", limit=SHOWN)

    for account_id in accounts(store):
        assert [a.severity for a in page(account_id)] == ["high"] * SHOWN
    bounded(store, monkeypatch, "alerts", page)


def test_a_page_of_alerts_deep_in_the_list(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """Before: SQLite read every newer alert of the account up to the page (the cursor's time was
    only inside an OR)."""
    cursors = {}
    for account_id in accounts(store):
        oldest_low = store.list_alerts(account_id, severity="low", limit=10**6)[-1]
        cursors[account_id] = (oldest_low.fired_at, oldest_low.id)

    def page(account_id: int) -> list[AlertRecord]:
        return store.list_alerts(account_id, before=cursors[account_id], limit=SHOWN)

    for account_id in accounts(store):
        assert [a.fired_at for a in page(account_id)] == [i * SECOND for i in range(SHOWN, 0, -1)]
    bounded(store, monkeypatch, "alerts", page)


def test_deliveries_of_one_status(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """Before: the account's deliveries newest first until a page of the status was found."""

    def page(account_id: int) -> list[DeliveryRecord]:
        return store.list_deliveries(account_id, "failed", limit=SHOWN)

    for account_id in accounts(store):
        assert [d.status for d in page(account_id)] == ["failed"] * SHOWN
    bounded(store, monkeypatch, "alert_deliveries", page)


def test_a_page_of_deliveries_deep_in_the_list(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """The admin API's next page of deliveries (before = created_at, id). Before: with the cursor's
    time only inside an OR, SQLite read every newer delivery of the account up to the page."""
    cursors = {}
    for account_id in accounts(store):
        oldest_delivered = store.list_deliveries(account_id, "delivered", limit=10**6)[-1]
        cursors[account_id] = (oldest_delivered.created_at, oldest_delivered.id)

    def page(account_id: int) -> list[DeliveryRecord]:
        return store.list_deliveries(account_id, before=cursors[account_id], limit=SHOWN)

    for account_id in accounts(store):
        assert [d.created_at for d in page(account_id)] == [i * SECOND for i in range(SHOWN, 0, -1)]
    bounded(store, monkeypatch, "alert_deliveries", page)


def test_the_newest_evaluation_failures(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """Before: every failure of the account was read and sorted (PostgreSQL: a scan of the table)."""

    def page(account_id: int) -> list[AlertFailure]:
        return store.list_alert_failures(account_id, limit=SHOWN)

    big, small = accounts(store)
    for account_id, held in ((big, SHOWN + MORE), (small, 2 * SHOWN)):
        assert [f.at for f in page(account_id)] == [i * SECOND for i in range(held, held - SHOWN, -1)]
    bounded(store, monkeypatch, "alert_failures", page)


def test_retention_finds_old_evaluation_failures_by_time(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """The failures retention deletes (in the write transaction: SQLite's one writer waits) are
    found by the account and their time, when none are old as when many are. Before: all the
    account's failures were read (PostgreSQL at scale scanned the table; docs/benchmarks.md)."""

    def old_failures(account_id: int) -> None:
        """Reads (run by `bounded`) the selection of the failures purge_alerts deletes."""
        seen = statements(store, lambda: store.purge_alerts(account_id, Feature.SIGNINATTEMPTS, 1), monkeypatch)
        [(sql, params)] = [(sql, params) for sql, params in seen if sql.startswith("DELETE FROM alert_failures")]
        found = re.search(r"\((SELECT id FROM alert_failures .*? LIMIT \d+)\)", sql)
        assert found, sql
        raw: Any = store
        raw._rows(found[1], params)

    bounded(store, monkeypatch, "alert_failures", old_failures)


def test_a_rules_counts_are_of_its_own_alerts(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """A rule's page counts its alerts, deliveries and failures, not every rule's of the account.
    Before: all of them were counted (the big account's 20,000 of another rule), then all but one
    rule's thrown away."""

    def stats(account_id: int) -> AlertRuleStats:
        return store.alert_rule_stats(account_id, "r1")["r1"]

    big, small = accounts(store)
    assert stats(big) == stats(small) and (stats(big).fired, stats(big).failed) == (SHOWN, SHOWN)
    assert set(store.alert_rule_stats(big)) == {"r1", "r2"}
    for table in ("alerts", "alert_deliveries", "alert_failures"):
        bounded(store, monkeypatch, table, stats)
