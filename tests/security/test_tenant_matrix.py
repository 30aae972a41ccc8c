"""Every operation of an account in the admin API, taken from the OpenAPI document the server
serves (so an operation added later is attacked too, or this test fails until it is given a body
below), tried by an outsider, by no one, and by the account's least roles, against one account
holding one object of every kind. Nothing of the account may change, and no reply may carry
anything of it:

- the owner of another account, on the account's own paths: 404, worded as for an account that
  does not exist;
- the same outsider on their own account's paths, naming the account's objects (its
  integration, token, ingest key, person, invitation, rule, alert, delivery): never a success,
  never the object; and in the query filters of every listing (`integration=`, `rule=`...): never
  the object's data;
- no credentials: 401;
- a member, for every change: 403; an administrator, for every change kept for owners: 403.

"Nothing changed" is checked on the store itself: every row of every table that holds the
account's data (by its account id, or by its people), so a change through a path nobody thought
of is caught too. The tamper-evident log's tables (derived from the events, which are compared)
and the times a credential was last used are left out."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from siemgate.accounts.actor import CLI
from siemgate.model.features import Feature
from siemgate.model.ids import new_id
from siemgate.store.base import AlertCommit, AlertRecord, DeliveryRecord
from support.admin import Person, Site, error_message, ok
from support.servers import LiveServer, running_server

ACCOUNT_PATH = "/api/admin/v1/accounts/{account}"
RULE_ID = "matrix-export"
RULE: dict[str, Any] = {"id": RULE_ID, "name": "Matrix export", "source": "itemusages", "match": {"action": "export"}}

# A valid body for every change (what a member of the account would send); an operation missing
# here fails test_every_operation_of_an_account_is_attacked.
BODIES: dict[tuple[str, str], Callable[[Site], Any]] = {
    ("PATCH", ""): lambda s: {"name": f"renamed {new_id()[:6]}"},
    ("DELETE", ""): lambda s: None,
    ("PUT", "/security"): lambda s: {"require_two_factor": True},
    ("PATCH", "/members/{person}"): lambda s: {"role": "member"},
    ("DELETE", "/members/{person}"): lambda s: None,
    ("POST", "/invitations"): lambda s: {"email": f"new-{new_id()[:6]}@{s.domain}", "role": "member"},
    ("DELETE", "/invitations/{invitation_id}"): lambda s: None,
    ("POST", "/integrations"): lambda s: {"type": "splunk", "name": f"new {new_id()[:6]}"},
    ("PATCH", "/integrations/{integration}"): lambda s: {"name": f"renamed {new_id()[:6]}"},
    ("DELETE", "/integrations/{integration}"): lambda s: None,
    ("POST", "/integrations/{integration}/tokens"): lambda s: {"name": "stolen"},
    ("POST", "/tokens/{token}/revoke"): lambda s: None,
    ("POST", "/tokens/{token}/rotate"): lambda s: {"grace": "0"},
    ("POST", "/ingest-keys"): lambda s: {"name": f"producer {new_id()[:6]}"},
    ("DELETE", "/ingest-keys/{key_id}"): lambda s: None,
    ("POST", "/alert-rules"): lambda s: {**RULE, "id": f"new-{new_id()[:6].lower()}"},
    ("PUT", "/alert-rules/{rule_id}"): lambda s: {**RULE, "name": "Changed"},
    ("PATCH", "/alert-rules/{rule_id}"): lambda s: {"enabled": False},
    ("DELETE", "/alert-rules/{rule_id}"): lambda s: None,
    ("PATCH", "/alerts/{alert_id}"): lambda s: {"state": "resolved"},
    ("POST", "/alert-deliveries/{delivery_id}/retry"): lambda s: None,
}
OWNERS_ONLY = {("DELETE", ""), ("PUT", "/security")}
# query parameters of listings that name an object, and the object of the account they are given
FILTERS = {"integration": "integration", "rule": "rule_id", "alert": "alert_id", "person": "person"}
# path parameters naming one object of one account (a rule id is a name each account chooses for
# its own rules, a feature a stream every account has)
OBJECTS = {"integration", "token", "key_id", "person", "invitation_id", "alert_id", "delivery_id"}
VOLATILE = {"last_used_at", "last_seen_at"}  # a credential's use is recorded whoever is refused


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with running_server(tmp_path_factory.mktemp("matrix")) as live:
        yield live


class Target:
    """Account `site.account` with one object of every kind, its ids by path parameter."""

    def __init__(self, site: Site) -> None:
        self.site = site
        services, account = site.services, site.account
        integration = site.integration()
        token = site.issue(integration)
        key = site.ingest_key()
        code, invitation = services.invitations.invite(CLI, account, f"invited@{site.domain}", "member")
        ok(site.call(site.owner, "POST", site.path("/alert-rules"), json=RULE), 201)
        alert_id, delivery_id = new_id(), new_id()
        now = site.server.clock()
        services.store.commit_alert_evaluation(
            AlertCommit(
                account.id, None, None, 0,
                alerts=[AlertRecord(alert_id, account.id, RULE_ID, now, now, "medium", "itemusages", "{}",
                                    "A matrix alert", '{"summary": "A matrix alert"}')],
                deliveries=[DeliveryRecord(delivery_id, alert_id, account.id, RULE_ID,
                                           '{"type": "webhook", "url": "https://hooks.example.com/a"}', "webhook",
                                           "failed", 5, None, "refused", now)],
            )
        )  # fmt: skip
        self.secrets = [token["token"], key["key"], code]
        self.params = {
            "account": account.uuid,
            "integration": integration["uuid"],
            "token": token["id"],
            "key_id": key["id"],
            "person": site.admin.uuid,
            "invitation_id": invitation.id,
            "rule_id": RULE_ID,
            "alert_id": alert_id,
            "delivery_id": delivery_id,
            "feature": Feature.SIGNINATTEMPTS.value,
        }
        # what no reply to anyone outside the account may hold
        self.marks = [account.name, integration["name"], token["id"], key["id"], site.admin.email,
                      invitation.id, alert_id, delivery_id, "A matrix alert", *self.secrets]  # fmt: skip

    def url(self, tail: str, account: str | None = None) -> str:
        return ACCOUNT_PATH.format(account=account or self.params["account"]) + tail.format(**self.params)

    def call(self, who: Person | None, method: str, tail: str, account: str | None = None, **kwargs: Any) -> Any:
        body = BODIES[(method, tail)](self.site) if method != "GET" else None
        if body is not None:
            kwargs["json"] = body
        if (method, tail) == ("DELETE", ""):
            kwargs["params"] = {"confirm": self.site.account.name}
        return self.site.call(who, method, self.url(tail, account), **kwargs)

    def snapshot(self) -> dict[str, list[tuple[Any, ...]]]:
        """Every row of the account's data in the store (module docstring)."""
        self.site.services.usage.flush()
        path = Path(self.site.services.settings.data_dir) / "siemgate.db"
        account_id = self.site.account.id
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
            people = [r[0] for r in db.execute("SELECT user_id FROM memberships WHERE account_id = ?", (account_id,))]
            marks = ",".join("?" * len(people))
            rows: dict[str, list[tuple[Any, ...]]] = {}
            for (table,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"):
                columns = [r[1] for r in db.execute(f"PRAGMA table_info({table})")]
                kept = ", ".join(c for c in columns if c not in VOLATILE)
                if table.startswith("log_"):
                    continue
                if "account_id" in columns:
                    query, args = f"SELECT {kept} FROM {table} WHERE account_id = ?", [account_id]
                elif table == "accounts":
                    query, args = f"SELECT {kept} FROM accounts WHERE id = ?", [account_id]
                elif "user_id" in columns or table == "users":
                    key = "id" if table == "users" else "user_id"
                    query, args = f"SELECT {kept} FROM {table} WHERE {key} IN ({marks})", people
                else:
                    continue
                rows[table] = sorted(db.execute(query, args), key=repr)
        return rows

    def assert_unseen(self, response: Any) -> None:
        """No mark of the account in the reply, but those the request itself gave (echoed in a 404)."""
        asked = str(response.request.url) + response.request.content.decode()
        for mark in (m for m in self.marks if m not in asked):
            assert mark not in response.text, f"{mark!r} of the account in a reply to an outsider: {response.text}"


def operations(site: Site) -> list[tuple[str, str, dict[str, Any]]]:
    """(method, tail under /accounts/{account}, the OpenAPI operation) of every operation served."""
    document = ok(site.http.get("/openapi.json"))
    found = []
    for path, ops in document["paths"].items():
        if path == ACCOUNT_PATH or path.startswith(ACCOUNT_PATH + "/"):
            found += [(method.upper(), path[len(ACCOUNT_PATH) :], op) for method, op in ops.items()]
    return found


@pytest.fixture
def target(shared: LiveServer) -> Target:
    return Target(Site(shared))


def test_every_operation_of_an_account_is_attacked(target: Target) -> None:
    ops = operations(target.site)
    changes = {(m, t) for m, t, _ in ops if m != "GET"}
    assert changes == set(BODIES), f"give these a body in BODIES: {sorted(changes - set(BODIES))}"
    assert len([1 for m, _, _ in ops if m == "GET"]) >= 12
    held = target.snapshot()
    assert all(held[table] for table in ("alerts", "alert_deliveries", "tokens", "ingest_keys", "invitations", "users"))


def test_an_outsider_reaches_nothing_of_the_account_through_their_own_credentials(target: Target) -> None:
    """The operations on one's own person (`/me/...`) that name an object, given the account's:
    its owner's API key, the invitation it sent to someone else."""
    site = target.site
    document = ok(site.http.get("/openapi.json"))
    named = {"key_id": site.owner.key_id, "invitation_id": target.params["invitation_id"]}
    before = target.snapshot()
    tried = 0
    for path, ops in document["paths"].items():
        if not path.startswith("/api/admin/v1/me/") or "{" not in path:
            continue
        for method in ops:
            response = site.call(site.outsider, method.upper(), path.format(**named), json={"code": "0" * 20})
            assert response.status_code in (400, 403, 404), (method, path, response.status_code, response.text)
            target.assert_unseen(response)
            tried += 1
    assert tried >= 3
    assert target.snapshot() == before


def test_an_outsider_reaches_nothing_of_the_account_by_its_paths(target: Target) -> None:
    site = target.site
    before = target.snapshot()
    for method, tail, _ in operations(site):
        response = target.call(site.outsider, method, tail)
        message = error_message(response, 404)
        assert message == f"Not Found: no account {site.account.uuid!r}", (method, tail)
        target.assert_unseen(response)
    assert target.snapshot() == before


def test_an_outsider_reaches_nothing_of_the_account_through_their_own(target: Target) -> None:
    """The account's object ids under the outsider's own account path, and in its listings'
    filters (the outsider's own account is theirs to change: only what names an object of the
    other account is tried)."""
    site = target.site
    before = target.snapshot()
    own = site.other.uuid
    for method, tail, op in operations(site):
        names = {p["name"] for p in op.get("parameters", []) if p.get("in") == "query"}
        if "{" in tail:  # every path with an object: tried with the account's, on the outsider's own
            response = target.call(site.outsider, method, tail, own)
            if any(f"{{{name}}}" in tail for name in OBJECTS):
                assert response.status_code in (400, 404), (method, tail, response.status_code, response.text)
            target.assert_unseen(response)
        elif method == "GET":
            params = {name: target.params[FILTERS[name]] for name in names if name in FILTERS}
            response = target.call(site.outsider, method, tail, own, params=params)
            assert response.status_code in (200, 400, 404), (method, tail, response.status_code, response.text)
            target.assert_unseen(response)
    assert target.snapshot() == before


def test_no_credentials_reach_nothing(target: Target) -> None:
    before = target.snapshot()
    for method, tail, _ in operations(target.site):
        response = target.call(None, method, tail)
        error_message(response, 401)
        target.assert_unseen(response)
    assert target.snapshot() == before


@pytest.mark.parametrize("role", ["member", "admin"])
def test_a_lesser_role_changes_nothing_it_may_not(target: Target, role: str) -> None:
    site = target.site
    who = site.member if role == "member" else site.admin
    before = target.snapshot()
    refused = [(m, t) for m, t, _ in operations(site) if m != "GET" and (role == "member" or (m, t) in OWNERS_ONLY)]
    assert refused
    for method, tail in refused:
        if (method, tail) == ("PATCH", "/members/{person}") or (method, tail) == ("DELETE", "/members/{person}"):
            target.params["person"] = site.owner.uuid  # the lesser role acting on someone else
        error_message(target.call(who, method, tail), 403)
        target.params["person"] = site.admin.uuid
    assert target.snapshot() == before
