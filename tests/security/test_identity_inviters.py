"""An invitation is honoured only while whoever sent it may still grant its role: removing or
demoting the inviter revokes their pending invitations (recorded), and one that outlived its
inviter (sent before this was done) is refused at joining and accepting, writing nothing. The
operator's invitations (no inviting person) stay valid. Everything goes through real HTTP."""

from __future__ import annotations

import json
from typing import Any

import pytest

from siemgate.accounts.actor import CLI
from siemgate.store.base import Account
from siemgate.store.shared.identity import Withdrawal
from support.stores import BOTH_BACKENDS

from .identity_support import PASSWORD, Person, Tenants, error, ok

server_backend = BOTH_BACKENDS  # the revocation is part of the membership change's transaction


@pytest.fixture
def tenants(server: Any) -> Tenants:
    return Tenants(server)


def _invite(tenants: Tenants, who: Person, email: str, role: str) -> dict[str, Any]:
    body = {"email": email, "role": role}
    made: dict[str, Any] = ok(tenants.call(who, "POST", f"/accounts/{tenants.a.uuid}/invitations", json=body), 201)
    return made


def _join(tenants: Tenants, email: str, code: str) -> Any:
    body = {"email": email, "code": code, "name": "Sock", "password": PASSWORD}
    return tenants.http.post("/api/admin/v1/join", json=body)


def _statuses(tenants: Tenants) -> dict[str, str]:
    listed = ok(tenants.call(tenants.alice, "GET", f"/accounts/{tenants.a.uuid}/invitations"))["items"]
    return {i["email"]: i["status"] for i in listed}


def test_removing_an_administrator_revokes_their_invitations(tenants: Tenants) -> None:
    """The review's repro: Adam invites a sock puppet as administrator, is removed, and joins as it."""
    sock = f"sock@evil-{tenants.tag}.example"
    invitation = _invite(tenants, tenants.adam, sock, "administrator")
    ok(tenants.call(tenants.alice, "DELETE", f"/accounts/{tenants.a.uuid}/members/{tenants.adam.email}"), 204)
    assert _statuses(tenants)[sock] == "revoked"
    error(_join(tenants, sock, invitation["code"]), 404)
    assert not tenants.services.people.person_exists(sock)
    trail = [(e["action"], e["object_type"], e.get("object_uuid")) for e in tenants.events(tenants.a)]
    removal = trail.index(("delete", "user", tenants.adam.user.uuid))
    assert ("revoke", "invite", invitation["id"]) in trail[removal:]


def test_demoting_an_owner_revokes_only_what_they_can_no_longer_grant(tenants: Tenants) -> None:
    """The owner variant: Bob invites a sock as owner and is demoted to administrator; his
    invitation to the owner role goes, his invitation to the member role stays (he may still grant
    it), and both go when he is demoted to member."""
    bob = tenants.person(tenants.a, f"bob2@acme-{tenants.tag}.example", "owner")
    sock, helper = f"sock2@evil-{tenants.tag}.example", f"helper@evil-{tenants.tag}.example"
    to_owner = _invite(tenants, bob, sock, "owner")
    _invite(tenants, bob, helper, "member")
    url = f"/accounts/{tenants.a.uuid}/members/{bob.email}"
    ok(tenants.call(tenants.alice, "PATCH", url, json={"role": "administrator"}))
    assert (_statuses(tenants)[sock], _statuses(tenants)[helper]) == ("revoked", "pending")
    error(_join(tenants, sock, to_owner["code"]), 404)
    assert not tenants.services.people.person_exists(sock)
    ok(tenants.call(tenants.alice, "PATCH", url, json={"role": "member"}))
    assert _statuses(tenants)[helper] == "revoked"


def _outlive(tenants: Tenants, account: Account, inviter: Person, role: str | None) -> None:
    """Change the inviter's membership as versions before this one did: their invitations stay
    pending."""
    store, now = tenants.services.store, tenants.server.clock()
    if role is None:
        store.remove_member(account.id, inviter.user.id, Withdrawal((), now, None))
    else:
        store.set_role(account.id, inviter.user.id, role, Withdrawal((), now, None))


def test_an_invitation_that_outlived_its_inviters_role_is_refused_and_writes_nothing(tenants: Tenants) -> None:
    sock = f"sock3@evil-{tenants.tag}.example"
    invitation = _invite(tenants, tenants.adam, sock, "administrator")
    _outlive(tenants, tenants.a, tenants.adam, "member")
    before = len(tenants.events(tenants.a))
    message = error(_join(tenants, sock, invitation["code"]), 409)
    assert "no longer valid" in message and "can no longer grant the administrator role" in message, message
    assert "new invitation" in message
    assert not tenants.services.people.person_exists(sock)
    assert _statuses(tenants)[sock] == "pending"
    assert len(tenants.events(tenants.a)) == before


def test_a_signed_in_person_cannot_accept_an_invitation_whose_inviter_left(tenants: Tenants) -> None:
    bob = tenants.person(tenants.a, f"bob3@acme-{tenants.tag}.example", "owner")
    invitation = _invite(tenants, bob, tenants.bob.email, "owner")
    _outlive(tenants, tenants.a, bob, None)
    url = f"/me/invitations/{invitation['id']}/accept"
    message = error(tenants.call(tenants.bob, "POST", url, json={"code": invitation["code"]}), 409)
    assert "can no longer grant the owner role" in message, message
    assert all(m.user.id != tenants.bob.user.id for m in tenants.services.store.list_members(tenants.a.id))


def test_the_operators_invitations_stay_valid(tenants: Tenants) -> None:
    newcomer = f"kim@acme-{tenants.tag}.example"
    code, _ = tenants.services.invitations.invite(CLI, tenants.a, newcomer, "owner")
    ok(tenants.call(tenants.alice, "DELETE", f"/accounts/{tenants.a.uuid}/members/{tenants.adam.email}"), 204)
    body = ok(_join(tenants, newcomer, code), 201)
    assert [(a["uuid"], a["role"]) for a in body["user"]["accounts"]] == [(tenants.a.uuid, "owner")]


def test_an_invitation_revoked_while_someone_joins_leaves_no_person_behind(tenants: Tenants, monkeypatch: Any) -> None:
    """`join` reads the invitation, then creates the person and accepts it for them. Revoked in
    between (an explicit revoke, or its inviter removed), it is a 404 that leaves no person with
    credentials and no membership: a retry hears the invitation is gone, not that the address
    already has credentials, and the invitation stays revoked."""
    sock = f"sock4@evil-{tenants.tag}.example"
    invitation = _invite(tenants, tenants.adam, sock, "member")
    store = tenants.services.store
    read = store.invitations_for

    def read_then_revoked(email: str, now: int) -> Any:
        found = read(email, now)
        if email == sock:
            assert store.decide_invitation(invitation["id"], "revoked", tenants.alice.user.id, now)
        return found

    monkeypatch.setattr(store, "invitations_for", read_then_revoked)
    message = error(_join(tenants, sock, invitation["code"]), 404)
    assert "no longer pending" in message, message
    assert not tenants.services.people.person_exists(sock)
    monkeypatch.setattr(store, "invitations_for", read)
    assert "no pending invitation" in error(_join(tenants, sock, invitation["code"]), 404)
    assert _statuses(tenants)[sock] == "revoked"


def test_removing_a_person_revokes_the_invitations_addressed_to_them(tenants: Tenants) -> None:
    """Kim was invited to Acme and added directly before she answered; removed from Acme (while
    still in Bolt, so her key lives on), she must not walk back in with that invitation's code. It
    is revoked in the removal's transaction and recorded; inviting her again is still possible,
    deliberately, and works."""
    kim_email = f"kim@acme-{tenants.tag}.example"
    first = _invite(tenants, tenants.alice, kim_email, "administrator")
    kim = tenants.person(tenants.a, kim_email, "member")  # the operator adds her meanwhile
    tenants.services.store.add_member(tenants.b.id, kim.user.id, "member", tenants.server.clock())
    other, _ = tenants.services.people.create_account(CLI, f"Corp-{tenants.tag}", None, None, None)
    _, elsewhere = tenants.services.invitations.invite(CLI, other, kim_email, "member")
    ok(tenants.call(tenants.alice, "DELETE", f"/accounts/{tenants.a.uuid}/members/{kim_email}"), 204)
    assert _statuses(tenants)[kim_email] == "revoked"
    offers = ok(tenants.call(kim, "GET", "/me/invitations"))
    assert [o["id"] for o in offers] == [elsewhere.id]  # another account's invitation is not Acme's to revoke
    accept = f"/me/invitations/{first['id']}/accept"
    error(tenants.call(kim, "POST", accept, json={"code": first["code"]}), 404)
    assert [m.account_id for m in tenants.services.store.list_memberships(kim.user.id)] == [tenants.b.id]
    events = tenants.events(tenants.a)
    trail = [(e["action"], e["object_type"], e.get("object_uuid")) for e in events]
    removal = trail.index(("delete", "user", kim.user.uuid))
    revoked = trail.index(("revoke", "invite", first["id"]), removal)
    assert json.loads(events[revoked]["aux_info"]) == {"email": kim_email, "role": "administrator"}
    again = _invite(tenants, tenants.alice, kim_email, "member")
    ok(tenants.call(kim, "POST", f"/me/invitations/{again['id']}/accept", json={"code": again["code"]}))
    assert tenants.services.store.get_member(tenants.a.id, kim.user.id).role == "member"
