"""Scheduled rules (sources `integrity` and `tokens`), checked by every server process of a store:
an alert fires once per suppression period whichever process checks first, as with one process.
Two evaluators (two sets of services) on one store stand for two processes, on both backends."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from siemgate.composition.wiring import build_services
from siemgate.config import load_settings
from siemgate.model.features import ALL_FEATURES
from siemgate.model.ids import new_id
from siemgate.services import Services
from siemgate.store.base import Store
from support.clocks import FixedClock

NOW = 1_900_000_000 * 10**9


def _record(status: str) -> dict[str, Any]:
    """One stream's log health as `integrity` rules see it (integrity.health.StreamHealth.record)."""
    return {
        "id": "auditevents",
        "feature": "auditevents",
        "timestamp": "2030-03-17T17:46:40Z",
        "status": status,
        "reason": "the signer signed size 25 but the log holds 23 entries" if status != "ok" else None,
        "log_size": 23,
        "checkpoint_size": 20,
        "checkpoint_age_seconds": 60,
        "checkpoint_time": None,
        "witness_failures": 0,
    }


def _process(
    tmp_path: Path, store: Store, name: str, health: list[dict[str, Any]], clock: FixedClock | None = None
) -> Services:
    settings = load_settings(data_dir=tmp_path / name, alerts_enabled=True)
    services = build_services(settings, store, clock or FixedClock(NOW))
    services.alerts.evaluator.integrity_records = lambda account_id, now: health
    return services


def _close(*processes: Services) -> None:
    """As Services.close, but the store is the fixture's to close."""
    for services in processes:
        services.alerts.dispatcher.close()
        services.alerts.evaluator.save_state()


def test_an_integrity_alert_fires_once_whichever_process_checks(tmp_path: Path, store: Store) -> None:
    """Each process kept the rule's suppression in its own memory, read once, and a scheduled
    check committed its state without looking at what another process had committed meanwhile:
    with two processes a signer-ahead stream fired the `log-integrity` alert twice (two pages for
    one rollback, measured with two servers on one store and a real signer), and N processes N
    times. A check now commits only if no other process committed that account's check of that
    source since its state was read; the loser reads the state again and fires nothing twice."""
    account = store.create_account(new_id(), "Acme", NOW)
    health = [_record("ok")]
    one, two = (_process(tmp_path, store, name, health) for name in ("one", "two"))
    try:
        for services in (one, two, one, two):  # both have read the account's state, nothing fires
            assert services.alerts.evaluator.check_integrity() == 0
        health[:] = [_record("signer-ahead")]
        assert one.alerts.evaluator.check_integrity() == 1
        assert two.alerts.evaluator.check_integrity() == 0
        assert [two.alerts.evaluator.check_integrity(), one.alerts.evaluator.check_integrity()] == [0, 0]
        fired = store.list_alerts(account.id, "log-integrity")
        assert len(fired) == 1, [a.summary for a in fired]
    finally:
        _close(one, two)


def test_an_unused_token_alert_fires_once_whichever_process_checks(tmp_path: Path, store: Store) -> None:
    """The same for the `tokens` source: `siem-token-unused` fired once per process checking."""
    account = store.create_account(new_id(), "Acme", NOW)
    integration = store.create_integration(account.id, new_id(), "other", "siem", "", NOW)
    clocks = [FixedClock(NOW), FixedClock(NOW)]
    one, two = (_process(tmp_path, store, name, [], clock) for name, clock in zip(("one", "two"), clocks, strict=True))
    try:
        one.tokens.issue(account, integration, "idle", list(ALL_FEATURES), None)  # never used
        for services in (one, two, one, two):  # both have read the account's state, nothing fires
            assert services.alerts.evaluator.check_tokens() == 0
        for clock in clocks:
            clock.advance(2 * 86400)  # unused for two days
        assert [one.alerts.evaluator.check_tokens(), two.alerts.evaluator.check_tokens()] == [1, 0]
        assert [two.alerts.evaluator.check_tokens(), one.alerts.evaluator.check_tokens()] == [0, 0]
        assert len(store.list_alerts(account.id, "siem-token-unused")) == 1
    finally:
        _close(one, two)
