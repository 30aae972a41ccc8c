"""Bounds on what an account's people can create (docs/security.md, "Per-account limits"):
integrations, live SIEM tokens and live ingest keys per account, live personal API keys per
person. Past a bound the admin API answers 409 saying what is held, the most allowed and how to
make room, and writes nothing; a rotation still works at the bound; another account's room is
its own. The bounds are lowered here so that the tests create a handful, not hundreds. A blank
name is a 400 naming the field for each kind of credential, and writes nothing either."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from siemgate.accounts import integrations
from siemgate.accounts.lifecycle import TokenLifecycle
from siemgate.auth import api_keys, ingest_keys, tokens
from siemgate.cli.main import app as cli_app
from siemgate.store.errors import LimitReached
from support.admin import ADMIN, Site, error_message, ok


def test_integrations_per_account(site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(integrations, "MAX_INTEGRATIONS", 2)
    held = len(ok(site.call(site.owner, "GET", site.path("/integrations")))["items"])
    kept = [site.integration() for _ in range(2 - held)]
    refused = site.call(site.admin, "POST", site.path("/integrations"), json={"type": "splunk", "name": "one more"})
    message = error_message(refused, 409)
    assert "the account has 2 integrations, the most allowed is 2" in message and "delete one" in message
    names = [i["name"] for i in ok(site.call(site.owner, "GET", site.path("/integrations")))["items"]]
    assert "one more" not in names and len(names) == 2
    theirs = site.path("/integrations", site.other)
    for name in ("a", "b"):  # the other account's room is its own
        ok(site.call(site.outsider, "POST", theirs, json={"type": "splunk", "name": name}), 201)
    ok(site.call(site.owner, "DELETE", site.path(f"/integrations/{kept[-1]['uuid']}")), 200)
    assert site.integration(name="one more")["name"] == "one more"


def test_live_siem_tokens_per_account_and_a_rotation_at_the_bound(site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tokens, "MAX_LIVE_TOKENS", 2)
    integration = site.integration()
    first, second = site.issue(integration, name="first"), site.issue(integration, name="second")
    url = site.path(f"/integrations/{integration['uuid']}/tokens")
    message = error_message(site.call(site.owner, "POST", url, json={"name": "third"}), 409)
    assert "the account holds 2 live SIEM tokens, the most allowed is 2" in message and "revoke" in message
    assert {t["name"] for t in site.tokens()} == {"first", "second"}
    rotated = ok(site.call(site.owner, "POST", site.path(f"/tokens/{first['id']}/rotate")), 201)
    assert rotated["token"]  # the replacement of a live token takes its place
    error_message(site.call(site.owner, "POST", url, json={"name": "third"}), 409)
    ok(site.call(site.owner, "POST", site.path(f"/tokens/{second['id']}/revoke")))
    # the rotated token stays live until its replacement is used (or 24 hours): it still counts
    error_message(site.call(site.owner, "POST", url, json={"name": "third"}), 409)
    ok(site.call(site.owner, "POST", site.path(f"/tokens/{first['id']}/revoke")))
    ok(site.call(site.owner, "POST", url, json={"name": "third"}), 201)
    theirs = site.path("/integrations", site.other)
    made = ok(site.call(site.outsider, "POST", theirs, json={"type": "splunk", "name": "theirs"}), 201)
    for name in ("a", "b"):  # the other account's room is its own
        ok(site.call(site.outsider, "POST", f"{theirs}/{made['uuid']}/tokens", json={"name": name}), 201)


def test_live_ingest_keys_per_account(site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ingest_keys, "MAX_LIVE_KEYS", 2)
    first = site.ingest_key()
    site.ingest_key()
    refused = site.call(site.owner, "POST", site.path("/ingest-keys"), json={"name": "third"})
    message = error_message(refused, 409)
    assert "the account holds 2 ingest keys, the most allowed is 2" in message
    assert len(ok(site.call(site.owner, "GET", site.path("/ingest-keys")))["items"]) == 2
    ok(site.call(site.owner, "DELETE", site.path(f"/ingest-keys/{first['id']}")))
    ok(site.call(site.owner, "POST", site.path("/ingest-keys"), json={"name": "third"}), 201)


@pytest.mark.parametrize("kind", ["ingest key", "API key", "SIEM token"])
def test_a_blank_name_is_400_for_every_credential_and_writes_nothing(site: Site, kind: str) -> None:
    url = {
        "ingest key": site.path("/ingest-keys"),
        "API key": f"{ADMIN}/me/api-keys",
        "SIEM token": site.path(f"/integrations/{site.integration()['uuid']}/tokens"),
    }[kind]
    before = (site.services.store.list_ingest_keys(site.account.id), site.tokens())
    message = error_message(site.call(site.owner, "POST", url, json={"name": "   "}), 400)
    assert message.startswith("Bad Request: name: ") and "needs a name" in message, message
    assert (site.services.store.list_ingest_keys(site.account.id), site.tokens()) == before


def test_live_api_keys_per_person(site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(api_keys, "MAX_LIVE_KEYS", 2)  # each person of the site holds one already
    made = ok(site.call(site.member, "POST", f"{ADMIN}/me/api-keys", json={"name": "script"}), 201)
    message = error_message(site.call(site.member, "POST", f"{ADMIN}/me/api-keys", json={"name": "more"}), 409)
    assert "this person holds 2 live API keys, the most allowed is 2" in message
    ok(site.call(site.admin, "POST", f"{ADMIN}/me/api-keys", json={"name": "script"}), 201)
    ok(site.call(site.member, "DELETE", f"{ADMIN}/me/api-keys/{made['id']}"))
    ok(site.call(site.member, "POST", f"{ADMIN}/me/api-keys", json={"name": "more"}), 201)


def test_rotating_every_token_at_the_bound_and_what_a_failed_rotation_shows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`siemgate token rotate --all` (in-process, for the lowered bound): every token of an
    account at its bound is rotated with a grace period; past the bound nothing is issued and the
    error says why; a rotation failing partway still prints the tokens issued before it (their
    secrets exist nowhere else)."""
    monkeypatch.setattr(tokens, "MAX_LIVE_TOKENS", 3)
    runner = CliRunner()

    def cli(*args: str, refused: bool = False) -> Result:
        """The command's result; `refused`: it stopped with LimitReached (which `siemgate`'s main
        prints as "error: ..." with exit code 1)."""
        result = runner.invoke(cli_app, ["--data-dir", str(tmp_path), *args])
        if refused:
            assert isinstance(result.exception, LimitReached), (result.exception, result.output)
        else:
            assert result.exit_code == 0, (result.exception, result.output)
        return result

    cli("account", "create", "Acme")
    cli("integration", "create", "Splunk", "--type", "splunk")
    for name in ("a", "b", "c"):
        cli("token", "issue", "--name", name, "--integration", "Splunk")
    refused = cli("token", "issue", "--name", "d", "--integration", "Splunk", refused=True)
    assert "holds 3 live SIEM tokens, the most allowed is 3" in str(refused.exception)
    first = json.loads(cli("token", "rotate", "--all", "--output-dir", str(tmp_path / "one"), "--json").stdout)
    assert len(first) == 3  # each old token stays live in its grace period meanwhile
    monkeypatch.setattr(tokens, "MAX_LIVE_TOKENS", 2)  # as if the account held more than the bound
    over = cli("token", "rotate", "--all", "--output-dir", str(tmp_path / "two"), "--json", refused=True)
    assert "the most allowed is 2 (and as many being replaced)" in str(over.exception)
    assert json.loads(over.stdout) == [] and "replaced 0 of 3 tokens" in over.stderr
    monkeypatch.setattr(tokens, "MAX_LIVE_TOKENS", 10)
    rotate = TokenLifecycle.rotate
    calls = []

    def second_fails(self: TokenLifecycle, *args: Any) -> Any:
        calls.append(args)
        if len(calls) == 2:
            raise LimitReached("the account holds 10 live SIEM tokens, the most allowed is 10")
        return rotate(self, *args)

    monkeypatch.setattr(TokenLifecycle, "rotate", second_fails)
    partial = cli(
        "token", "rotate", "--all", "--grace", "0", "--output-dir", str(tmp_path / "three"), "--json", refused=True
    )
    [issued] = json.loads(partial.stdout)
    assert issued["token"] and "replaced 1 of 3 tokens of 'Acme' before this error" in partial.stderr
    assert [p.name for p in (tmp_path / "three").iterdir()] == [f"{issued['id']}.token"]


def test_an_api_key_lives_at_most_100_years_on_the_cli_and_over_http(site: Site, tmp_path: Path) -> None:
    """As SIEM tokens' expiries are (docs/tokens.md): a longer lifetime would pass the last
    storable time (2262) and failed with a traceback on the command line."""
    too_long = "at most 36500d (100 years); use never for no expiry"
    refused = site.call(site.member, "POST", f"{ADMIN}/me/api-keys", json={"name": "s", "expires": "9999w"})
    assert too_long in error_message(refused, 400)
    runner = CliRunner()
    base = ["--data-dir", str(tmp_path)]
    assert runner.invoke(cli_app, [*base, "account", "create", "Acme", "--owner", "ada@example.com"]).exit_code == 0
    result = runner.invoke(cli_app, [*base, "api-key", "create", "-u", "ada@example.com", "-n", "s", "-e", "99999999d"])
    assert too_long in str(result.exception), (result.exception, result.output)
    listed = runner.invoke(cli_app, [*base, "api-key", "list", "-u", "ada@example.com", "--json"])
    assert listed.exit_code == 0 and json.loads(listed.stdout) == []
    ok_result = runner.invoke(cli_app, [*base, "api-key", "create", "-u", "ada@example.com", "-n", "s", "-e", "36500d"])
    assert ok_result.exit_code == 0, ok_result.output
