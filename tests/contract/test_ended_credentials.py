"""Revoked and expired credentials are not kept without bound (docs/security.md, "Per-account
limits"): an administrator issuing and revoking SIEM tokens (or ingest keys, or a person API keys)
in a loop grew the rows for ever, and the server reads every token of every account each minute
(token lifecycle: 1.4 s for 200,000 revoked tokens of one account) and every token of the account
on each token list. A create forgets the owner's ended ones but the newest KEEP_ENDED."""

from __future__ import annotations

import pytest

from siemgate.auth import sessions
from siemgate.model.features import Feature
from siemgate.model.ids import new_id
from siemgate.store.base import ApiKey, IngestKey, Store, TokenRecord, TokenUse
from siemgate.store.shared import dialect
from siemgate.store.shared.identity import Invitation

T0 = 1_700_000_000_000_000_000
KEEP = 3


@pytest.fixture(autouse=True)
def _keep_few(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dialect, "KEEP_ENDED", KEEP, raising=False)


def test_ended_tokens_beyond_the_newest_are_forgotten(store: Store) -> None:
    account = store.create_account(new_id(), f"Churn {new_id()[:6]}", T0)
    other = store.create_account(new_id(), f"Other {new_id()[:6]}", T0)
    integration = store.create_integration(account.id, new_id(), "other", "SIEM", "", T0)
    theirs = store.create_integration(other.id, new_id(), "other", "SIEM", "", T0)

    def token(owner: int, on: int, at: int, expires: int | None = None, replaces: str | None = None) -> TokenRecord:
        record = TokenRecord(
            new_id(), owner, on, "t", (Feature.SIGNINATTEMPTS,), "kid", new_id() * 2, at, expires, replaces=replaces
        )
        store.create_token(record)
        return record

    their_revoked = token(other.id, theirs.id, T0)
    store.revoke_token(their_revoked.id, T0)
    live = token(account.id, integration.id, T0)
    store.record_token_uses([TokenUse(live.id, T0, Feature.SIGNINATTEMPTS, 5)])
    previous = None
    ended = []
    for i in range(1, 12):  # a rotation chain: each replaces the last, then is revoked
        record = token(account.id, integration.id, T0 + i, replaces=previous)
        store.record_token_uses([TokenUse(record.id, T0 + i, Feature.SIGNINATTEMPTS, i)])
        store.revoke_token(record.id, T0 + i)
        ended.append(record.id)
        previous = record.id
    expired = token(account.id, integration.id, T0 + 20, expires=T0 + 21)
    token(account.id, integration.id, T0 + 30)  # after `expired` expired: it counts as ended
    kept = [t.id for t in store.list_tokens(account.id)]
    assert kept == [live.id, *ended[-(KEEP - 1) :], expired.id, kept[-1]]
    assert store.token_positions(live.id)  # a live token's usage stays
    assert [t.id for t in store.list_tokens(other.id)] == [their_revoked.id]  # another account's stay


def test_ended_ingest_keys_and_api_keys_beyond_the_newest_are_forgotten(store: Store) -> None:
    account = store.create_account(new_id(), f"Churn {new_id()[:6]}", T0)
    person = store.create_user(new_id(), f"{new_id()[:8]}@churn.example", "P", None, account.id, T0)
    for i in range(10):
        key = IngestKey(new_id(), account.id, "k", (Feature.SIGNINATTEMPTS,), new_id() * 2, "sgi_", T0 + i)
        store.create_ingest_key(key)
        store.revoke_ingest_key(key.id, T0 + i)
        api_key = ApiKey(new_id(), person.id, "k", new_id() * 2, "sga_", T0 + i, None)
        store.create_api_key(api_key)
        store.revoke_api_key(person.id, api_key.id, T0 + i)
    assert len(store.list_ingest_keys(account.id)) == KEEP + 1  # the newest revoked one came after the last create
    assert len(store.list_api_keys(person.id)) == KEEP + 1


def test_a_person_signing_in_again_and_again_keeps_at_most_max_sessions(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Sessions were deleted only at sign-out: each sign-in added a row (live 12 hours, then kept
    expired for ever), and correct passwords are not rate-limited."""
    monkeypatch.setattr(sessions, "MAX_SESSIONS", KEEP, raising=False)
    account = store.create_account(new_id(), f"Signin {new_id()[:6]}", T0)
    person = store.create_user(new_id(), f"{new_id()[:8]}@signin.example", "P", None, account.id, T0)
    other = store.create_user(new_id(), f"{new_id()[:8]}@signin.example", "Q", None, account.id, T0)
    clock = iter(range(T0, T0 + 100))
    service = sessions.SessionService(store, lambda: next(clock))
    theirs = service.open(other, "127.0.0.1", "test")
    opened = [service.open(person, "127.0.0.1", "test") for _ in range(10)]
    held = store._select("SELECT id FROM sessions WHERE user_id = ? ORDER BY created_at", (person.id,))
    assert [r[0] for r in held] == [s.session.id for s in opened[-KEEP:]]
    assert store.get_session_by_hash(theirs.session.token_sha256) == theirs.session


def test_decided_invitations_beyond_the_newest_are_forgotten(store: Store) -> None:
    """Invitations are bounded while pending (100); revoked ones were kept for ever, and the
    account's invitation list reads them all."""
    account = store.create_account(new_id(), f"Invites {new_id()[:6]}", T0)
    for i in range(10):
        invitation = Invitation(
            new_id(), account.id, f"p{i}@invites.example", "member", new_id() * 2, None, T0 + i, T0 + 10**15
        )
        store.create_invitation(invitation, max_pending=100, now=T0 + i)
        assert store.decide_invitation(invitation.id, "revoked", None, T0 + i)
    assert len(store.list_invitations(account.id)) == KEEP + 1  # the newest revoked one came after the last create


def test_deleted_integrations_beyond_the_newest_are_forgotten(store: Store) -> None:
    """Deleted integrations were kept for ever (soft-deleted rows): an administrator creating and
    deleting in a loop grew them without bound. A create forgets the account's deleted ones but the
    newest KEEP_ENDED, with their (revoked) tokens and those tokens' usage."""
    account = store.create_account(new_id(), f"Loop {new_id()[:6]}", T0)
    other = store.create_account(new_id(), f"Other {new_id()[:6]}", T0)
    theirs = store.create_integration(other.id, new_id(), "other", "SIEM", "", T0)
    store.delete_integration(theirs.id, T0)
    live = store.create_integration(account.id, new_id(), "other", "Live", "", T0)
    deleted = []
    for i in range(1, 11):
        integration = store.create_integration(account.id, new_id(), "other", "SIEM", "", T0 + i)
        features = (Feature.SIGNINATTEMPTS,)
        record = TokenRecord(new_id(), account.id, integration.id, "t", features, "k", new_id() * 2, T0 + i, None)
        store.create_token(record)
        store.record_token_uses([TokenUse(record.id, T0 + i, Feature.SIGNINATTEMPTS, i)])
        assert store.delete_integration(integration.id, T0 + i) == [record.id]
        deleted.append(integration.id)
    held = store._select("SELECT id FROM integrations WHERE account_id = ? ORDER BY id", (account.id,))
    assert [r[0] for r in held] == [live.id, *deleted[-(KEEP + 1) :]]  # the last deleted came after the last create
    tokens = store.list_tokens(account.id)
    assert {t.integration_id for t in tokens} == set(deleted[-(KEEP + 1) :])
    assert store.get_integration_by_id(theirs.id).deleted_at == T0  # another account's stay
