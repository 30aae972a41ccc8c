"""The admin API's per-person rate limit: every authenticated request of a person counts, whichever
personal API key or console session they use; over the limit it is a 429 with Retry-After and
the RateLimit-* headers, naming whose requests are over. Nobody else is slowed: colleagues in the
same account, other accounts, or the person's own sign-in. Unauthenticated requests count against
no one, so an outsider cannot use up anyone's limit. Real HTTP."""

from __future__ import annotations

from typing import Any

import httpx

from .identity_support import ADMIN, Tenants, error, ok

LIMIT = 5


def _me(response: httpx.Response) -> int:
    """The remaining count a successful request reports."""
    ok(response)
    assert response.headers["RateLimit-Limit"] == str(LIMIT), response.headers
    return int(response.headers["RateLimit-Remaining"])


def test_a_person_over_the_admin_rate_limit_is_refused_and_no_one_else_is(make_server: Any) -> None:
    tenants = Tenants(make_server(admin_rate_limit_per_minute=LIMIT))
    adam, alice, bob = tenants.adam, tenants.alice, tenants.bob
    for _ in range(3):  # an outsider's refused attempts, with and without a key, count for no one
        error(tenants.call(None, "GET", "/me"), 401)
        error(tenants.http.get(f"{ADMIN}/me", headers={"Authorization": "Bearer sgp_forged"}), 401)
    remaining = [_me(tenants.call(adam, "GET", "/me")) for _ in range(3)]
    with tenants.session(adam.email) as console:  # the same person through the console
        remaining += [_me(console.get(f"{ADMIN}/accounts/{tenants.a.uuid}/members")) for _ in range(2)]
        assert remaining == [4, 3, 2, 1, 0]
        refused = console.get(f"{ADMIN}/me")
    message = error(refused, 429)
    assert adam.email in message and "admin API" in message, message
    assert int(refused.headers["Retry-After"]) >= 1
    assert refused.headers["RateLimit-Remaining"] == "0"
    error(
        tenants.call(
            adam, "POST", f"/accounts/{tenants.a.uuid}/invitations", json={"email": "x@y.example", "role": "member"}
        ),
        429,
    )
    assert tenants.services.store.list_invitations(tenants.a.id) == []  # refused before anything ran
    assert _me(tenants.call(alice, "GET", f"/accounts/{tenants.a.uuid}/members")) == LIMIT - 1  # a colleague
    assert _me(tenants.call(bob, "GET", "/me")) == LIMIT - 1  # another account
    ok(tenants.sign_in(adam.email))  # signing in is limited by the failed-sign-in limits only


def test_every_admin_reply_carries_the_rate_limit_headers(make_server: Any) -> None:
    """Routes that build their own response (event search, export, a 204) lost the RateLimit-*
    headers that admin_actor set: a script paging events could not see its remaining count."""
    tenants = Tenants(make_server(admin_rate_limit_per_minute=100))
    alice, a = tenants.alice, tenants.a.uuid
    carl = tenants.person(tenants.a, f"carl@acme-{tenants.tag}.example", "member")
    replies = [
        tenants.call(alice, "GET", f"/accounts/{a}/events/auditevents"),
        tenants.call(alice, "GET", f"/accounts/{a}/events/auditevents/export"),
        tenants.call(alice, "GET", f"/accounts/{a}/events/auditevents/export", params={"format": "csv"}),
        tenants.call(alice, "GET", f"/accounts/{a}/stats/auditevents", params={"group_by": "kind"}),
        tenants.call(alice, "DELETE", f"/accounts/{a}/members/{carl.user.uuid}"),
    ]
    assert [r.status_code for r in replies] == [200, 200, 200, 200, 204], [r.text for r in replies]
    assert [r.headers.get("RateLimit-Remaining") for r in replies] == ["99", "98", "97", "96", "95"]
    assert all(r.headers.get("RateLimit-Limit") == "100" and "RateLimit-Reset" in r.headers for r in replies)
