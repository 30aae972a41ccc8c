"""A rule's status says whether it needs attention now: `failing` while a delivery of it has
failed (until retried), or while its last evaluation failure is under a day old and after the
rule's last change. An evaluation failure kept it `failing` for as long as the failure was kept
(the stream's retention, 120 days by default) with nothing to clear it, so one step over the CPU
budget during a flood, or a fixed rule, showed `failing` for months."""

from __future__ import annotations

from pathlib import Path

from siemgate.accounts.actor import CLI
from siemgate.composition.wiring import build_services
from siemgate.config import load_settings
from siemgate.model.features import Feature
from siemgate.model.ids import new_id
from siemgate.store.base import AlertCommit, AlertFailure, Store
from support.clocks import FixedClock

S = 1_000_000_000
HOUR = 3600 * S
NOW = 1_900_000_000 * S
RULE = "- {id: suspended, name: Suspended, source: auditevents, match: {action: suspend}}\n"


def test_an_evaluation_failure_makes_a_rule_failing_for_a_day_and_until_it_is_changed(
    store: Store, tmp_path: Path
) -> None:
    clock = FixedClock(NOW - 50 * HOUR)
    services = build_services(load_settings(data_dir=tmp_path / "data", alerts_enabled=False), store, clock)
    account = store.create_account(new_id(), "Acme", NOW - 100 * HOUR)
    services.alerts.load_text(CLI, account, RULE)  # saved 50 hours ago
    clock.now = NOW

    def fail(at: int) -> None:
        failure = AlertFailure(new_id(), account.id, "suspended", Feature.AUDITEVENTS, at, "not evaluated", 1, 1, 1)
        store.commit_alert_evaluation(AlertCommit(account.id, None, None, 0, failures=[failure]))

    def status() -> tuple[str, int]:
        view = services.alerts.rule(CLI, account, "suspended")
        return view["status"], view["evaluation_failures"]

    fail(NOW - 30 * HOUR)
    assert status() == ("active", 1)  # a day and more ago: history, not a state
    fail(NOW - HOUR)
    assert status() == ("failing", 2)
    clock.now = NOW + 25 * HOUR
    assert status() == ("active", 2)
    fail(clock.now - HOUR)
    assert status() == ("failing", 3)
    clock.now += S
    services.alerts.load_text(CLI, account, RULE.replace("Suspended", "Suspended people"))  # the rule is changed
    assert status() == ("active", 3)
