"""The session cookie over real https in real Chromium: the `__Host-` name is one the browser
accepts from this server (Secure, Path=/, no Domain) and sends back, and a cookie of the plain
name planted by a sibling host (cookie tossing) signs no one in (docs/security.md, "Console
sessions")."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from siemgate.accounts.actor import CLI
from siemgate.auth.passwords import hash_password
from siemgate.config import load_settings
from support.clocks import Clock
from support.receivers import make_certs
from support.servers import LiveServer, start_server, stop_server
from support.stores import make_store

COOKIE, HOST_COOKIE = "siemgate_session", "__Host-siemgate_session"  # the names browsers hold
PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    certs = tmp_path_factory.mktemp("certs")
    make_certs(certs)
    data_dir = tmp_path_factory.mktemp("tls-console")
    settings = load_settings(data_dir=data_dir, tls_certfile=certs / "server.pem", tls_keyfile=certs / "server-key.pem")
    live, server, thread = start_server(settings, make_store("sqlite", data_dir), Clock(), ca=certs / "ca.pem")
    digest = hash_password(PASSWORD)
    for name, email in (("Victim Corp", "victim@tls.example"), ("Attacker Ltd", "attacker@tls.example")):
        _, owner = live.services.people.create_account(CLI, name, email, name, None)
        assert owner is not None
        live.services.store.set_password(owner.id, digest)
    try:
        yield live
    finally:
        stop_server(live, server, thread)


@pytest.fixture
def tls_page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(ignore_https_errors=True)  # the test CA is not one Chromium trusts
    context.set_default_timeout(15_000)
    yield context.new_page()
    context.close()


def test_chromium_keeps_the_host_prefixed_cookie_over_https(tls_page: Page, tls_server: LiveServer) -> None:
    assert tls_server.base_url.startswith("https://")
    tls_page.goto(f"{tls_server.base_url}/console/")
    expect(tls_page).to_have_url(re.compile(r"/console/sign-in"))
    tls_page.get_by_label("Email").fill("victim@tls.example")
    tls_page.get_by_label("Password").fill(PASSWORD)
    tls_page.get_by_role("button", name="Sign in").click()
    expect(tls_page).to_have_url(re.compile(r"/integrations$"))  # the browser sent the cookie back
    [cookie] = tls_page.context.cookies()
    assert cookie["name"] == HOST_COOKIE and cookie["secure"] and cookie["httpOnly"]
    assert cookie["sameSite"] == "Strict" and cookie["path"] == "/" and cookie["domain"] == "127.0.0.1"


def test_a_planted_plain_cookie_signs_no_one_in(tls_page: Page, tls_server: LiveServer) -> None:
    """The attacker signs in as themselves and plants their session under the plain name, as a
    sibling subdomain can for its parent domain: before, the victim's browser was then signed in
    as the attacker (and what they did landed in the attacker's account)."""
    with httpx.Client(base_url=tls_server.base_url, verify=tls_server.verify) as attacker:
        signed = attacker.post("/api/admin/v1/session", json={"email": "attacker@tls.example", "password": PASSWORD})
        assert signed.status_code == 200, signed.text
        [value] = signed.cookies.values()  # whatever its name
    url = f"{tls_server.base_url}/"
    tls_page.context.add_cookies([{"name": COOKIE, "value": value, "url": url, "secure": True}])
    tls_page.goto(f"{tls_server.base_url}/console/security")
    expect(tls_page).to_have_url(re.compile(r"/console/sign-in\?next="))


def _sign_in(page: Page, server: LiveServer, email: str) -> None:
    page.goto(f"{server.base_url}/console/security")
    expect(page).to_have_url(re.compile(r"/console/sign-in\?next="))
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{server.base_url}/console/security")  # not sign-in?next=/console/security
    page.wait_for_selector("body[data-loaded=true]")


def test_signing_out_everywhere_from_the_security_page(browser: Browser, tls_server: LiveServer) -> None:
    """The button ends the person's other browser's session too, and Chromium drops the __Host-
    cookie (it ignores a deletion of one that is not Secure)."""
    contexts = [browser.new_context(ignore_https_errors=True) for _ in range(2)]
    try:
        laptop, phone = (context.new_page() for context in contexts)
        for page in (laptop, phone):
            _sign_in(page, tls_server, "victim@tls.example")
        laptop.get_by_role("button", name="Sign out everywhere").click()
        expect(laptop).to_have_url(re.compile(r"/console/sign-in$"))
        assert laptop.context.cookies() == []
        phone.reload()
        expect(phone).to_have_url(re.compile(r"/console/sign-in\?next="))
    finally:
        for context in contexts:
            context.close()


def test_a_page_left_idle_goes_to_sign_in_and_back(browser: Browser, tls_server: LiveServer) -> None:
    """A session ends after 30 idle minutes (and 12 hours after sign-in however busy): the next
    thing the page does (a button's API call answered 401) takes the person to the sign-in page,
    which brings them back. A use before then extends it."""
    context = browser.new_context(ignore_https_errors=True)
    try:
        page = context.new_page()
        _sign_in(page, tls_server, "victim@tls.example")
        tls_server.clock.advance(20 * 60)
        page.reload()  # in use: the session lasts 30 minutes from here
        page.wait_for_selector("body[data-loaded=true]")
        tls_server.clock.advance(20 * 60)
        page.reload()  # 40 minutes after sign-in, 20 after the last use: still signed in
        page.wait_for_selector("body[data-loaded=true]")
        expect(page).to_have_url(f"{tls_server.base_url}/console/security")
        tls_server.clock.advance(31 * 60)
        page.get_by_role("button", name="Turn on").click()
        expect(page).to_have_url(re.compile(r"/console/sign-in\?next=%2Fconsole%2Fsecurity$"))
        page.get_by_label("Email").fill("victim@tls.example")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        expect(page).to_have_url(f"{tls_server.base_url}/console/security")
    finally:
        context.close()
