"""Health at a glance in real Chromium: each integration's state on the list (active, expiring, no
active token, never used, behind by a time), lag as time, a rotation's retiring token, revoked
tokens folded away with who revoked them and when, Enter in Rename, and an add flow that leaves
no half-made integration behind."""

from __future__ import annotations

import re
from typing import Any

import httpx
from playwright.sync_api import Page, expect

from siemgate.accounts.actor import CLI
from siemgate.model.features import Feature
from siemgate.model.ids import new_id
from support.waiting import wait_for

from .conftest import Console, sign_in

DAY = 86400 * 10**9


def _integration(console: Console, name: str, siem: str = "splunk") -> Any:
    return console.live.store.create_integration(console.account.id, new_id(), siem, name, "", console.live.clock())


def _token(console: Console, integration: Any, features: list[Feature], expires: int | None = None) -> tuple[str, Any]:
    name = f"{integration.name} token"
    return console.live.services.tokens.issue(console.account, integration, name, features, expires)


def _read(console: Console, token: str, feature: str, pages: int | None = None) -> None:
    """Read the stream with the token like a SIEM: `pages` pages of 5, or everything."""
    body: dict[str, Any] = {"limit": 5 if pages else 1000, "start_time": "2000-01-01T00:00:00Z"}
    read = 0
    while True:
        reply = httpx.post(
            f"{console.base_url}/api/v2/{feature}", json=body, headers={"Authorization": f"Bearer {token}"}, timeout=30
        )
        assert reply.status_code == 200, reply.text
        read += 1
        if not reply.json()["has_more"] or (pages and read >= pages):
            return
        body = {"cursor": reply.json()["cursor"]}


def _position_recorded(console: Console, record: Any) -> None:
    wait_for("the token's position recorded", lambda: console.live.store.token_positions(record.id), timeout=15)


def test_the_list_shows_each_integrations_health(page: Page, console: Console) -> None:
    audit = [Feature.AUDITEVENTS]
    revoked = _integration(console, "Health revoked")
    _, gone = _token(console, revoked, audit)
    console.live.services.lifecycle.revoke(CLI, console.account, gone.id)
    _token(console, _integration(console, "Health never used"), audit)
    token, behind = _token(console, _integration(console, "Health behind"), [Feature.SIGNINATTEMPTS])
    _read(console, token, "signinattempts", pages=1)  # 5 events of a few days of history: days behind
    token, current = _token(console, _integration(console, "Health current"), audit)
    _read(console, token, "auditevents")
    token, soon = _token(console, _integration(console, "Health expiring"), audit, 3 * DAY)
    _read(console, token, "auditevents")
    for record in (behind, current, soon):
        _position_recorded(console, record)

    sign_in(page, console, console.owner_email)
    rows = page.locator("#integration-list tbody tr")

    def health(name: str) -> str:
        return rows.filter(has_text=name).locator("td.health").inner_text()

    expect(rows.filter(has_text="Health revoked").locator(".badge")).to_have_text("No active token")
    assert "receives nothing" in health("Health revoked")
    expect(rows.filter(has_text="Health never used").locator(".badge")).to_have_text("Never used")
    expect(rows.filter(has_text="Health behind").locator(".badge")).to_have_text(re.compile(r"^\d+ d behind$"))
    expect(rows.filter(has_text="Health current").locator(".badge")).to_have_text("Active")
    assert re.search(r"up to date|\d+ (s|min) behind", health("Health current"))
    expect(rows.filter(has_text="Health expiring").locator(".badge")).to_have_text("Expiring")
    assert "every token expires by" in health("Health expiring")


def test_lag_as_time_retiring_and_revoked_tokens(page: Page, console: Console) -> None:
    integration = _integration(console, "Health rotation", "elastic")
    token, record = _token(console, integration, [Feature.SIGNINATTEMPTS])
    _read(console, token, "signinattempts", pages=1)
    _position_recorded(console, record)
    _, spare = _token(console, integration, [Feature.AUDITEVENTS])
    sign_in(page, console, console.owner_email)
    page.goto(console.url(f"/integrations/{integration.uuid}"))
    page.wait_for_selector("body[data-loaded=true]")
    live = page.locator("#live-tokens tbody tr")
    first = page.locator(f"#live-tokens tbody tr[data-token='{record.id}']")
    expect(first).to_contain_text(re.compile(r"Sign-in attempts: \d+ d behind \([\d,]+ events\)"))
    expect(page.locator("#integration-health")).to_contain_text(re.compile(r"\d+ d behind"))

    # Rotation: the old token is shown as retiring, not as a green "Active".
    first.get_by_role("button", name="Rotate").click()
    page.get_by_role("dialog").get_by_role("button", name="Rotate").click()
    expect(page.locator("#reveal-section textarea")).not_to_have_value("")
    expect(first.locator(".badge")).to_have_text("Retiring")
    expect(first).to_contain_text("until its replacement is first used")
    expect(live).to_have_count(3)
    replacement = live.filter(has_text="replacement of the token issued")
    expect(replacement.locator(".badge")).to_have_text("Active")

    # A revoked token leaves the live table: folded away, with who revoked it and when, no lag.
    page.locator(f"#live-tokens tbody tr[data-token='{spare.id}']").get_by_role("button", name="Revoke").click()
    page.get_by_role("dialog").get_by_role("button", name="Revoke now").click()
    expect(live).to_have_count(2)
    folded = page.locator("details.gone-tokens")
    expect(folded.locator("summary")).to_have_text("Revoked and expired tokens (1)")
    gone = folded.locator(f"tr[data-token='{spare.id}']")
    expect(gone).not_to_be_visible()
    folded.locator("summary").click()
    expect(gone).to_contain_text(f"Revoked by {console.owner_email}")
    assert "behind" not in gone.inner_text() and "never read" not in gone.inner_text()


def test_enter_in_rename_saves(page: Page, console: Console) -> None:
    integration = _integration(console, "Health rename me", "datadog")
    sign_in(page, console, console.owner_email)
    page.goto(console.url(f"/integrations/{integration.uuid}"))
    page.wait_for_selector("body[data-loaded=true]")
    page.get_by_role("button", name="Rename").click()
    page.get_by_label("New name").fill("Health renamed by Enter")
    page.get_by_label("New name").press("Enter")
    expect(page.get_by_role("heading", name="Health renamed by Enter")).to_be_visible()
    assert console.live.store.get_integration(console.account.id, integration.uuid).name == "Health renamed by Enter"


def test_leaving_the_add_flow_leaves_no_integration_and_retrying_works(page: Page, console: Console) -> None:
    sign_in(page, console, console.owner_email)

    def names() -> list[str]:
        return [i.name for i in console.live.store.list_integrations(console.account.id)]

    page.goto(console.url("/integrations/new?type=sumo_logic"))
    page.wait_for_selector("body[data-loaded=true]")
    page.get_by_label("Integration name").fill("Health abandoned")
    page.get_by_role("button", name="Continue").click()
    expect(page.locator("#step-2")).to_be_visible()
    page.get_by_role("link", name="Integrations").first.click()  # leave at step 2
    page.wait_for_selector("body[data-loaded=true]")
    assert "Health abandoned" not in names()
    expect(page.locator("#integration-list")).not_to_contain_text("Health abandoned")

    page.goto(console.url("/integrations/new?type=sumo_logic"))
    page.wait_for_selector("body[data-loaded=true]")
    page.get_by_label("Integration name").fill("Health abandoned")
    page.get_by_role("button", name="Continue").click()
    page.locator("#step-2").get_by_role("button", name="Issue token").click()
    expect(page.locator("#step-3 textarea")).not_to_have_value("")
    assert names().count("Health abandoned") == 1

    # A name already taken is refused at the name field, in words, with a way to the existing one.
    page.goto(console.url("/integrations/new?type=sumo_logic"))
    page.wait_for_selector("body[data-loaded=true]")
    page.get_by_label("Integration name").fill("health ABANDONED")
    page.get_by_role("button", name="Continue").click()
    error = page.locator("#integration-name-error")
    expect(error).to_have_text(re.compile(r"An integration named “Health abandoned” already exists"))
    assert "Conflict" not in error.inner_text()
    expect(page.get_by_label("Integration name")).to_have_attribute("aria-invalid", "true")
    expect(error.get_by_role("link", name="open it")).to_be_visible()
    assert names().count("Health abandoned") == 1
