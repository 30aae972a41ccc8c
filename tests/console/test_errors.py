"""Errors people can act on, in real Chromium: plain sentences without HTTP reason phrases or raw
seconds, attached to the field that caused them, and a console page for an unknown address."""

from __future__ import annotations

import re

import httpx
import pytest
from playwright.sync_api import Page, expect

from siemgate.model.ids import new_id

from .conftest import Console, allow_http_errors, sign_in

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
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()  # signed in: the usual top bar


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
