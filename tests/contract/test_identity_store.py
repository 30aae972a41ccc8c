"""The identity part of the store (store/shared/identity.py) on every backend: invitations decided once,
accepted atomically with the membership, TOTP steps used once, recovery codes used once, account
policy, and revoking every credential of a person."""

from __future__ import annotations

from dataclasses import replace

import pytest

from siemgate.errors import Conflict, NotFound
from siemgate.model.features import Feature
from siemgate.model.ids import new_id
from siemgate.store.base import ApiKey, IngestKey, Session, Store, TokenRecord
from siemgate.store.errors import LimitReached
from siemgate.store.shared.identity import FactorUse, Invitation, Withdrawal

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
    assert not store.use_totp_step(user.id, 10)  # not enabled yet
    assert store.enable_two_factor(user.id, "sealed-0", 10, 2, ["x"]) is None  # a secret replaced since
    assert store.get_two_factor(user.id).enabled_at is None  # type: ignore[union-attr]
    assert store.enable_two_factor(user.id, "sealed-1", 10, 2, ["x"]) == 0
    assert store.enable_two_factor(user.id, "sealed-1", 11, 2, ["y"]) is None  # already on
    enrolment = store.get_two_factor(user.id)
    assert enrolment is not None and (enrolment.enabled_at, enrolment.last_step) == (2, 10)
    with pytest.raises(Conflict):
        store.begin_two_factor(user.id, "sealed-2", 3)
    assert store.recovery_codes_left(user.id) == 1
    assert not store.use_totp_step(user.id, 10) and not store.use_totp_step(user.id, 9)
    assert store.use_totp_step(user.id, 11)
    assert not store.replace_recovery_codes(user.id, ["a", "b", "c"], 4, FactorUse(step=11))  # a replay
    assert store.recovery_codes_left(user.id) == 1
    assert store.replace_recovery_codes(user.id, ["a", "b", "c"], 4, FactorUse(recovery_digest="x"))
    assert store.use_recovery_code(user.id, "b", 5) and not store.use_recovery_code(user.id, "b", 6)
    assert not store.use_recovery_code(user.id, "zzz", 6)
    assert store.recovery_codes_left(user.id) == 2
    for spent in (None, FactorUse(step=11), FactorUse(recovery_digest="b"), FactorUse()):
        assert not store.delete_two_factor(user.id, spent, 7)  # nothing changed
    assert store.recovery_codes_left(user.id) == 2 and store.get_two_factor(user.id) is not None
    assert store.delete_two_factor(user.id, FactorUse(step=12), 7)
    assert store.recovery_codes_left(user.id) == 0 and store.get_two_factor(user.id) is None
    assert store.delete_two_factor(user.id, None, 8)  # nothing on: nothing to prove


def test_two_factor_cannot_go_off_in_an_account_requiring_it_nor_be_required_by_an_owner_without(
    store: Store,
) -> None:
    """Both checks are made in the transaction that writes, under the account's row lock: turning
    it off is refused (nothing changed, the code not spent) while an account of the person
    requires it; an owner without two-factor cannot require it."""
    account = store.create_account(new_id(), f"req-{new_id()[:6]}", 0)
    owner = store.create_user(new_id(), f"o-{new_id()[:6]}@example.com", "O", None, account.id, 0)
    store.add_member(account.id, owner.id, "owner", 0)
    assert not store.set_requires_two_factor(account.id, True, owner_id=owner.id)
    assert not store.requires_two_factor(account.id)
    store.begin_two_factor(owner.id, "sealed", 1)
    assert store.enable_two_factor(owner.id, "sealed", 10, 2, ["r"]) == 0
    assert store.set_requires_two_factor(account.id, True, owner_id=owner.id)
    with pytest.raises(Conflict, match=f"'{account.name}' require"):
        store.delete_two_factor(owner.id, FactorUse(recovery_digest="r"), 3)
    assert store.recovery_codes_left(owner.id) == 1 and store.get_two_factor(owner.id) is not None
    assert store.set_requires_two_factor(account.id, False, owner_id=owner.id)
    assert store.delete_two_factor(owner.id, FactorUse(recovery_digest="r"), 4)


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
    sessions = [Session(new_id(), user.id, new_id(), "csrf", 0, DAY, 0) for _ in range(3)]
    for session in sessions:
        store.create_session(session)
    assert store.end_sessions(user.id, keep=sessions[0].id) == 2
    assert store.reset_two_factor(user.id, 2) is None  # no two-factor: nothing revoked
    assert any(k.revoked_at is None for k in store.list_api_keys(user.id))
    store.begin_two_factor(user.id, "sealed", 2)
    ended = store.reset_two_factor(user.id, 2)
    assert ended is not None and (ended.api_keys, ended.sessions) == (sorted(k.id for k in keys[1:]), 1)
    assert all(k.revoked_at is not None for k in store.list_api_keys(user.id))
    assert store.get_two_factor(user.id) is None


def test_bounded_creates_count_only_live_rows_and_write_nothing_past_the_bound(store: Store) -> None:
    """Integrations, SIEM tokens, ingest keys (per account) and personal API keys (per person)
    are bounded by what is live: deleted, revoked, expired or replaced ones (past their grace
    period, or the one a rotation replaces) do not count; a refused create writes nothing, and
    another account's or person's room is its own."""
    a = store.create_account(new_id(), f"a-{new_id()[:6]}", 0)
    b = store.create_account(new_id(), f"b-{new_id()[:6]}", 0)
    first = store.create_integration(a.id, new_id(), "splunk", "first", "", 0, limit=2)
    second = store.create_integration(a.id, new_id(), "splunk", "second", "", 0, limit=2)
    with pytest.raises(LimitReached, match="the account has 2 integrations, the most allowed is 2"):
        store.create_integration(a.id, new_id(), "splunk", "third", "", 0, limit=2)
    store.create_integration(b.id, new_id(), "splunk", "third", "", 0, limit=2)
    store.delete_integration(second.id, 1)
    store.create_integration(a.id, new_id(), "splunk", "third", "", 1, limit=2)
    assert sorted(i.name for i in store.list_integrations(a.id)) == ["first", "third"]

    def token(at: int, expires_at: int | None = None, replaces: str | None = None) -> TokenRecord:
        return TokenRecord(
            new_id(), a.id, first.id, "t", (Feature.AUDITEVENTS,), "k", new_id(), at, expires_at, replaces=replaces
        )

    expiring, replaced, revoked = token(0, expires_at=10), token(0), token(0)
    for record in (expiring, replaced, revoked):
        store.create_token(record, limit=3)
    with pytest.raises(LimitReached, match="the account holds 3 live SIEM tokens, the most allowed is 3"):
        store.create_token(token(5), limit=3)
    store.create_token(token(5, replaces=replaced.id), limit=3)  # a rotation replaces one
    store.schedule_revocation(replaced.id, 20, False)
    store.revoke_token(revoked.id, 6)
    with pytest.raises(LimitReached):
        store.create_token(token(6), limit=3)  # the expiring one, the one in its grace period, the rotation's
    store.create_token(token(10), limit=3)  # the expiring one has expired
    with pytest.raises(LimitReached):
        store.create_token(token(19), limit=3)
    store.create_token(token(20), limit=3)  # the grace period has ended
    assert len(store.list_tokens(a.id)) == 6

    def ingest_key(account_id: int) -> IngestKey:
        return IngestKey(new_id(), account_id, "k", (Feature.AUDITEVENTS,), new_id(), "sgi_x", 0)

    kept, gone = ingest_key(a.id), ingest_key(a.id)
    store.create_ingest_key(kept, limit=2)
    store.create_ingest_key(gone, limit=2)
    with pytest.raises(LimitReached, match="the account holds 2 ingest keys, the most allowed is 2"):
        store.create_ingest_key(ingest_key(a.id), limit=2)
    store.create_ingest_key(ingest_key(b.id), limit=2)
    store.revoke_ingest_key(gone.id, 1)
    store.create_ingest_key(ingest_key(a.id), limit=2)
    assert len(store.list_ingest_keys(a.id)) == 3

    ada = store.create_user(new_id(), f"ada-{new_id()[:6]}@example.com", "Ada", None, a.id, 0)
    bob = store.create_user(new_id(), f"bob-{new_id()[:6]}@example.com", "Bob", None, a.id, 0)
    short = ApiKey(new_id(), ada.id, "short", new_id(), "sgp_x", 0, expires_at=10)
    store.create_api_key(short, limit=2)
    store.create_api_key(ApiKey(new_id(), ada.id, "k", new_id(), "sgp_x", 0), limit=2)
    with pytest.raises(LimitReached, match="this person holds 2 live API keys, the most allowed is 2"):
        store.create_api_key(ApiKey(new_id(), ada.id, "k", new_id(), "sgp_x", 5), limit=2)
    store.create_api_key(ApiKey(new_id(), bob.id, "k", new_id(), "sgp_x", 5), limit=2)
    store.create_api_key(ApiKey(new_id(), ada.id, "k", new_id(), "sgp_x", 10), limit=2)  # `short` has expired
    assert len(store.list_api_keys(ada.id)) == 3


def test_every_token_of_an_account_at_its_bound_can_be_rotated_but_rotations_are_bounded_too(store: Store) -> None:
    """A replacement counts apart: at most `limit` live tokens not being replaced besides the one
    it replaces, and at most `limit` in a grace period. So every token of an account at its
    bound can be rotated with a grace period (`siemgate token rotate --all`), a chain of rotations
    of one token ends at the bound, and a plain issue waits until the grace periods end."""
    a = store.create_account(new_id(), f"r-{new_id()[:6]}", 0)
    integration = store.create_integration(a.id, new_id(), "splunk", "siem", "", 0)

    def token(at: int, replaces: str | None = None) -> TokenRecord:
        return TokenRecord(new_id(), a.id, integration.id, "t", (Feature.AUDITEVENTS,), "k", new_id(), at, None,
                           replaces=replaces)  # fmt: skip

    def rotate(old: TokenRecord, at: int) -> TokenRecord:
        new = token(at, replaces=old.id)
        store.create_token(new, limit=3)
        store.schedule_revocation(old.id, at + 100, True)
        return new

    held = [token(0) for _ in range(3)]
    for record in held:
        store.create_token(record, limit=3)
    rotated = [rotate(old, 1) for old in held]  # all three, each with a grace period
    with pytest.raises(LimitReached, match="holds 6 live SIEM tokens, the most allowed is 3"):
        store.create_token(token(2), limit=3)
    with pytest.raises(LimitReached, match=r"the most allowed is 3 \(and as many being replaced\)"):
        rotate(rotated[0], 2)  # three are in their grace period already
    with pytest.raises(LimitReached):
        store.create_token(token(101), limit=3)  # the grace periods have ended: the three rotated are live
    store.revoke_token(rotated[0].id, 101)
    store.create_token(token(101), limit=3)
    fresh = store.create_integration(a.id, new_id(), "splunk", "fresh", "", 0)
    store.revoke_token(rotated[1].id, 102)
    chain = TokenRecord(new_id(), a.id, fresh.id, "t", (Feature.AUDITEVENTS,), "k", new_id(), 102, None)
    store.create_token(chain, limit=3)
    for _ in range(3):  # a chain of rotations of one token
        chain = rotate(chain, 103)
    with pytest.raises(LimitReached):
        rotate(chain, 103)
    assert len(store.list_tokens(a.id)) == 3 + 3 + 1 + 1 + 3


def test_a_membership_change_revokes_the_invitations_it_withdraws_or_nothing(store: Store) -> None:
    account = store.create_account(new_id(), f"acme-{new_id()[:6]}", 0)
    owner = store.create_user(new_id(), f"o-{new_id()[:6]}@example.com", "O", None, account.id, 0)
    inviter = store.create_user(new_id(), f"i-{new_id()[:6]}@example.com", "I", None, account.id, 0)
    store.add_member(account.id, owner.id, "owner", 0)
    store.add_member(account.id, inviter.id, "owner", 0)
    sent = [
        replace(_invitation(account.id, f"{role}@example.com"), role=role, invited_by=inviter.id)
        for role in ("owner", "administrator")
    ]
    by_owner = replace(_invitation(account.id, "x@example.com"), invited_by=owner.id)
    for invitation in (*sent, by_owner):
        store.create_invitation(invitation, max_pending=5, now=1)
    member, withdrawn = store.set_role(account.id, inviter.id, "administrator", Withdrawal(("owner",), 2, owner.id))
    assert member.role == "administrator" and [i.id for i in withdrawn] == [sent[0].id]
    revoked = store.get_invitation(sent[0].id)
    assert (revoked.status, revoked.decided_at, revoked.decided_by) == ("revoked", 2, owner.id)
    assert not store.accept_invitation(sent[0].id, owner.id, 3)
    with pytest.raises(Conflict, match="at least one owner"):  # the change fails: nothing is revoked
        store.remove_member(account.id, owner.id, Withdrawal(("owner", "administrator", "member"), 3, None))
    assert store.get_invitation(by_owner.id).status == "pending"
    withdrawn, _ = store.remove_member(account.id, inviter.id, Withdrawal(("administrator",), 4, None))
    assert [i.id for i in withdrawn] == [sent[1].id]


def test_deleting_an_account_revokes_the_pending_invitations_its_leaving_people_sent(store: Store) -> None:
    """Unlinked from a deleted inviter, an invitation would read as the operator's, which stays
    valid whoever leaves."""
    home = store.create_account(new_id(), f"home-{new_id()[:6]}", 0)
    other = store.create_account(new_id(), f"other-{new_id()[:6]}", 0)
    leaving = store.create_user(new_id(), f"l-{new_id()[:6]}@example.com", "L", None, home.id, 0)
    sent = replace(_invitation(other.id, "sock@example.com"), invited_by=leaving.id)
    store.create_invitation(sent, max_pending=5, now=1)  # sent while a member of `other`, since removed
    store.delete_account_rows(home.id, home.uuid, home.name, "test", "{}", 2)
    after = store.get_invitation(sent.id)
    assert (after.status, after.invited_by, after.decided_at) == ("revoked", None, 2)
