"""Console sessions against a thief holding a stolen cookie or planting one: the absolute lifetime,
the `__Host-` cookie over https, and the rest of a session's life (docs/security.md, "Console
sessions"). Everything goes through real HTTP to a live server."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest

from siemgate.accounts.views import when
from siemgate.model.timestamps import parse_ns

from .identity_support import ADMIN, PASSWORD, Tenants, error, ok

COOKIE, HOST_COOKIE = "siemgate_session", "__Host-siemgate_session"  # the names browsers hold
HOUR = 3600
NS = 1_000_000_000


@pytest.fixture
def tenants(server: Any) -> Tenants:
    return Tenants(server)


@contextmanager
def signed_in(tenants: Tenants, email: str, **headers: str) -> Iterator[tuple[httpx.Client, dict[str, Any]]]:
    """A client signed in as `email` (cookie jar + X-CSRF-Token) and the sign-in's answer."""
    with httpx.Client(base_url=tenants.server.base_url, timeout=30, headers=headers) as client:
        answer = ok(client.post(f"{ADMIN}/session", json={"email": email, "password": PASSWORD}))
        client.headers["X-CSRF-Token"] = answer["csrf_token"]
        yield client, answer


def _set_cookie(response: httpx.Response) -> tuple[str, str, set[str]]:
    """The one session cookie a response sets: (name, value, lower-case attributes)."""
    [header] = response.headers.get_list("set-cookie")
    pair, *attributes = [part.strip() for part in header.split(";")]
    name, _, value = pair.partition("=")
    return name, value, {a.lower() for a in attributes}


# the absolute lifetime ----------------------------------------------------------------------------
def test_a_session_in_constant_use_ends_at_its_lifetime(tenants: Tenants) -> None:
    """A session used at least every 12 hours lived for ever (each use slid its expiry), so a
    stolen cookie was good for ever. Now it ends 12 hours after sign-in, however busy, at the
    `expires_at` the sign-in said; the console then shows the sign-in page."""
    clock = tenants.server.clock
    with signed_in(tenants, tenants.adam.email) as (client, answer):
        [session] = tenants.services.store._select("SELECT created_at FROM sessions WHERE user_id = ?",
                                                   (tenants.adam.user.id,))  # fmt: skip
        assert answer["expires_at"] == when(session[0] + 12 * HOUR * NS)  # the API's times are in seconds
        for _ in range(11):
            clock.advance(HOUR)
            ok(client.get(f"{ADMIN}/me"))
        clock.advance(HOUR - 30)
        ok(client.get(f"{ADMIN}/me"))
        page = client.get("/console/security")
        assert page.status_code == 200
        clock.advance(30)
        assert "expired" in error(client.get(f"{ADMIN}/me"), 401)
        page = client.get("/console/security")
        assert page.status_code == 303 and page.headers["location"].startswith("/console/sign-in?next=")


def test_the_lifetime_is_a_setting_and_expires_at_tells_it(make_server: Any) -> None:
    tenants = Tenants(make_server(console_session_hours=1))
    clock = tenants.server.clock
    with signed_in(tenants, tenants.adam.email) as (client, answer):
        signed_at = clock()
        assert abs(parse_ns(answer["expires_at"]) - (signed_at + HOUR * NS)) < 5 * NS
        clock.advance(HOUR / 2)
        ok(client.get(f"{ADMIN}/me"))
        clock.advance(HOUR / 2)
        error(client.get(f"{ADMIN}/me"), 401)


def test_the_cookie_lasts_no_longer_than_the_session(tenants: Tenants) -> None:
    with httpx.Client(base_url=tenants.server.base_url) as client:
        response = client.post(f"{ADMIN}/session", json={"email": tenants.adam.email, "password": PASSWORD})
        _, _, attributes = _set_cookie(response)
        assert f"max-age={12 * HOUR}" in attributes


# the cookie's name ---------------------------------------------------------------------------------
def _https_cases(make_server: Any) -> list[tuple[Tenants, dict[str, str]]]:
    """The two ways a server learns that people reach it over https without serving TLS itself:
    the public address, and X-Forwarded-Proto from a trusted proxy."""
    public = Tenants(make_server(public_url="https://siemgate.example"))
    proxied = Tenants(make_server(trusted_proxies=["127.0.0.1"]))
    return [(public, {}), (proxied, {"X-Forwarded-Proto": "https"})]


def test_over_https_the_cookie_is_host_prefixed_and_the_plain_name_is_never_read(make_server: Any) -> None:
    """Over https the cookie was `siemgate_session`: any sibling subdomain (a.example.com for
    console.example.com) can set that name for the parent domain, so an attacker could plant
    their own session (the victim then works in the attacker's account and their changes land
    there) or shadow the victim's. `__Host-` cookies can only come from this host, Secure, Path=/."""
    for tenants, headers in _https_cases(make_server):
        with httpx.Client(base_url=tenants.server.base_url, headers=headers) as client:
            response = client.post(f"{ADMIN}/session", json={"email": tenants.adam.email, "password": PASSWORD})
            name, value, attributes = _set_cookie(ok_response(response))
            assert name == HOST_COOKIE
            assert {"secure", "httponly", "path=/", "samesite=strict"} <= attributes
            assert not any(a.startswith("domain") for a in attributes)
            me = f"{tenants.server.base_url}{ADMIN}/me"
            assert httpx.get(me, headers={**headers, "Cookie": f"{HOST_COOKIE}={value}"}).status_code == 200
            planted = httpx.get(me, headers={**headers, "Cookie": f"{COOKIE}={value}"})
            error(planted, 401)
            page = httpx.get(
                f"{tenants.server.base_url}/console/security", headers={**headers, "Cookie": f"{COOKIE}={value}"}
            )
            assert page.status_code == 303


def test_over_plain_http_the_cookie_keeps_its_name_without_secure(make_server: Any) -> None:
    """The demo on loopback: browsers refuse a __Host- or Secure cookie sent over http (but on
    localhost), so the plain name stays there; a proxy's X-Forwarded-Proto is believed only from
    trusted_proxies."""
    tenants = Tenants(make_server())
    forged = {"X-Forwarded-Proto": "https"}  # not from a trusted proxy: not believed
    with httpx.Client(base_url=tenants.server.base_url, headers=forged) as client:
        response = client.post(f"{ADMIN}/session", json={"email": tenants.adam.email, "password": PASSWORD})
        name, _, attributes = _set_cookie(ok_response(response))
        assert name == COOKIE and "secure" not in attributes
        ok(client.get(f"{ADMIN}/me"))


def ok_response(response: httpx.Response) -> httpx.Response:
    ok(response)
    return response
