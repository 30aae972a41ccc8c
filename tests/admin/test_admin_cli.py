"""The setup flow from the command line (real `siemgate` subprocesses on a temporary data
directory): accounts with their first owner, people and roles, integrations, token rotation,
personal API keys used against a server on the same data directory, and an MSP person."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

from siemgate.accounts.actor import CLI, CLI_DEVICE, SYSTEM_UUID
from siemgate.model.features import Feature
from siemgate.model.ids import is_id, new_id
from support.admin import ADMIN, error_message, ok
from support.servers import bearer

from .cli_runner import PASSWORD, Cli, serving

AUDIT = Feature.AUDITEVENTS


def _reader(server: Any, account: str) -> str:
    """A token with every feature, issued in-process (no audit event)."""
    acct = server.services.store.get_account(account)
    integration = server.services.store.create_integration(acct.id, new_id(), "other", "reader", "", 0)
    token, _ = server.services.tokens.issue(acct, integration, "reader", list(Feature), None)
    return str(token)


def test_account_create_with_an_owner_who_signs_in_and_uses_an_api_key(cli: Cli, tmp_path: Path) -> None:
    password_file = tmp_path / "alice.pw"
    password_file.write_text(PASSWORD + "\n")
    result = cli.run(
        "account",
        "create",
        "Acme Corp",
        "--owner",
        "alice@acme.example",
        "--owner-name",
        "Alice Admin",
        "--password-file",
        str(password_file),
    )
    account = result.stdout.strip()
    assert is_id(account) and result.stdout == account + "\n"
    assert "alice@acme.example" in result.stderr
    [alice] = cli.json("user", "list")
    assert (alice["email"], alice["name"], alice["role"], alice["two_factor"]) == (
        "alice@acme.example",
        "Alice Admin",
        "owner",
        False,
    )
    key = cli.run("api-key", "create", "--user", "alice@acme.example", "--name", "terraform")
    secret = key.stdout.strip()
    assert secret.startswith("sgp_") and key.stdout == secret + "\n"
    assert "shown only once" in key.stderr
    [listed] = cli.json("api-key", "list", "--user", "alice@acme.example")
    assert listed["name"] == "terraform" and listed["status"] == "active" and secret not in json.dumps(listed)

    with serving(cli, tmp_path / "logs") as base_url, httpx.Client(base_url=base_url, timeout=30) as http:
        signed_in = ok(http.post(f"{ADMIN}/session", json={"email": "alice@acme.example", "password": PASSWORD}))
        assert [(a["uuid"], a["role"]) for a in signed_in["user"]["accounts"]] == [(account, "owner")]
        http.cookies.clear()
        error_message(http.post(f"{ADMIN}/session", json={"email": "alice@acme.example", "password": "x" * 12}), 401)
        me = ok(http.get(f"{ADMIN}/me", headers=bearer(secret)))
        assert me["email"] == "alice@acme.example"
        created = ok(
            http.post(
                f"{ADMIN}/accounts/{account}/integrations",
                headers=bearer(secret),
                json={"type": "splunk", "name": "Splunk"},
            ),
            201,
        )
        cli.run("api-key", "revoke", listed["id"], "--user", "alice@acme.example")
        assert "revoked" in error_message(http.get(f"{ADMIN}/me", headers=bearer(secret)), 401)
    assert [i["uuid"] for i in cli.json("integration", "list")] == [created["uuid"]]


def test_a_weak_owner_password_creates_nothing(cli: Cli, tmp_path: Path) -> None:
    short = tmp_path / "short.pw"
    short.write_text("short\n")
    stderr = cli.fails(
        "account", "create", "Acme", "--owner", "bob@acme.example", "--password-file", str(short), code=2
    )
    assert "at least 10 characters" in stderr
    assert cli.json("account", "list") == []


def test_user_add_list_set_role_remove_and_the_last_owner(cli: Cli) -> None:
    cli.run("account", "create", "Acme", "--owner", "alice@acme.example")
    added = cli.run("user", "add", "bob@acme.example", "--name", "Bob Builder", "--role", "administrator")
    assert is_id(added.stdout.strip()) and "bob@acme.example is now administrator" in added.stderr
    carol = cli.json("user", "add", "carol@acme.example")
    assert carol["role"] == "member" and carol["email"] == "carol@acme.example" and carol["two_factor"] is False
    assert {u["email"]: u["role"] for u in cli.json("user", "list")} == {
        "alice@acme.example": "owner",
        "bob@acme.example": "administrator",
        "carol@acme.example": "member",
    }

    for args in (("set-role", "alice@acme.example", "administrator"), ("remove", "alice@acme.example")):
        stderr = cli.fails("user", *args)
        assert "must keep at least one owner" in stderr and stderr.startswith("error: ")

    cli.run("user", "set-role", "bob@acme.example", "owner")
    cli.run("user", "set-role", "alice@acme.example", "member")  # another owner remains
    cli.run("user", "remove", "carol@acme.example")
    assert {u["email"]: u["role"] for u in cli.json("user", "list")} == {
        "alice@acme.example": "member",
        "bob@acme.example": "owner",
    }


def test_integration_create_list_show_rename_and_delete(cli: Cli) -> None:
    cli.run("account", "create", "Acme")
    created = cli.run("integration", "create", "Splunk production", "--type", "splunk")
    uuid = created.stdout.strip()
    assert is_id(uuid) and "Splunk" in created.stderr
    token = cli.out("token", "issue", "--integration", "Splunk production", "--name", "hf1", "--expires", "90d")
    [listed] = cli.json("integration", "list")
    assert (listed["uuid"], listed["type"], listed["name"]) == (uuid, "splunk", "Splunk production")

    shown = cli.run("integration", "show", "Splunk production")
    text = shown.stdout + shown.stderr
    assert "1Password Events Reporting for Splunk" in text
    assert "token's audience" in text
    assert "hf1" in text and "active" in text and "never read" in text
    assert token not in text

    details = cli.json("integration", "show", uuid)
    assert details["siem"] == {"key": "splunk", "name": "Splunk"}
    assert details["connection_guide"]["url_from_token"] is True
    assert details["connection_guide"]["fields"] == ["Events API token"]
    [entry] = details["tokens"]
    assert (entry["name"], entry["status"]) == ("hf1", "active")
    assert entry["expires_at"] is not None and entry["last_used_at"] is None
    assert [s["events_behind"] for s in entry["streams"]] == [None, None, None]
    assert token not in json.dumps(details)

    renamed = cli.run("integration", "rename", "Splunk production", "Splunk prod (EU)")
    assert "Splunk prod (EU)" in renamed.stderr
    deleted = cli.run("integration", "delete", "Splunk prod (EU)")  # found by its new name
    assert "revoked 1 token(s)" in deleted.stderr
    assert [t["status"] for t in cli.json("token", "list")] == ["revoked"]
    assert "no integration" in cli.fails("integration", "show", uuid)


def test_an_unknown_siem_type_is_a_clear_error_and_creates_nothing(cli: Cli) -> None:
    cli.run("account", "create", "Acme")
    stderr = cli.fails("integration", "create", "Mystery", "--type", "splonk")
    assert "unknown SIEM type 'splonk'" in stderr
    assert "splunk" in stderr and "microsoft_sentinel" in stderr and "other" in stderr
    stderr = cli.fails("token", "issue", "--name", "t", "--type", "splonk")
    assert "unknown SIEM type 'splonk'" in stderr
    assert cli.json("token", "list") == []  # and no integration was made for it


def test_an_expiry_or_grace_past_its_bound_is_a_clear_error_and_writes_nothing(cli: Cli) -> None:
    """The longest expiry is 36500d (100 years), the longest grace 90d; past them `token issue` and
    `token rotate` say so before anything is made (a 99999d grace used to leave a replacement token
    nobody saw, a 99999d expiry an integration named after the token)."""
    cli.run("account", "create", "Acme")
    cli.run("integration", "create", "Splunk", "--type", "splunk")
    for expires in ("99999d", "99999999mo"):
        stderr = cli.fails("token", "issue", "--name", "hf1", "--expires", expires, code=2)
        assert f"'{expires}' is longer than 36500d (100 years), the longest expiry; use never" in stderr
    assert [i["name"] for i in cli.json("integration", "list")] == ["Splunk"]
    assert cli.json("token", "list") == []
    issued = cli.json("token", "issue", "--name", "hf1", "--integration", "Splunk", "--expires", "36500d")
    for rotate in (("token", "rotate", issued["id"]), ("token", "rotate", "--all", "--json")):
        stderr = cli.fails(*rotate, "--grace", "99999d", code=2)
        assert "'99999d' is longer than 90d, the longest grace period" in stderr
    [listed] = cli.json("token", "list")
    assert (listed["id"], listed["revoke_at"]) == (issued["id"], None)


def test_token_rotate_prints_the_new_token_alone(make_server: Any) -> None:
    """Rotation from the CLI, checked on the Events API of a server on the same data directory."""
    server = make_server()
    services = server.services
    cli = Cli(services.settings.data_dir)
    account, _ = services.people.create_account(CLI, "Acme", None, None, None)
    integration = services.integrations.create(CLI, account, "splunk", "Splunk")
    old, record = services.lifecycle.issue(CLI, account, integration, "splunk", list(Feature), 30 * 86400 * 10**9)

    def works(token: str) -> bool:
        status: int = server.page(token, AUDIT, {}).status_code
        assert status in (200, 401)
        return status == 200

    assert works(old)
    rotated = cli.run("token", "rotate", record.id)
    new = rotated.stdout.strip()
    assert rotated.stdout == new + "\n" and new.startswith("eyJ") and new != old
    assert "when the new token is first used" in rotated.stderr
    pending = services.store.get_token(record.id)
    assert pending.revoked_at is None and pending.revoke_at is not None
    assert works(old)
    assert works(new)
    assert not works(old)  # the replacement was used: the old token is refused at once

    [replacement] = [t for t in services.store.list_tokens(account.id) if t.replaces == record.id]
    assert replacement.features == record.features and replacement.expires_at is not None
    newest = cli.run("token", "rotate", replacement.id, "--grace", "0")
    assert newest.stdout.count("\n") == 1 and "revoked now" in newest.stderr
    assert not works(new)
    assert works(newest.stdout.strip())
    assert "revoked" in cli.fails("token", "rotate", record.id)
    assert "is not a duration" in cli.fails("token", "rotate", replacement.id, "--grace", "soon", code=2)


def test_a_person_in_several_accounts(make_server: Any) -> None:
    """An MSP's person, created with their own account, is added to a customer's account."""
    server = make_server()
    cli = Cli(server.services.settings.data_dir)
    msp = cli.out("account", "create", "MSP", "--owner", "morgan@msp.example")
    customer = cli.out("account", "create", "Customer", "--owner", "carla@customer.example")
    stderr = cli.fails("user", "add", "morgan@msp.example", "--account", "Customer", "--role", "administrator")
    assert "already has sign-in credentials" in stderr and "siemgate user invite" in stderr
    invited = cli.json("user", "invite", "morgan@msp.example", "--account", "Customer", "--role", "administrator")
    assert invited["status"] == "pending" and invited["code"].startswith("sgv_")
    key = cli.out("api-key", "create", "--user", "morgan@msp.example", "--name", "msp-automation")
    accept = f"{ADMIN}/me/invitations/{invited['id']}/accept"
    ok(server.http.post(accept, headers=bearer(key), json={"code": invited["code"]}))
    assert {u["email"]: u["role"] for u in cli.json("user", "list", "--account", "Customer")} == {
        "carla@customer.example": "owner",
        "morgan@msp.example": "administrator",
    }
    reader = _reader(server, customer)

    me = ok(server.http.get(f"{ADMIN}/me", headers=bearer(key)))
    assert {a["uuid"]: a["role"] for a in me["accounts"]} == {msp: "owner", customer: "administrator"}
    ok(
        server.http.post(
            f"{ADMIN}/accounts/Customer/integrations", headers=bearer(key), json={"type": "elastic", "name": "Elastic"}
        ),
        201,
    )
    page = server.page(reader, AUDIT, {"limit": 1000})
    assert page.status_code == 200
    [event] = [e for e in page.json()["items"] if e.get("actor_uuid") == me["uuid"] and e["action"] != "join"]
    assert (event["action"], event["object_type"]) == ("create", "sa")
    assert event["actor_details"]["email"] == "morgan@msp.example"
    assert event["actor_type"] == "external_user"
    assert event["actor_account_uuid"] == msp and event["account_uuid"] == customer
    # the CLI's own changes are made by siemgate's system actor from the command line; Morgan
    # joined by accepting the invitation himself
    joins = {e["object_details"]["email"]: e for e in page.json()["items"] if e["action"] == "join"}
    assert set(joins) == {"carla@customer.example", "morgan@msp.example"}
    carla = joins["carla@customer.example"]
    assert carla["actor_uuid"] == SYSTEM_UUID and carla["session"]["device_uuid"] == CLI_DEVICE
    assert joins["morgan@msp.example"]["actor_uuid"] == me["uuid"]
