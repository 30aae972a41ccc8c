"""The admin API for alert rules (roles, status for the console, Sigma, deliveries) over real
HTTP, and the `siemgate alerts`, `retention` and `archive` commands as real processes."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from siemgate.alerts import rules as rules_module
from siemgate.model.features import Feature
from siemgate.model.timestamps import format_ns, parse_ns
from siemgate.store.base import AlertRuleRecord
from support.admin import Site, error_message, ok
from support.events import auditevent, failed
from support.waiting import wait_for

SIGMA = """
title: Vault shared
logsource: {product: 1password, service: auditevents}
detection:
  selection: {action: share, object_type: vault}
  condition: selection
level: low
"""


def test_rules_through_the_admin_api(make_server: Any) -> None:
    site = Site(make_server(alerts_enabled=True, alerts_dispatch_seconds=0.05))
    rules = site.path("/alert-rules")
    listed = ok(site.call(site.member, "GET", rules, params={"limit": "200"}))["items"]
    assert {r["id"] for r in listed} >= {"brute-force-signin", "siem-token-unused"}
    first = next(r for r in listed if r["id"] == "mfa-disabled")
    assert (first["status"], first["origin"], first["fired"], first["last_fired_at"]) == ("active", "starter", 0, None)
    body = {"id": "big-export", "name": "Big export", "source": "itemusages", "match": {"action": "export"}}
    assert "administrator" in error_message(site.call(site.member, "POST", rules, json=body), 403)
    created = ok(site.call(site.admin, "POST", rules, json=body), 201)
    assert created[0]["id"] == "big-export" and created[0]["definition"]["actions"] == [{"type": "event"}]
    assert "exists" in error_message(site.call(site.admin, "POST", rules, json=body), 409)
    bad = {**body, "id": "typo", "match": {"user.mail": "x"}}
    assert "did you mean" in error_message(site.call(site.admin, "POST", rules, json=bad), 400)
    [sigma] = ok(site.call(site.owner, "POST", rules, json={"sigma": SIGMA}), 201)
    assert (sigma["id"], sigma["severity"], sigma["origin"]) == ("vault-shared", "low", "api")
    refused = {  # Sigma siemgate cannot give its meaning: a 400 naming the construct, never a 500
        "condition: selection | count() > 5": "pipe syntax",
        "condition: other": "'other' not defined",
    }
    for condition, construct in refused.items():
        text = SIGMA.replace("condition: selection", condition)
        assert construct in error_message(site.call(site.owner, "POST", rules, json={"sigma": text}), 400)
    hour = SIGMA.replace("selection: {action: share, object_type: vault}", "selection: {timestamp|hour: 3}")
    assert "modifier 'hour'" in error_message(site.call(site.owner, "POST", rules, json={"sigma": hour}), 400)
    secret = "whsec_" + "A" * 40
    hook = {**body, "actions": [{"type": "webhook", "url": "https://hooks.example.com/x", "secret": secret}]}
    shown = ok(site.call(site.owner, "PUT", site.path("/alert-rules/big-export"), json=hook))
    assert shown["definition"]["actions"][0]["secret"] == "********"
    ok(site.call(site.owner, "PUT", site.path("/alert-rules/big-export"), json=shown["definition"]))
    stored = site.services.alerts.rules.get(site.account.id, "big-export").rule
    assert stored.actions[0].secret == secret  # type: ignore[union-attr]
    assert "disable it" in error_message(site.call(site.owner, "DELETE", site.path("/alert-rules/mfa-disabled")), 409)
    off = ok(site.call(site.owner, "PATCH", site.path("/alert-rules/mfa-disabled"), json={"enabled": False}))
    assert (off["status"], off["overridden"]) == ("disabled", True)
    ok(site.call(site.owner, "DELETE", site.path("/alert-rules/vault-shared")))

    # a revoked token fires the starter rule; the alert, its event delivery and the rule's status show it
    integration = site.integration()
    token = site.issue(integration)
    ok(site.call(site.owner, "POST", site.path(f"/tokens/{token['id']}/revoke")))
    alerts = wait_for(
        "the alert",
        lambda: ok(site.call(site.member, "GET", site.path("/alerts"), params={"rule": "siem-token-revoked"}))["items"],
    )
    detail = ok(site.call(site.member, "GET", site.path(f"/alerts/{alerts[0]['id']}")))
    wait_for(
        "the event delivery",
        lambda: (
            ok(site.call(site.member, "GET", site.path(f"/alerts/{alerts[0]['id']}")))["deliveries"][0]["status"]
            == "delivered"
        ),
    )
    assert detail["summary"].startswith("SIEM token hf1")
    rule = ok(site.call(site.member, "GET", site.path("/alert-rules/siem-token-revoked")))
    assert rule["fired"] == 1 and rule["last_fired_at"] is not None
    deliveries = ok(site.call(site.member, "GET", site.path("/alert-deliveries"), params={"status": "delivered"}))
    assert any(d["alert_id"] == alerts[0]["id"] and d["type"] == "event" for d in deliveries["items"])


def test_an_account_has_at_most_max_rules_of_its_own(make_server: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every rule is evaluated on the account's events: an administrator cannot add rules without
    bound (the server's CPU and memory are shared with other accounts). Starter rules, their
    overrides and replacing a rule do not count; a text that would pass the limit saves nothing."""
    monkeypatch.setattr(rules_module, "MAX_RULES", 3)
    site = Site(make_server(alerts_enabled=True))
    rules = site.path("/alert-rules")

    def body(i: int) -> dict[str, Any]:
        return {"id": f"export-{i}", "name": f"Export {i}", "source": "itemusages", "match": {"action": "export"}}

    for i in range(3):
        ok(site.call(site.admin, "POST", rules, json=body(i)), 201)
    assert "at most 3" in error_message(site.call(site.admin, "POST", rules, json=body(3)), 409)
    assert "administrator" in error_message(site.call(site.member, "POST", rules, json=body(3)), 403)
    text = SIGMA.replace("Vault shared", "Vault shared 9")
    assert "administrator" in error_message(site.call(site.member, "POST", rules, json={"sigma": text}), 403)
    ok(site.call(site.admin, "PUT", site.path("/alert-rules/export-0"), json={**body(0), "name": "Renamed"}))
    off = ok(site.call(site.admin, "PATCH", site.path("/alert-rules/mfa-disabled"), json={"enabled": False}))
    assert off["overridden"] is True  # a starter rule changed: not one of its own
    text = "\n---\n".join(SIGMA.replace("Vault shared", f"Vault shared {i}") for i in range(2))
    assert "would add 2" in error_message(site.call(site.admin, "POST", rules, json={"sigma": text}), 409)
    listed = ok(site.call(site.member, "GET", rules, params={"limit": "200"}))["items"]
    assert not any(r["id"].startswith("vault-shared") for r in listed)  # nothing of the text was saved
    ok(site.call(site.admin, "DELETE", site.path("/alert-rules/export-2")))
    ok(site.call(site.admin, "POST", rules, json=body(3)), 201)


def test_concurrent_creates_cannot_pass_the_rule_limit(make_server: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Requests that all get past the limit's check before any saves (held together at a barrier
    after compiling and checking their rules) leave the account at MAX_RULES rules of its own,
    never above it: one is created, the others are refused with the limit named."""
    monkeypatch.setattr(rules_module, "MAX_RULES", 3)
    site = Site(make_server(alerts_enabled=True))
    rules = site.path("/alert-rules")

    def body(rule_id: str) -> dict[str, Any]:
        return {"id": rule_id, "name": rule_id, "source": "itemusages", "match": {"action": "export"}}

    for i in range(2):
        ok(site.call(site.admin, "POST", rules, json=body(f"kept-{i}")), 201)
    racers = 4
    together = threading.Barrier(racers, timeout=30)
    check = rules_module.check_destinations

    def held(rule: Any, policy: Any) -> None:
        check(rule, policy)
        together.wait()

    monkeypatch.setattr(rules_module, "check_destinations", held)
    with ThreadPoolExecutor(racers) as pool:
        answers = list(pool.map(lambda i: site.call(site.admin, "POST", rules, json=body(f"race-{i}")), range(racers)))
    assert sorted(a.status_code for a in answers) == [201, 409, 409, 409], [a.text for a in answers]
    assert all("at most 3" in error_message(a, 409) for a in answers if a.status_code == 409)
    stored = site.services.store.list_alert_rules(site.account.id)
    assert len([r for r in stored if r.rule_id.startswith(("kept-", "race-"))]) == 3


def test_creating_a_rule_saved_meanwhile_elsewhere_is_refused(
    make_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """POST creates, never replaces: a rule another process (the CLI, a second server) saved since
    this server last read the account's rules is not overwritten but refused (409), as one it knew.
    A masked secret in a PUT keeps the secret stored at that moment."""
    monkeypatch.setattr(rules_module, "CACHE_SECONDS", 3600.0)  # this server's view stays as it was read
    site = Site(make_server(alerts_enabled=True))
    rules = site.path("/alert-rules")
    assert not any(r["id"] == "export" for r in ok(site.call(site.member, "GET", rules))["items"])
    theirs = {"id": "export", "name": "Theirs", "source": "itemusages", "match": {"action": "export"}}
    now = time.time_ns()
    definition = json.dumps(theirs)
    site.services.store.put_alert_rule(AlertRuleRecord(site.account.id, "export", definition, "file", True, now, now))
    ours = {**theirs, "name": "Ours"}
    assert "exists" in error_message(site.call(site.admin, "POST", rules, json=ours), 409)
    [stored] = [r for r in site.services.store.list_alert_rules(site.account.id) if r.rule_id == "export"]
    assert (json.loads(stored.definition)["name"], stored.version) == ("Theirs", 1)
    # saved by the other process after this request read the rules, before it writes: still refused
    check = rules_module.check_destinations

    def saved_meanwhile(rule: Any, policy: Any) -> None:
        check(rule, policy)
        record = AlertRuleRecord(
            site.account.id, rule.id, json.dumps({**theirs, "id": rule.id}), "file", True, now, now
        )
        site.services.store.put_alert_rule(record)

    monkeypatch.setattr(rules_module, "check_destinations", saved_meanwhile)
    assert "exists" in error_message(site.call(site.admin, "POST", rules, json={**ours, "id": "raced"}), 409)
    [raced] = [r for r in site.services.store.list_alert_rules(site.account.id) if r.rule_id == "raced"]
    assert (json.loads(raced.definition)["name"], raced.version) == ("Theirs", 1)
    # a PUT that way replaces the rule the other process saved, and the audit trail says so
    ok(site.call(site.admin, "PUT", site.path("/alert-rules/raced-put"), json={**ours, "id": "raced-put"}))
    monkeypatch.setattr(rules_module, "check_destinations", check)
    trail = [e for e in site.events(site.reader())[0] if e["object_uuid"] == "raced-put"]
    assert [(e["action"], e["object_type"]) for e in trail] == [("update", "report")]
    # a masked secret keeps the secret stored now, not one this server read before another process changed it
    hook = {"type": "webhook", "url": "https://hooks.example.com/x", "secret": "whsec_" + "A" * 40}
    ok(site.call(site.admin, "PUT", site.path("/alert-rules/export"), json={**ours, "actions": [hook]}))
    ok(site.call(site.member, "GET", rules))
    rotated = {**ours, "actions": [{**hook, "secret": "whsec_" + "B" * 40}]}
    now = time.time_ns()
    record = AlertRuleRecord(site.account.id, "export", json.dumps(rotated), "api", True, now, now)
    site.services.store.put_alert_rule(record)
    masked = {**ours, "name": "Renamed", "actions": [{**hook, "secret": "********"}]}
    ok(site.call(site.admin, "PUT", site.path("/alert-rules/export"), json=masked))
    [stored] = [r for r in site.services.store.list_alert_rules(site.account.id) if r.rule_id == "export"]
    assert json.loads(stored.definition)["actions"][0]["secret"] == "whsec_" + "B" * 40


def test_enabling_or_deleting_a_rule_acts_on_it_as_stored_now(
    make_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PATCH enabled acts on the rule as stored when it runs: a definition another process saved
    since this server read its rules is kept (not reverted to the one it read), and a rule another
    process deleted is not brought back (404). DELETE finds a rule another process just saved."""
    monkeypatch.setattr(rules_module, "CACHE_SECONDS", 3600.0)
    site = Site(make_server(alerts_enabled=True))
    rules = site.path("/alert-rules")
    for rule_id in ("export", "gone"):
        body = {"id": rule_id, "name": "Old", "source": "itemusages", "match": {"action": "export"}}
        ok(site.call(site.admin, "POST", rules, json=body), 201)
    ok(site.call(site.member, "GET", rules))  # this server's view of the rules, before the other process
    now = time.time_ns()
    newer = json.dumps({"id": "export", "name": "New", "source": "itemusages", "match": {"action": "reveal"}})
    site.services.store.put_alert_rule(AlertRuleRecord(site.account.id, "export", newer, "file", True, now, now))
    site.services.store.delete_alert_rule(site.account.id, "gone")
    off = ok(site.call(site.admin, "PATCH", site.path("/alert-rules/export"), json={"enabled": False}))
    assert (off["definition"]["name"], off["definition"]["match"], off["status"]) == (
        "New",
        {"action": "reveal"},
        "disabled",
    )
    stored = {r.rule_id: r for r in site.services.store.list_alert_rules(site.account.id)}
    assert json.loads(stored["export"].definition)["name"] == "New" and not stored["export"].enabled
    error_message(site.call(site.admin, "PATCH", site.path("/alert-rules/gone"), json={"enabled": False}), 404)
    assert "gone" not in {r.rule_id for r in site.services.store.list_alert_rules(site.account.id)}
    # a starter rule's override deleted by another process just before the flag is written: the
    # rule becomes the shipped one, disabled, not the deleted override again
    override = {"id": "mfa-disabled", "name": "Overridden", "source": "auditevents", "match": {"action": "disblmfa"}}
    ok(site.call(site.admin, "PUT", site.path("/alert-rules/mfa-disabled"), json=override))
    set_enabled = site.services.store.set_alert_rule_enabled

    def deleted_first(record: AlertRuleRecord, **options: Any) -> int:
        site.services.store.delete_alert_rule(site.account.id, "mfa-disabled")
        return set_enabled(record, **options)

    monkeypatch.setattr(site.services.store, "set_alert_rule_enabled", deleted_first)
    shipped = ok(site.call(site.admin, "PATCH", site.path("/alert-rules/mfa-disabled"), json={"enabled": False}))
    assert (shipped["definition"]["name"], shipped["status"]) == ("Multi-factor authentication disabled", "disabled")
    monkeypatch.undo()
    late = newer.replace('"export"', '"late"')
    site.services.store.put_alert_rule(AlertRuleRecord(site.account.id, "late", late, "file", True, now, now))
    ok(site.call(site.admin, "DELETE", site.path("/alert-rules/late")))
    assert "late" not in {r.rule_id for r in site.services.store.list_alert_rules(site.account.id)}


def test_alerts_explain_themselves_and_are_worked_through_the_admin_api(make_server: Any) -> None:
    site = Site(make_server(alerts_enabled=True, alerts_dispatch_seconds=0.05))
    activity = time.time_ns() - 3600 * 1_000_000_000  # an hour before it reaches siemgate
    events = [failed(activity + i * 1_000_000_000, "Ada@Example.com") for i in range(10)]
    site.services.writer.write(site.account.id, Feature.SIGNINATTEMPTS, events)
    site.services.writer.write(
        site.account.id, Feature.AUDITEVENTS, [auditevent(time.time_ns(), action="disblmfa", object_type="user")]
    )
    listed = ok(site.call(site.member, "GET", site.path("/alerts")))["items"]
    brute = next(a for a in listed if a["rule_id"] == "brute-force-signin")
    assert brute["event_time"] == format_ns(activity + 9 * 1_000_000_000)  # the activity, not the detection
    assert parse_ns(brute["detected_at"]) > parse_ns(brute["event_time"]) + 3000 * 1_000_000_000
    assert [e["uuid"] for e in brute["events"]] == [e["uuid"] for e in events]
    assert brute["explorer"] == {
        "feature": "signinattempts", "start": events[0]["timestamp"], "end": events[-1]["timestamp"],
        "actor": "Ada@Example.com",
    }  # fmt: skip
    assert (brute["state"], brute["state_by"], brute["rule_version"]) == ("open", None, 0)
    assert brute["account"] == {"uuid": site.account.uuid, "name": site.account.name}
    path = site.path(f"/alerts/{brute['id']}")
    assert "administrator" in error_message(site.call(site.member, "PATCH", path, json={"state": "resolved"}), 403)
    assert "state" in error_message(site.call(site.admin, "PATCH", path, json={"state": "done"}), 400)
    acked = ok(site.call(site.admin, "PATCH", path, json={"state": "acknowledged"}))
    assert (acked["state"], acked["state_by"]) == ("acknowledged", site.admin.email) and acked["state_at"]
    high = ok(site.call(site.member, "GET", site.path("/alerts"), params={"severity": "high", "state": "open"}))
    assert [a["rule_id"] for a in high["items"]] == ["mfa-disabled"]
    ok(site.call(site.owner, "PATCH", path, json={"state": "resolved"}))
    resolved = ok(site.call(site.member, "GET", site.path("/alerts"), params={"state": "resolved"}))["items"]
    assert [(a["id"], a["state_by"]) for a in resolved] == [(brute["id"], site.owner.email)]
    audit, _ = site.events(site.reader())
    trail = [e for e in audit if e["action"] == "update" and "alert state" in e.get("aux_info", "")]
    assert [json.loads(e["aux_info"])["state"] for e in trail] == ["acknowledged", "resolved"]


def run(data_dir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "siemgate", "--data-dir", str(data_dir), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "SIEMGATE_ALERTS_ENABLED": "true", "HOME": str(data_dir)},
    )
    if check:
        assert done.returncode == 0, done.stderr
    return done


def test_alert_and_archive_commands(tmp_path: Path) -> None:
    data = tmp_path / "data"
    run(data, "account", "create", "Acme")
    events = tmp_path / "signins.jsonl"
    t0 = 1_900_000_000 * 1_000_000_000
    events.write_text("\n".join(json.dumps(failed(t0 + i * 1_000_000_000)) for i in range(12)))
    tested = json.loads(run(data, "alerts", "test", "brute-force-signin", "--events", str(events), "--json").stdout)
    assert [(f["rule"], f["count"]) for f in tested] == [("brute-force-signin", 10)]
    rules = tmp_path / "rules.yml"
    rules.write_text(
        "- {id: suspended-ada, name: Ada suspended, source: auditevents, "
        "match: {action: suspend, object_details.email: ada@example.com}}\n"
    )
    assert "loaded suspended-ada" in run(data, "alerts", "load", str(rules)).stderr
    run(data, "alerts", "disable", "suspended-ada")
    listed = json.loads(run(data, "alerts", "list", "--json").stdout)
    assert {r["id"]: r["status"] for r in listed}["suspended-ada"] == "disabled"
    bad = tmp_path / "bad.yml"
    bad.write_text("{id: x, name: X, source: signinattempts, match: {client.ip: 1.2.3.4}}\n")
    refused = run(data, "alerts", "load", str(bad), check=False)
    assert refused.returncode == 1 and "did you mean" in refused.stderr

    # retention: old events archived, verified, purged and replayed
    old = tmp_path / "auditevents-old.jsonl"
    old_t = time.time_ns() - 200 * 86400 * 1_000_000_000
    lines = [
        {"uuid": f"{'A' * 22}{i:04d}".replace("0", "A").replace("1", "B")[:26], "timestamp": format_ns(old_t + i),
         "action": "view", "object_type": "item"} for i in range(3)
    ]  # fmt: skip
    old.write_text("\n".join(json.dumps(line) for line in lines))
    run(data, "ingest", str(old))
    applied = run(data, "retention", "apply")
    assert "archived 3 in 1 file(s), purged 3" in applied.stderr
    assert "ok: " in run(data, "archive", "verify").stderr
    replayed = run(data, "archive", "replay", "--features", "auditevents")
    assert "replayed 3 event(s) from 1 file(s): 3 stored, 0 already there" in replayed.stderr
    again = run(data, "archive", "replay", "--features", "auditevents")
    assert "0 stored, 3 already there" in again.stderr


def test_an_alert_is_recorded_as_an_event_within_about_a_second_whatever_the_dispatch_tick(make_server: Any) -> None:
    """`alerts_dispatch_seconds` paces the dispatcher, not the alerts waiting to be recorded as
    audit events: they are written once they waited a second (docs/alerts.md, "Alerts recorded as
    events"), not at the next tick, a minute away here."""
    site = Site(make_server(alerts_enabled=True, alerts_dispatch_seconds=60))
    disabled = auditevent(time.time_ns(), action="disblmfa", object_type="user")
    site.services.writer.write(site.account.id, Feature.AUDITEVENTS, [disabled])
    [alert] = ok(site.call(site.member, "GET", site.path("/alerts"), params={"rule": "mfa-disabled"}))["items"]

    def recorded() -> list[str]:
        events = ok(site.call(site.admin, "GET", site.path("/events/auditevents"), params={"limit": "100"}))["items"]
        return [e["object_uuid"] for e in events if (e["action"], e["object_type"]) == ("create", "report")]

    assert wait_for("the alert's audit event", recorded, 20) == [alert["id"]]


def test_members_see_no_destination_that_may_be_a_credential(make_server: Any) -> None:
    """A Slack incoming-webhook URL is a credential (its path), as are a webhook URL's query and
    user information: members, who cannot change rules, see them cut to their origin; owners and
    administrators, who edit them, see them whole. Everyone sees targets cut the same way."""
    site = Site(make_server(alerts_enabled=True))
    slack = "https://hooks.slack.com/services/T000SECRET/B000SECRET/XXXXSECRET"
    hook = "https://robot:pw@hooks.example.com:8443/x?token=SECRETTOKEN"
    actions = [{"type": "slack", "url": slack}, {"type": "webhook", "url": hook, "secret": "whsec_" + "A" * 40}]
    body = {"id": "to-chat", "name": "To chat", "source": "auditevents", "match": {"action": "disblmfa"}}
    ok(site.call(site.admin, "POST", site.path("/alert-rules"), json={**body, "actions": actions}), 201)
    path = site.path("/alert-rules/to-chat")
    shown = ok(site.call(site.member, "GET", path))
    assert [a["url"] for a in shown["definition"]["actions"]] == [
        "https://hooks.slack.com/…",
        "https://hooks.example.com:8443/…",
    ]
    assert [a["target"] for a in shown["actions"]] == ["https://hooks.slack.com/…", "https://hooks.example.com:8443/…"]
    assert "SECRET" not in str(ok(site.call(site.member, "GET", site.path("/alert-rules")))) + str(shown)
    whole = ok(site.call(site.admin, "GET", path))["definition"]["actions"]
    assert [a["url"] for a in whole] == [slack, hook] and whole[1]["secret"] == "********"
