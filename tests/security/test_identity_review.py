"""`siemgate audit memberships`: after upgrading from 0.1.0, where an owner could enrol anyone and
set passwords, the operator lists every membership of a person outside their home account, how it
came about, and the credentials such people hold there."""

from __future__ import annotations

import json
from typing import Any

from siemgate.accounts.actor import CLI
from siemgate.model.features import ALL_FEATURES
from siemgate.model.ids import new_id
from support.procs import cli_env, run_cli

from .identity_support import Tenants, ok


def test_the_review_lists_memberships_made_without_consent_and_their_credentials(server: Any) -> None:
    tenants = Tenants(server)
    store = tenants.services.store
    # What 0.1.0 allowed: B's owner "adds" A's administrator, who gets an API key and issues a token in B.
    store.add_member(tenants.b.id, tenants.adam.user.id, "administrator", tenants.server.clock())
    integration = store.create_integration(tenants.b.id, new_id(), "other", "planted", "", 0)
    _, token = tenants.services.tokens.issue(
        tenants.b, integration, "planted", list(ALL_FEATURES), None, created_by=tenants.adam.user.id
    )
    # What 0.2.0 does: an invitation, accepted with its code.
    code, invitation = tenants.services.invitations.invite(CLI, tenants.a, tenants.bob.email, "member")
    accept = f"/me/invitations/{invitation.id}/accept"
    ok(tenants.call(tenants.bob, "POST", accept, json={"code": code}))

    env = cli_env(tenants.services.settings.data_dir, SIEMGATE_ALERTS_ENABLED="false")
    rows = json.loads(run_cli(env, "audit", "memberships", "--json").stdout)
    by_person = {(r["account"]["uuid"], r["person"]["email"]): r for r in rows}
    assert set(by_person) == {(tenants.b.uuid, tenants.adam.email), (tenants.a.uuid, tenants.bob.email)}
    planted = by_person[(tenants.b.uuid, tenants.adam.email)]
    assert planted["joined_by"] == "added directly" and planted["role"] == "administrator"
    assert planted["home_account"]["uuid"] == tenants.a.uuid
    assert [k["name"] for k in planted["live_api_keys"]] == ["tests"]
    assert [t["id"] for t in planted["live_siem_tokens_issued"]] == [token.id]
    invited = by_person[(tenants.a.uuid, tenants.bob.email)]
    assert invited["joined_by"] == f"invitation {invitation.id}"
    table = run_cli(env, "audit", "memberships")
    assert "added directly" in table.stdout + table.stderr
