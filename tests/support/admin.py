"""An account on a live server with one person of each role (plus an outsider who owns another
account), each with a personal API key, and helpers to call the admin API and read siemgate's own
audit trail back through the Events API (tests/admin, and the alerts' API tests)."""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import httpx

from siemgate.accounts.actor import CLI
from siemgate.alerts.actions.record import is_alert_event
from siemgate.auth.passwords import hash_password
from siemgate.model.features import ALL_FEATURES, Feature
from siemgate.model.ids import new_id
from siemgate.model.timestamps import format_ns
from siemgate.store.base import Account, User

from .servers import LiveServer, bearer

ADMIN = "/api/admin/v1"
PASSWORD = "correct horse battery staple"
SECOND = 1_000_000_000
MINUTE = 60 * SECOND
HOUR = 3600 * SECOND
DAY = 86400 * SECOND


@functools.cache
def password_hash() -> str:
    """One argon2 hash for the whole run (hashing costs ~0.2 s)."""
    return hash_password(PASSWORD)


@dataclass
class Person:
    user: User
    key: str  # a personal API key (sgp_...)
    key_id: str

    @property
    def email(self) -> str:
        return self.user.email

    @property
    def uuid(self) -> str:
        return self.user.uuid

    @property
    def headers(self) -> dict[str, str]:
        return bearer(self.key)


def error_message(response: httpx.Response, status: int) -> str:
    """Assert the status and the `{"Error": {"Message": ...}}` body; returns the message."""
    assert response.status_code == status, f"expected {status}, got {response.status_code}: {response.text}"
    body = response.json()
    assert set(body) == {"Error"}, body
    assert set(body["Error"]) <= {"Message", "Details"}, body
    message = body["Error"]["Message"]
    assert isinstance(message, str) and message, body
    return message


def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, f"expected {status}, got {response.status_code}: {response.text}"
    return None if status == 204 else response.json()


class Site:
    """Account `Acme` with an owner, an administrator and a member; `outsider` owns account `Other`."""

    def __init__(self, server: LiveServer, name: str | None = None) -> None:
        self.server = server
        self.services = server.services
        self.http: httpx.Client = server.http
        self.started_at = server.clock()
        suffix = new_id()[:6].lower()
        self.domain = f"{suffix}.example"
        self.account, owner = self.services.people.create_account(
            CLI, name or f"Acme-{suffix}", f"owner@{self.domain}", "Olivia Owner", None
        )
        assert owner is not None
        self.owner = self._with_key(owner)
        self.admin = self.add("admin", "administrator", "Adam Admin")
        self.member = self.add("member", "member", "Mia Member")
        self.other, outsider = self.services.people.create_account(
            CLI, f"Other-{suffix}", f"outsider@{self.domain}", "Oscar Outsider", None
        )
        assert outsider is not None
        self.outsider = self._with_key(outsider)

    # people ---------------------------------------------------------------------------------------
    def _with_key(self, user: User) -> Person:
        key, record = self.services.api_keys.create(user, "tests")
        return Person(user, key, record.id)

    def add(
        self, local: str, role: str, name: str | None = None, *, account: Account | None = None, password: bool = False
    ) -> Person:
        """Add a person (new, with `account` as home) with a role and an API key."""
        member = self.services.people.add_member(
            CLI, account or self.account, f"{local}@{self.domain}", name or local.title(), role
        )
        if password:
            self.set_password(member.user)
        return self._with_key(member.user)

    def join(self, person: Person, role: str, account: Account | None = None) -> None:
        """`person` (of another account) joins by invitation: the operator invites, they accept
        with the code through the admin API."""
        target = account or self.account
        code, invitation = self.services.invitations.invite(CLI, target, person.email, role)
        url = f"{ADMIN}/me/invitations/{invitation.id}/accept"
        ok(self.http.post(url, headers=person.headers, json={"code": code}))

    def set_password(self, user: User) -> None:
        self.services.store.set_password(user.id, password_hash())

    def role_of(self, person: Person, account: Account | None = None) -> str | None:
        members = self.services.store.list_members((account or self.account).id)
        return next((m.role for m in members if m.user.id == person.user.id), None)

    # admin API ------------------------------------------------------------------------------------
    def path(self, tail: str = "", account: Account | str | None = None) -> str:
        ref = account if isinstance(account, str) else (account or self.account).uuid
        return f"{ADMIN}/accounts/{ref}{tail}"

    def call(self, who: Person | None, method: str, url: str, **kwargs: Any) -> httpx.Response:
        headers = {**(who.headers if who else {}), **kwargs.pop("headers", {})}
        return self.http.request(method, url, headers=headers, **kwargs)

    def integration(self, who: Person | None = None, type: str = "splunk", name: str | None = None) -> dict[str, Any]:
        body = {"type": type, "name": name or f"{type} {new_id()[:6]}"}
        result: dict[str, Any] = ok(self.call(who or self.owner, "POST", self.path("/integrations"), json=body), 201)
        return result

    def issue(
        self, integration: dict[str, Any], who: Person | None = None, *, name: str = "hf1", **body: Any
    ) -> dict[str, Any]:
        """Issue a token through the admin API; returns the response (with `token`)."""
        url = self.path(f"/integrations/{integration['uuid']}/tokens")
        result: dict[str, Any] = ok(self.call(who or self.owner, "POST", url, json={"name": name, **body}), 201)
        return result

    def tokens(self, who: Person | None = None, **params: str) -> list[dict[str, Any]]:
        page = ok(self.call(who or self.owner, "GET", self.path("/tokens"), params={"limit": "200", **params}))
        assert page["next_cursor"] is None
        items: list[dict[str, Any]] = page["items"]
        return items

    def token(self, token_id: str, who: Person | None = None) -> dict[str, Any]:
        result: dict[str, Any] = ok(self.call(who or self.owner, "GET", self.path(f"/tokens/{token_id}")))
        return result

    def ingest_key(self, who: Person | None = None) -> dict[str, Any]:
        body = {"name": f"producer {new_id()[:6]}"}
        result: dict[str, Any] = ok(self.call(who or self.owner, "POST", self.path("/ingest-keys"), json=body), 201)
        return result

    # Events API -----------------------------------------------------------------------------------
    def reader(self, account: Account | None = None) -> str:
        """A token with every feature, issued directly (records nothing in the audit trail)."""
        acct = account or self.account
        store = self.services.store
        integration = store.create_integration(acct.id, new_id(), "other", f"reader {new_id()[:8]}", "", 0)
        token, _ = self.services.tokens.issue(acct, integration, "reader", list(ALL_FEATURES), None)
        return token

    def start_time(self) -> str:
        return format_ns(self.started_at - MINUTE)

    def events(
        self, token: str, feature: Feature = Feature.AUDITEVENTS, *, version: int = 2, cursor: str | None = None
    ) -> tuple[list[dict[str, Any]], str]:
        """Every event of the stream from a minute before the site was made (or after `cursor`),
        without the alerts the starter rules record (they arrive asynchronously; tests/alerts
        checks them)."""
        items, last = self._events(token, feature, version=version, cursor=cursor)
        return [i for i in items if not is_alert_event(i)], last

    def _events(
        self, token: str, feature: Feature, *, version: int, cursor: str | None
    ) -> tuple[list[dict[str, Any]], str]:
        if cursor is None:
            first = self.server.page(token, feature, {"start_time": self.start_time(), "limit": 1000}, version=version)
            assert first.status_code == 200, first.text
            data = first.json()
            items: list[dict[str, Any]] = data["items"]
            if not data["has_more"]:
                return items, data["cursor"]
            more, last = self.server.drain(token, feature, data["cursor"], version=version)
            return items + more, last
        more, last = self.server.drain(token, feature, cursor, version=version)
        return more, last


def only(items: Iterable[dict[str, Any]], **match: Any) -> dict[str, Any]:
    """The one item whose fields equal `match` (fails when there are none or several)."""
    found = [i for i in items if all(i.get(k) == v for k, v in match.items())]
    assert len(found) == 1, f"expected exactly one item with {match}, found {len(found)}: {found}"
    return found[0]


def audit_of(events: Iterable[dict[str, Any]], action: str, object_type: str) -> list[dict[str, Any]]:
    return [e for e in events if e["action"] == action and e["object_type"] == object_type]


def aux(event: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(event["aux_info"])
    return result
