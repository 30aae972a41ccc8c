"""Errors people can act on, in real Chromium: plain sentences without HTTP reason phrases or raw
seconds, attached to the field that caused them, and a console page for an unknown address."""

from __future__ import annotations

import re

import httpx
import pytest
from playwright.sync_api import Page, Route, expect

from siemgate.accounts.actor import CLI
from siemgate.auth import tokens
from siemgate.auth.passwords import hash_password
from siemgate.model.ids import new_id

from .conftest import PASSWORD, Console, allow_http_errors, sign_in

REASONS = re.compile(r"Bad Request|Unauthorized|Forbidden|Not Found|Conflict|Too Many Requests")


def test_an_api_error_is_attached_to_its_field_in_plain_words(page: Page, console: Console) -> None:
    integration = console.live.store.create_integration(
        console.account.id, new_id(), "other", "Errors Cribl", "", console.live.clock()
    )
    sign_in(page, console, console.owner_email)
    page.goto(console.url(f"/integrations/{integration.uuid}"))
    page.wait_for_selector("body[data-loaded=true]")
    page.get_by_role("button", name="Issue a token").click()
    section = page.locator("#issue-section")
    section.get_by_label("Token name").fill("x" * 201)  # the API refuses it: more than 200 characters
    page.evaluate("document.querySelector('#issue-section .token-name').removeAttribute('maxlength')")
    section.get_by_label("Token name").fill("x" * 201)
    allow_http_errors(page, 400, 422)
    section.get_by_role("button", name="Issue token").click()
    name = section.get_by_label("Token name")
    expect(name).to_have_attribute("aria-invalid", "true")
    described = name.get_attribute("aria-describedby") or ""
    message = page.locator(f"#{described.split()[0]}")
    expect(message).to_be_visible()
    assert not REASONS.search(message.inner_text()), message.inner_text()
    assert message.inner_text()[0].isupper() and message.inner_text().endswith(".")

    # A custom expiry the console cannot read is refused at that field before anything is sent.
    name.fill("cribl-worker")
    section.get_by_label("Custom", exact=True).check()
    expiry = section.get_by_label("Custom expiry")
    expiry.fill("12x")
    section.get_by_role("button", name="Issue token").click()
    expect(expiry).to_have_attribute("aria-invalid", "true")
    expect(name).not_to_have_attribute("aria-invalid", "true")
    expect(page.locator(f"#{(expiry.get_attribute('aria-describedby') or '').split()[0]}")).to_contain_text("12x")


def test_too_many_sign_ins_say_how_long_to_wait_in_words(page: Page, console: Console) -> None:
    address = f"nobody-{new_id().lower()}@example.test"
    for _ in range(5):
        reply = httpx.post(
            f"{console.base_url}/api/admin/v1/session", json={"email": address, "password": "wrong"}, timeout=10
        )
        assert reply.status_code == 401
    allow_http_errors(page, 401, 429)
    page.goto(f"{console.base_url}/console/sign-in")
    page.get_by_label("Email").fill(address)
    page.get_by_label("Password").fill("wrong again")
    page.get_by_role("button", name="Sign in").click()
    alert = page.locator("#sign-in-error")
    expect(alert).to_contain_text(
        # seconds, or a minute when the growing delay has reached it by the time the page asks
        re.compile(r"^Too many failed sign-ins from your address; try again in \d+ (seconds?|minutes?)\.$")
    )
    assert not REASONS.search(alert.inner_text()), alert.inner_text()
    # Longer waits (the 15-minute and hourly windows) read in minutes and hours, not seconds.
    said = page.evaluate(
        """async () => {
            const { plainMessage } = await import('/console/static/js/core.js');
            return [plainMessage('Too Many Requests: too many failed sign-ins; try again in 894 seconds'),
                    plainMessage('Conflict: an integration named "x" exists'),
                    plainMessage('try again in 3600 seconds')];
        }"""
    )
    assert said == [
        "Too many failed sign-ins; try again in 15 minutes.",
        'An integration named "x" exists.',
        "Try again in 1 hour.",
    ]


def test_an_unknown_console_address_has_a_page(page: Page, console: Console) -> None:
    allow_http_errors(page, 404)
    sign_in(page, console, console.owner_email)
    response = page.goto(console.url("/no-such-section"))
    assert response is not None and response.status == 404
    assert response.headers["content-type"].startswith("text/html")
    expect(page.get_by_role("heading", name="Page not found")).to_be_visible()
    expect(page.get_by_role("link", name="Back to the console")).to_be_visible()
    expect(page.get_by_role("button", name="Sign out", exact=True)).to_be_visible()  # signed in: the usual top bar


@pytest.mark.parametrize("name", ["constructor", "__proto__", "toString", "hasOwnProperty", "signins"])
def test_an_unknown_feature_in_the_explorers_address_shows_sign_ins_and_says_so(
    page: Page, console: Console, name: str
) -> None:
    """A name every JavaScript object has ("constructor", "__proto__") passed the explorer's
    `FEATURES[name]` check: no tab was selected, the labels read "undefined" and the page asked the
    API for /events/constructor (a 404, shown as an error). Now any feature the explorer does not
    have shows sign-in attempts, and the status says why."""
    sign_in(page, console, console.owner_email)
    page.goto(console.url(f"/events?feature={name}"))
    expect(page.locator("#events-table")).to_have_attribute("aria-busy", "false")
    expect(page.locator("#status")).to_have_text(f'Unknown feature "{name}" in the address: showing sign-in attempts.')
    expect(page.get_by_role("tab", name="Sign-in attempts")).to_have_attribute("aria-selected", "true")
    expect(page.locator(".kind-label").first).to_have_text("Category")
    expect(page.locator("#events-table tbody tr").first).to_be_visible()
    expect(page).to_have_url(re.compile(r"feature=signinattempts"))
    page.get_by_role("button", name="Apply").click()  # the notice is said once, not on every search
    expect(page.locator("#status")).to_have_text("")


@pytest.mark.parametrize("tail", ["/events?range=constructor", "/dashboards/signins?range=2d"])
def test_an_unknown_time_range_in_the_address_keeps_the_default_and_says_so(
    page: Page, console: Console, tail: str
) -> None:
    """The range select took any value from the address; one it does not have left it empty, and
    reading the window threw ("Invalid time value"): nothing was shown."""
    sign_in(page, console, console.owner_email)
    page.goto(console.url(tail))
    asked = tail.rsplit("=", 1)[1]
    expect(page.locator("#status")).to_have_text(f'Unknown time range "{asked}" in the address: showing last 7 days.')
    expect(page.get_by_label("Time range", exact=True)).to_have_value("7d")
    expect(page).to_have_url(re.compile(r"range=7d"))


def test_a_token_the_wizard_cannot_issue_leaves_no_integration_behind(
    page: Page, console: Console, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The wizard made the integration, then failed to issue its token (here: the account at its
    token bound): the integration stayed, without a token, and started again with the same name
    the wizard refused it as taken. Now the integration made for the token is deleted again and
    the message says nothing was created; should that deletion fail too, the message says the
    integration is there and issuing again reuses it (one integration, with its token)."""
    services = console.live.services
    suffix = new_id()[:6].lower()
    email = f"wendy-{suffix}@example.test"
    account, owner = services.people.create_account(CLI, f"Wizard {suffix}", email, "Wendy Wizard", None)
    assert owner is not None
    services.store.set_password(owner.id, hash_password(PASSWORD))

    def live() -> list[tuple[str, int]]:
        """The account's integrations, each with how many tokens it has."""
        found = services.store.list_integrations(account.id)
        return [(i.name, len(services.store.list_tokens(account.id, i.id))) for i in found]

    def deletion_fails(route: Route) -> None:
        if route.request.method != "DELETE":
            route.fallback()
            return
        route.fulfill(status=503, json={"Error": {"Message": "Service Unavailable: the store is not available"}})

    monkeypatch.setattr(tokens, "MAX_LIVE_TOKENS", 0)
    allow_http_errors(page, 409, 503)
    sign_in(page, console, email)
    page.goto(f"{console.base_url}/console/accounts/{account.uuid}/integrations/new?type=splunk")
    page.wait_for_selector("body[data-loaded=true]")
    page.get_by_label("Integration name").fill("Splunk production")
    page.get_by_role("button", name="Continue").click()
    form = page.locator("#step-2")
    error = form.locator(".error")

    form.get_by_role("button", name="Issue token").click()
    expect(error).to_contain_text("the most allowed is 0")
    expect(error).to_contain_text("Nothing was created; issue the token again once that is fixed.")
    assert live() == []

    page.route("**/integrations/*", deletion_fails)  # the deletion fails too: the message says what is there
    form.get_by_role("button", name="Issue token").click()
    reused = "The integration “Splunk production” was created without a token; issuing again uses it."
    expect(error).to_contain_text(reused)
    assert live() == [("Splunk production", 0)]
    page.unroute("**/integrations/*")

    monkeypatch.setattr(tokens, "MAX_LIVE_TOKENS", 10)
    form.get_by_role("button", name="Issue token").click()
    expect(page.locator("#step-3").get_by_text("you won't see it again")).to_be_visible()
    assert live() == [("Splunk production", 1)]
