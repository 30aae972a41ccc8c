"""Removing a person's access is one transaction, on SQLite and PostgreSQL: a fault part-way (the
database refusing the API key revocation, or the end of the sessions) leaves everything as it was,
never a person removed from their last account with a live key or session, nor a new password
beside the sessions and keys the old one opened. Before: each step was its own transaction."""

from __future__ import annotations

from pathlib import Path

import pyotp
import pytest

from siemgate.accounts.actor import CLI, Actor
from siemgate.composition.wiring import build_services
from siemgate.config import load_settings
from siemgate.errors import SiemgateError
from siemgate.model.ids import new_id
from siemgate.model.timestamps import NS_PER_SECOND
from siemgate.services import Services
from siemgate.store.base import Store, User
from siemgate.store.records import Session

T0 = 1_767_225_600_000_000_000
DAY = 86_400_000_000_000
PASSWORD = "an old and long passphrase"


def _refuse(store: Store, table: str, event: str, refuse: bool) -> None:
    """The database refuses every `event` (UPDATE, DELETE) on `table` (a fault), or no more."""
    name = f"refuse_{table}"
    with store._tx() as conn:
        if not refuse:
            conn.execute(
                f"DROP TRIGGER {name} ON {table}" if store.dialect.name == "postgres" else f"DROP TRIGGER {name}"
            )
        elif store.dialect.name == "postgres":
            conn.execute(
                f"CREATE OR REPLACE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS"
                " $$ BEGIN RAISE EXCEPTION 'injected fault'; END $$"
            )
            conn.execute(f"CREATE TRIGGER {name} BEFORE {event} ON {table} FOR EACH ROW EXECUTE FUNCTION {name}()")
        else:
            conn.execute(f"CREATE TRIGGER {name} BEFORE {event} ON {table} BEGIN SELECT RAISE(ABORT, 'injected'); END")


@pytest.fixture
def services(store: Store, tmp_path: Path) -> Services:
    return build_services(load_settings(data_dir=tmp_path / "data", alerts_enabled=False), store, lambda: T0)


def _person_with_access(services: Services) -> tuple[object, User]:
    """An account, and a member of it alone with a password, an API key and a console session."""
    account, _ = services.people.create_account(CLI, f"Acme {new_id()[:6]}", f"{new_id()[:8]}@acme.example", "O", None)
    member = services.people.add_member(CLI, account, f"{new_id()[:8]}@acme.example", "Bob", "member")
    services.personal.reset_password(CLI, member.user, PASSWORD)
    services.api_keys.create(member.user, "script")
    services.store.create_session(Session(new_id(), member.user.id, new_id(), "csrf", T0, T0 + DAY, T0))
    return account, services.store.get_user_by_id(member.user.id)


def _access(store: Store, user: User) -> tuple[int, int, int, str | None]:
    """(accounts, live API keys, console sessions, password hash) of the person."""
    keys = sum(1 for k in store.list_api_keys(user.id) if k.revoked_at is None)
    [[sessions]] = store._select("SELECT count(*) FROM sessions WHERE user_id = ?", (user.id,))
    return len(store.list_memberships(user.id)), keys, int(sessions), store.get_user_by_id(user.id).password_hash


def test_removal_from_the_last_account_ends_keys_and_sessions_in_its_transaction(
    store: Store, services: Services
) -> None:
    account, user = _person_with_access(services)
    before = _access(store, user)
    assert before[:3] == (1, 1, 1)
    _refuse(store, "api_keys", "UPDATE", True)
    with pytest.raises(SiemgateError):
        services.people.remove_member(CLI, account, user.email)  # type: ignore[arg-type]
    _refuse(store, "api_keys", "UPDATE", False)
    assert _access(store, user) == before, "a fault left the person removed with a live key or session"
    services.people.remove_member(CLI, account, user.email)  # type: ignore[arg-type]
    assert _access(store, user)[:3] == (0, 0, 0)


def test_a_password_reset_ends_keys_and_sessions_in_its_transaction(store: Store, services: Services) -> None:
    _, user = _person_with_access(services)
    before = _access(store, user)
    _refuse(store, "api_keys", "UPDATE", True)
    with pytest.raises(SiemgateError):
        services.personal.reset_password(CLI, user, "the operator's new passphrase")
    _refuse(store, "api_keys", "UPDATE", False)
    assert _access(store, user) == before, "a fault left a new password beside the old key and session"
    reset = services.personal.reset_password(CLI, user, "the operator's new passphrase")
    assert (len(reset.revoked_api_keys), reset.ended_sessions) == (1, 1)
    assert _access(store, user)[1:3] == (0, 0)


def test_a_password_change_ends_the_other_sessions_in_its_transaction(store: Store, services: Services) -> None:
    _, user = _person_with_access(services)
    before = _access(store, user)
    _refuse(store, "sessions", "DELETE", True)
    with pytest.raises(SiemgateError):
        services.personal.change_password(CLI, user, PASSWORD, "a brand new long passphrase")
    _refuse(store, "sessions", "DELETE", False)
    assert _access(store, user) == before, "a fault left a new password beside the sessions of the old one"
    assert services.personal.change_password(CLI, user, PASSWORD, "a brand new long passphrase") == 1
    assert _access(store, user)[2] == 0


def _sessions(store: Store, user: User) -> list[str]:
    """The ids of the person's console sessions."""
    return [r[0] for r in store._select("SELECT id FROM sessions WHERE user_id = ? ORDER BY id", (user.id,))]


def _two_factor(store: Store, user: User) -> tuple[bool, int]:
    """(two-factor on, recovery codes left) of the person."""
    enrolment = store.get_two_factor(user.id)
    return enrolment is not None and enrolment.enabled_at is not None, store.recovery_codes_left(user.id)


def _confirm(services: Services, user: User, secret: str, keep: str | None) -> list[str]:
    """The person turns two-factor on with the current code, from their console session `keep`
    (None: with an API key)."""
    actor = Actor(user=user, via="session", credential_id=keep) if keep else Actor(user=user, via="api_key")
    code = pyotp.TOTP(secret).at(T0 // NS_PER_SECOND)
    return services.personal.confirm_two_factor(actor, user, code, PASSWORD)


def test_turning_two_factor_on_ends_the_other_sessions_in_its_transaction(store: Store, services: Services) -> None:
    """The reason to turn two-factor on is often a session someone else holds: no fault leaves
    two-factor on (without recovery codes, or) beside a session opened with the password alone."""
    _, user = _person_with_access(services)
    [own] = _sessions(store, user)
    store.create_session(Session(new_id(), user.id, new_id(), "csrf", T0, T0 + DAY, T0))  # a thief's
    secret = services.personal.begin_two_factor(user).secret
    before = (_access(store, user), _two_factor(store, user))
    _refuse(store, "sessions", "DELETE", True)
    with pytest.raises(SiemgateError):
        _confirm(services, user, secret, own)
    _refuse(store, "sessions", "DELETE", False)
    assert (_access(store, user), _two_factor(store, user)) == before, "a fault left two-factor on beside a session"
    assert len(_confirm(services, user, secret, own)) == 10
    assert _two_factor(store, user) == (True, 10)
    assert _sessions(store, user) == [own]


def test_a_two_factor_reset_ends_keys_and_sessions_in_its_transaction(store: Store, services: Services) -> None:
    """The operator's reset (a lost phone: perhaps a stolen one) turns two-factor off only with
    every key and session of the person ended."""
    _, user = _person_with_access(services)
    secret = services.personal.begin_two_factor(user).secret
    _confirm(services, user, secret, None)
    store.create_session(Session(new_id(), user.id, new_id(), "csrf", T0, T0 + DAY, T0))
    before = (_access(store, user), _two_factor(store, user))
    assert before == ((1, 1, 1, before[0][3]), (True, 10))
    _refuse(store, "api_keys", "UPDATE", True)
    with pytest.raises(SiemgateError):
        services.personal.reset_two_factor(CLI, user)
    _refuse(store, "api_keys", "UPDATE", False)
    assert (_access(store, user), _two_factor(store, user)) == before, "a fault left two-factor off beside a key"
    reset = services.personal.reset_two_factor(CLI, user)
    assert (len(reset.revoked_api_keys), reset.ended_sessions) == (1, 1)
    assert (_access(store, user)[1:3], _two_factor(store, user)) == ((0, 0), (False, 0))
