"""Alerts are kept as long as the events they were fired on (docs/retention.md, "Alerts"): an
alert holds the event that completed it (its `payload`) and its summary holds that event's values,
so an alert kept after the retention purged its events kept them too, for good (alerts, their
deliveries and evaluation failures were never deleted: an account's history of alerts grew
without bound, with the bodies of events the operator's retention had removed). Each retention run
now deletes, per stream, the account's alerts whose activity is older than the stream's cutoff,
with their deliveries, and its evaluation failures of that stream recorded before it."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

import siemgate.store.shared.alerts as alerts_store
from siemgate.alerts.dispatch import LEASE_NS, Dispatcher
from siemgate.composition.wiring import build_services
from siemgate.config import load_settings
from siemgate.model.features import Feature
from siemgate.model.ids import new_id
from siemgate.store.base import AlertCommit, AlertFailure, AlertRecord, DeliveryRecord, RetentionPolicy, Store
from support.clocks import FixedClock

S = 1_000_000_000
DAY = 86400 * S
NOW = (1_900_000_000 // 86400) * DAY
OLD, RECENT = NOW - 130 * DAY, NOW - 10 * DAY  # the default retention is 120 days
SIGNIN, AUDIT = Feature.SIGNINATTEMPTS, Feature.AUDITEVENTS


def _alert(account_id: int, source: str, event_ts: int) -> AlertRecord:
    return AlertRecord(
        new_id(), account_id, "r", event_ts + S, event_ts, "high", source, "{}", "ada@example.com failed", '{"p":1}'
    )


def _delivery(alert: AlertRecord) -> DeliveryRecord:
    return DeliveryRecord(new_id(), alert.id, alert.account_id, "r", '{"type":"webhook"}', "webhook", "pending", 1,
                          NOW, "", alert.fired_at)  # fmt: skip


def _failure(account_id: int, feature: Feature | None, at: int) -> AlertFailure:
    return AlertFailure(new_id(), account_id, "r", feature, at, "not evaluated", 1, 2, 2)


def test_alerts_and_their_deliveries_and_failures_go_with_the_events_of_their_time(
    store: Store, tmp_path: Path
) -> None:
    services = build_services(load_settings(data_dir=tmp_path / "data", alerts_enabled=False), store, FixedClock(NOW))
    a = store.create_account(new_id(), "A", OLD - DAY)
    b = store.create_account(new_id(), "B", OLD - DAY)
    store.set_retention_policy(RetentionPolicy(b.id, SIGNIN, 365, "none", NOW))  # B keeps a year
    old_signin, recent_signin = _alert(a.id, "signinattempts", OLD), _alert(a.id, "signinattempts", RECENT)
    old_token, old_audit = _alert(a.id, "tokens", OLD), _alert(a.id, "auditevents", OLD)
    old_items = _alert(a.id, "itemusages", OLD)
    kept_by_b = _alert(b.id, "signinattempts", OLD)
    failures = [_failure(a.id, SIGNIN, OLD), _failure(a.id, SIGNIN, RECENT), _failure(a.id, None, OLD)]
    store.commit_alert_evaluation(
        AlertCommit(
            a.id,
            None,
            None,
            0,
            alerts=[old_signin, recent_signin, old_token, old_audit, old_items],
            deliveries=[_delivery(old_signin), _delivery(recent_signin)],
            failures=failures,
        )
    )
    store.commit_alert_evaluation(
        AlertCommit(b.id, None, None, 0, alerts=[kept_by_b], deliveries=[_delivery(kept_by_b)])
    )
    store.set_retention_policy(RetentionPolicy(a.id, Feature.ITEMUSAGES, 200, "none", NOW))  # A keeps items longer

    results = {r.feature: r for r in services.retention.apply(accounts=[a, b]) if r.account == a.uuid}

    assert {r.id for r in store.list_alerts(a.id)} == {recent_signin.id, old_items.id}
    assert (results[SIGNIN].alerts_purged, results[AUDIT].alerts_purged) == (1, 2)  # the token check's goes with audit
    assert [d.alert_id for d in store.list_deliveries(a.id)] == [recent_signin.id]
    assert [f.id for f in store.list_alert_failures(a.id)] == [failures[1].id]
    assert [r.id for r in store.list_alerts(b.id)] == [kept_by_b.id]  # B's own policy
    assert [d.alert_id for d in store.list_deliveries(b.id)] == [kept_by_b.id]


def test_many_alerts_are_deleted_a_chunk_at_a_time(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """More alerts than one transaction deletes (PURGE_CHUNK) all go, over several transactions."""
    monkeypatch.setattr(alerts_store, "PURGE_CHUNK", 7)
    a = store.create_account(new_id(), "A", OLD - DAY)
    old = [_alert(a.id, "signinattempts", OLD + i * S) for i in range(30)]
    failures = [_failure(a.id, SIGNIN, OLD + i * S) for i in range(20)]
    store.commit_alert_evaluation(
        AlertCommit(a.id, None, None, 0, alerts=old, deliveries=[_delivery(x) for x in old], failures=failures)
    )
    assert store.purge_alerts(a.id, SIGNIN, NOW - 120 * DAY) == 30
    assert store.list_alerts(a.id) == [] and store.list_deliveries(a.id) == []
    assert store.list_alert_failures(a.id) == []


@pytest.mark.parametrize("when", ["before the attempt", "during the attempt"])
def test_a_delivery_whose_alert_retention_deleted_ends_quietly(
    store: Store, when: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Retention may delete an alert while the dispatcher holds one of its deliveries: claimed
    before the run, or being sent during it. The attempt then ends as cancelled, quietly. Before,
    the dispatcher logged the missing alert as an action that raised (an ERROR with a traceback)
    and its recording of the attempt raised NotFound in the worker thread."""
    a = store.create_account(new_id(), "A", OLD - DAY)
    alert = _alert(a.id, "signinattempts", OLD)
    store.commit_alert_evaluation(AlertCommit(a.id, None, None, 0, alerts=[alert], deliveries=[_delivery(alert)]))
    sent: list[str] = []

    def sender(alert: dict[str, Any], action: dict[str, Any], delivery: DeliveryRecord) -> None:
        sent.append(delivery.id)
        store.purge_alerts(a.id, SIGNIN, NOW - 120 * DAY)  # the retention run, while this attempt is under way

    dispatcher = Dispatcher(store, {"webhook": sender}, FixedClock(NOW))
    try:
        [claimed] = store.claim_deliveries(NOW, NOW + LEASE_NS, 10, 10)
        if when == "before the attempt":
            assert store.purge_alerts(a.id, SIGNIN, NOW - 120 * DAY) == 1
        with caplog.at_level(logging.INFO, logger="siemgate.alerts"):
            assert dispatcher.deliver(claimed) == "cancelled"
    finally:
        dispatcher.close()
    assert sent == ([] if when == "before the attempt" else [claimed.id])
    assert [r.levelname for r in caplog.records if r.levelno >= logging.WARNING] == []
    assert store.list_alerts(a.id) == [] and store.list_deliveries(a.id) == []
