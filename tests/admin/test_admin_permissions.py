"""Who may do what in the admin API, through real HTTP: every role (owner, administrator, member),
outsiders, wrong credentials, console sessions with CSRF, the sign-in limiter, the last-owner
invariant, pagination and the error body shape (docs/setup.md)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from siemgate.accounts.actor import CLI
from siemgate.auth.sessions import COOKIE
from siemgate.errors import Conflict
from siemgate.model.features import Feature
from siemgate.model.ids import new_id
from support.admin import ADMIN, HOUR, PASSWORD, Person, Site, error_message, ok
from support.servers import LiveServer, bearer
from support.stores import BOTH_BACKENDS

server_backend = BOTH_BACKENDS  # these HTTP tests run on SQLite and PostgreSQL
# people rename accounts only where they may create them (the CHANGES below include a rename)
SHARED_SERVER_SETTINGS = {"allow_account_creation": True}

AUDIT = Feature.AUDITEVENTS


def _targets(site: Site) -> dict[str, str]:
    """An integration with a token, and an ingest key, made by the owner."""
    integration = site.integration()
    token = site.issue(integration)
    key = site.ingest_key()
    return {
        "integration": integration["uuid"],
        "token": token["id"],
        "secret": token["token"],
        "ingest_key": key["id"],
        "ingest_secret": key["key"],
    }


def _snapshot(site: Site) -> tuple[Any, ...]:
    """Everything a change could touch in the site's account, including its audit stream head."""
    store, account = site.services.store, site.account
    return (
        store.get_account_by_id(account.id),
        sorted((m.user.id, m.role) for m in store.list_members(account.id)),
        store.list_integrations(account.id),
        [(t.id, t.revoked_at, t.revoke_at) for t in store.list_tokens(account.id)],
        store.list_ingest_keys(account.id),
        store.head_seq(account.id, AUDIT),
    )


# (method, path under /accounts/{account}, body); `t` holds the ids made by _targets.
Change = Callable[[Site, dict[str, str]], tuple[str, str, Any]]
CHANGES: dict[str, tuple[Change, str]] = {
    "create integration": (
        lambda s, t: ("POST", "/integrations", {"type": "splunk", "name": "new"}),
        "create integrations",
    ),
    "rename integration": (
        lambda s, t: ("PATCH", f"/integrations/{t['integration']}", {"name": "renamed"}),
        "change integrations",
    ),
    "delete integration": (lambda s, t: ("DELETE", f"/integrations/{t['integration']}", None), "delete integrations"),
    "issue token": (lambda s, t: ("POST", f"/integrations/{t['integration']}/tokens", {"name": "x"}), "issue tokens"),
    "revoke token": (lambda s, t: ("POST", f"/tokens/{t['token']}/revoke", None), "revoke tokens"),
    "rotate token": (lambda s, t: ("POST", f"/tokens/{t['token']}/rotate", {"grace": "0"}), "rotate tokens"),
    "create ingest key": (lambda s, t: ("POST", "/ingest-keys", {"name": "bridge"}), "create ingest keys"),
    "revoke ingest key": (lambda s, t: ("DELETE", f"/ingest-keys/{t['ingest_key']}", None), "revoke ingest keys"),
    "invite": (
        lambda s, t: ("POST", "/invitations", {"email": f"new-{new_id()[:6]}@{s.domain}", "role": "member"}),
        "invite",
    ),
    "remove member": (lambda s, t: ("DELETE", f"/members/{s.admin.uuid}", None), "remove members"),
    "change role": (lambda s, t: ("PATCH", f"/members/{s.admin.uuid}", {"role": "member"}), "change roles"),
    "rename account": (lambda s, t: ("PATCH", "", {"name": f"renamed {new_id()[:6]}"}), "rename the account"),
}
SUCCESS = {"POST": {200, 201}, "PATCH": {200}, "DELETE": {200, 204}}
READS = [
    "",
    "/members",
    "/integrations",
    "/integrations/{integration}",
    "/tokens",
    "/tokens?status=active",
    "/tokens/{token}",
    "/ingest-keys",
]


def _do(site: Site, who: Person | None, change: str, targets: dict[str, str], account: str | None = None) -> Any:
    method, tail, body = CHANGES[change][0](site, targets)
    kwargs = {} if body is None else {"json": body}
    return site.call(who, method, site.path(tail, account), **kwargs)


# --- reading -------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["owner", "admin", "member"])
def test_every_member_can_read_the_account_and_never_sees_a_secret(site: Site, role: str) -> None:
    targets = _targets(site)
    who: Person = getattr(site, role)
    expected_role = {"owner": "owner", "admin": "administrator", "member": "member"}[role]

    accounts = ok(site.call(who, "GET", f"{ADMIN}/accounts"))["items"]
    assert [(a["uuid"], a["role"]) for a in accounts] == [(site.account.uuid, expected_role)]
    me = ok(site.call(who, "GET", f"{ADMIN}/me"))
    assert me["email"] == who.email
    assert [(a["uuid"], a["role"]) for a in me["accounts"]] == [(site.account.uuid, expected_role)]
    assert ok(site.call(who, "GET", site.path()))["role"] == expected_role
    for read in READS:
        response = site.call(who, "GET", site.path(read.format(**targets)))
        ok(response)
        for secret in (targets["secret"], targets["ingest_secret"], site.owner.key, who.key):
            assert secret not in response.text, read
    members = ok(site.call(who, "GET", site.path("/members")))["items"]
    assert {(m["email"], m["role"]) for m in members} == {
        (site.owner.email, "owner"),
        (site.admin.email, "administrator"),
        (site.member.email, "member"),
    }
    assert [i["uuid"] for i in ok(site.call(who, "GET", site.path("/integrations")))["items"]] == [
        targets["integration"]
    ]
    [token] = ok(site.call(who, "GET", site.path("/tokens")))["items"]
    assert token["id"] == targets["token"] and "token" not in token
    [key] = ok(site.call(who, "GET", site.path("/ingest-keys")))["items"]
    assert key["id"] == targets["ingest_key"] and "key" not in key
    assert len(ok(site.call(who, "GET", f"{ADMIN}/siem-types"))) == 11


def test_an_account_may_be_named_instead_of_its_uuid(site: Site) -> None:
    assert ok(site.call(site.member, "GET", site.path("", site.account.name)))["uuid"] == site.account.uuid
    message = error_message(site.call(site.outsider, "GET", site.path("", site.account.name)), 404)
    assert message == f"Not Found: no account {site.account.name!r}"


# --- outsiders -----------------------------------------------------------------------------------


def test_an_outsider_gets_404_for_every_read_as_if_the_account_did_not_exist(site: Site) -> None:
    targets = _targets(site)
    assert [a["uuid"] for a in ok(site.call(site.outsider, "GET", f"{ADMIN}/accounts"))["items"]] == [site.other.uuid]
    ghost = new_id()
    for read in READS:
        tail = read.format(**targets)
        real = error_message(site.call(site.outsider, "GET", site.path(tail)), 404)
        missing = error_message(site.call(site.outsider, "GET", site.path(tail, ghost)), 404)
        assert real == f"Not Found: no account {site.account.uuid!r}"
        assert real.replace(site.account.uuid, ghost) == missing, "the message must not reveal that the account exists"


@pytest.mark.parametrize("change", list(CHANGES))
def test_an_outsider_gets_404_for_every_change_and_nothing_changes(site: Site, change: str) -> None:
    targets = _targets(site)
    before = _snapshot(site)
    message = error_message(_do(site, site.outsider, change, targets), 404)
    assert message == f"Not Found: no account {site.account.uuid!r}"
    assert _snapshot(site) == before


def test_an_outsider_cannot_reach_another_accounts_objects_through_their_own_account(site: Site) -> None:
    """Ids of account A used under account B (where the outsider is owner) are not found."""
    targets = _targets(site)
    before = _snapshot(site)
    other = site.other.uuid
    attempts = [
        ("GET", f"/integrations/{targets['integration']}", None),
        ("PATCH", f"/integrations/{targets['integration']}", {"name": "stolen"}),
        ("DELETE", f"/integrations/{targets['integration']}", None),
        ("POST", f"/integrations/{targets['integration']}/tokens", {"name": "stolen"}),
        ("GET", f"/tokens?integration={targets['integration']}", None),
        ("GET", f"/tokens/{targets['token']}", None),
        ("POST", f"/tokens/{targets['token']}/revoke", None),
        ("POST", f"/tokens/{targets['token']}/rotate", {"grace": "0"}),
        ("DELETE", f"/ingest-keys/{targets['ingest_key']}", None),
        ("PATCH", f"/members/{site.owner.uuid}", {"role": "member"}),
        ("DELETE", f"/members/{site.owner.uuid}", None),
    ]
    for method, tail, body in attempts:
        kwargs: dict[str, Any] = {} if body is None else {"json": body}
        response = site.call(site.outsider, method, site.path(tail, other), **kwargs)
        error_message(response, 404)
        assert targets["secret"] not in response.text
    error_message(site.call(site.outsider, "DELETE", f"{ADMIN}/me/api-keys/{site.owner.key_id}"), 404)
    assert _snapshot(site) == before
    assert site.server.page(targets["secret"], AUDIT, {}).status_code == 200
    assert ok(site.call(site.owner, "GET", f"{ADMIN}/me"))["email"] == site.owner.email


def test_adding_an_existing_person_never_sets_their_password(own_site: Site) -> None:
    """An owner of account B 'adds' an owner of account A, who has no console password yet, with a
    password of B's choosing: that must not let B's owner sign in as them and act in A."""
    site = own_site
    assert site.services.store.get_user(site.owner.email).password_hash is None
    response = site.call(
        site.outsider,
        "POST",
        site.path("/invitations", site.other),
        json={"email": site.owner.email, "role": "member", "password": "chosen-by-the-outsider"},
    )
    assert "password" in error_message(response, 400)  # an invitation carries no password
    invited = site.call(site.outsider, "POST", site.path("/invitations", site.other), json={"email": site.owner.email})
    assert ok(invited, 201)["status"] == "pending"
    assert site.role_of(site.owner, site.other) is None
    with httpx.Client(base_url=site.server.base_url) as browser:
        signed_in = browser.post(
            f"{ADMIN}/session", json={"email": site.owner.email, "password": "chosen-by-the-outsider"}
        )
        assert signed_in.status_code == 401, f"the outsider signed in as the owner of A: {signed_in.text}"
    assert site.services.store.get_user(site.owner.email).password_hash is None


def test_a_failed_invitation_changes_nothing(site: Site) -> None:
    """Inviting someone who is already a member is a 409 and must leave the person untouched."""
    store = site.services.store
    before = store.get_user(site.member.email)
    response = site.call(site.owner, "POST", site.path("/invitations"), json={"email": site.member.email})
    assert "already a member" in error_message(response, 409)
    assert store.get_user(site.member.email) == before
    assert store.list_invitations(site.account.id) == []


# --- credentials ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "fragment"),
    [
        ("none", "send a personal API key"),
        ("unknown api key", "not known"),
        ("basic auth", "personal API key"),
        ("junk session cookie", "sign in again"),
        ("siem token", "personal API key"),
        ("ingest key", "personal API key"),
    ],
)
def test_missing_wrong_or_foreign_credentials_get_401(site: Site, kind: str, fragment: str) -> None:
    targets = _targets(site)
    headers = {
        "none": {},
        "unknown api key": bearer("sgp_" + "A" * 43),
        "basic auth": {"Authorization": "Basic dXNlcjpwYXNz"},
        "junk session cookie": {"Cookie": f"{COOKIE}=not-a-session"},
        "siem token": bearer(targets["secret"]),
        "ingest key": bearer(targets["ingest_secret"]),
    }[kind]
    before = _snapshot(site)
    for method, url, body in [
        ("GET", f"{ADMIN}/me", None),
        ("GET", f"{ADMIN}/accounts", None),
        ("GET", site.path("/tokens"), None),
        ("POST", site.path("/integrations"), {"type": "splunk", "name": "x"}),
        ("POST", site.path(f"/tokens/{targets['token']}/revoke"), None),
    ]:
        kwargs: dict[str, Any] = {} if body is None else {"json": body}
        response = site.http.request(method, url, headers=headers, **kwargs)
        message = error_message(response, 401)
        assert message.startswith("Unauthorized"), message
        assert fragment in message, message
        assert response.headers.get("www-authenticate") == "Bearer"
    assert _snapshot(site) == before


def test_siem_tokens_and_ingest_keys_are_told_to_use_a_personal_api_key(site: Site) -> None:
    targets = _targets(site)
    token = error_message(site.http.get(f"{ADMIN}/me", headers=bearer(targets["secret"])), 401)
    assert "SIEM tokens can only read events" in token and "personal API key (sgp_" in token
    ingest = error_message(site.http.get(f"{ADMIN}/me", headers=bearer(targets["ingest_secret"])), 401)
    assert "ingest keys can only add events" in ingest and "personal API key (sgp_" in ingest


def test_a_revoked_personal_api_key_is_refused(site: Site) -> None:
    second, record = site.services.api_keys.create(site.owner.user, "second")
    keys = ok(site.call(site.owner, "GET", f"{ADMIN}/me/api-keys"))["items"]
    assert {k["id"] for k in keys} == {site.owner.key_id, record.id}
    assert all(second not in str(k) and site.owner.key not in str(k) for k in keys)
    revoked = ok(site.http.delete(f"{ADMIN}/me/api-keys/{record.id}", headers=site.owner.headers))
    assert revoked["status"] == "revoked"
    message = error_message(site.http.get(f"{ADMIN}/me", headers=bearer(second)), 401)
    assert "revoked" in message
    ok(site.call(site.owner, "GET", f"{ADMIN}/me"))


def test_an_expired_personal_api_key_is_refused(make_server: Any) -> None:
    server = make_server()
    site = Site(server)
    created = ok(site.call(site.owner, "POST", f"{ADMIN}/me/api-keys", json={"name": "ci", "expires": "1h"}), 201)
    assert created["key"].startswith("sgp_") and created["expires_at"] is not None
    ok(site.http.get(f"{ADMIN}/me", headers=bearer(created["key"])))
    server.clock.advance(HOUR / 1e9 + 1)
    message = error_message(site.http.get(f"{ADMIN}/me", headers=bearer(created["key"])), 401)
    assert "expired" in message
    statuses = {k["id"]: k["status"] for k in ok(site.call(site.owner, "GET", f"{ADMIN}/me/api-keys"))["items"]}
    assert statuses[created["id"]] == "expired"


# --- members: read-only ---------------------------------------------------------------------------


@pytest.mark.parametrize("change", list(CHANGES))
def test_a_member_gets_403_naming_the_role_needed_and_nothing_changes(site: Site, change: str) -> None:
    targets = _targets(site)
    before = _snapshot(site)
    message = error_message(_do(site, site.member, change, targets), 403)
    assert message.startswith("Forbidden: only an owner or administrator can "), message
    assert CHANGES[change][1] in message
    assert f"you are a member of {site.account.name!r}" in message
    assert _snapshot(site) == before


def test_a_members_role_change_is_403_even_when_it_changes_nothing(site: Site) -> None:
    """A member may not change roles at all; a PATCH that would leave the role as it is must not
    skip the permission check (it answers 200 today)."""
    url = site.path(f"/members/{site.admin.uuid}")
    response = site.call(site.member, "PATCH", url, json={"role": "administrator"})
    assert "only an owner or administrator" in error_message(response, 403)


def test_role_changes_and_removals_apply_to_the_very_next_request(site: Site) -> None:
    body = {"type": "splunk", "name": "first"}
    ok(site.call(site.admin, "POST", site.path("/integrations"), json=body), 201)
    ok(site.call(site.owner, "PATCH", site.path(f"/members/{site.admin.uuid}"), json={"role": "member"}))
    body = {"type": "splunk", "name": "second"}
    error_message(site.call(site.admin, "POST", site.path("/integrations"), json=body), 403)
    ok(site.call(site.owner, "DELETE", site.path(f"/members/{site.admin.uuid}")), 204)
    # their last account: their API key is revoked with the removal (docs/security.md, "Console sessions")
    assert "revoked" in error_message(site.call(site.admin, "GET", site.path()), 401)
    assert "revoked" in error_message(site.call(site.admin, "GET", f"{ADMIN}/accounts"), 401)


def test_a_member_cannot_promote_themselves(site: Site) -> None:
    for role in ("administrator", "owner"):
        response = site.call(site.member, "PATCH", site.path(f"/members/{site.member.uuid}"), json={"role": role})
        assert "only an owner" in error_message(response, 403)
    assert site.role_of(site.member) == "member"


# --- administrators: everything but the owner role -------------------------------------------------


@pytest.mark.parametrize("change", list(CHANGES))
def test_an_administrator_can_make_every_change(site: Site, change: str) -> None:
    targets = _targets(site)
    if change in ("remove member", "change role"):  # the admin acts on another administrator
        other = site.add("second-admin", "administrator")
        site.admin, actor = other, site.admin
    else:
        actor = site.admin
    method = CHANGES[change][0](site, targets)[0]
    response = _do(site, actor, change, targets)
    assert response.status_code in SUCCESS[method], response.text


@pytest.mark.parametrize("change", list(CHANGES))
def test_an_owner_can_make_every_change(site: Site, change: str) -> None:
    targets = _targets(site)
    method = CHANGES[change][0](site, targets)[0]
    response = _do(site, site.owner, change, targets)
    assert response.status_code in SUCCESS[method], response.text


def test_only_the_operator_renames_accounts_where_people_cannot_create_them(own_site: Site) -> None:
    """Account names are unique across the server: a 409 for another tenant's name told an owner or
    administrator that the tenant exists. On a server where only the operator creates accounts,
    only the operator renames them, and the refusal is the same for a taken name and a free one."""
    site = own_site
    before = _snapshot(site)
    replies = {
        (who.email, name): error_message(site.call(who, "PATCH", site.path(), json={"name": name}), 403)
        for who in (site.owner, site.admin)
        for name in (site.other.name, f"free {new_id()[:6]}")
    }
    assert len(set(replies.values())) == 1, replies
    assert "siemgate account rename" in next(iter(replies.values()))
    assert _snapshot(site) == before
    renamed = site.services.people.rename_account(CLI, site.account, f"{site.account.name} (EU)")
    assert ok(site.call(site.member, "GET", site.path()))["name"] == renamed.name


def test_an_administrator_manages_members_below_owner(site: Site) -> None:
    invited = ok(
        site.call(
            site.admin, "POST", site.path("/invitations"), json={"email": f"dev@{site.domain}", "role": "member"}
        ),
        201,
    )
    assert invited["role"] == "member" and invited["status"] == "pending"
    added = {"uuid": site.add("dev", "member").uuid}
    promoted = ok(
        site.call(site.admin, "PATCH", site.path(f"/members/{added['uuid']}"), json={"role": "administrator"})
    )
    assert promoted["role"] == "administrator"
    demoted = ok(site.call(site.admin, "PATCH", site.path(f"/members/{added['uuid']}"), json={"role": "member"}))
    assert demoted["role"] == "member"
    ok(site.call(site.admin, "DELETE", site.path(f"/members/{added['uuid']}")), 204)
    assert f"dev@{site.domain}" not in {m.user.email for m in site.services.store.list_members(site.account.id)}


def test_an_administrator_cannot_grant_change_or_remove_the_owner_role(site: Site) -> None:
    before = _snapshot(site)
    attempts = [
        (
            "POST",
            "/invitations",
            {"email": f"boss@{site.domain}", "role": "owner"},
            "only an owner can invite owners",
        ),
        ("PATCH", f"/members/{site.member.uuid}", {"role": "owner"}, "only an owner can change the owner role"),
        ("PATCH", f"/members/{site.admin.uuid}", {"role": "owner"}, "only an owner can change the owner role"),
        ("PATCH", f"/members/{site.owner.uuid}", {"role": "member"}, "only an owner can change the owner role"),
        ("DELETE", f"/members/{site.owner.uuid}", None, "only an owner can remove an owner"),
    ]
    for method, tail, body, fragment in attempts:
        kwargs: dict[str, Any] = {} if body is None else {"json": body}
        message = error_message(site.call(site.admin, method, site.path(tail), **kwargs), 403)
        assert message.startswith("Forbidden: "), message
        assert fragment in message, message
    assert _snapshot(site) == before


def test_the_forbidden_message_names_an_administrators_role_grammatically(site: Site) -> None:
    response = site.call(site.admin, "PATCH", site.path(f"/members/{site.owner.uuid}"), json={"role": "member"})
    message = error_message(response, 403)
    assert f"you are an administrator of {site.account.name!r}" in message, message


def test_an_owner_grants_changes_and_removes_the_owner_role(site: Site) -> None:
    invited = ok(
        site.call(site.owner, "POST", site.path("/invitations"), json={"email": f"co@{site.domain}", "role": "owner"}),
        201,
    )
    assert invited["role"] == "owner"
    added = {"uuid": site.add("co", "member").uuid}
    ok(site.call(site.owner, "PATCH", site.path(f"/members/{added['uuid']}"), json={"role": "owner"}))
    ok(site.call(site.owner, "PATCH", site.path(f"/members/{site.admin.uuid}"), json={"role": "owner"}))
    assert site.role_of(site.admin) == "owner"
    ok(site.call(site.owner, "PATCH", site.path(f"/members/{added['uuid']}"), json={"role": "administrator"}))
    ok(site.call(site.owner, "DELETE", site.path(f"/members/{site.admin.uuid}")), 204)
    assert site.role_of(site.admin) is None
    # and an owner may step down while another owner remains
    ok(site.call(site.owner, "PATCH", site.path(f"/members/{added['uuid']}"), json={"role": "owner"}))
    ok(site.call(site.owner, "PATCH", site.path(f"/members/{site.owner.uuid}"), json={"role": "member"}))
    assert site.role_of(site.owner) == "member"


# --- the account always keeps an owner ---------------------------------------------------------------


def test_the_last_owner_can_be_neither_demoted_nor_removed(site: Site) -> None:
    before = _snapshot(site)
    for role in ("administrator", "member"):
        response = site.call(site.owner, "PATCH", site.path(f"/members/{site.owner.uuid}"), json={"role": role})
        assert "at least one owner" in error_message(response, 409)
    response = site.call(site.owner, "DELETE", site.path(f"/members/{site.owner.uuid}"))
    assert "at least one owner" in error_message(response, 409)
    assert _snapshot(site) == before  # no role changed, no audit event recorded
    # the command line (which acts as an owner) is refused too
    for attempt in (
        lambda: site.services.people.set_role(CLI, site.account, site.owner.email, "member"),
        lambda: site.services.people.remove_member(CLI, site.account, site.owner.email),
    ):
        with pytest.raises(Conflict, match="at least one owner"):
            attempt()
    assert _snapshot(site) == before


def test_two_owners_demoting_each_other_leave_one_owner(site: Site) -> None:
    second = site.add("second-owner", "owner")
    ok(site.call(site.owner, "PATCH", site.path(f"/members/{second.uuid}"), json={"role": "administrator"}))
    # the demoted owner is now an administrator and cannot demote the remaining owner
    response = site.call(second, "PATCH", site.path(f"/members/{site.owner.uuid}"), json={"role": "administrator"})
    assert "only an owner" in error_message(response, 403)
    response = site.call(site.owner, "PATCH", site.path(f"/members/{site.owner.uuid}"), json={"role": "member"})
    assert "at least one owner" in error_message(response, 409)
    # the other way round
    ok(site.call(site.owner, "PATCH", site.path(f"/members/{second.uuid}"), json={"role": "owner"}))
    ok(site.call(second, "PATCH", site.path(f"/members/{site.owner.uuid}"), json={"role": "member"}))
    response = site.call(second, "DELETE", site.path(f"/members/{second.uuid}"))
    assert "at least one owner" in error_message(response, 409)
    assert (site.role_of(site.owner), site.role_of(second)) == ("member", "owner")


def test_two_owners_demoting_each_other_at_the_same_time_leave_one_owner(site: Site) -> None:
    second = site.add("second-owner", "owner")
    pairs = [(site.owner, second), (second, site.owner)]
    for _ in range(5):
        for person in (site.owner, second):
            if site.role_of(person) != "owner":
                site.services.people.set_role(CLI, site.account, person.email, "owner")
        barrier = threading.Barrier(2)
        statuses: list[int] = []

        def demote(
            actor: Person, target: Person, barrier: threading.Barrier = barrier, statuses: list[int] = statuses
        ) -> None:
            with httpx.Client(base_url=site.server.base_url, timeout=30) as client:
                barrier.wait(timeout=10)
                url = site.path(f"/members/{target.uuid}")
                response = client.patch(url, headers=actor.headers, json={"role": "member"})
                statuses.append(response.status_code)

        threads = [threading.Thread(target=demote, args=pair) for pair in pairs]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert sorted(statuses)[0] == 200 and sorted(statuses)[1] in (403, 409), statuses
        roles = [site.role_of(site.owner), site.role_of(second)]
        assert roles.count("owner") == 1, roles


# --- console sessions --------------------------------------------------------------------------------


def test_a_console_session_signs_in_needs_csrf_for_changes_and_signs_out(own_site: Site) -> None:
    site = own_site
    site.set_password(site.owner.user)
    with httpx.Client(base_url=site.server.base_url) as browser:
        signed_in = browser.post(
            f"{ADMIN}/session",
            json={"email": site.owner.email, "password": PASSWORD},
            headers={"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0"},
        )
        session = ok(signed_in)
        [cookie_header] = signed_in.headers.get_list("set-cookie")
        attributes = {part.strip().split("=")[0].lower(): part.strip() for part in cookie_header.split(";")}
        assert "httponly" in attributes
        assert attributes["samesite"].lower() == "samesite=strict"
        assert attributes["path"] == "Path=/"
        cookie = browser.cookies[COOKIE]
        assert cookie and cookie not in signed_in.text
        csrf = session["csrf_token"]
        assert session["user"]["email"] == site.owner.email
        assert [a["uuid"] for a in session["user"]["accounts"]] == [site.account.uuid]

        assert ok(browser.get(f"{ADMIN}/me"))["email"] == site.owner.email
        ok(browser.get(site.path("/tokens")))  # reads need no CSRF token
        body = {"type": "elastic", "name": "from the console"}
        for headers in ({}, {"X-CSRF-Token": "wrong"}, {"X-CSRF-Token": ""}):
            message = error_message(browser.post(site.path("/integrations"), json=body, headers=headers), 403)
            assert "CSRF" in message
        assert site.services.store.list_integrations(site.account.id) == []
        created = ok(browser.post(site.path("/integrations"), json=body, headers={"X-CSRF-Token": csrf}), 201)
        assert created["name"] == "from the console"

        error_message(browser.delete(f"{ADMIN}/session"), 403)  # signing out is a change too
        signed_out = browser.delete(f"{ADMIN}/session", headers={"X-CSRF-Token": csrf})
        assert signed_out.status_code == 204
        assert any(
            COOKIE in h and ("max-age=0" in h.lower() or "expires=" in h.lower())
            for h in signed_out.headers.get_list("set-cookie")
        )
    # the old cookie no longer works, whatever the browser does with it
    with httpx.Client(base_url=site.server.base_url, cookies={COOKIE: cookie}) as replay:
        message = error_message(replay.get(f"{ADMIN}/me"), 401)
        assert "sign in again" in message
        error_message(replay.post(site.path("/integrations"), json=body, headers={"X-CSRF-Token": csrf}), 401)


def test_a_members_console_session_is_read_only(own_site: Site) -> None:
    site = own_site
    site.set_password(site.member.user)
    with httpx.Client(base_url=site.server.base_url) as browser:
        csrf = ok(browser.post(f"{ADMIN}/session", json={"email": site.member.email, "password": PASSWORD}))[
            "csrf_token"
        ]
        ok(browser.get(site.path("/integrations")))
        response = browser.post(
            site.path("/integrations"), json={"type": "splunk", "name": "x"}, headers={"X-CSRF-Token": csrf}
        )
        assert "only an owner or administrator" in error_message(response, 403)


def test_a_wrong_password_or_unknown_email_is_401_with_one_message(own_site: Site) -> None:
    site = own_site
    site.set_password(site.admin.user)
    with httpx.Client(base_url=site.server.base_url) as browser:
        wrong = error_message(
            browser.post(f"{ADMIN}/session", json={"email": site.admin.email, "password": "not the password"}), 401
        )
        unknown = error_message(
            browser.post(f"{ADMIN}/session", json={"email": f"nobody@{site.domain}", "password": PASSWORD}), 401
        )
        no_password = error_message(
            browser.post(f"{ADMIN}/session", json={"email": site.member.email, "password": PASSWORD}), 401
        )
        assert wrong == unknown == no_password
        assert COOKIE not in browser.cookies


def test_five_failed_sign_ins_rate_limit_the_email_even_with_the_right_password(own_site: Site) -> None:
    site = own_site
    site.set_password(site.owner.user)
    with httpx.Client(base_url=site.server.base_url) as browser:
        for _ in range(5):
            error_message(
                browser.post(f"{ADMIN}/session", json={"email": site.owner.email, "password": "guess-guess-guess"}),
                401,
            )
        limited = browser.post(f"{ADMIN}/session", json={"email": site.owner.email.upper(), "password": PASSWORD})
        message = error_message(limited, 429)
        assert "too many failed sign-ins" in message
        assert int(limited.headers["retry-after"]) > 0
        assert COOKIE not in browser.cookies
    # API keys are not affected by the console's sign-in limiter
    ok(site.call(site.owner, "GET", f"{ADMIN}/me"))


def test_a_console_session_ends_after_12_idle_hours(make_server: Callable[..., LiveServer]) -> None:
    """With a lifetime longer than 12 hours (console_session_hours) and an idle limit of 12 hours
    (console_idle_minutes), a use extends the session by 12 hours, up to its lifetime
    (tests/security/test_console_sessions.py)."""
    site = Site(make_server(console_session_hours=48, console_idle_minutes=720))
    site.set_password(site.owner.user)
    with httpx.Client(base_url=site.server.base_url) as browser:
        ok(browser.post(f"{ADMIN}/session", json={"email": site.owner.email, "password": PASSWORD}))
        site.server.clock.advance(11 * 3600)
        ok(browser.get(f"{ADMIN}/me"))  # a use extends the session
        site.server.clock.advance(11 * 3600)
        ok(browser.get(f"{ADMIN}/me"))
        site.server.clock.advance(12 * 3600 + 1)
        assert "expired" in error_message(browser.get(f"{ADMIN}/me"), 401)


# --- pagination and error bodies -------------------------------------------------------------------------


def _populate(site: Site, what: str) -> tuple[str, set[str], Callable[[dict[str, Any]], str]]:
    """Make at least 7 items in the list `what`; returns (url, expected keys, key of an item)."""
    if what == "members":
        for n in range(5):
            site.add(f"extra{n}", "member")
        emails = {m.user.email for m in site.services.store.list_members(site.account.id)}
        return site.path("/members"), emails, lambda item: item["email"]
    if what == "integrations":
        made = {site.integration(name=f"int {n}")["uuid"] for n in range(7)}
        return site.path("/integrations"), made, lambda item: item["uuid"]
    if what == "tokens":
        integration = site.integration()
        made = {site.issue(integration, name=f"t{n}")["id"] for n in range(7)}
        return site.path("/tokens"), made, lambda item: item["id"]
    assert what == "accounts"
    made = {site.account.uuid}
    for n in range(6):
        account, _ = site.services.people.create_account(CLI, f"{site.account.name} {n}", None, None, None)
        site.services.store.add_member(account.id, site.owner.user.id, "owner", 0)
        made.add(account.uuid)
    return f"{ADMIN}/accounts", made, lambda item: item["uuid"]


@pytest.mark.parametrize("what", ["members", "integrations", "tokens", "accounts"])
def test_lists_are_paginated_with_next_cursor(site: Site, what: str) -> None:
    url, expected, key = _populate(site, what)
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        params = {"limit": "3", **({"cursor": cursor} if cursor else {})}
        page = ok(site.call(site.owner, "GET", url, params=params))
        assert set(page) == {"items", "next_cursor"}
        assert len(page["items"]) <= 3
        seen.extend(key(item) for item in page["items"])
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
        assert len(page["items"]) == 3
    assert len(seen) == len(set(seen)) == len(expected), seen
    assert set(seen) == expected
    assert pages == -(-len(expected) // 3)
    whole = ok(site.call(site.owner, "GET", url, params={"limit": "200"}))
    assert [key(item) for item in whole["items"]] == seen and whole["next_cursor"] is None


def _lists(site: Site) -> dict[str, str]:
    return {
        "members": site.path("/members"),
        "integrations": site.path("/integrations"),
        "tokens": site.path("/tokens"),
        "accounts": f"{ADMIN}/accounts",
    }


@pytest.mark.parametrize("what", ["members", "integrations", "tokens", "accounts"])
@pytest.mark.parametrize("limit", ["0", "201", "ten"])
def test_a_bad_limit_is_400(site: Site, what: str, limit: str) -> None:
    message = error_message(site.call(site.owner, "GET", _lists(site)[what], params={"limit": limit}), 400)
    assert message.startswith("Bad Request") and "limit" in message, message


def test_a_cursor_that_is_not_a_next_cursor_is_400(site: Site) -> None:
    """A cursor this API did not hand out is refused, not read as 'from the start' or 'past the end'."""
    site.integration()
    site.issue(site.integration())
    bad_cursors = [
        "!!!",  # not base64 at all
        "bm90IGEgY3Vyc29yIGZyb20gdGhpcyBBUEk",  # base64 of "not a cursor from this API"
        "%%%",
        "a",
    ]
    answers = {}
    for what, url in _lists(site).items():
        for cursor in bad_cursors:
            response = site.call(site.owner, "GET", url, params={"cursor": cursor})
            answers[(what, cursor)] = response.status_code
            if response.status_code == 400:
                assert "cursor" in error_message(response, 400)
    wrong = {key: status for key, status in answers.items() if status != 400}
    assert not wrong, f"cursors accepted (list, cursor) -> status: {wrong}"


def test_a_taken_integration_name_is_409(site: Site) -> None:
    site.integration(name="Splunk")
    other = site.integration(name="Elastic")
    response = site.call(site.owner, "POST", site.path("/integrations"), json={"type": "splunk", "name": "Splunk"})
    assert "already has an integration named 'Splunk'" in error_message(response, 409)
    response = site.call(site.owner, "PATCH", site.path(f"/integrations/{other['uuid']}"), json={"name": "Splunk"})
    assert "already has an integration named 'Splunk'" in error_message(response, 409)


@pytest.mark.parametrize(
    ("method", "tail", "body", "status", "fragment"),
    [
        ("GET", "/nope", None, 404, "no endpoint"),
        ("PUT", "/integrations", None, 405, "Method Not Allowed"),
        ("POST", "/integrations", {"type": "splunk"}, 400, "name"),
        ("POST", "/integrations", {"type": "splunk", "name": "x", "colour": "red"}, 400, "colour"),
        ("POST", "/integrations", {"type": "splonk", "name": "x"}, 400, "unknown SIEM type 'splonk'"),
        (
            "POST",
            "/invitations",
            {"email": "not-an-email", "role": "member"},
            400,
            "email: String should match pattern",
        ),
        ("POST", "/invitations", {"email": "x@y.example", "role": "boss"}, 400, "role"),
        ("POST", "/invitations", {"email": "x@y.example", "password": "short"}, 400, "password"),
        ("DELETE", "/invitations/NOSUCHINVITATION", None, 404, "no invitation"),
        ("GET", "/tokens?status=dormant", None, 400, "status must be"),
        ("GET", "/integrations/NOSUCHINTEGRATION", None, 404, "no integration"),
        ("GET", "/tokens/NOSUCHTOKEN", None, 404, "no token"),
        ("PATCH", "/members/nobody@nowhere.example", {"role": "member"}, 404, "not a member"),
    ],
)
def test_admin_errors_have_the_error_message_body(
    site: Site, method: str, tail: str, body: Any, status: int, fragment: str
) -> None:
    kwargs = {} if body is None else {"json": body}
    response = site.call(site.owner, method, site.path(tail), **kwargs)
    assert response.headers["content-type"].startswith("application/json")
    message = error_message(response, status)
    assert fragment in message, message
