"""A tenant cannot take over, enrol or watch another tenant's people (findings 1, 2 and 4 of the
identity review): accounts are created by the operator, people join by invitations confirmed
with a code, replies never tell whether an address exists elsewhere, and a password reset by the
operator revokes every API key and session of the person."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from typing import Any

import orjson
import pytest

from siemgate.model.features import Feature
from siemgate.model.timestamps import format_ns

from .identity_support import PASSWORD, Tenants, error, ok


@pytest.fixture
def tenants(server: Any) -> Tenants:
    return Tenants(server)


def test_only_the_operator_creates_accounts(tenants: Tenants) -> None:
    """Finding 1, first step: anyone signed in could create an account."""
    message = error(tenants.call(tenants.alice, "POST", "/accounts", json={"name": "Mine"}), 403)
    assert "siemgate account create" in message
    with tenants.session(tenants.bob.email) as console:
        error(console.post("/api/admin/v1/accounts", json={"name": "Mine too"}), 403)
    error(tenants.call(None, "POST", "/accounts", json={"name": "Anonymous"}), 401)
    names = {a.name for a in tenants.services.store.list_accounts()}
    assert not {"Mine", "Mine too", "Anonymous"} & names


def test_the_operator_may_open_account_creation(make_server: Any) -> None:
    tenants = Tenants(make_server(allow_account_creation=True))
    created = ok(tenants.call(tenants.alice, "POST", "/accounts", json={"name": f"Side {tenants.tag}"}), 201)
    assert created["role"] == "owner"


def test_the_takeover_of_the_review_fails_at_every_step(tenants: Tenants) -> None:
    """Finding 1 as reported: A's owner adds B's future administrator's address with a password of
    their choosing; B later adds the same address with its own password and makes it administrator;
    A's owner signs in with their password and acts in B. Each step now fails, and B's data stays
    out of reach."""
    victim = f"carol@bolt-{tenants.tag}.example"
    planted = tenants.call(
        tenants.alice,
        "POST",
        f"/accounts/{tenants.a.uuid}/members",
        json={"email": victim, "role": "member", "password": "attacker-password-1"},
    )
    assert planted.status_code in (404, 405), planted.text  # no way to set another person's password
    invited = tenants.call(
        tenants.bob,
        "POST",
        f"/accounts/{tenants.b.uuid}/members",
        json={"email": victim, "role": "administrator", "password": "bolts-own-password"},
    )
    assert invited.status_code in (404, 405), invited.text
    error(tenants.sign_in(victim, "attacker-password-1"), 401)
    assert all(m.user.email != victim for m in tenants.services.store.list_members(tenants.b.id))


def test_a_squatted_address_cannot_accept_another_tenants_invitation(tenants: Tenants) -> None:
    """The same attack through invitations: A's owner invites the victim's address to A and takes
    it up with A's own code, so A holds the address's credentials; B then invites that address as
    administrator. Holding the credentials is not enough: accepting needs B's code, which only the
    person B meant to invite has. The invitation reply told B nothing either."""
    victim = f"carol@bolt-{tenants.tag}.example"
    own = ok(
        tenants.call(tenants.alice, "POST", f"/accounts/{tenants.a.uuid}/invitations", json={"email": victim}), 201
    )
    joined = tenants.http.post(
        "/api/admin/v1/join",
        json={"email": victim, "code": own["code"], "name": "Carol", "password": "attacker-password-1"},
    )
    ok(joined, 201)
    bolt = ok(
        tenants.call(
            tenants.bob,
            "POST",
            f"/accounts/{tenants.b.uuid}/invitations",
            json={"email": victim, "role": "administrator"},
        ),
        201,
    )
    assert set(bolt) == {"id", "email", "role", "status", "created_at", "expires_at", "code", "join_url"}
    with tenants.session(victim, "attacker-password-1") as squatter:
        [offer] = ok(squatter.get("/api/admin/v1/me/invitations"))
        assert offer["account"]["uuid"] == tenants.b.uuid and "invited_by" not in offer
        for code in ("", "sgv_guess", own["code"]):
            response = squatter.post(f"/api/admin/v1/me/invitations/{bolt['id']}/accept", json={"code": code})
            assert response.status_code in (400, 404), response.text
        error(squatter.get(f"/api/admin/v1/accounts/{tenants.b.uuid}"), 404)
        error(squatter.post(f"/api/admin/v1/me/invitations/{bolt['id']}/decline", json={"code": "x"}), 404)
    assert all(m.user.email != victim for m in tenants.services.store.list_members(tenants.b.id))
    pending = ok(tenants.call(tenants.bob, "GET", f"/accounts/{tenants.b.uuid}/invitations"))["items"]
    assert [i["status"] for i in pending] == ["pending"]
    # The real Carol, with B's code, cannot take the address over either: it already has a sign-in.
    taken = tenants.http.post(
        "/api/admin/v1/join",
        json={"email": victim, "code": bolt["code"], "name": "Carol", "password": "carols-1-password"},
    )
    assert "already has sign-in credentials" in error(taken, 409)
    error(tenants.sign_in(victim, "carols-1-password"), 401)


def test_an_invitation_reveals_nothing_about_the_address(tenants: Tenants) -> None:
    """Finding 2: adding an existing person told whether the address exists, their name and
    whether they have a password, and enrolled them without asking."""
    known, unknown = tenants.adam.email, f"nobody-{tenants.tag}@elsewhere.example"
    replies = [
        ok(tenants.call(tenants.bob, "POST", f"/accounts/{tenants.b.uuid}/invitations", json={"email": e}), 201)
        for e in (known, unknown)
    ]
    shapes = [
        {k: v for k, v in r.items() if k not in ("id", "email", "code", "created_at", "expires_at")} for r in replies
    ]
    assert shapes[0] == shapes[1] == {"role": "member", "status": "pending", "join_url": shapes[0]["join_url"]}
    assert set(replies[0]) == set(replies[1])
    assert "Adam" not in str(replies[0])
    assert all(m.user.email != known for m in tenants.services.store.list_members(tenants.b.id))
    error(tenants.call(tenants.adam, "GET", f"/accounts/{tenants.b.uuid}"), 404)


def test_sign_ins_reach_an_account_only_after_the_person_accepted(tenants: Tenants) -> None:
    """Finding 2's surveillance channel: a person's console sign-ins (IP, browser) were recorded in
    every account that had added them. Now only in accounts they joined by accepting."""
    adam = tenants.adam
    invitation = ok(
        tenants.call(tenants.bob, "POST", f"/accounts/{tenants.b.uuid}/invitations", json={"email": adam.email}), 201
    )
    ok(tenants.sign_in(adam.email))
    error(tenants.sign_in(adam.email, "not the password"), 401)
    seen_by_b = [
        e for e in tenants.events(tenants.b, Feature.SIGNINATTEMPTS) if e["target_user"]["email"] == adam.email
    ]
    assert seen_by_b == []
    seen_by_a = [
        e for e in tenants.events(tenants.a, Feature.SIGNINATTEMPTS) if e["target_user"]["email"] == adam.email
    ]
    assert [e["category"] for e in seen_by_a] == ["success", "credentials_failed"]
    with tenants.session(adam.email) as console:
        joined = ok(
            console.post(f"/api/admin/v1/me/invitations/{invitation['id']}/accept", json={"code": invitation["code"]})
        )
        assert joined == {**joined, "uuid": tenants.b.uuid, "role": "member"}
    ok(tenants.sign_in(adam.email))
    after = [e for e in tenants.events(tenants.b, Feature.SIGNINATTEMPTS) if e["target_user"]["email"] == adam.email]
    assert [e["category"] for e in after] == ["success"]
    assert after[0]["target_user"]["user_type"] == "external_user"
    [join] = [e for e in tenants.events(tenants.b) if e["action"] == "join" and e["object_uuid"] == adam.user.uuid]
    assert join["actor_uuid"] == adam.user.uuid and join["aux_uuid"] == invitation["id"]


def test_someone_new_joins_with_the_code_and_their_own_password(tenants: Tenants) -> None:
    email = f"dana@bolt-{tenants.tag}.example"
    invitation = ok(
        tenants.call(
            tenants.bob,
            "POST",
            f"/accounts/{tenants.b.uuid}/invitations",
            json={"email": email, "role": "administrator"},
        ),
        201,
    )
    wrong = tenants.http.post(
        "/api/admin/v1/join", json={"email": email, "code": "sgv_wrong", "name": "Dana", "password": PASSWORD}
    )
    error(wrong, 404)
    joined = tenants.http.post(
        "/api/admin/v1/join", json={"email": email, "code": invitation["code"], "name": "Dana", "password": PASSWORD}
    )
    body = ok(joined, 201)
    assert [(a["uuid"], a["role"]) for a in body["user"]["accounts"]] == [(tenants.b.uuid, "administrator")]
    again = tenants.http.post(
        "/api/admin/v1/join", json={"email": email, "code": invitation["code"], "name": "Eve", "password": "x" * 12}
    )
    error(again, 404)  # used up
    ok(tenants.sign_in(email))


def test_invitations_are_managed_by_administrators_and_owners(tenants: Tenants) -> None:
    base = f"/accounts/{tenants.a.uuid}/invitations"
    member = tenants.person(tenants.a, f"mia@acme-{tenants.tag}.example", "member")
    assert "only an owner or administrator can invite" in error(
        tenants.call(member, "POST", base, json={"email": "x@y.example"}), 403
    )
    assert "only an owner can invite owners" in error(
        tenants.call(tenants.adam, "POST", base, json={"email": "x@y.example", "role": "owner"}), 403
    )
    error(tenants.call(tenants.bob, "POST", base, json={"email": "x@y.example"}), 404)  # not B's account
    made = ok(tenants.call(tenants.adam, "POST", base, json={"email": "x@y.example"}), 201)
    assert "pending invitation" in error(tenants.call(tenants.adam, "POST", base, json={"email": "X@y.example"}), 409)
    assert "already a member" in error(tenants.call(tenants.adam, "POST", base, json={"email": member.email}), 409)
    error(tenants.call(tenants.bob, "DELETE", f"{base}/{made['id']}"), 404)
    revoked = ok(tenants.call(tenants.adam, "DELETE", f"{base}/{made['id']}"))
    assert revoked["status"] == "revoked"
    error(tenants.call(tenants.adam, "DELETE", f"{base}/{made['id']}"), 409)
    audit = [(e["action"], e["object_type"]) for e in tenants.events(tenants.a) if e["object_type"] == "invite"]
    assert audit == [("create", "invite"), ("revoke", "invite")]


def test_a_reset_by_the_operator_revokes_api_keys_and_sessions(tenants: Tenants, tmp_path: Any) -> None:
    """Finding 4 (and the end of finding 1): `siemgate user password` left the person's personal
    API keys working, so whoever had made one kept access."""
    adam = tenants.adam
    extra = ok(tenants.call(adam, "POST", "/me/api-keys", json={"name": "made meanwhile"}), 201)
    with tenants.session(adam.email) as console:
        ok(console.get("/api/admin/v1/me"))
        _reset(tenants, adam.email, tmp_path)
        error(console.get("/api/admin/v1/me"), 401)
    for key in (adam.key, extra["key"]):
        error(tenants.http.get("/api/admin/v1/me", headers={"Authorization": f"Bearer {key}"}), 401)
    error(tenants.sign_in(adam.email), 401)
    ok(tenants.sign_in(adam.email, "a brand new password"))
    [reset] = [e for e in tenants.events(tenants.a) if e["action"] == "changemp"]
    assert reset["actor_uuid"] == "SIEMGATESYSTEMACTORAAAAAAA"
    assert sorted(json.loads(reset["aux_info"])["revoked_api_keys"]) == sorted(
        [k.id for k in tenants.services.store.list_api_keys(adam.user.id)]
    )


def _reset(tenants: Tenants, email: str, tmp_path: Any) -> None:
    """`siemgate user password EMAIL` run as the operator would, on the server's data directory."""
    password_file = tmp_path / "new-password"
    password_file.write_text("a brand new password\n")
    data_dir = tenants.services.settings.data_dir
    command = ["user", "password", email, "--password-file", str(password_file)]
    subprocess.run(
        [sys.executable, "-m", "siemgate", "--data-dir", str(data_dir), *command],
        check=True,
        capture_output=True,
        env={
            "PATH": "/usr/bin:/bin",
            "SIEMGATE_ALERTS_ENABLED": "false",
            "PYTHONPATH": os.environ.get("PYTHONPATH", ""),
        },
    )


def test_stored_events_carry_the_accounts_own_uuid(tenants: Tenants) -> None:
    """Finding 7: an ingest key of A could store events labelled with B's account_uuid."""
    key = tenants.server.ingest_key(tenants.a)
    event = {
        "uuid": "FORGEDEVENTAAAAAAAAAAAAAAA",
        "timestamp": format_ns(time.time_ns()),
        "action": "create",
        "object_type": "item",
        "account_uuid": tenants.b.uuid,
    }
    assert (
        ok(tenants.server.ingest(key, Feature.AUDITEVENTS, [event, {**event, "uuid": "FORGEDEVENTBBBBBBBBBBBBBBB"}]))[
            "stored"
        ]
        == 2
    )
    store = tenants.services.store
    stored = [
        orjson.loads(row[3])
        for batch in store.iter_events(tenants.a.id, Feature.AUDITEVENTS, 0, 2**62)
        for row in batch
        if row[2].startswith("FORGEDEVENT")
    ]
    assert [e["account_uuid"] for e in stored] == [tenants.a.uuid, tenants.a.uuid]
    assert event["account_uuid"] == tenants.b.uuid  # the sender's object is not changed
    assert not [row for batch in store.iter_events(tenants.b.id, Feature.AUDITEVENTS, 0, 2**62) for row in batch
                if row[2].startswith("FORGEDEVENT")]  # fmt: skip
