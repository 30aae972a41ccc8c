"""Two tenants and an outsider on a live server, for the identity tests (tests/security/test_identity_*).

Tenant A ("Acme") has an owner and an administrator; tenant B ("Bolt") has an owner. Every person
has a password and a personal API key. The outsider has nothing: they only reach the server over
HTTP. Everything the tests check goes through real HTTP; the set-up uses the operator's services
(what `siemgate account create` / `user add` do).
"""

from __future__ import annotations

import contextlib
import functools
import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx

from siemgate.accounts.actor import CLI
from siemgate.auth.passwords import hash_password
from siemgate.model.features import ALL_FEATURES, Feature
from siemgate.model.ids import new_id
from siemgate.model.timestamps import format_ns
from siemgate.store.base import Account, User
from support.servers import LiveServer

ADMIN = "/api/admin/v1"
PASSWORD = "correct horse battery staple"


@functools.cache
def password_hash() -> str:
    return hash_password(PASSWORD)


@dataclass
class Person:
    user: User
    key: str

    @property
    def email(self) -> str:
        return self.user.email

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


class Tenants:
    def __init__(self, server: LiveServer) -> None:
        self.server = server
        self.services = server.services
        self.http = server.http
        self.started = server.clock()
        tag = new_id()[:6].lower()
        self.tag = tag
        self.a, self.alice = self._account(f"Acme-{tag}", f"alice@acme-{tag}.example", "Alice Owner")
        self.adam = self.person(self.a, f"adam@acme-{tag}.example", "administrator")
        self.b, self.bob = self._account(f"Bolt-{tag}", f"bob@bolt-{tag}.example", "Bob Owner")

    def _account(self, name: str, email: str, who: str) -> tuple[Account, Person]:
        account, owner = self.services.people.create_account(CLI, name, email, who, None)
        assert owner is not None
        self.services.store.set_password(owner.id, password_hash())
        return account, self._keyed(self.services.store.get_user_by_id(owner.id))

    def person(self, account: Account, email: str, role: str) -> Person:
        member = self.services.people.add_member(CLI, account, email, email.split("@")[0].title(), role)
        self.services.store.set_password(member.user.id, password_hash())
        return self._keyed(self.services.store.get_user_by_id(member.user.id))

    def _keyed(self, user: User) -> Person:
        key, _ = self.services.api_keys.create(user, "tests")
        return Person(user, key)

    # HTTP ---------------------------------------------------------------------------------------
    def call(self, who: Person | None, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {**(who.headers if who else {}), **kwargs.pop("headers", {})}
        return self.http.request(method, ADMIN + path, headers=headers, **kwargs)

    def sign_in(self, email: str, password: str = PASSWORD, **kwargs: Any) -> httpx.Response:
        return self.http.post(f"{ADMIN}/session", json={"email": email, "password": password}, **kwargs)

    @contextlib.contextmanager
    def session(self, email: str, password: str = PASSWORD) -> Iterator[httpx.Client]:
        """A client signed in to the console as `email` (cookie + CSRF header)."""
        with httpx.Client(base_url=self.server.base_url, timeout=30) as client:
            response = client.post(f"{ADMIN}/session", json={"email": email, "password": password})
            assert response.status_code == 200, response.text
            client.headers["X-CSRF-Token"] = response.json()["csrf_token"]
            yield client

    def events(self, account: Account, feature: Feature = Feature.AUDITEVENTS) -> list[dict[str, Any]]:
        """Every event of the account's stream since the set-up, read by a SIEM token."""
        integration = self.services.store.create_integration(
            account.id, new_id(), "other", f"reader {new_id()[:8]}", "", 0
        )
        token, _ = self.services.tokens.issue(account, integration, "reader", list(ALL_FEATURES), None)
        start = {"start_time": format_ns(self.started - 60_000_000_000), "limit": 1000}
        page = self.server.page(token, feature, start)
        assert page.status_code == 200, page.text
        data = page.json()
        items: list[dict[str, Any]] = data["items"]
        if data["has_more"]:
            more, _ = self.server.drain(token, feature, data["cursor"])
            items += more
        return items


def source_ip() -> str:
    """A loopback address of its own (every 127.x.y.z reaches the server), so that no other test's
    failures count towards this test's per-IP limits."""
    return f"127.{random.randint(1, 254)}.{random.randint(0, 254)}.{random.randint(1, 254)}"


def client(base_url: str, ip: str) -> httpx.Client:
    """A client whose connections come from `ip`."""
    return httpx.Client(base_url=base_url, transport=httpx.HTTPTransport(local_address=ip), timeout=30)


def error(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, f"expected {status}, got {response.status_code}: {response.text}"
    message: str = response.json()["Error"]["Message"]
    return message


def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, f"expected {status}, got {response.status_code}: {response.text}"
    return None if status == 204 else response.json()
