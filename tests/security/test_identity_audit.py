# ruff: noqa: E501 - the operations are a table, one per line
"""A complete audit trail (finding 5 of the identity review) and complete system events.

Every changing operation of the admin API (read from its OpenAPI document) and of the command
line (read from its command tree) is listed here, with what it must record; an operation this
file does not know fails the test, so a new one cannot be added without deciding its event. Each
is then carried out and must leave its event in the affected account's stream.

Then every event siemgate itself recorded along the way — by people through the admin API, by the
command line, by the server (token lifecycle, alerts recorded as events), console sign-ins —
must have every field its shape always has, in v1 and in v2 (docs/events.md, docs/audit.md).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pyotp
import pytest
import typer
from typer.testing import CliRunner

from siemgate.accounts.actor import CLI, CLI_DEVICE, SERVER_DEVICE, SYSTEM_UUID
from siemgate.alerts.actions.record import is_alert_event
from siemgate.cli.main import app as cli_app
from siemgate.config import load_settings
from siemgate.model.features import Feature
from siemgate.model.ids import new_id
from siemgate.model.timestamps import format_ns
from siemgate.store.base import Account
from support.clocks import Clock
from support.servers import start_server, stop_server
from support.stores import make_store

from .identity_support import ADMIN, PASSWORD, Tenants, ok

AUDIT, SIGNIN = Feature.AUDITEVENTS, Feature.SIGNINATTEMPTS
RULE = {
    "id": "audit-test-rule",
    "name": "Audit test rule",
    "source": "auditevents",
    "severity": "low",
    "match": {"action": "create", "object_type": "vault"},
    "summary": "a vault was created",
}

# Changing operations that are not changes to who can access what, and why.
API_EXEMPT = {
    ("POST", "/api/admin/v1/me/two-factor"): "starts an enrolment: nothing changes until /confirm, recorded",
    ("POST", "/api/admin/v1/accounts/{account}/alert-deliveries/{delivery_id}/retry"): "re-sends a fired alert",
    ("PATCH", "/api/admin/v1/accounts/{account}/alerts/{alert_id}"): "an alert's triage state (acknowledged, resolved)",
    (
        "DELETE",
        "/api/admin/v1/accounts/{account}",
    ): "deletes the account with its own audit stream: recorded in the server's operations log (tests/admin/test_account_delete.py)",
}
CLI_READ_ONLY = {
    "account list", "token list", "ingest-key list", "keys list", "user list", "user invitations", "integration list",
    "integration show", "api-key list", "alerts list", "alerts show", "alerts test", "alerts fired",
    "alerts deliveries", "alerts new-secret", "retention show", "archive list", "archive verify", "forward check",
    "forward status", "audit memberships", "signer keys", "signer state", "log keys", "account deletions", "witness keys", "witness state",
}  # fmt: skip
CLI_EXEMPT = {
    "serve": "runs the server",
    "account delete": "deletes the account with its own audit stream: recorded in the server's operations log",
    "demo": "runs a demo server on its own data directory",
    "ingest": "adds events (data, not access)",
    "simulate": "adds simulated events",
    "db copy": "copies a whole store to another database",
    "db migrate": "applies schema migrations",
    "forward": "forwards events to SIEMs",
    "forward reset": "moves the forwarder's own checkpoint",
    "retention apply": "archives and purges by the recorded policy",
    "archive replay": "stores archived events again",
    "alerts retry": "re-sends a fired alert",
    "alerts ack": "an alert's triage state",
    "alerts resolve": "an alert's triage state",
    "alerts reopen": "an alert's triage state",
    # the tamper-evident log's signer runs apart from the store and holds its own keys (docs/integrity.md)
    "signer init": "creates the signer's own key and state files",
    "signer rotate": "rotates the checkpoint signing key (integrity, not access)",
    "signer retire": "retires an old checkpoint signing key",
    "signer recover": "records a recovery statement for the log",
    "signer serve": "runs the signer",
    # a witness runs on another host with its own key and state file, never the store (docs/integrity.md)
    "witness init": "creates the witness's own key file",
    "witness serve": "runs the witness",
    "witness forget": "the witness operator's acceptance of a recovered log, kept in the witness's own state",
    "log checkpoint": "has the log's current tree signed (integrity, not access)",
    "log export": "writes a stream's log to files, after having its tree signed",
    "log integrate": "integrates the logs as serve does (integrity, not access)",
    "log recover": "recorded in the account's audit stream as update account (kind log-recovery)",
    "log resume": "recorded in the account's audit stream as update account (kind log-resume)",
}


@dataclass
class Trail:
    """Reads each account's streams incrementally through the Events API."""

    tenants: Tenants
    tokens: dict[tuple[int, Feature], str] = field(default_factory=dict)
    cursors: dict[tuple[int, Feature], str] = field(default_factory=dict)
    seen: dict[tuple[str, Feature, int], list[dict[str, Any]]] = field(default_factory=dict)

    def new(self, account: Account, feature: Feature, version: int = 2) -> list[dict[str, Any]]:
        key = (account.id, feature)
        server = self.tenants.server
        if key not in self.tokens:
            services = self.tenants.services
            integration = services.store.create_integration(
                account.id, new_id(), "other", f"trail {feature.value} {new_id()[:6]}", "", 0
            )
            self.tokens[key], _ = services.tokens.issue(account, integration, "trail", [feature], None)
            start = {"start_time": format_ns(self.tenants.started - 60 * 10**9), "limit": 1000}
            page = server.page(self.tokens[key], feature, start, version=version)
            assert page.status_code == 200, page.text
            self.cursors[key] = page.json()["cursor"]
            items: list[dict[str, Any]] = page.json()["items"]
            more, self.cursors[key] = server.drain(self.tokens[key], feature, self.cursors[key])
            return items + more
        items, self.cursors[key] = server.drain(self.tokens[key], feature, self.cursors[key], version=version)
        return items


def _routes(tenants: Tenants) -> set[tuple[str, str]]:
    paths = tenants.http.get("/openapi.json").json()["paths"]
    return {
        (method.upper(), path)
        for path, operations in paths.items()
        if path.startswith(ADMIN)
        for method in operations
        if method.upper() in ("POST", "PUT", "PATCH", "DELETE")
    }


def _commands(group: Any, prefix: str = "") -> set[str]:
    """Every command of the CLI's tree, as typed ("user add"); a group that runs on its own counts."""
    found = set()
    for name, command in group.commands.items():
        full = f"{prefix}{name}"
        if hasattr(command, "commands"):
            if getattr(command, "invoke_without_command", False):
                found.add(full)
            found |= _commands(command, f"{full} ")
        else:
            found.add(full)
    return found


@dataclass
class Scenario:
    tenants: Tenants
    trail: Trail
    failures: list[str]
    unknown_routes: set[tuple[str, str]]
    unknown_commands: set[str]


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scenario]:
    """One server on which every changing operation is carried out once (the tests read it)."""
    data_dir = tmp_path_factory.mktemp("audit")
    settings = load_settings(
        data_dir=data_dir, allow_account_creation=True, alerts_enabled=True, alerts_check_seconds=1
    )
    live, uv, thread = start_server(settings, make_store("sqlite", data_dir), Clock())
    try:
        yield _carry_out_everything(Tenants(live), tmp_path_factory.mktemp("files"))
    finally:
        stop_server(live, uv, thread)


def test_every_changing_operation_of_the_admin_api_and_the_cli_is_recorded(scenario: Scenario) -> None:
    assert not scenario.unknown_routes, (
        f"changing operations with no audit check here: {sorted(scenario.unknown_routes)}"
    )
    assert not scenario.unknown_commands, f"commands with no audit check here: {sorted(scenario.unknown_commands)}"
    assert not scenario.failures, "\n".join(scenario.failures)


def _carry_out_everything(tenants: Tenants, tmp_path: Path) -> Scenario:
    trail = Trail(tenants)
    a, b = tenants.a, tenants.b
    for account in (a, b):
        for feature in (AUDIT, SIGNIN):
            trail.new(account, feature)
    covered: set[tuple[str, str]] = set()
    failures: list[str] = []

    def expect(
        method: str, path: str, call: Callable[[], httpx.Response], account: Account, kind: tuple[str, str] | str
    ) -> Any:
        covered.add((method, ADMIN + path))
        response = call()
        assert response.status_code < 300, f"{method} {path}: {response.status_code} {response.text}"
        feature = SIGNIN if isinstance(kind, str) else AUDIT
        events = trail.new(account, feature)
        found = [
            e
            for e in events
            if (e["category"] == kind if feature is SIGNIN else (e["action"], e["object_type"]) == kind)
        ]
        if not found:
            failures.append(f"{method} {path} recorded no {kind} in {account.name}: {[_kind(e) for e in events]}")
        return None if response.status_code == 204 else response.json()

    acct = f"/accounts/{a.uuid}"
    alice, adam, bob = tenants.alice, tenants.adam, tenants.bob
    call = tenants.call

    # people and the account
    expect("POST", "/accounts", lambda: call(alice, "POST", "/accounts", json={"name": f"New {tenants.tag}"}), _named(tenants, f"New {tenants.tag}"), ("create", "account"))  # fmt: skip
    expect("PATCH", "/accounts/{account}", lambda: call(alice, "PATCH", acct, json={"name": f"Acme2 {tenants.tag}"}), a, ("changenm", "account"))  # fmt: skip
    invited = expect("POST", "/accounts/{account}/invitations", lambda: call(alice, "POST", f"{acct}/invitations", json={"email": bob.email}), a, ("create", "invite"))  # fmt: skip
    expect("POST", "/me/invitations/{invitation_id}/decline", lambda: call(bob, "POST", f"/me/invitations/{invited['id']}/decline", json={"code": invited["code"]}), a, ("cancel", "invite"))  # fmt: skip
    invited = call(alice, "POST", f"{acct}/invitations", json={"email": bob.email}).json()
    expect("POST", "/me/invitations/{invitation_id}/accept", lambda: call(bob, "POST", f"/me/invitations/{invited['id']}/accept", json={"code": invited["code"]}), a, ("join", "user"))  # fmt: skip
    newcomer = f"nina-{tenants.tag}@acme.example"
    invited = call(alice, "POST", f"{acct}/invitations", json={"email": newcomer}).json()
    with httpx.Client(base_url=tenants.server.base_url) as fresh:
        expect("POST", "/join", lambda: fresh.post(f"{ADMIN}/join", json={"email": newcomer, "code": invited["code"], "name": "Nina", "password": PASSWORD}), a, ("join", "user"))  # fmt: skip
    invited = call(alice, "POST", f"{acct}/invitations", json={"email": f"x-{tenants.tag}@y.example"}).json()
    expect("DELETE", "/accounts/{account}/invitations/{invitation_id}", lambda: call(alice, "DELETE", f"{acct}/invitations/{invited['id']}"), a, ("revoke", "invite"))  # fmt: skip
    expect("PATCH", "/accounts/{account}/members/{person}", lambda: call(alice, "PATCH", f"{acct}/members/{newcomer}", json={"role": "administrator"}), a, ("role", "user"))  # fmt: skip
    expect("DELETE", "/accounts/{account}/members/{person}", lambda: call(alice, "DELETE", f"{acct}/members/{newcomer}"), a, ("delete", "user"))  # fmt: skip

    # a person's own credentials (recorded in every account they belong to)
    key = expect("POST", "/me/api-keys", lambda: call(adam, "POST", "/me/api-keys", json={"name": "script"}), a, ("create", "cred"))  # fmt: skip
    expect("DELETE", "/me/api-keys/{key_id}", lambda: call(adam, "DELETE", f"/me/api-keys/{key['id']}"), a, ("revoke", "cred"))  # fmt: skip
    expect("PUT", "/me/password", lambda: call(adam, "PUT", "/me/password", json={"current_password": PASSWORD, "new_password": PASSWORD + "!"}), a, ("changemp", "user"))  # fmt: skip
    secret = ok(call(alice, "POST", "/me/two-factor"), 201)["secret"]
    covered.add(("POST", f"{ADMIN}/me/two-factor"))
    recovery = expect("POST", "/me/two-factor/confirm", lambda: call(alice, "POST", "/me/two-factor/confirm", json={"code": pyotp.TOTP(secret).now(), "password": PASSWORD}), a, ("enblmfa", "user"))["recovery_codes"]  # fmt: skip
    recovery = expect("POST", "/me/two-factor/recovery-codes", lambda: call(alice, "POST", "/me/two-factor/recovery-codes", json={"password": PASSWORD, "code": recovery[0]}), a, ("updatmfa", "user"))["recovery_codes"]  # fmt: skip
    expect("PUT", "/accounts/{account}/security", lambda: call(alice, "PUT", f"{acct}/security", json={"require_two_factor": True}), a, ("enblmfa", "account"))  # fmt: skip
    call(alice, "PUT", f"{acct}/security", json={"require_two_factor": False})
    expect("POST", "/me/two-factor/disable", lambda: call(alice, "POST", "/me/two-factor/disable", json={"password": PASSWORD, "code": recovery[0]}), a, ("disblmfa", "user"))  # fmt: skip

    # console sessions
    with httpx.Client(base_url=tenants.server.base_url) as browser:
        signed = expect("POST", "/session", lambda: browser.post(f"{ADMIN}/session", json={"email": bob.email, "password": PASSWORD}), b, "success")  # fmt: skip
        expect("DELETE", "/session", lambda: browser.delete(f"{ADMIN}/session", headers={"X-CSRF-Token": signed["csrf_token"]}), b, ("revoke", "dlgdsess"))  # fmt: skip
    expect("DELETE", "/me/sessions", lambda: call(bob, "DELETE", "/me/sessions"), b, ("revoke", "dlgdsess"))  # fmt: skip
    secret = ok(call(bob, "POST", "/me/two-factor"), 201)["secret"]
    ok(call(bob, "POST", "/me/two-factor/confirm", json={"code": pyotp.TOTP(secret).now(), "password": PASSWORD}))
    with httpx.Client(base_url=tenants.server.base_url) as browser:
        challenge = ok(browser.post(f"{ADMIN}/session", json={"email": bob.email, "password": PASSWORD}))["challenge"]
        code = pyotp.TOTP(secret).at(time.time() + 30)
        expect("POST", "/session/second-factor", lambda: browser.post(f"{ADMIN}/session/second-factor", json={"challenge": challenge, "code": code}), b, "success")  # fmt: skip

    # integrations, SIEM tokens, ingest keys, alert rules (outbound destinations)
    made = expect("POST", "/accounts/{account}/integrations", lambda: call(alice, "POST", f"{acct}/integrations", json={"type": "splunk", "name": "Splunk"}), a, ("create", "sa"))  # fmt: skip
    integ = f"{acct}/integrations/{made['uuid']}"
    expect("PATCH", "/accounts/{account}/integrations/{integration}", lambda: call(alice, "PATCH", integ, json={"name": "Splunk EU"}), a, ("changenm", "sa"))  # fmt: skip
    token = expect("POST", "/accounts/{account}/integrations/{integration}/tokens", lambda: call(alice, "POST", f"{integ}/tokens", json={"name": "hf"}), a, ("create", "satoken"))  # fmt: skip
    rotated = expect("POST", "/accounts/{account}/tokens/{token}/rotate", lambda: call(alice, "POST", f"{acct}/tokens/{token['id']}/rotate", json={"grace": "0"}), a, ("replace", "satoken"))  # fmt: skip
    expect("POST", "/accounts/{account}/tokens/{token}/revoke", lambda: call(alice, "POST", f"{acct}/tokens/{rotated['id']}/revoke"), a, ("trevoke", "satoken"))  # fmt: skip
    expect("DELETE", "/accounts/{account}/integrations/{integration}", lambda: call(alice, "DELETE", integ), a, ("delete", "sa"))  # fmt: skip
    ingest = expect("POST", "/accounts/{account}/ingest-keys", lambda: call(alice, "POST", f"{acct}/ingest-keys", json={"name": "bridge"}), a, ("create", "satoken"))  # fmt: skip
    expect("DELETE", "/accounts/{account}/ingest-keys/{key_id}", lambda: call(alice, "DELETE", f"{acct}/ingest-keys/{ingest['id']}"), a, ("trevoke", "satoken"))  # fmt: skip
    rules = f"{acct}/alert-rules"
    expect("POST", "/accounts/{account}/alert-rules", lambda: call(alice, "POST", rules, json=RULE), a, ("create", "report"))  # fmt: skip
    expect("PUT", "/accounts/{account}/alert-rules/{rule_id}", lambda: call(alice, "PUT", f"{rules}/{RULE['id']}", json={**RULE, "severity": "high"}), a, ("update", "report"))  # fmt: skip
    expect("PATCH", "/accounts/{account}/alert-rules/{rule_id}", lambda: call(alice, "PATCH", f"{rules}/{RULE['id']}", json={"enabled": False}), a, ("update", "report"))  # fmt: skip
    expect("DELETE", "/accounts/{account}/alert-rules/{rule_id}", lambda: call(alice, "DELETE", f"{rules}/{RULE['id']}"), a, ("delete", "report"))  # fmt: skip

    routes = _routes(tenants)
    assert covered - routes == set(), "the test names operations the API does not have"
    unknown = routes - covered - set(API_EXEMPT)

    # the command line ------------------------------------------------------------------------------
    runner = CliRunner()
    data_dir = str(tenants.services.settings.data_dir)
    rule_file = tmp_path / "rule.yml"
    rule_file.write_text("id: cli-rule\nname: CLI rule\nsource: auditevents\nseverity: low\nmatch: {action: create, object_type: vault}\nsummary: x\n")  # fmt: skip
    password_file = tmp_path / "pw"
    password_file.write_text(PASSWORD + "\n")
    done: set[str] = set()

    def cli(command: str, *args: str, account: Account | None = None, kind: tuple[str, str]) -> str:
        done.add(command)
        result = runner.invoke(cli_app, ["--data-dir", data_dir, *command.split(), *args], catch_exceptions=False)
        assert result.exit_code == 0, f"siemgate {command}: {result.output}"
        target = account or b
        events = [e for e in trail.new(target, AUDIT) if not is_alert_event(e)]  # alerts arrive any time
        found = [e for e in events if (e["action"], e["object_type"]) == kind]
        if not found:
            failures.append(f"siemgate {command} recorded no {kind} in {target.name}: {[_kind(e) for e in events]}")
        for event in found:
            assert event["actor_uuid"] == SYSTEM_UUID and event["session"]["device_uuid"] == CLI_DEVICE, event
        return result.stdout.strip()

    bb = ("--account", b.uuid)
    cli("account create", f"Cli {tenants.tag}", account=_named(tenants, f"Cli {tenants.tag}"), kind=("create", "account"))  # fmt: skip
    cli("account rename", b.uuid, f"Bolt2 {tenants.tag}", kind=("changenm", "account"))
    cli("integration create", "Elastic", "--type", "elastic", *bb, kind=("create", "sa"))
    cli("integration rename", "Elastic", "Elastic EU", *bb, kind=("changenm", "sa"))
    issued = cli(
        "token issue", "--name", "t1", "--integration", "Elastic EU", *bb, "--json", kind=("create", "satoken")
    )
    token_id = json.loads(issued)["id"]
    rotated_id = json.loads(cli("token rotate", token_id, "--grace", "0", "--json", kind=("replace", "satoken")))["id"]  # fmt: skip
    cli("token revoke", rotated_id, kind=("trevoke", "satoken"))
    cli("integration delete", "Elastic EU", *bb, kind=("delete", "sa"))
    key_id = json.loads(cli("ingest-key create", "--name", "k", *bb, "--json", kind=("create", "satoken")))["id"]  # fmt: skip
    cli("ingest-key revoke", key_id, kind=("trevoke", "satoken"))
    cli("keys rotate", kind=("changeks", "account"))
    cli("user add", f"olga-{tenants.tag}@bolt.example", "--password-file", str(password_file), *bb, kind=("join", "user"))  # fmt: skip
    cli("user set-role", f"olga-{tenants.tag}@bolt.example", "administrator", *bb, kind=("role", "user"))
    code = cli("user invite", f"pia-{tenants.tag}@bolt.example", *bb, kind=("create", "invite"))
    assert code.startswith("sgv_")
    [pending] = [i for i in tenants.services.store.list_invitations(b.id) if i.email.startswith("pia-")]
    cli("user revoke-invitation", pending.id, *bb, kind=("revoke", "invite"))
    olga_key = json.loads(cli("api-key create", "--user", f"olga-{tenants.tag}@bolt.example", "--name", "s", "--json", kind=("create", "cred")))["id"]  # fmt: skip
    cli("api-key revoke", olga_key, "--user", f"olga-{tenants.tag}@bolt.example", kind=("revoke", "cred"))
    cli("user password", f"olga-{tenants.tag}@bolt.example", "--password-file", str(password_file), kind=("changemp", "user"))  # fmt: skip
    olga = tenants.services.store.get_user(f"olga-{tenants.tag}@bolt.example")
    tenants.services.personal.begin_two_factor(olga)
    two_factor = tenants.services.store.get_two_factor(olga.id)
    assert two_factor is not None
    tenants.services.store.enable_two_factor(olga.id, two_factor.secret, 1, 1, [])
    cli("user reset-two-factor", olga.email, kind=("disblmfa", "user"))
    cli("user remove", olga.email, *bb, kind=("delete", "user"))
    cli("alerts load", str(rule_file), *bb, kind=("create", "report"))
    cli("alerts disable", "cli-rule", *bb, kind=("update", "report"))
    cli("alerts enable", "cli-rule", *bb, kind=("update", "report"))
    cli("alerts delete", "cli-rule", *bb, kind=("delete", "report"))
    cli("retention set", "90", "--features", "auditevents", *bb, kind=("update", "account"))

    commands = _commands(typer.main.get_command(cli_app))
    assert done - commands == set(), "the test names commands the CLI does not have"
    unknown_commands = commands - done - CLI_READ_ONLY - set(CLI_EXEMPT)

    # siemgate's own work: a token's expiry warning (the server's lifecycle job), and the alerts the
    # starter rules recorded as events (token revocations fire "SIEM token revoked")
    integration = tenants.services.integrations.create(CLI, b, "other", "expiring")
    tenants.services.lifecycle.issue(CLI, b, integration, "soon", [AUDIT], 86400 * 10**9)
    assert tenants.services.lifecycle.run_due().warned
    deadline = time.monotonic() + 60
    while not any(is_alert_event(e) for e in _all(trail, a, AUDIT, 2)):
        assert time.monotonic() < deadline, "no alert was recorded as an event within 60 s"
        time.sleep(0.2)
    return Scenario(tenants, trail, failures, unknown, unknown_commands)


def _all(trail: Trail, account: Account, feature: Feature, version: int) -> list[dict[str, Any]]:
    """Every event of the stream since the set-up, read afresh in `version`."""
    server = trail.tenants.server
    token = trail.tokens[(account.id, feature)]
    start = {"start_time": format_ns(trail.tenants.started - 60 * 10**9), "limit": 1000}
    page = server.page(token, feature, start, version=version)
    assert page.status_code == 200, page.text
    more, _ = server.drain(token, feature, page.json()["cursor"], version=version)
    items: list[dict[str, Any]] = page.json()["items"] + more
    return items


USER_V1 = {"uuid", "name", "email"}
USER_V2 = USER_V1 | {"user_type", "user_account_uuid"}
SESSION = {"uuid", "login_time", "device_uuid", "ip"}
CLIENT = {"app_name", "app_version", "platform_name", "platform_version", "os_name", "os_version", "ip_address"}
ALWAYS = {
    (AUDIT, 1): {"uuid", "timestamp", "actor_uuid", "action", "object_type", "session"},
    (AUDIT, 2): {
        "uuid",
        "timestamp",
        "actor_uuid",
        "actor_details",
        "action",
        "object_type",
        "session",
        "actor_type",
        "actor_account_uuid",
        "account_uuid",
    },
    (SIGNIN, 1): {
        "uuid",
        "session_uuid",
        "timestamp",
        "category",
        "type",
        "country",
        "details",
        "target_user",
        "client",
    },
    (SIGNIN, 2): {
        "uuid",
        "session_uuid",
        "timestamp",
        "category",
        "type",
        "country",
        "details",
        "target_user",
        "client",
        "account_uuid",
    },
}


def test_every_event_siemgate_records_has_the_always_present_fields(scenario: Scenario) -> None:
    """System-made events lacked actor_uuid and session (connectors that index them failed): every
    event siemgate records itself — people's changes, the command line's, the server's own work,
    alerts recorded as events, console sign-ins — has each always-present field of its shape."""
    tenants, seen = scenario.tenants, {"cli": 0, "server": 0, "alert": 0, "person": 0, "signin": 0}
    for account in (tenants.a, tenants.b):
        for (feature, version), fields in ALWAYS.items():
            for event in _all(scenario.trail, account, feature, version):
                missing = fields - set(event)
                assert not missing, f"{feature.value} v{version} event lacks {sorted(missing)}: {event}"
                if feature is SIGNIN:
                    assert set(event["client"]) == CLIENT and set(event["target_user"]) == (
                        USER_V2 if version == 2 else USER_V1
                    )
                    seen["signin"] += 1
                    continue
                assert set(event["session"]) == SESSION, event
                assert all(
                    isinstance(event["session"][k], str) and event["session"][k]
                    for k in ("uuid", "login_time", "device_uuid")
                )
                if version == 2:
                    assert set(event["actor_details"]) == USER_V2 and event["actor_type"] in ("user", "external_user")
                    assert event["account_uuid"] == account.uuid
                if event["actor_uuid"] == SYSTEM_UUID:
                    kind = (
                        "alert"
                        if is_alert_event(event)
                        else {CLI_DEVICE: "cli", SERVER_DEVICE: "server"}[event["session"]["device_uuid"]]
                    )
                    seen[kind] += 1
                else:
                    seen["person"] += 1
    assert all(seen.values()), seen


def _named(tenants: Tenants, name: str) -> Account:
    return _LazyAccount(tenants, name)  # type: ignore[return-value]


class _LazyAccount:
    """An account looked up by name when first used (it is made by the step that records in it)."""

    def __init__(self, tenants: Tenants, name: str) -> None:
        self._tenants, self.name = tenants, name

    def __getattr__(self, attribute: str) -> Any:
        return getattr(self._tenants.services.store.get_account(self.name), attribute)


def _kind(event: dict[str, Any]) -> Any:
    return (event.get("action"), event.get("object_type")) if "action" in event else event.get("category")
