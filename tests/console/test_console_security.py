"""The console attacked in real Chromium: what a browser keeps after signing out, and what hostile
values in events do to the pages that show them."""

from __future__ import annotations

import re
import time

from playwright.sync_api import Page, expect

from siemgate.model.features import Feature
from siemgate.model.ids import new_id
from support.events import auditevent, itemusage, signin

from .conftest import Console, allow_http_errors, sign_in

S = 10**9
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
    page.get_by_role("button", name="Sign out", exact=True).click()
    expect(page).to_have_url(re.compile(r"/console/sign-in$"))
    allow_http_errors(page, 401)
    statuses = page.evaluate(
        "(urls) => Promise.all(urls.map((u) => fetch(u, { cache: 'force-cache' }).then((r) => r.status)))", read
    )
    assert dict(zip(read, statuses, strict=True)) == {url: 401 for url in read}


# Names every JavaScript object has: a code looked up in an object literal must not find them.
INHERITED = ["constructor", "__proto__", "toString", "valueOf", "hasOwnProperty"]


def test_mirrored_codes_named_like_object_properties_are_shown_as_codes(page: Page, console: Console) -> None:
    """A mirror keeps enum values newer than the spec as received (model/validation.py, lenient), so
    an upstream chooses category, action and object type, even their JSON types. Codes named like
    the properties every JavaScript object inherits, or that are not text, are shown as they are, in
    the explorer and on the dashboards."""
    now = time.time_ns()
    at = [now - (i + 1) * S for i in range(len(INHERITED) + 1)]
    writer, account = console.live.services.writer, console.account.id
    audits = [auditevent(t, action=code, object_type=code) for t, code in zip(at, INHERITED, strict=False)]
    writer.write(account, Feature.AUDITEVENTS, audits, strict=False)
    signins = [signin(t, category=code, type=code) for t, code in zip(at, INHERITED, strict=False)]
    writer.write(account, Feature.SIGNINATTEMPTS, signins, strict=False)
    items = [itemusage(t, action=code) for t, code in zip(at, [*INHERITED, 7], strict=True)]
    writer.write(account, Feature.ITEMUSAGES, items, strict=False)
    sign_in(page, console, console.owner_email)
    for feature in ("auditevents", "signinattempts", "itemusages"):
        page.goto(console.url(f"/events?feature={feature}&range=1h"))
        expect(page.locator("#events-table")).to_have_attribute("aria-busy", "false")
        expect(page.locator("#status")).to_have_text("")
        for code in INHERITED:
            row = page.locator("#events-table tbody tr:not(.json-row)", has=page.locator(f"td[data-code='{code}']"))
            expect(row.locator("td").nth(2)).to_have_text(code)
            if feature != "itemusages":
                expect(row.locator("td").nth(3)).to_have_text(code)
    expect(page.locator("#events-table td[data-code='7']")).to_have_text("7")
    for board in ("audit", "signins", "items"):
        page.goto(console.url(f"/dashboards/{board}?range=24h"))
        expect(page.locator("body")).to_have_attribute("data-ready", "true")
        expect(page.locator("#status")).to_have_text("")


# Markup a page that built HTML from data would run (CSP would refuse it, as a console error).
XSS = '"\'><img src=x onerror="window.__pwned=1"><svg onload="window.__pwned=2"></svg><script>window.__pwned=3</script>'
INJECTED = "img[src=x], svg[onload], script:not([src])"


def _hostile_events(console: Console) -> None:
    """One event of each stream with XSS in every text a person or an upstream chooses."""
    now, writer, account = time.time_ns() - 5 * S, console.live.services.writer, console.account.id
    person = {"uuid": new_id(), "name": XSS, "email": XSS, "user_type": "user"}
    client = {"app_name": XSS, "app_version": XSS, "ip_address": "192.0.2.66", "os_name": XSS, "platform_name": XSS}
    place = {"country": "CA", "region": XSS, "city": XSS, "latitude": 1.0, "longitude": 2.0}
    writer.write(account, Feature.SIGNINATTEMPTS, [signin(now, target_user=person, client=client, location=place)])
    writer.write(account, Feature.ITEMUSAGES, [itemusage(now, user=person, client=client, location=place)])
    aux = '{"name": "' + XSS.replace('"', '\\"') + '", "url": "javascript:window.__pwned=4"}'
    audit = auditevent(now, actor_details=person, object_details=person, aux_info=aux, action="revoke")
    writer.write(account, Feature.AUDITEVENTS, [audit], strict=False)


def test_event_text_is_shown_as_text_never_run(page: Page, console: Console) -> None:
    """Sound: the pages build their elements from data as text nodes and attributes (no HTML
    parsing of data), and the CSP forbids inline script. Event text full of markup, in the explorer
    (rows and their JSON) and on the dashboards, is shown as written and runs nothing."""
    _hostile_events(console)
    sign_in(page, console, console.owner_email)
    for feature in ("signinattempts", "itemusages", "auditevents"):
        page.goto(console.url(f"/events?feature={feature}&range=1h"))
        expect(page.locator("#events-table")).to_have_attribute("aria-busy", "false")
        row = page.locator("#events-table tbody tr:not(.json-row)", has_text=XSS)
        expect(row).to_have_count(1)
        row.get_by_role("button", name=re.compile("^Show the JSON")).click()
        expect(page.locator("#events-table tbody tr.json-row:not([hidden])")).to_contain_text("window.__pwned=1")
        assert page.locator(INJECTED).count() == 0
        assert page.evaluate("window.__pwned") is None
    for board in ("audit", "signins", "items"):
        page.goto(console.url(f"/dashboards/{board}?range=1h"))
        expect(page.locator("body")).to_have_attribute("data-ready", "true")
        assert page.locator(INJECTED).count() == 0
        assert page.evaluate("window.__pwned") is None
