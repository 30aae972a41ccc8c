"""The console says where SIEMs reach siemgate, and what stops a SIEM from using that address,
before a token is issued (docs/setup.md, "The public address")."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from .conftest import Console, sign_in


def test_add_integration_shows_the_address_and_its_problems_before_the_token(page: Page, console: Console) -> None:
    base_url = console.live.services.settings.base_url  # a fresh install's loopback http:// address
    sign_in(page, console, console.owner_email)
    page.goto(console.url("/integrations/new?type=microsoft_sentinel"))
    page.wait_for_selector("body[data-loaded=true]")
    address = page.locator("#address")
    expect(address.locator(".base-url")).to_have_text(base_url)
    warning = address.locator(".address-warnings")
    expect(warning).to_contain_text("Fix this before issuing a token")
    expect(warning).to_contain_text(f"Microsoft Sentinel runs in the cloud and cannot reach {base_url}")
    expect(warning).to_contain_text("SIEMGATE_PUBLIC_URL")
    expect(page.locator("#step-3")).to_be_hidden()  # no token yet

    page.goto(console.url("/integrations/new?type=splunk"))
    page.wait_for_selector("body[data-loaded=true]")
    expect(page.locator("#address .address-warnings")).to_contain_text("the token's audience")
