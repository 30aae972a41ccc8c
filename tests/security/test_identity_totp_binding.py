"""A two-factor secret is sealed for its person (the person's uuid is the seal's associated
data), on SQLite and PostgreSQL: whoever can write the store cannot move one person's sealed
secret to another person's row and sign in as them with the first person's authenticator. Secrets
sealed by an older release (bound to no one) are sealed again, bound, once, at the first start of
this release; an unbound value written after that is refused."""

from __future__ import annotations

import base64
import os
import time
from typing import Any

import httpx
import pyotp
import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from siemgate.composition.wiring import build_services
from support.stores import BOTH_BACKENDS

from .identity_support import ADMIN, PASSWORD, Person, Tenants, error, ok

server_backend = BOTH_BACKENDS
STEP = f"{ADMIN}/session/second-factor"


@pytest.fixture
def tenants(server: Any) -> Tenants:
    return Tenants(server)


def _enrol(tenants: Tenants, who: Person) -> str:
    secret: str = ok(tenants.call(who, "POST", "/me/two-factor"), 201)["secret"]
    confirm = {"code": pyotp.TOTP(secret).now(), "password": PASSWORD}
    ok(tenants.call(who, "POST", "/me/two-factor/confirm", json=confirm))
    return secret


def _next(secret: str) -> str:
    """The next step's code (the current one confirmed the enrolment: a code works once)."""
    return pyotp.TOTP(secret).at(time.time() + 30)


def _sealed(tenants: Tenants, who: Person) -> str:
    enrolment = tenants.services.store.get_two_factor(who.user.id)
    assert enrolment is not None
    return enrolment.secret


def _write(tenants: Tenants, sql: str, params: tuple[Any, ...]) -> None:
    """A write straight into the store, as someone holding the database would make it."""
    store = tenants.services.store
    with store._tx() as conn:
        conn.execute(store._q(sql), params)


def _sign_in_with(tenants: Tenants, who: Person, code: str) -> httpx.Response:
    """The password step, then `code`, from a browser of its own."""
    with httpx.Client(base_url=tenants.server.base_url) as browser:
        challenge = ok(browser.post(f"{ADMIN}/session", json={"email": who.email, "password": PASSWORD}))["challenge"]
        return browser.post(STEP, json={"challenge": challenge, "code": code})


def _sealed_the_old_way(tenants: Tenants, secret: str) -> str:
    """`secret` as releases before 0.2.0 sealed it: the store's key, associated data b"totp"."""
    [(key,)] = tenants.services.store._select("SELECT value FROM secrets WHERE name = ?", ("totp-secret-key",))
    nonce = os.urandom(12)
    return base64.b64encode(nonce + AESGCM(bytes(key)).encrypt(nonce, secret.encode(), b"totp")).decode()


def test_a_secret_moved_to_another_persons_row_does_not_open(tenants: Tenants) -> None:
    """Before, the seal's associated data was the constant b"totp": Alice's sealed secret copied
    into Bob's row opened, and a thief with Bob's password and Alice's phone signed in as Bob."""
    alice, bob = tenants.alice, tenants.bob
    alices = _enrol(tenants, alice)
    _enrol(tenants, bob)
    _write(tenants, "UPDATE two_factor SET secret = ? WHERE user_id = ?", (_sealed(tenants, alice), bob.user.id))
    message = error(_sign_in_with(tenants, bob, _next(alices)), 500)
    assert "does not open: it was sealed for another person" in message
    assert "siemgate user reset-two-factor" in message
    assert alices not in message
    ok(_sign_in_with(tenants, alice, _next(alices)))  # in its own row it still opens


def test_secrets_sealed_by_an_older_release_are_bound_at_the_first_start(tenants: Tenants) -> None:
    """A store upgraded from 0.1.x holds secrets sealed bound to no one: the first start of this
    release seals each again for its person, in one transaction, and records that it did; the
    person signs in with the same authenticator. An unbound value written after that is refused
    (the upgrade does not run again to bind it to whichever row it was put in)."""
    alice, bob = tenants.alice, tenants.bob
    alices, bobs = _enrol(tenants, alice), _enrol(tenants, bob)
    store = tenants.services.store
    old = {who.user.id: _sealed_the_old_way(tenants, secret) for who, secret in ((alice, alices), (bob, bobs))}
    for user_id, sealed in old.items():
        _write(tenants, "UPDATE two_factor SET secret = ? WHERE user_id = ?", (sealed, user_id))
    _write(tenants, "DELETE FROM secrets WHERE name = ?", ("totp-secrets-bound",))  # as before the upgrade

    build_services(tenants.services.settings, store)  # what every start of the server or a command does

    assert {_sealed(tenants, who) for who in (alice, bob)}.isdisjoint(old.values())
    assert all(_sealed(tenants, who).startswith("b1:") for who in (alice, bob))
    ok(_sign_in_with(tenants, alice, _next(alices)))
    _write(tenants, "UPDATE two_factor SET secret = ? WHERE user_id = ?", (old[alice.user.id], bob.user.id))
    build_services(tenants.services.settings, store)  # the next start does not bind it
    message = error(_sign_in_with(tenants, bob, _next(alices)), 500)
    assert "sealed bound to no one" in message and "siemgate user reset-two-factor" in message
    error(_sign_in_with(tenants, bob, _next(bobs)), 500)  # nor with his own: the operator resets it
