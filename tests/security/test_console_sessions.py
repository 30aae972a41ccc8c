"""Console sessions against a thief holding a stolen cookie or planting one: the absolute lifetime,
the `__Host-` cookie over https, and the rest of a session's life (docs/security.md, "Console
sessions"). Everything goes through real HTTP to a live server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pyotp
import pytest

from siemgate.accounts.actor import CLI, Actor
from siemgate.accounts.views import when
from siemgate.auth.sessions import SessionService
from siemgate.config import load_settings
from siemgate.errors import ConfigError, Unauthorized
from siemgate.model.timestamps import parse_ns
from support.stores import BOTH_BACKENDS

from .identity_support import ADMIN, PASSWORD, Tenants, error, ok

server_backend = BOTH_BACKENDS  # sessions are shared SQL: run on SQLite and PostgreSQL

COOKIE, HOST_COOKIE = "siemgate_session", "__Host-siemgate_session"  # the names browsers hold
HOUR = 3600
MINUTE = 60
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
    stolen cookie was good for ever. Now it ends 12 hours after sign-in, however busy (here used
    every 20 minutes, within the idle limit); the console then shows the sign-in page."""
    clock = tenants.server.clock
    with signed_in(tenants, tenants.adam.email) as (client, _):
        for _ in range(35):
            clock.advance(20 * MINUTE)
            ok(client.get(f"{ADMIN}/me"))
        clock.advance(20 * MINUTE - 30)
        ok(client.get(f"{ADMIN}/me"))
        page = client.get("/console/security")
        assert page.status_code == 200
        clock.advance(30)
        assert "expired" in error(client.get(f"{ADMIN}/me"), 401)
        page = client.get("/console/security")
        assert page.status_code == 303 and page.headers["location"].startswith("/console/sign-in?next=")


def test_a_session_left_idle_for_30_minutes_ends(tenants: Tenants) -> None:
    """NIST SP 800-63B AAL2 (and ASVS 3.3.2) ask for reauthentication after 30 minutes of
    inactivity. Before, the idle limit was the lifetime (12 hours): a cookie copied from a
    browser left open was good for hours after its owner walked away. `expires_at` tells when
    the session ends if unused; each use extends it."""
    clock = tenants.server.clock
    with signed_in(tenants, tenants.adam.email) as (client, answer):
        [session] = tenants.services.store._select("SELECT created_at FROM sessions WHERE user_id = ?",
                                                   (tenants.adam.user.id,))  # fmt: skip
        assert answer["expires_at"] == when(session[0] + 30 * MINUTE * NS)  # the API's times are in seconds
        clock.advance(29 * MINUTE)
        ok(client.get(f"{ADMIN}/me"))  # a use extends it
        clock.advance(29 * MINUTE)
        ok(client.get(f"{ADMIN}/me"))
        clock.advance(30 * MINUTE)
        assert "expired" in error(client.get(f"{ADMIN}/me"), 401)
        assert "expired" not in error(client.get(f"{ADMIN}/me"), 401)  # it is gone from the store


def test_the_idle_limit_is_a_setting_and_lowering_it_ends_older_sessions(tenants: Tenants) -> None:
    """The limit in force when a session is used is the one that counts, as for the lifetime: a
    session signed in under a 12-hour idle limit ends after 30 idle minutes once it is lowered."""
    store, clock = tenants.services.store, tenants.server.clock
    before = SessionService(store, clock, idle_ns=12 * HOUR * NS)
    signed = before.open(tenants.adam.user, "127.0.0.1", "test")
    assert signed.session.expires_at == signed.session.created_at + 12 * HOUR * NS
    clock.advance(31 * MINUTE)
    before.authenticate(signed.cookie)  # 31 idle minutes were fine then
    clock.advance(31 * MINUTE)
    with pytest.raises(Unauthorized, match="expired"):
        SessionService(store, clock, idle_ns=30 * MINUTE * NS).authenticate(signed.cookie)


def test_the_idle_limit_is_validated_with_errors_that_say_what_to_fix(tmp_path: Any) -> None:
    assert load_settings(data_dir=tmp_path).console_idle_minutes == 30
    assert load_settings(data_dir=tmp_path, console_idle_minutes=720).console_idle_minutes == 720
    with pytest.raises(ConfigError, match="console_idle_minutes: Input should be greater than or equal to 5"):
        load_settings(data_dir=tmp_path, console_idle_minutes=1)
    with pytest.raises(ConfigError, match="console_idle_minutes 90 is longer than console_session_hours 1 "):
        load_settings(data_dir=tmp_path, console_session_hours=1, console_idle_minutes=90)


def test_the_lifetime_is_a_setting_and_expires_at_tells_it(make_server: Any) -> None:
    tenants = Tenants(make_server(console_session_hours=1, console_idle_minutes=60))
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


# the rest of a session's life ------------------------------------------------------------------------
def _cookie_of(client: httpx.Client) -> str:
    [value] = client.cookies.values()
    return value


def _replayed(tenants: Tenants, cookie: str, csrf: str | None = None) -> httpx.Response:
    """GET /me (or, with `csrf`, a change) with only a copy of a cookie: what a thief holds."""
    headers = {"Cookie": f"{COOKIE}={cookie}"}
    if csrf is None:
        return tenants.http.get(f"{ADMIN}/me", headers=headers)
    return tenants.http.post(f"{ADMIN}/me/two-factor", headers={**headers, "X-CSRF-Token": csrf})


def test_a_cookie_value_chosen_before_sign_in_never_becomes_a_session(tenants: Tenants) -> None:
    """Session fixation: the server never adopts a value the browser brings; signing in sets a
    new one, also over a session someone planted (their own)."""
    chosen = "attacker-chosen-value-0123456789abcdefghijklmnop"
    with signed_in(tenants, tenants.bob.email) as (attacker, _):
        planted = _cookie_of(attacker)
    for brought in (chosen, planted):
        with httpx.Client(base_url=tenants.server.base_url, headers={"Cookie": f"{COOKIE}={brought}"}) as victim:
            response = victim.post(f"{ADMIN}/session", json={"email": tenants.adam.email, "password": PASSWORD})
            _, value, _ = _set_cookie(ok_response(response))
        assert value != brought
        assert ok(_replayed(tenants, value))["email"] == tenants.adam.email
    error(_replayed(tenants, chosen), 401)
    assert ok(_replayed(tenants, planted))["email"] == tenants.bob.email  # still only the attacker's own


def test_signing_in_again_ends_the_session_the_browser_held(tenants: Tenants) -> None:
    """Signing in again in a browser that held a valid session left the old one alive on the
    server until it expired, so a copy of the old cookie (a thief's) kept working. The session the
    browser presents is now ended when the new one is made, if it is the same person's; another
    person's session in the same browser is left alone (only they end it)."""
    adam = tenants.adam
    with signed_in(tenants, adam.email) as (browser, _):
        old = _cookie_of(browser)
        ok(browser.post(f"{ADMIN}/session", json={"email": adam.email, "password": PASSWORD}))
        new = _cookie_of(browser)
        assert new != old
        error(_replayed(tenants, old), 401)
        assert ok(_replayed(tenants, new))["email"] == adam.email
        ok(tenants.call(adam, "GET", "/me"))  # nothing else of the person's ends
    with signed_in(tenants, tenants.alice.email) as (shared, _):
        alices = _cookie_of(shared)
        ok(shared.post(f"{ADMIN}/session", json={"email": adam.email, "password": PASSWORD}))
        assert ok(_replayed(tenants, alices))["email"] == tenants.alice.email


def test_signing_out_ends_the_session_on_the_server(tenants: Tenants) -> None:
    with signed_in(tenants, tenants.adam.email) as (client, answer):
        stolen = _cookie_of(client)
        ok(client.delete(f"{ADMIN}/session"), 204)
        error(_replayed(tenants, stolen), 401)
        error(_replayed(tenants, stolen, answer["csrf_token"]), 401)


def test_a_password_change_ends_every_other_session(tenants: Tenants) -> None:
    with signed_in(tenants, tenants.adam.email) as (thief, _), signed_in(tenants, tenants.adam.email) as (own, _):
        body = {"current_password": PASSWORD, "new_password": "another long passphrase"}
        ok(own.put(f"{ADMIN}/me/password", json=body), 204)
        error(thief.get(f"{ADMIN}/me"), 401)
        ok(own.get(f"{ADMIN}/me"))


def test_turning_two_factor_on_ends_the_other_sessions_and_an_operators_reset_ends_all(tenants: Tenants) -> None:
    adam = tenants.adam
    with signed_in(tenants, adam.email) as (thief, _), signed_in(tenants, adam.email) as (own, _):
        secret = ok(own.post(f"{ADMIN}/me/two-factor"), 201)["secret"]
        code = pyotp.TOTP(secret).now()
        ok(own.post(f"{ADMIN}/me/two-factor/confirm", json={"code": code, "password": PASSWORD}))
        error(thief.get(f"{ADMIN}/me"), 401)
        ok(own.get(f"{ADMIN}/me"))
        tenants.services.personal.reset_two_factor(CLI, adam.user)  # `siemgate user reset-two-factor`
        error(own.get(f"{ADMIN}/me"), 401)


def test_the_csrf_token_is_the_sessions_own_sent_as_a_header_on_every_change(tenants: Tenants) -> None:
    """Checked on every state-changing method whatever the body's type; the token of another
    session (the same person's included) or in the query string is refused, and nothing changes."""
    with signed_in(tenants, tenants.adam.email) as (one, first), signed_in(tenants, tenants.adam.email) as (two, _):
        two.headers["X-CSRF-Token"] = first["csrf_token"]  # another session's token
        path = f"/accounts/{tenants.a.uuid}/integrations"
        body = {"type": "splunk", "name": "forged"}
        del one.headers["X-CSRF-Token"]
        alice = f"/accounts/{tenants.a.uuid}/members/{tenants.alice.email}"
        changes = [
            ("POST", path, body),
            ("PUT", "/me/password", {"current_password": PASSWORD, "new_password": "forged forged forged"}),
            ("PATCH", alice, {"role": "member"}),
            ("DELETE", alice, None),
        ]
        for method, where, json_body in changes:
            assert "CSRF" in error(one.request(method, f"{ADMIN}{where}", json=json_body), 403)
            assert "CSRF" in error(two.request(method, f"{ADMIN}{where}", json=json_body), 403)
        query = {"csrf_token": first["csrf_token"], "X-CSRF-Token": first["csrf_token"]}
        assert "CSRF" in error(one.post(f"{ADMIN}{path}", params=query, json=body), 403)
        for content in ({"data": body}, {"content": b'{"type":"splunk","name":"forged"}'}):
            form = one.post(f"{ADMIN}{path}", headers={"Content-Type": "text/plain"}, **content)  # type: ignore[arg-type,unused-ignore]
            assert "CSRF" in error(form, 403)
        assert "CSRF" in error(one.delete(f"{ADMIN}/session"), 403)
        ok(one.get(f"{ADMIN}/me"))  # the session itself is fine
    assert "forged" not in [i.name for i in tenants.services.store.list_integrations(tenants.a.id)]
    assert [
        m.role for m in tenants.services.store.list_members(tenants.a.id) if m.user.id == tenants.alice.user.id
    ] == ["owner"]
    ok(tenants.sign_in(tenants.adam.email))  # the password did not change


def test_a_console_cookie_opens_neither_the_events_api_nor_ingest(tenants: Tenants) -> None:
    with signed_in(tenants, tenants.alice.email) as (client, _):
        error(client.post("/api/v2/auditevents", json={"limit": 10}), 401)
        error(client.post("/api/v1/auditevents", json={"limit": 10}), 401)
        error(client.get("/api/v2/auth/introspect"), 401)
        error(client.post("/api/ingest/v2/auditevents", json=[]), 401)


def test_keys_and_tokens_are_no_console_session(tenants: Tenants) -> None:
    """A personal API key or a SIEM token is no console session, as a cookie or as a bearer."""
    token = tenants.server.token(tenants.a)
    ingest = tenants.server.ingest_key(tenants.a)
    page = f"/console/accounts/{tenants.a.uuid}/integrations"
    for secret in (tenants.alice.key, token, ingest):
        error(tenants.http.get(f"{ADMIN}/me", headers={"Cookie": f"{COOKIE}={secret}"}), 401)
        for headers in ({"Cookie": f"{COOKIE}={secret}"}, {"Authorization": f"Bearer {secret}"}):
            shown = tenants.http.get(page, headers=headers)
            assert shown.status_code == 303 and shown.headers["location"].startswith("/console/sign-in")


def test_signing_out_everywhere_ends_every_session_of_the_person(tenants: Tenants) -> None:
    """There was no way to end the sessions of a lost laptop or a copied cookie, short of changing
    the password (which kept the session doing it). Now `DELETE /me/sessions` ends them all,
    this one included, with a session or an API key; other people's sessions stay."""
    with (
        signed_in(tenants, tenants.adam.email) as (thief, _),
        signed_in(tenants, tenants.adam.email) as (own, _),
        signed_in(tenants, tenants.alice.email) as (someone_else, _),
    ):
        response = own.delete(f"{ADMIN}/me/sessions")
        assert ok(response) == {"ended_sessions": 2}
        name, value, attributes = _set_cookie(response)
        assert name == COOKIE and value in ("", '""') and "max-age=0" in attributes
        error(thief.get(f"{ADMIN}/me"), 401)
        error(own.get(f"{ADMIN}/me"), 401)
        ok(someone_else.get(f"{ADMIN}/me"))
        with signed_in(tenants, tenants.adam.email) as (again, _):
            assert ok(tenants.call(tenants.adam, "DELETE", "/me/sessions")) == {"ended_sessions": 1}
            error(again.get(f"{ADMIN}/me"), 401)
    [ended, _] = [e for e in tenants.events(tenants.a) if e["object_type"] == "dlgdsess"]
    assert ended["action"] == "revoke" and ended["object_uuid"] == tenants.adam.user.uuid


def test_a_copied_cookie_cannot_mint_a_lasting_api_key(tenants: Tenants) -> None:
    """A personal API key outlives the session that made it: whoever held a copied cookie (and
    read the CSRF token from any console page) could make a key that never expires, and keep it
    after the session ended, the person signed out everywhere or changed their password. Through
    a session a key now takes the person's password (a personal API key still makes one alone)."""
    with signed_in(tenants, tenants.adam.email) as (thief, _):
        assert "password" in error(thief.post(f"{ADMIN}/me/api-keys", json={"name": "backdoor"}), 400)
        wrong = {"name": "backdoor", "password": "a guess at the password"}
        error(thief.post(f"{ADMIN}/me/api-keys", json=wrong), 403)
        assert tenants.services.store.list_api_keys(tenants.adam.user.id)[-1].name == "tests"
        made = ok(thief.post(f"{ADMIN}/me/api-keys", json={"name": "script", "password": PASSWORD}), 201)
        assert made["key"].startswith("sgp_")
    ok(tenants.call(tenants.adam, "POST", "/me/api-keys", json={"name": "from a key"}), 201)


def test_removal_from_the_last_account_ends_the_persons_sessions(tenants: Tenants) -> None:
    """A person removed from their only account kept their console sessions (and so did whoever
    held a copy of the cookie), with which they could still make API keys, accept invitations and,
    where allowed, create accounts. Removed from their last account, their sessions end; they can
    sign in again. Removed from one of several, they keep them."""
    bob = tenants.bob
    code, invitation = tenants.services.invitations.invite(CLI, tenants.a, bob.email, "member")
    ok(tenants.call(bob, "POST", f"/me/invitations/{invitation.id}/accept", json={"code": code}))
    with signed_in(tenants, tenants.adam.email) as (adam, _), signed_in(tenants, bob.email) as (bobs, _):
        ok(tenants.call(tenants.alice, "DELETE", f"/accounts/{tenants.a.uuid}/members/{bob.email}"), 204)
        ok(bobs.get(f"{ADMIN}/me"))  # still a member of Bolt
        ok(tenants.call(tenants.alice, "DELETE", f"/accounts/{tenants.a.uuid}/members/{tenants.adam.email}"), 204)
        error(adam.get(f"{ADMIN}/me"), 401)
    with signed_in(tenants, tenants.adam.email) as (again, _):
        assert ok(again.get(f"{ADMIN}/me"))["accounts"] == []
    removed = [aux(e) for e in tenants.events(tenants.a) if (e["action"], e["object_type"]) == ("delete", "user")]
    [adams_key] = tenants.services.store.list_api_keys(tenants.adam.user.id)
    assert removed == [
        {"role": "member"},
        {"role": "administrator", "ended_sessions": 1, "revoked_api_keys": [adams_key.id]},
    ]


def test_removal_from_the_last_account_revokes_the_persons_api_keys(tenants: Tenants) -> None:
    """A person removed from their only account kept their personal API keys: a script (or whoever
    copied the key) went on using the admin API as them, and back into any account they joined
    later. Removed from their last account, their keys are revoked (recorded with the removal);
    removed from one of several, their keys keep working in the others."""
    bob, adam = tenants.bob, tenants.adam
    code, invitation = tenants.services.invitations.invite(CLI, tenants.a, bob.email, "member")
    ok(tenants.call(bob, "POST", f"/me/invitations/{invitation.id}/accept", json={"code": code}))
    ok(tenants.call(tenants.alice, "DELETE", f"/accounts/{tenants.a.uuid}/members/{bob.email}"), 204)
    ok(tenants.call(bob, "GET", f"/accounts/{tenants.b.uuid}/members"))  # still Bolt's owner
    ok(tenants.call(tenants.alice, "DELETE", f"/accounts/{tenants.a.uuid}/members/{adam.email}"), 204)
    assert "revoked" in error(tenants.call(adam, "GET", "/me"), 401)
    code, invitation = tenants.services.invitations.invite(CLI, tenants.b, adam.email, "owner")
    with signed_in(tenants, adam.email) as (again, _):
        ok(again.post(f"{ADMIN}/me/invitations/{invitation.id}/accept", json={"code": code}))
    error(tenants.call(adam, "GET", f"/accounts/{tenants.b.uuid}/members"), 401)  # nor in the next account


def test_deleting_a_persons_only_account_ends_their_sessions_and_keys(tenants: Tenants) -> None:
    """A member whose only account was deleted, but whose home is another account (so they are not
    deleted with it), kept their console sessions and personal API keys. They now end with the
    account, as when a person is removed from their last account; the answer counts them."""
    carol = tenants.person(tenants.b, f"carol@bolt-{tenants.tag}.example", "member")
    code, invitation = tenants.services.invitations.invite(CLI, tenants.a, carol.email, "member")
    ok(tenants.call(carol, "POST", f"/me/invitations/{invitation.id}/accept", json={"code": code}))
    tenants.services.people.remove_member(CLI, tenants.b, carol.email)
    ok(tenants.call(carol, "GET", f"/accounts/{tenants.a.uuid}/members"))  # Acme is now her only account
    with signed_in(tenants, carol.email) as (carols, _), signed_in(tenants, tenants.bob.email) as (bobs, _):
        deleted = tenants.call(
            tenants.alice, "DELETE", f"/accounts/{tenants.a.uuid}", params={"confirm": tenants.a.name}
        )
        removed = ok(deleted)["removed"]
        error(carols.get(f"{ADMIN}/me"), 401)
        assert "revoked" in error(tenants.call(carol, "GET", "/me"), 401)
        assert removed["api_keys_revoked"] == 3 and removed["sessions"] == 1  # Alice's, Adam's and Carol's keys
        ok(bobs.get(f"{ADMIN}/me"))  # another account's people keep theirs
        ok(tenants.call(tenants.bob, "GET", "/me"))
    assert tenants.services.store.get_user(carol.email).home_account_id == tenants.b.id


def aux(event: dict[str, Any]) -> Any:
    return json.loads(event["aux_info"])


def test_a_sign_in_cannot_be_forged_by_another_site(tenants: Tenants) -> None:
    """Login CSRF: a page elsewhere can only post a form (text/plain, urlencoded, multipart)
    without a CORS preflight, even one whose text is JSON; such a sign-in is refused and sets no
    cookie, so nobody's browser is signed in to the attacker's own session."""
    body = json.dumps({"email": tenants.bob.email, "password": PASSWORD})
    for kind in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"):
        response = tenants.http.post(f"{ADMIN}/session", content=body, headers={"Content-Type": kind})
        error(response, 400)
        assert "set-cookie" not in response.headers


def test_a_copy_of_this_browsers_cookie_ends_with_a_password_change_or_two_factor(tenants: Tenants) -> None:
    """A password change or turning two-factor on ended the person's *other* sessions and kept
    the one asking, cookie and all; but a thief's cookie is usually a copy of the person's own
    browser's, so it survived exactly the changes the person makes when they suspect one. Now the
    session asking gets a new cookie (Set-Cookie on the answer) and every copy of the old one ends;
    the browser carries on signed in, with the same CSRF token."""
    adam = tenants.adam
    with signed_in(tenants, adam.email) as (own, answer):
        copied = _cookie_of(own)
        body = {"current_password": PASSWORD, "new_password": "another long passphrase"}
        changed = own.put(f"{ADMIN}/me/password", json=body)
        ok(changed, 204)
        name, renewed, attributes = _set_cookie(changed)
        assert name == COOKIE and renewed != copied and {"httponly", "samesite=strict", "path=/"} <= attributes
        error(_replayed(tenants, copied), 401)
        error(_replayed(tenants, copied, answer["csrf_token"]), 401)
        ok(own.get(f"{ADMIN}/me"))
        copied = _cookie_of(own)
        secret = ok(own.post(f"{ADMIN}/me/two-factor"), 201)["secret"]
        confirm = {"code": pyotp.TOTP(secret).now(), "password": "another long passphrase"}
        turned_on = own.post(f"{ADMIN}/me/two-factor/confirm", json=confirm)
        recovery = ok(turned_on)["recovery_codes"]
        assert len(recovery) == 10
        assert _set_cookie(turned_on)[1] != copied
        error(_replayed(tenants, copied), 401)
        ok(own.get(f"{ADMIN}/me"))
        renew = {"password": "another long passphrase", "code": recovery[0]}
        ok(own.post(f"{ADMIN}/me/two-factor/recovery-codes", json=renew))


def test_the_persons_deletion_ends_their_sessions(tenants: Tenants) -> None:
    """People are deleted with their home account when they belong to no other: their sessions go
    with them, and a copied cookie is 401 from the next request."""
    with signed_in(tenants, tenants.alice.email) as (alice, _), signed_in(tenants, tenants.adam.email) as (adam, _):
        url = f"{ADMIN}/accounts/{tenants.a.uuid}"
        deleted = alice.delete(url, params={"confirm": tenants.a.name})
        assert ok(deleted)["deleted"] == tenants.a.uuid
        error(alice.get(f"{ADMIN}/me"), 401)
        error(adam.get(f"{ADMIN}/me"), 401)


def _changed_before(tenants: Tenants, monkeypatch: Any, recording: str, change: Any) -> None:
    """Run `change()` once, in the middle of the next request that calls the store's `recording`
    (create_session, create_api_key): after its checks (a sign-in's password is a slow hash, so
    a real window), just before it records."""
    store = tenants.services.store
    record = getattr(store, recording)
    done: list[bool] = []

    def changed_then_recorded(*args: Any, **kwargs: Any) -> Any:
        if not done:
            done.append(True)
            change()
        return record(*args, **kwargs)

    monkeypatch.setattr(store, recording, changed_then_recorded)


def test_a_sign_in_under_way_when_the_password_changes_opens_no_session(tenants: Tenants, monkeypatch: Any) -> None:
    """A thief with the old password signing in again and again (successful sign-ins are not
    rate-limited) would have one in flight when the person changes it: its session was recorded
    after the change ended the others, and lived on. Now the session is recorded only if the
    password is still the one checked, in a transaction ordered with the change."""
    adam = tenants.adam
    me = Actor(adam.user, "api_key")
    new = "the password after the theft"
    _changed_before(
        tenants,
        monkeypatch,
        "create_session",
        lambda: tenants.services.personal.change_password(me, adam.user, PASSWORD, new),
    )
    with httpx.Client(base_url=tenants.server.base_url) as thief:
        message = error(thief.post(f"{ADMIN}/session", json={"email": adam.email, "password": PASSWORD}), 401)
        assert "sign in again" in message, message
        error(thief.get(f"{ADMIN}/me"), 401)
    assert tenants.services.store._select("SELECT count(*) FROM sessions WHERE user_id = ?", (adam.user.id,)) == [(0,)]
    with httpx.Client(base_url=tenants.server.base_url) as own:
        ok(own.post(f"{ADMIN}/session", json={"email": adam.email, "password": new}))
        ok(own.get(f"{ADMIN}/me"))


def test_a_password_sign_in_under_way_when_two_factor_is_turned_on_opens_no_session(
    tenants: Tenants, monkeypatch: Any
) -> None:
    """The same race with turning two-factor on: a session signed in with the password alone must
    not be recorded after two-factor went on and ended the others."""
    adam, personal = tenants.adam, tenants.services.personal
    me = Actor(adam.user, "api_key")
    secret = personal.begin_two_factor(adam.user).secret

    def turn_on() -> None:
        personal.confirm_two_factor(me, adam.user, pyotp.TOTP(secret).at(tenants.server.clock() / NS), PASSWORD)

    _changed_before(tenants, monkeypatch, "create_session", turn_on)
    with httpx.Client(base_url=tenants.server.base_url) as thief:
        error(thief.post(f"{ADMIN}/session", json={"email": adam.email, "password": PASSWORD}), 401)
        error(thief.get(f"{ADMIN}/me"), 401)
    assert personal.people.has_two_factor(adam.user)
    assert tenants.services.store._select("SELECT count(*) FROM sessions WHERE user_id = ?", (adam.user.id,)) == [(0,)]


def test_a_key_made_while_its_maker_is_removed_from_their_last_account_is_not_left_live(
    tenants: Tenants, monkeypatch: Any
) -> None:
    """A hostile insider about to be removed makes new API keys with their key, over and over (a
    key makes one without a password): one in flight when the removal revoked their keys was
    recorded after it, and lived on. Now a key is recorded only while the credential making it is
    live, ordered with the removal by a lock on the person's row."""
    adam = tenants.adam
    _changed_before(
        tenants,
        monkeypatch,
        "create_api_key",
        lambda: tenants.services.people.remove_member(CLI, tenants.a, adam.email),
    )
    message = error(tenants.call(adam, "POST", "/me/api-keys", json={"name": "spare"}), 401)
    assert "nothing was created" in message, message
    assert [k.name for k in tenants.services.store.list_api_keys(adam.user.id) if k.revoked_at is None] == []


def test_a_key_made_from_a_session_the_password_change_ended_is_not_left_live(
    tenants: Tenants, monkeypatch: Any
) -> None:
    """The same with a thief's console session (and the password): the person changes their
    password while the thief's key creation is under way; the thief's session ends, and so must
    the key it was making."""
    adam = tenants.adam
    me = Actor(adam.user, "api_key")
    change = lambda: tenants.services.personal.change_password(me, adam.user, PASSWORD, "after the theft")  # noqa: E731
    _changed_before(tenants, monkeypatch, "create_api_key", change)
    with signed_in(tenants, adam.email) as (thief, _):
        error(thief.post(f"{ADMIN}/me/api-keys", json={"name": "backdoor", "password": PASSWORD}), 401)
    assert [k.name for k in tenants.services.store.list_api_keys(adam.user.id)] == ["tests"]
