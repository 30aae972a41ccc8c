"""Answers the two backends used to give differently, and give alike since the aggregate's SQL is
written once (store/shared/): a role outside the list, the tokens an integration's deletion
revoked, a person's email taken in another case, a signing key's kid taken."""

from __future__ import annotations

import pytest

from siemgate.errors import Conflict
from siemgate.model.features import ALL_FEATURES
from siemgate.model.ids import new_id
from siemgate.store.base import SigningKey, Store, TokenRecord
from siemgate.store.shared.identity import Withdrawal

T0 = 1_700_000_000_000_000_000


def test_a_role_outside_the_list_is_refused_by_name(store: Store) -> None:
    account = store.create_account(new_id(), f"acct-{new_id()}", T0)
    user = store.create_user(new_id(), f"{new_id()}@example.com", "Ann", None, account.id, T0)
    store.add_member(account.id, user.id, "owner", T0)
    with pytest.raises(Conflict, match="unknown role 'emperor'"):
        store.set_role(account.id, user.id, "emperor", Withdrawal((), T0, None))
    assert store.get_member(account.id, user.id).role == "owner"


def test_deleting_an_integration_returns_exactly_the_tokens_it_revoked_in_id_order(store: Store) -> None:
    account = store.create_account(new_id(), f"acct-{new_id()}", T0)
    integration = store.create_integration(account.id, new_id(), "splunk", "SIEM", "", T0)
    ids = ["C" + new_id()[1:], "A" + new_id()[1:], "B" + new_id()[1:], "D" + new_id()[1:]]
    for token_id in ids:  # created out of id order
        record = TokenRecord(token_id, account.id, integration.id, "t", ALL_FEATURES, "kid", new_id() * 2, T0, None)
        store.create_token(record)
    store.revoke_token(ids[3], T0 + 1)  # revoked before: not revoked by the deletion
    assert store.delete_integration(integration.id, T0 + 2) == sorted(ids[:3])
    assert all(store.get_token(t).revoked_at == T0 + 2 for t in ids[:3])
    assert store.get_token(ids[3]).revoked_at == T0 + 1


def test_an_email_taken_in_another_case_is_a_conflict_naming_it(store: Store) -> None:
    email = f"{new_id().lower()}@example.com"
    store.create_user(new_id(), email, "Ann", None, None, T0)
    with pytest.raises(Conflict, match="already exists") as raised:
        store.create_user(new_id(), email.upper(), "Ann again", None, None, T0)
    assert email.upper() in raised.value.message
    assert store.get_user(email.upper()).email == email


def test_a_signing_key_kid_taken_is_a_conflict_and_the_active_key_stays(store: Store) -> None:
    store.add_signing_key(SigningKey("k1", b"pem-1", T0, active=True))
    with pytest.raises(Conflict, match="signing key k1 already exists"):
        store.add_signing_key(SigningKey("k1", b"pem-2", T0 + 1, active=True))
    assert [(k.kid, k.pem, k.active) for k in store.signing_keys()] == [("k1", b"pem-1", True)]
