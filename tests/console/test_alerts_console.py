"""The console's Alerts page in real Chromium: each alert with the time of its activity and of its
detection, its state changed with Acknowledge/Resolve, a severity filter, and a link to the
explorer showing exactly its triggering events."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from siemgate.accounts.actor import CLI
from siemgate.auth.passwords import hash_password
from siemgate.config import load_settings
from siemgate.model.features import Feature
from siemgate.model.ids import new_id
from support.clocks import Clock
from support.events import auditevent, failed
from support.servers import start_server, stop_server
from support.stores import make_store

from .conftest import PASSWORD, Console, sign_in

S = 1_000_000_000
# An actor's email (the summary of "User suspended" names it) holding markup a page must not run.
XSS = '"><img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>'


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    data_dir = tmp_path_factory.mktemp("alerts-console")
    settings = load_settings(data_dir=data_dir, alerts_enabled=True)
    live, server, thread = start_server(settings, make_store("sqlite", data_dir), Clock())
    services = live.services
    account, owner = services.people.create_account(CLI, "Acme Corp", "olivia@acme.example", "Olivia Owner", None)
    assert owner is not None
    services.store.set_password(owner.id, hash_password(PASSWORD))
    hour_ago = time.time_ns() - 3600 * S
    services.writer.write(
        account.id, Feature.SIGNINATTEMPTS, [failed(hour_ago + i * S, "ada@acme.example") for i in range(10)]
    )
    admin = {"uuid": new_id(), "name": "Admin", "email": XSS, "user_type": "user"}
    suspend = auditevent(time.time_ns(), action="suspend", actor_details=admin)
    services.writer.write(account.id, Feature.AUDITEVENTS, [suspend])
    try:
        yield Console(live, account, "olivia@acme.example", "")
    finally:
        stop_server(live, server, thread)


def test_the_alerts_page_shows_times_and_state_and_links_to_the_events(page: Page, console: Console) -> None:
    sign_in(page, console, console.owner_email)
    page.goto(console.url("/alerts"))
    rows = page.locator("#alerts tbody tr")
    expect(rows).to_have_count(2)
    headers = page.locator("#alerts thead th").all_text_contents()
    assert headers[:2] == ["Activity", "Detected"] and "State" in headers
    brute = page.locator("#alerts tbody tr", has_text="failed sign-ins")
    activity, detected = brute.locator("time").evaluate_all("els => els.map(e => e.getAttribute('datetime'))")
    assert activity < detected  # the activity an hour before its detection
    expect(brute.locator(".badge", has_text="open")).to_be_visible()

    brute.get_by_role("button", name="Acknowledge").click()
    expect(brute.get_by_text("acknowledged", exact=True)).to_be_visible()
    expect(brute).to_contain_text(console.owner_email)

    page.get_by_label("Severity").select_option("medium")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("User suspended")
    page.get_by_label("Severity").select_option("")
    page.get_by_label("State").select_option("acknowledged")
    expect(rows).to_have_count(1)

    page.get_by_role("link", name="Show the 10 triggering events of this alert in the explorer").click()
    page.wait_for_selector("body[data-loaded=true]")
    expect(page.locator("#events-table")).to_have_attribute("aria-busy", "false")
    expect(page.locator("#events-table tbody tr:not(.json-row)")).to_have_count(10)


def test_event_text_in_an_alert_summary_is_shown_as_text(page: Page, console: Console) -> None:
    """Sound: the summary, filled from the event's fields, is written as text: no element of it is
    made and nothing runs (a CSP refusal would be a console error, which fails the test)."""
    sign_in(page, console, console.owner_email)
    page.goto(console.url("/alerts"))
    expect(page.locator("#alerts tbody tr", has_text="User suspended")).to_contain_text(f"{XSS} suspended")
    assert page.locator("img[src=x], script:not([src])").count() == 0
    assert page.evaluate("window.__pwned") is None
