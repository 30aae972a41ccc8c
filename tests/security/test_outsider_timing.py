"""What the time of a reply tells a person about accounts they are not a member of, and about
people who have a sign-in elsewhere on the server. An account that
exists elsewhere and one that does not exist answer the same 404 (tests/security/test_tenant_matrix.py);
they must also cost the same work, or the time tells a signed-in person of any account which names
and uuids other tenants have. Measured over real HTTP before (400 requests each, 127.0.0.1): on
PostgreSQL 3.50 ms (median) for another account's name against 3.36 ms for a name no one has, on
SQLite 1.54 against 1.43: the existing account cost one more query (its membership). As with
sign-in (test_identity_signin.py), the test counts the work rather than timing it: the store
calls each request makes, on both backends.

The same held for people: an owner or administrator naming an email in their own account's member
paths (PATCH or DELETE .../members/{person}) or inviting it looked up its membership only when
someone on the server had that email: 3.11 ms (PostgreSQL, median of 500 PATCHes) for a person of
another account against 2.90 ms for an address no one has, so an account could tell which
addresses have a sign-in elsewhere (docs/security.md promises it cannot)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from siemgate.model.ids import new_id
from support.admin import Site, error_message
from support.servers import LiveServer
from support.stores import BOTH_BACKENDS

server_backend = BOTH_BACKENDS


def _spy(monkeypatch: pytest.MonkeyPatch, server: LiveServer, user_id: int) -> list[str]:
    """The store's account and membership lookups made for the person `user_id` (background jobs
    make others meanwhile): their names, in order."""
    calls: list[str] = []
    store = server.services.store

    def spying(name: str, mine: Callable[..., bool]) -> None:
        original = getattr(store, name)

        def call(*args: Any) -> Any:
            if mine(*args):
                calls.append(name)
            return original(*args)

        monkeypatch.setattr(store, name, call)

    spying("get_member", lambda account_id, who: who == user_id)
    spying("get_account", lambda ref: ref.startswith(("Acme-", "Ghost-")) or len(ref) == 26)
    return calls


def test_another_account_costs_what_a_missing_one_does(make_server: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    server: LiveServer = make_server()
    site = Site(server)  # the outsider owns another account than site.account
    calls = _spy(monkeypatch, server, site.outsider.user.id)
    work = {}
    for what, ref in (
        ("another account's name", site.account.name),
        ("another account's uuid", site.account.uuid),
        ("a name no one has", f"Ghost-{new_id()[:6]}"),
        ("a uuid no one has", new_id()),
    ):
        calls.clear()
        response = site.call(site.outsider, "GET", site.path("/integrations", ref))
        assert error_message(response, 404) == f"Not Found: no account {ref!r}"
        work[what] = list(calls)
    assert len(set(map(tuple, work.values()))) == 1, work
    assert work["a name no one has"] == ["get_account", "get_member"]


def _member_calls(monkeypatch: pytest.MonkeyPatch, server: LiveServer, account_id: int, refs: set[str]) -> list[str]:
    """The store's person and membership lookups for `account_id` and the addresses `refs`."""
    calls: list[str] = []
    store = server.services.store
    for name, mine in (
        ("get_user", lambda ref: ref in refs),
        ("get_member", lambda account, who: account == account_id),
    ):
        original = getattr(store, name)

        def call(*args: Any, __name: str = name, __mine: Callable[..., bool] = mine, __original: Any = original) -> Any:
            if __mine(*args):
                calls.append(__name)
            return __original(*args)

        monkeypatch.setattr(store, name, call)
    return calls


def test_a_person_elsewhere_costs_what_an_address_no_one_has_does(
    make_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    server: LiveServer = make_server()
    site = Site(server)  # site.admin is a person of site.account; the outsider owns site.other
    nobody = f"nobody-{new_id()[:6].lower()}@{site.domain}"
    calls = _member_calls(monkeypatch, server, site.other.id, {site.admin.email, nobody})
    requests: dict[str, Callable[[str], Any]] = {
        "set a role": lambda email: site.call(
            site.outsider, "PATCH", site.path(f"/members/{email}", site.other), json={"role": "member"}
        ),
        "remove": lambda email: site.call(site.outsider, "DELETE", site.path(f"/members/{email}", site.other)),
        "invite": lambda email: site.call(
            site.outsider, "POST", site.path("/invitations", site.other), json={"email": email, "role": "member"}
        ),
    }
    for what, request in requests.items():
        work = {}
        for email in (site.admin.email, nobody):
            calls.clear()
            response = request(email)
            assert response.status_code == (201 if what == "invite" else 404), response.text
            work[email] = list(calls)
        assert work[site.admin.email] == work[nobody], (what, work)
