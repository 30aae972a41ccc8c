"""The identity part of the store (store/shared/identity.py) on every backend: invitations decided once,
accepted atomically with the membership, TOTP steps used once, recovery codes used once, account
policy, and revoking every credential of a person."""

from __future__ import annotations

import pytest

from siemgate.errors import Conflict, NotFound
from siemgate.model.ids import new_id
from siemgate.store.base import ApiKey, Session, Store
from siemgate.store.shared.identity import Invitation

DAY = 86400 * 10**9


def _invitation(account_id: int, email: str, now: int = 0, **kwargs: object) -> Invitation:
    return Invitation(new_id(), account_id, email, "administrator", new_id(), None, now, now + DAY, **kwargs)  # type: ignore[arg-type]


def test_invitations_are_decided_once_and_accepted_with_their_membership(store: Store) -> None:
    account = store.create_account(new_id(), f"acme-{new_id()[:6]}", 0)
    user = store.create_user(new_id(), "Ada@Example.com", "Ada", None, None, 0)
    first = _invitation(account.id, "ada@example.com")
    store.create_invitation(first, max_pending=2, now=1)
    with pytest.raises(Conflict, match="already has a pending invitation"):
        store.create_invitation(_invitation(account.id, "ADA@example.com"), max_pending=2, now=1)
    store.create_invitation(_invitation(account.id, "bob@example.com"), max_pending=2, now=1)
    with pytest.raises(Conflict, match="the most allowed"):
        store.create_invitation(_invitation(account.id, "cy@example.com"), max_pending=2, now=1)
    assert [i.id for i in store.invitations_for("ADA@EXAMPLE.COM", 1)] == [first.id]
    assert store.invitations_for("ada@example.com", DAY) == []  # expired
    assert store.accept_invitation(first.id, user.id, 2)
    assert not store.accept_invitation(first.id, user.id, 3)
    assert not store.decide_invitation(first.id, "declined", user.id, 3)
    assert store.get_member(account.id, user.id).role == "administrator"
    accepted = store.get_invitation(first.id)
    assert (accepted.status, accepted.decided_by, accepted.state(5)) == ("accepted", user.id, "accepted")
    again = _invitation(account.id, "ada@example.com", now=3)
    store.create_invitation(again, max_pending=5, now=3)
    with pytest.raises(Conflict, match="already a member"):
        store.accept_invitation(again.id, user.id, 4)
    assert store.get_invitation(again.id).status == "pending"
    assert store.decide_invitation(again.id, "revoked", None, 4)
    assert sorted(i.status for i in store.list_invitations(account.id)) == ["accepted", "pending", "revoked"]
    with pytest.raises(NotFound):
        store.get_invitation("NOSUCHINVITATIONAAAAAAAAAA")


def test_totp_steps_and_recovery_codes_are_used_once(store: Store) -> None:
    user = store.create_user(new_id(), f"t-{new_id()[:6]}@example.com", "T", None, None, 0)
    assert store.get_two_factor(user.id) is None
    store.begin_two_factor(user.id, "sealed-1", 1)
    assert not store.use_totp_step(user.id, 10, 2)  # not enabled yet
    assert store.use_totp_step(user.id, 10, 2, enable=True)
    enrolment = store.get_two_factor(user.id)
    assert enrolment is not None and (enrolment.enabled_at, enrolment.last_step) == (2, 10)
    with pytest.raises(Conflict):
        store.begin_two_factor(user.id, "sealed-2", 3)
    assert not store.use_totp_step(user.id, 10, 3) and not store.use_totp_step(user.id, 9, 3)
    assert store.use_totp_step(user.id, 11, 3)
    store.replace_recovery_codes(user.id, ["a", "b", "c"], 4)
    assert store.use_recovery_code(user.id, "b", 5) and not store.use_recovery_code(user.id, "b", 6)
    assert not store.use_recovery_code(user.id, "zzz", 6)
    assert store.recovery_codes_left(user.id) == 2
    assert store.delete_two_factor(user.id) and not store.delete_two_factor(user.id)
    assert store.recovery_codes_left(user.id) == 0 and store.get_two_factor(user.id) is None


def test_account_policy_and_revoking_every_credential(store: Store) -> None:
    account = store.create_account(new_id(), f"pol-{new_id()[:6]}", 0)
    assert not store.requires_two_factor(account.id)
    store.set_requires_two_factor(account.id, True)
    assert store.requires_two_factor(account.id)
    store.set_requires_two_factor(account.id, False)
    assert not store.requires_two_factor(account.id)
    user = store.create_user(new_id(), f"k-{new_id()[:6]}@example.com", "K", None, None, 0)
    keys = [ApiKey(new_id(), user.id, f"k{n}", new_id(), "sgp_x", 0) for n in range(3)]
    for key in keys:
        store.create_api_key(key)
    store.revoke_api_key(user.id, keys[0].id, 1)
    assert store.revoke_api_keys(user.id, 2) == sorted(k.id for k in keys[1:])
    assert all(k.revoked_at is not None for k in store.list_api_keys(user.id))
    sessions = [Session(new_id(), user.id, new_id(), "csrf", 0, DAY, 0) for _ in range(3)]
    for session in sessions:
        store.create_session(session)
    assert store.end_sessions(user.id, keep=sessions[0].id) == 2
    assert store.end_sessions(user.id) == 1
