"""Turning two-factor off and an owner requiring it of the account, at the same moment, in two
PostgreSQL connections (SQLite has one writer): each is decided in the transaction that writes,
under the account's row lock, so the one that comes second sees the first. A person never ends
up with two-factor off in an account that requires it through their own turning it off (the API
refuses that with a 409), and an owner never locks themself out by requiring it while theirs
goes off. (Every request is checked against both anyway, PeopleService.account_for: a person
without two-factor does not use an account requiring it, whatever session they hold.)"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import psycopg
import pyotp
import pytest

from siemgate.accounts.actor import CLI, Actor
from siemgate.composition.wiring import build_services
from siemgate.config import load_settings
from siemgate.errors import Conflict
from siemgate.model.ids import new_id
from siemgate.model.timestamps import NS_PER_SECOND
from siemgate.services import Services
from siemgate.store.base import Account, User
from siemgate.store.postgres import PostgresStore
from support.pg_waits import in_thread, waiting_for
from support.waiting import wait_for

T0 = 1_767_225_600_000_000_000
PASSWORD = "an old and long passphrase"


@pytest.fixture
def services(pg: PostgresStore, tmp_path: Path) -> Services:
    return build_services(load_settings(data_dir=tmp_path / "data", alerts_enabled=False), pg, lambda: T0)


def _owner_with_two_factor(services: Services) -> tuple[Account, User, list[str]]:
    """An account, its owner with a password and two-factor on, and the owner's recovery codes."""
    account, owner = services.people.create_account(CLI, f"Acme {new_id()[:6]}", f"{new_id()[:8]}@a.example", "O", None)
    assert owner is not None
    services.personal.reset_password(CLI, owner, PASSWORD)
    owner = services.store.get_user_by_id(owner.id)
    secret = services.personal.begin_two_factor(owner).secret
    code = pyotp.TOTP(secret).at(T0 // NS_PER_SECOND)
    codes = services.personal.confirm_two_factor(Actor(owner, "api_key"), owner, code, PASSWORD)
    return account, owner, codes


def _second(
    pg: PostgresStore, lock_and_write: str, account: Account, params: tuple[object, ...], call: Callable[[], object]
) -> object:
    """Run `call` while another connection holds the account's row lock, having written
    `lock_and_write` (not committed); commit once `call` waits (or ended); its outcome."""
    with psycopg.connect(pg.url) as other, psycopg.connect(pg.url, autocommit=True) as watch:
        other.execute("SELECT 1 FROM accounts WHERE id = %s FOR NO KEY UPDATE", (account.id,))
        other.execute(lock_and_write, params)
        job, outcome = in_thread(call)
        wait_for(
            "the second change to wait for the first, or to end",
            lambda: waiting_for(watch, other) >= 1 or not job.is_alive(),
            30,
        )
        other.commit()
    job.join(30)
    assert len(outcome) == 1
    return outcome[0]


def test_turning_two_factor_off_waits_for_a_requirement_being_set_and_is_refused(
    pg: PostgresStore, services: Services
) -> None:
    """An owner is requiring two-factor (account row locked, policy written, not committed) when
    a member turns theirs off. Before, turning it off read the policy without a lock, saw it not
    required and went ahead: the member was left without two-factor in an account requiring it,
    which the API promises to refuse. It now waits for the requirement, sees it and is refused,
    its recovery code not spent."""
    account, person, codes = _owner_with_two_factor(services)
    insert = "INSERT INTO account_policies (account_id, require_two_factor) VALUES (%s, 1)"
    off = lambda: services.personal.disable_two_factor(Actor(person, "api_key"), person, PASSWORD, codes[0])  # noqa: E731
    outcome = _second(pg, insert, account, (account.id,), off)
    assert isinstance(outcome, Conflict) and "require(s) two-factor" in str(outcome), outcome
    assert services.people.has_two_factor(person) and pg.recovery_codes_left(person.id) == 10


def test_a_requirement_waits_for_its_owner_turning_two_factor_off_and_is_refused(
    pg: PostgresStore, services: Services
) -> None:
    """The other order: the owner's two-factor is going off (their accounts' rows locked, its row
    deleted, not committed) when the owner's other session requires it of the account. Before,
    the requirement checked the owner's two-factor first, without a lock, and wrote afterwards:
    both went through and the owner was locked out of their own account. It now waits, sees
    two-factor off and is refused."""
    account, owner, _ = _owner_with_two_factor(services)
    delete = "DELETE FROM two_factor WHERE user_id = %s"
    require = lambda: services.personal.require_two_factor(Actor(owner, "api_key"), account, True)  # noqa: E731
    outcome = _second(pg, delete, account, (owner.id,), require)
    assert isinstance(outcome, Conflict) and "yourself first" in str(outcome), outcome
    assert not pg.requires_two_factor(account.id)
