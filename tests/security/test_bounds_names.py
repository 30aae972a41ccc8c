"""Names people and API clients give (accounts, people, integrations, tokens, ingest and API keys,
alert rules, Sigma titles) hold no line break, tab or other control character: each is refused
where it comes in, a 400 (or the command line's error) naming the field. Outputs encode such
characters safely; a name holding one still reads as two lines, or hides what follows, in a
terminal, a log or a mail client's list. Names stored before the check keep working."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from siemgate.accounts.actor import CLI
from siemgate.alerts.model import RuleError, parse_rule
from siemgate.model.ids import new_id
from siemgate.model.text import name_problem
from support.admin import Site, error_message, ok
from support.procs import cli_env, make_account, run_cli

ADMIN = "/api/admin/v1"
# A line feed, a carriage return, a tab, an escape (a terminal's colours), a C1 next-line, U+2028.
# A right-to-left override (U+202E: "Splunk\u202eedoc.exe" shows as "Splunkexe.code") and isolate.
BAD = {
    "LF": "a\nb",
    "CR": "a\rb",
    "tab": "a\tb",
    "ESC": "a\x1b[2Jb",
    "NEL": "a\x85b",
    "LSEP": "a\u2028b",
    "RLO": "Splunk\u202eedoc.exe",
    "RLI": "a\u2067b",
}
SIGMA = """
title: {title}
logsource: {{product: 1password, service: auditevents}}
detection:
  selection: {{action: share, object_type: vault}}
  condition: selection
"""


def test_the_check_names_the_character_and_lets_other_text_through() -> None:
    assert name_problem("Zoë's Splunk — prod (EU) ✓") is None
    assert name_problem("שלום Splunk \u200f(EU)") is None  # a right-to-left mark orders, overrides nothing
    assert name_problem("👩\u200d💻 team") is None  # a zero-width joiner makes one emoji
    for char, kind in (
        ("\n", "a line break (U+000A)"),
        ("\t", "a tab (U+0009)"),
        ("\x07", "a control character"),
        ("\u202e", "a bidirectional override (U+202E)"),
    ):
        problem = name_problem(f"ab{char}c")
        assert problem is not None and problem.startswith(f"contains {kind}") and "at position 2" in problem


@pytest.mark.parametrize("kind", list(BAD))
def test_names_with_control_characters_are_refused_through_the_admin_api(make_server: Any, kind: str) -> None:
    site = Site(make_server(allow_account_creation=True, alerts_enabled=True))
    bad = BAD[kind]
    integration = site.integration()
    invited = ok(site.call(site.owner, "POST", site.path("/invitations"), json={"email": f"new@{site.domain}"}), 201)
    join = {"email": f"new@{site.domain}", "code": invited["code"], "name": bad, "password": "x" * 12}
    rule = {"id": "named", "name": bad, "source": "auditevents", "match": {"action": "share"}}
    attempts = {
        "new account": ("POST", f"{ADMIN}/accounts", {"name": bad}),
        "account renamed": ("PATCH", site.path(), {"name": bad}),
        "integration": ("POST", site.path("/integrations"), {"type": "splunk", "name": bad}),
        "integration renamed": ("PATCH", site.path(f"/integrations/{integration['uuid']}"), {"name": bad}),
        "token": ("POST", site.path(f"/integrations/{integration['uuid']}/tokens"), {"name": bad}),
        "ingest key": ("POST", site.path("/ingest-keys"), {"name": bad}),
        "personal API key": ("POST", f"{ADMIN}/me/api-keys", {"name": bad}),
        "person joining": ("POST", f"{ADMIN}/join", join),
        "alert rule": ("POST", site.path("/alert-rules"), rule),
        "alert rule replaced": ("PUT", site.path("/alert-rules/mfa-disabled"), {**rule, "id": "mfa-disabled"}),
        "Sigma title": ("POST", site.path("/alert-rules"), {"sigma": SIGMA.format(title=f'"{repr(bad)[1:-1]}"')}),
    }
    for what, (method, url, body) in attempts.items():
        reply = site.call(None if what == "person joining" else site.owner, method, url, json=body)
        message = error_message(reply, 400)
        assert "name" in message and "not allowed in a name" in message, (what, message)
    assert ok(site.call(site.owner, "GET", site.path()))["name"] == site.account.name
    names = [i["name"] for i in ok(site.call(site.owner, "GET", site.path("/integrations")))["items"]]
    assert names == [integration["name"]]


def test_the_command_line_refuses_them_naming_the_field(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    account = make_account(data_dir)
    env = cli_env(data_dir)
    for args in (
        ("account", "rename", account, "Acme\nInc"),
        ("account", "create", "Bolt", "--owner", "b@bolt.example", "--owner-name", "Bob\tOwner"),
        ("user", "add", "c@acme.example", "--account", account, "--name", "Carol\x1b[8m"),
        ("integration", "create", "Splunk\rprod", "--account", account),
    ):
        result = run_cli(env, *args, ok=False)
        assert result.returncode != 0, args
        assert "not allowed in a name" in result.stderr, (args, result.stderr)
    listed = run_cli(env, "account", "list").stdout
    assert "Bolt" not in listed and "Acme\nInc" not in listed


def test_names_stored_before_the_check_keep_working(make_server: Any) -> None:
    """No migration: rows saved by an older release with such a name load, list and change."""
    site = Site(make_server(alerts_enabled=True, allow_account_creation=True))
    store = site.services.store
    store.rename_account(site.account.id, "Old\nname")
    made = store.create_integration(site.account.id, new_id(), "splunk", "Old\tintegration", "", site.server.clock())
    old_rule = {"id": "old-rule", "name": "Old\nrule", "source": "auditevents", "match": {"action": "share"}}
    with pytest.raises(RuleError, match="not allowed in a name"):
        parse_rule(old_rule)
    site.services.alerts.rules.save(CLI, site.account, parse_rule(old_rule, stored=True), "api")
    assert ok(site.call(site.owner, "GET", site.path()))["name"] == "Old\nname"
    listed = ok(site.call(site.owner, "GET", site.path("/integrations")))["items"]
    assert [i["name"] for i in listed] == ["Old\tintegration"]
    rule = ok(site.call(site.owner, "GET", site.path("/alert-rules/old-rule")))
    assert rule["definition"]["name"] == "Old\nrule"
    ok(site.call(site.owner, "PATCH", site.path(f"/integrations/{made.uuid}"), json={"description": "kept"}))
    ok(site.call(site.owner, "PATCH", site.path("/alert-rules/old-rule"), json={"enabled": False}))
    ok(site.call(site.owner, "PATCH", site.path(), json={"name": "New name"}))


# Addresses the check once let through: an escape (a terminal's colours), a line break, a DEL, two @.
BAD_EMAILS = ["c\x1b[8m@acme.example", "c\n@acme.example", "c\x7f@acme.example", "c@d@acme.example"]


def test_email_addresses_with_control_characters_or_two_at_signs_are_refused(make_server: Any, tmp_path: Path) -> None:
    """Every way in checks an address the same way (accounts.people.check_email): the admin API's
    invitation and the command line's new person and new owner."""
    site = Site(make_server())
    for email in BAD_EMAILS:
        invited = site.call(site.owner, "POST", site.path("/invitations"), json={"email": email})
        message = error_message(invited, 400)  # the model's pattern, or the check after it
        assert "is not an email address" in message or message.startswith("Bad Request: email:"), email
    data_dir = tmp_path / "data"
    account = make_account(data_dir)
    env = cli_env(data_dir)
    for email in BAD_EMAILS:
        for args in (("user", "add", email, "--account", account), ("account", "create", "Bolt", "--owner", email)):
            result = run_cli(env, *args, ok=False)
            assert result.returncode != 0 and "is not an email address" in result.stderr, (args, result.stderr)
    assert "Bolt" not in run_cli(env, "account", "list").stdout


def test_a_refused_email_address_says_what_to_fix(tmp_path: Path) -> None:
    """The command line's error names what is wrong with the address (the character and its
    position, the second @, the domain's missing dot), not only that it is not an address."""
    data_dir = tmp_path / "data"
    account = make_account(data_dir)
    env = cli_env(data_dir)
    for email, reason in (
        ("c\x1b[8m@acme.example", "U+001B at position 1"),
        ("c d@acme.example", "U+0020 at position 1"),
        ("c@d@acme.example", "more than one @"),
        ("c@localhost", "a dot"),
    ):
        result = run_cli(env, "user", "add", email, "--account", account, ok=False)
        assert result.returncode != 0 and "is not an email address" in result.stderr, (email, result.stderr)
        assert reason in result.stderr, (email, result.stderr)
