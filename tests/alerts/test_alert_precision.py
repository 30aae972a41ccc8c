"""Alerts a team can trust, on a real store with restarts: windows kept in event time when event
times lag the clock, first-seen state built from the stored history (before the rule existed,
older than the evaluation horizon, in another process), expected lifecycle changes not alarmed,
case-insensitive matching where values vary, and alerts recorded as audit events stamped when
they are stored."""

from __future__ import annotations

from typing import Any

import orjson

from siemgate.accounts.actor import CLI, SYSTEM_EMAIL
from siemgate.alerts.actions.record import is_alert_event
from siemgate.alerts.builtin import starter_rules, starter_sigma
from siemgate.alerts.model import compile_rule
from siemgate.alerts.service import parse_rules_text
from siemgate.alerts.service import test_rule as run_rule
from siemgate.model.features import Feature
from siemgate.model.ids import new_id
from siemgate.model.timestamps import format_ns, parse_ns
from siemgate.simulate.runner import simulate_history
from siemgate.simulate.world import build_world
from support.events import auditevent, failed, signin

from .test_alerts_live import Site

S = 1_000_000_000
MIN, DAY = 60 * S, 86400 * S
SIGNIN, AUDIT = Feature.SIGNINATTEMPTS, Feature.AUDITEVENTS


def five_in_five(site: Site, **changes: Any) -> None:
    """The brute-force starter rule, overridden to need 5 failures (the test's own numbers)."""
    rule = starter_rules()["brute-force-signin"].model_dump(by_alias=True, exclude_none=True)
    rule["threshold"]["count"] = 5
    site.rule(**(rule | changes))


# finding 2: windows in event time ---------------------------------------------------------------


def test_a_window_survives_a_restart_when_event_times_lag_the_clock(site: Site) -> None:
    five_in_five(site)
    lag = site.clock() - int(4.5 * MIN)
    site.write(SIGNIN, [failed(lag + i * S) for i in range(3)])
    site.clock.advance(60)  # the window ends 30 s ago by the wall clock, not by event time
    site.restart()
    site.write(SIGNIN, [failed(lag + (10 + i) * S) for i in range(2)])
    [alert] = site.alerts("brute-force-signin")
    assert alert.event_ts == lag + 11 * S


def test_a_window_survives_a_rule_change_when_event_times_lag_the_clock(site: Site) -> None:
    five_in_five(site)
    lag = site.clock() - int(4.5 * MIN)
    site.write(SIGNIN, [failed(lag + i * S) for i in range(3)])
    site.clock.advance(60)
    five_in_five(site, summary="{count} failures for {target_user.email}")  # changed through the API's path
    site.write(SIGNIN, [failed(lag + (10 + i) * S) for i in range(2)])
    [alert] = site.alerts("brute-force-signin")
    assert alert.summary == "5 failures for ada@example.com"


def test_a_threshold_groups_one_person_whatever_the_case_of_their_email(site: Site) -> None:
    five_in_five(site)
    emails = ["ada@example.com", "Ada@Example.com", "ADA@EXAMPLE.COM", "ada@example.com", "Ada@example.com"]
    site.write(SIGNIN, [failed(site.clock() + i * S, email) for i, email in enumerate(emails)])
    assert len(site.alerts("brute-force-signin")) == 1


# finding 1: first seen in the stored history ----------------------------------------------------


def user() -> dict[str, Any]:
    person: dict[str, Any] = signin(0)["target_user"]
    return person


def sign_ins(site: Site, who: dict[str, Any], countries: list[str], start: int, step: int = MIN) -> None:
    site.write(SIGNIN, [signin(start + i * step, country=c, target_user=who) for i, c in enumerate(countries)])


def test_history_stored_before_alerting_teaches_first_seen(site: Site) -> None:
    ada = user()
    site.restart(alerts_enabled=False)  # an upgrade: events stored before alerting existed
    sign_ins(site, ada, ["FR"] * 50 + ["CA"] * 50, site.clock() - 3 * DAY)
    site.restart(alerts_enabled=True)
    sign_ins(site, ada, ["CA", "FR"], site.clock())  # both seen before: nothing new
    assert site.alerts("signin-new-country") == []
    sign_ins(site, ada, ["DE"], site.clock() + MIN)
    [alert] = site.alerts("signin-new-country")
    assert alert.summary.startswith("ada@example.com signed in from DE")


def test_events_older_than_the_horizon_teach_first_seen(site: Site) -> None:
    ada = user()
    sign_ins(site, ada, ["FR"] * 20, site.clock() - 20 * DAY, step=DAY // 2)  # replayed: never fire
    sign_ins(site, ada, ["CA", "FR"], site.clock())
    assert [a.summary[:40] for a in site.alerts("signin-new-country")] == [
        "ada@example.com signed in from CA for th"
    ]  # CA is new for ada (FR was learnt from the old events)


def test_a_first_seen_rule_created_later_learns_the_history(site: Site) -> None:
    ada = user()
    sign_ins(site, ada, ["FR", "CA", "FR"], site.clock() - 2 * DAY)
    site.rule(
        id="new-app", name="New app", source="signinattempts", match={"category": "success"},
        first_seen={"key": ["target_user.uuid"], "value": ["country"], "alert_on_first": True},
    )  # fmt: skip
    sign_ins(site, ada, ["CA", "FR"], site.clock())
    assert site.alerts("new-app") == []
    site.services.alerts.rules.set_enabled(CLI, site.account, "new-app", False)
    sign_ins(site, ada, ["US"], site.clock() + MIN)  # while the rule is off
    site.services.alerts.rules.set_enabled(CLI, site.account, "new-app", True)
    sign_ins(site, ada, ["US"], site.clock() + 2 * MIN)
    assert site.alerts("new-app") == []  # US was stored while it was off: learnt when enabled again


def test_first_seen_is_exact_across_processes(site: Site) -> None:
    ada = user()
    sign_ins(site, ada, ["CA"], site.clock())
    other = Site.__new__(Site)  # a second server process on the same store
    other.data_dir, other.settings, other.clock, other.account = site.data_dir, site.settings, site.clock, site.account
    other.services = other._open()
    try:
        sign_ins(other, ada, ["CA"], site.clock() + S)  # loads its state now
        sign_ins(site, ada, ["FR"], site.clock() + 2 * S)  # first process: FR is new, fires
        sign_ins(other, ada, ["FR"], site.clock() + 3 * S)  # second: its state is behind, but FR is known
        assert len(site.alerts("signin-new-country")) == 1
    finally:
        other.services.close()


def test_a_simulated_history_pages_no_one_and_teaches_first_seen(site: Site) -> None:
    world = build_world(site.account.uuid, "Acme", 40, seed=5)
    simulate_history(site.services.writer, site.account.id, world, days=30, end_ns=site.clock(), seed=5, progress=False)
    assert site.alerts() == []
    rows = site.services.store.read_events(site.account.id, SIGNIN, 0, 0, None, 100_000)
    recent = [e for e in (orjson.loads(b) for _, b, _ in rows) if e["category"] == "success" and e.get("country")]
    last = recent[-1]
    site.write(SIGNIN, [signin(site.clock() + S, country=last["country"], target_user=last["target_user"])])
    assert site.alerts("signin-new-country") == []


# finding 5: expected changes --------------------------------------------------------------------


def test_a_planned_rotation_is_not_a_revoked_token_alarm(site: Site) -> None:
    services = site.services
    integration = services.store.create_integration(site.account.id, new_id(), "splunk", "Splunk", "", 0)
    _, token = services.tokens.issue(site.account, integration, "hf1", [SIGNIN], None)
    services.lifecycle.rotate(CLI, site.account, token.id, 0)
    assert site.alerts("siem-token-revoked") == []
    _, other = services.tokens.issue(site.account, integration, "hf2", [SIGNIN], None)
    services.lifecycle.revoke(CLI, site.account, other.id)
    [alert] = site.alerts("siem-token-revoked")
    assert alert.summary.endswith(f"was revoked by {SYSTEM_EMAIL}")  # the system actor, as its audit events name it


def test_the_founding_owner_is_not_an_owner_added_alarm(site: Site) -> None:
    people = site.services.people
    account, _ = people.create_account(CLI, "Globex", "founder@globex.example", "Founder", None)
    assert site.services.store.list_alerts(account.id, "owner-added") == []
    people.add_member(CLI, account, "second@globex.example", "Second", "owner")
    [alert] = site.services.store.list_alerts(account.id, "owner-added")
    assert alert.summary == f"{SYSTEM_EMAIL} made second@globex.example an owner"  # the actor, as audited


# finding 6: case ------------------------------------------------------------------------------


def test_native_and_sigma_starter_rules_catch_a_role_whatever_its_case() -> None:
    native = compile_rule(starter_rules()["owner-added"])
    [sigma] = parse_rules_text(starter_sigma()["owner-added.yml"])
    for role in ("owner", "Owner", "OWNER"):
        event = auditevent(parse_ns("2026-01-01T00:00:00Z"), action="role", aux_info=f'{{"role":"{role}"}}')
        assert len(run_rule(native, [event])) == 1, role
        assert len(run_rule(compile_rule(sigma), [event])) == 1, role


# finding 4: alerts recorded as events are stamped when stored --------------------------------


def test_an_alert_event_is_stamped_when_stored_with_the_activity_time_inside(site: Site) -> None:
    site.services.alerts.evaluator.record_events = None  # the process stops before it records the alert
    site.write(AUDIT, [auditevent(site.clock(), action="disblmfa", object_type="user")])
    [alert] = site.alerts("mfa-disabled")
    site.clock.advance(3600)  # the server was down for an hour before the delivery
    site.restart()
    site.services.alerts.dispatcher.run_due()
    rows = site.services.store.read_events(site.account.id, AUDIT, 0, 0, None, 100)
    [event] = [e for e in (orjson.loads(b) for _, b, _ in rows) if is_alert_event(e)]
    assert event["timestamp"] == format_ns(site.clock())  # stored now: not a late event
    info = orjson.loads(event["aux_info"])
    assert info["event_time"] == format_ns(alert.event_ts) and info["detected_at"] == format_ns(alert.fired_at)
    shape = {"uuid", "timestamp", "actor_uuid", "actor_details", "action", "object_type", "object_uuid", "aux_info"}
    assert set(event) <= shape | {"account_uuid", "actor_type", "actor_account_uuid", "session"}
