"""The console attacked in real Chromium: what a browser keeps after signing out, and what hostile
values in events do to the pages that show them."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from .conftest import Console, allow_http_errors, sign_in

ADMIN_API = "/api/admin/v1/"


def _admin_reads(page: Page) -> list[str]:
    """The admin API addresses the page has read so far."""
    urls: list[str] = page.evaluate("performance.getEntriesByType('resource').map((e) => e.name)")
    return [url for url in urls if ADMIN_API in url]


def test_signing_out_leaves_no_account_data_in_the_browser_cache(page: Page, console: Console) -> None:
    """The admin API's replies (other people's sign-ins, the members) are not kept by the browser:
    after signing out, asking the browser's cache for them goes to the server, which refuses."""
    sign_in(page, console, console.owner_email)
    read = []
    for tail in ("/events", "/members"):
        page.goto(console.url(tail))
        page.wait_for_selector("body[data-loaded=true]")
        read += _admin_reads(page)
    assert any("/events/signinattempts?" in url for url in read) and any(
        url.endswith("/members?limit=200") for url in read
    )
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/console/sign-in$"))
    allow_http_errors(page, 401)
    statuses = page.evaluate(
        "(urls) => Promise.all(urls.map((u) => fetch(u, { cache: 'force-cache' }).then((r) => r.status)))", read
    )
    assert dict(zip(read, statuses, strict=True)) == {url: 401 for url in read}
