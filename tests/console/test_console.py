"""The console end to end in real Chromium: sign-in, the add-integration flow, a token used against
the Events API and revoked from the console, the explorer's filters and export, the dashboards'
charts against the store's own counts, roles, keyboard use and sign-out."""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from playwright.sync_api import Page, expect

from siemgate.model.features import Feature
from siemgate.model.ids import new_id
from siemgate.model.timestamps import parse_ns
from support.waiting import wait_for

from .conftest import PASSWORD, TIMEZONE, Console, allow_http_errors, screenshot, sign_in


def _events_api(console: Console, token: str, feature: str = "signinattempts") -> httpx.Response:
    return httpx.post(
        f"{console.base_url}/api/v2/{feature}",
        json={"limit": 5, "start_time": "2000-01-01T00:00:00Z"},
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )


def _facet_total(console: Console, feature: Feature, start: str, end: str, **filters: str) -> int:
    rows = console.live.store.facet_counts(
        console.account.id, feature, parse_ns(start), parse_ns(end), [], filters=filters
    )
    return int(rows[0][-1]) if rows else 0


def _add_integration(page: Page, console: Console, siem: str, name: str) -> str:
    """Sign in as the owner, add an integration with a default token, open its details; the token."""
    sign_in(page, console, console.owner_email)
    page.locator("#gallery").get_by_role("link", name=f"Add {siem}").click()
    page.wait_for_selector("body[data-loaded=true]")
    page.get_by_label("Integration name").fill(name)
    page.get_by_role("button", name="Continue").click()
    page.locator("#step-2").get_by_role("button", name="Issue token").click()
    expect(page.locator("#step-3 textarea")).not_to_have_value("")
    token = page.locator("#step-3 textarea").input_value()
    page.get_by_role("link", name="Done: view the integration").click()
    page.wait_for_selector("body[data-loaded=true]")
    return token


# --- sign-in ----------------------------------------------------------------------------------------


def test_sign_in_refuses_a_wrong_password_records_it_and_then_signs_in(page: Page, console: Console) -> None:
    allow_http_errors(page, 401, 403)  # the wrong password; then the member's page that says "not for you"
    page.goto(f"{console.base_url}/console/accounts/{console.account.uuid}/events")
    expect(page).to_have_url(re.compile(r"/console/sign-in\?next="))  # back to where they were going
    screenshot(page, "01-sign-in")
    page.get_by_label("Email").fill(console.member_email)
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("email or password")
    expect(page.get_by_label("Password")).to_have_value("")

    failed = wait_for(
        "the failed sign-in recorded",
        lambda: console.live.store.search_events(
            console.account.id,
            Feature.SIGNINATTEMPTS,
            0,
            console.live.clock(),
            {"actor": console.member_email, "kind": "credentials_failed"},
            None,
            10,
        ),
    )
    event = json.loads(failed[0][2])
    assert event["target_user"]["email"] == console.member_email and event["type"] == "password_secret_bad"

    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    # A member may not read activity: they land on the page that says so, signed in.
    expect(page.get_by_role("heading", name="Not available for your role")).to_be_visible()
    cookie = next(c for c in page.context.cookies() if c["name"] == "siemgate_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"


def test_changes_without_the_csrf_token_are_refused(page: Page, console: Console) -> None:
    sign_in(page, console, console.owner_email)
    cookie = next(c for c in page.context.cookies() if c["name"] == "siemgate_session")
    url = f"{console.base_url}/api/admin/v1/accounts/{console.account.uuid}/integrations"
    with httpx.Client(cookies={cookie["name"]: cookie["value"]}, timeout=10) as client:
        assert client.get(url).status_code == 200
        refused = client.post(url, json={"type": "splunk", "name": "forged"})
        assert refused.status_code == 403 and "CSRF" in refused.json()["Error"]["Message"]
    names = [i.name for i in console.live.store.list_integrations(console.account.id)]
    assert "forged" not in names


def test_sign_out_ends_the_session(page: Page, console: Console) -> None:
    sign_in(page, console, console.owner_email)
    page.get_by_role("button", name="Sign out", exact=True).click()
    expect(page).to_have_url(re.compile(r"/console/sign-in$"))
    page.goto(console.url("/integrations"))
    expect(page).to_have_url(re.compile(r"/console/sign-in\?next="))


# --- integrations and tokens ---------------------------------------------------------------------


def test_add_integration_issue_token_use_it_then_revoke_it(page: Page, console: Console, tmp_path: Path) -> None:
    sign_in(page, console, console.owner_email)
    gallery = page.locator("#gallery")
    for name in ["Blumira", "CrowdStrike Falcon", "Datadog", "Elastic", "Microsoft Sentinel", "Panther"]:
        expect(gallery.get_by_role("link", name=f"Add {name}")).to_be_visible()
    for name in ["Rapid7 InsightIDR", "Splunk", "Stellar Cyber", "Sumo Logic", "Other"]:
        expect(gallery.get_by_role("link", name=f"Add {name}")).to_be_visible()
    assert page.locator("#gallery img").evaluate_all("imgs => imgs.every(i => i.complete && i.naturalWidth > 0)")
    screenshot(page, "02-integrations")

    gallery.get_by_role("link", name="Add Splunk").click()
    page.wait_for_selector("body[data-loaded=true]")
    expect(page.get_by_role("heading", name="Add Splunk")).to_be_visible()
    page.get_by_label("Integration name").fill("Splunk production")
    page.get_by_role("button", name="Continue").click()

    form = page.locator("#step-2")
    expect(form.get_by_label("Token name")).to_have_value("Splunk production token")
    form.get_by_label("90 days").check()
    form.get_by_label("Item usages").uncheck()
    screenshot(page, "03-issue-token")
    form.get_by_role("button", name="Issue token").click()

    reveal = page.locator("#step-3")
    expect(reveal.get_by_text("you won't see it again")).to_be_visible()
    token = reveal.locator("textarea").input_value()
    assert token.count(".") == 2
    expect(reveal.locator(".base-url")).to_have_text(console.live.services.settings.base_url)
    screenshot(page, "04-token-shown-once")

    reveal.get_by_role("button", name="Copy").click()
    expect(reveal.get_by_text("Copied to the clipboard.")).to_be_visible()
    assert page.evaluate("navigator.clipboard.readText()") == token
    with page.expect_download() as download:
        reveal.get_by_role("button", name="Download").click()
    saved = tmp_path / "token.txt"
    download.value.save_as(saved)
    assert saved.read_text().strip() == token

    # The token works against the Events API, with exactly the event types chosen.
    introspect = httpx.get(
        f"{console.base_url}/api/v2/auth/introspect", headers={"Authorization": f"Bearer {token}"}, timeout=10
    )
    assert introspect.status_code == 200
    assert sorted(introspect.json()["features"]) == ["auditevents", "signinattempts"]
    page_reply = _events_api(console, token)
    assert page_reply.status_code == 200 and len(page_reply.json()["items"]) == 5
    assert _events_api(console, token, "itemusages").status_code == 401

    page.get_by_role("link", name="Done: view the integration").click()
    expect(page.get_by_role("heading", name="Splunk production")).to_be_visible()
    row = page.locator("#tokens tbody tr", has_text="Splunk production token")
    expect(row.locator(".badge")).to_have_text("Active")

    # Use is recorded in the background (every 2 s): the page shows it once reloaded after that.
    def shows_use() -> bool:
        page.reload()
        page.wait_for_selector("body[data-loaded=true]")
        return re.search(r"Sign-in attempts: (up to date|[\d ]+\w+ behind)", row.inner_text()) is not None

    wait_for("the token's use shown", shows_use, timeout=15)
    expect(row).to_contain_text("Audit events: never read")
    expect(row.locator("td").nth(4)).not_to_have_text("Never")  # last used
    screenshot(page, "05-integration-details")

    row.get_by_role("button", name="Revoke").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("stops receiving events at once")
    expect(dialog.get_by_role("button", name="Issue a replacement first")).to_be_visible()
    screenshot(page, "06-revoke-confirmation")
    dialog.get_by_role("button", name="Revoke now").click()
    expect(row.locator(".badge")).to_have_text("Revoked")
    expect(page.locator("#status")).to_contain_text("Revoked")

    refused = _events_api(console, token)
    assert refused.status_code == 401
    assert "revoked" in refused.json()["Error"]["Message"].lower()


def test_revoke_offers_a_replacement_first_and_rotation_keeps_the_old_token_working(
    page: Page, console: Console
) -> None:
    old = _add_integration(page, console, "Elastic", "Elastic SOC")

    page.locator("#tokens tbody tr").first.get_by_role("button", name="Revoke").click()
    page.get_by_role("dialog").get_by_role("button", name="Issue a replacement first").click()
    confirm = page.get_by_role("dialog")
    expect(confirm).to_contain_text("keeps working until the new one is first used")
    confirm.get_by_role("button", name="Rotate").click()

    reveal = page.locator("#reveal-section")
    expect(reveal.locator("textarea")).not_to_have_value("")
    new = reveal.locator("textarea").input_value()
    assert new and new != old
    rows = page.locator("#tokens tbody tr")
    expect(rows).to_have_count(2)
    assert _events_api(console, old).status_code == 200  # grace: the SIEM switches without a gap
    assert _events_api(console, new).status_code == 200

    # The old token goes as soon as the new one is used (its grace ends at first use).
    def old_refused() -> bool:
        return _events_api(console, old).status_code == 401

    wait_for("the old token refused", old_refused, timeout=15)
    page.reload()
    old_row = page.locator("#tokens tbody tr", has_not_text="replacement")
    expect(old_row.locator(".badge")).to_have_text("Revoked")


def test_issue_another_token_with_a_custom_expiry(page: Page, console: Console) -> None:
    _add_integration(page, console, "Other", "Cribl")

    page.get_by_role("button", name="Issue a token").click()
    section = page.locator("#issue-section")
    section.get_by_label("Token name").fill("cribl-worker-2")
    section.get_by_label("Custom", exact=True).check()
    allow_http_errors(page, 400)
    section.get_by_label("Custom expiry").fill("12x")
    section.get_by_role("button", name="Issue token").click()
    expect(section.get_by_role("alert")).to_contain_text("12x")  # the API's message says what to fix
    section.get_by_label("Custom expiry").fill("45d")
    section.get_by_role("button", name="Issue token").click()
    expect(page.locator("#reveal-section textarea")).not_to_have_value("")
    row = page.locator("#tokens tbody tr", has_text="cribl-worker-2")
    expect(row.locator(".badge")).to_have_text("Active")
    expect(row.locator("td").nth(3)).not_to_have_text("Never")


def test_members_see_integrations_read_only_and_no_activity(page: Page, console: Console) -> None:
    integration = console.live.store.create_integration(
        console.account.id, new_id(), "datadog", "Datadog EU", "", console.live.clock()
    )
    console.live.services.tokens.issue(console.account, integration, "dd-eu", [Feature.AUDITEVENTS], None)
    sign_in(page, console, console.member_email)
    page.wait_for_selector("#gallery li")
    expect(page.get_by_text("Only owners and administrators can add integrations")).to_be_visible()
    assert page.locator("#gallery a").count() == 0
    expect(page.get_by_role("navigation", name="Sections").get_by_role("link")).to_have_text(
        ["Integrations", "Alerts", "Members"]
    )
    page.locator("#integration-list").get_by_role("link", name="Datadog EU").click()
    page.wait_for_selector("body[data-loaded=true]")
    expect(page.locator("#tokens tbody tr").first).to_be_visible()
    assert page.get_by_role("button", name="Revoke").count() == 0
    assert page.get_by_role("button", name="Issue a token").count() == 0
    screenshot(page, "07-member-read-only")

    allow_http_errors(page, 403)
    refusals = {
        "/events": "Only owners and administrators can see account activity",
        "/dashboards/signins": "Only owners and administrators can see account activity",
        "/integrations/new?type=splunk": "Only owners and administrators can add integrations",
    }
    for tail, why in refusals.items():
        response = page.goto(console.url(tail))
        assert response is not None and response.status == 403
        expect(page.get_by_role("heading", name="Not available for your role")).to_be_visible()
        expect(page.locator("main p").first).to_contain_text(why)  # what the page is, not another's reason


def test_members_page_lists_roles(page: Page, console: Console) -> None:
    sign_in(page, console, console.owner_email)
    page.get_by_role("link", name="Members").click()
    rows = page.locator("#members tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.filter(has_text=console.owner_email)).to_contain_text("owner")
    expect(rows.filter(has_text=console.member_email)).to_contain_text("member")
    screenshot(page, "08-members")


# --- explorer ----------------------------------------------------------------------------------


def _cells(page: Page, column: int) -> list[str]:
    """The column's values: the code behind a label (data-code), the person's address in column 2."""
    cells = page.locator(f"#events-table tbody tr:not(.json-row) td:nth-child({column})")
    if column == 2:
        return cells.locator(".actor").all_inner_texts()
    return [c.get_attribute("data-code") or c.inner_text() for c in cells.all()]


def test_explorer_filters_pages_shows_json_and_exports(page: Page, console: Console) -> None:
    sign_in(page, console, console.owner_email)
    page.get_by_role("link", name="Event explorer").click()
    expect(page.locator("#events-table tbody tr").first).to_be_visible()
    assert len(_cells(page, 1)) == 50
    times = page.locator("#events-table tbody time").evaluate_all("ts => ts.map(t => t.getAttribute('datetime'))")
    assert times == sorted(times, reverse=True)  # newest first

    filters = page.get_by_role("search", name="Filter events")
    filters.get_by_label("Time range", exact=True).select_option("30d")
    filters.get_by_label("Category").select_option("credentials_failed")
    filters.get_by_role("button", name="Apply").click()
    expect(page).to_have_url(re.compile(r"kind=credentials_failed"))
    expect(page.locator("#events-table")).to_have_attribute("aria-busy", "false")
    categories = _cells(page, 3)
    assert categories and set(categories) == {"credentials_failed"}
    summary = page.locator("#result-summary").inner_text()
    url = page.url
    query = dict(re.findall(r"[?&](\w+)=([^&]*)", url))
    assert query["range"] == "30d"

    # The count shown is the store's count for the filter.
    shown_total = int(summary.split()[0].replace(",", ""))
    assert shown_total >= len(categories)

    # One person's failures: the filter narrows, and every row is theirs.
    person = _cells(page, 2)[0]
    filters.get_by_label("User").fill(person)
    filters.get_by_role("button", name="Apply").click()
    expect(page.locator("#events-table")).to_have_attribute("aria-busy", "false")
    assert set(_cells(page, 2)) == {person}
    screenshot(page, "09-explorer-filtered")

    # Full JSON on demand.
    first = page.locator("#events-table tbody tr:not(.json-row)").first
    first.get_by_role("button", name=re.compile("Show the JSON")).click()
    shown = json.loads(page.locator("#events-table tr.json-row:not([hidden]) pre").inner_text())
    assert shown["category"] == "credentials_failed" and shown["target_user"]["email"] == person

    # Export of the filtered set: JSON Lines and CSV hold exactly the matching events.
    with page.expect_download() as jsonl:
        page.get_by_role("link", name="Export JSON Lines").click()
    lines = Path(jsonl.value.path()).read_text().splitlines()
    exported = [json.loads(line) for line in lines]
    total = int(page.locator("#result-summary").inner_text().split()[0].replace(",", ""))
    assert len(exported) == total
    assert {e["target_user"]["email"] for e in exported} == {person}
    assert {e["category"] for e in exported} == {"credentials_failed"}
    with page.expect_download() as csv:
        page.get_by_role("link", name="Export CSV").click()
    csv_lines = Path(csv.value.path()).read_text().splitlines()
    assert csv_lines[0].startswith("uuid,") and len(csv_lines) == total + 1


def test_explorer_streams_and_load_more(page: Page, console: Console) -> None:
    sign_in(page, console, console.owner_email)
    page.goto(console.url("/events?feature=itemusages&range=7d"))
    expect(page.get_by_role("tab", name="Item usages")).to_have_attribute("aria-selected", "true")
    expect(page.locator("th.kind-label")).to_have_text("Action")
    expect(page.locator("#events-table tbody tr").first).to_be_visible()
    before = page.locator("#events-table tbody tr:not(.json-row)").count()
    page.get_by_role("button", name="Load more").click()
    expect(page.locator("#events-table tbody tr:not(.json-row)")).to_have_count(before + 50)
    uuids = page.locator("#events-table tbody tr[data-uuid]").evaluate_all("rs => rs.map(r => r.dataset.uuid)")
    assert len(set(uuids)) == len(uuids)  # no repeats across pages

    # Keyboard: arrow keys move between the stream tabs.
    page.get_by_role("tab", name="Item usages").focus()
    page.keyboard.press("ArrowRight")
    expect(page.get_by_role("tab", name="Audit events")).to_be_focused()
    expect(page.get_by_role("tab", name="Audit events")).to_have_attribute("aria-selected", "true")
    expect(page.locator("th.kind-label")).to_have_text("Action")
    expect(page.locator("th.detail-label")).to_have_text("Object type")
    expect(page.locator("#events-table tbody tr").first).to_be_visible()
    screenshot(page, "10-explorer-audit")


# --- dashboards --------------------------------------------------------------------------------


def _chart_totals(page: Page) -> dict[str, Any]:
    totals: dict[str, Any] = page.evaluate(
        """() => Object.fromEntries(Object.entries(window.siemgateCharts).map(([id, c]) => [id, {
            total: c.total,
            data: c.chart.data.datasets.reduce((s, d) => s + d.data.reduce((a, b) => a + b, 0), 0),
            painted: (() => { const cv = c.chart.canvas, ctx = cv.getContext('2d');
                              const px = ctx.getImageData(0, 0, cv.width, cv.height).data;
                              let n = 0; for (let i = 3; i < px.length; i += 4) if (px[i]) n++; return n; })(),
        }]))"""
    )
    return totals


@pytest.mark.parametrize(
    ("board", "feature", "charts"),
    [
        (
            "signins",
            Feature.SIGNINATTEMPTS,
            ["chart-over-time", "chart-fail-type", "chart-fail-country", "chart-fail-user"],
        ),
        ("items", Feature.ITEMUSAGES, ["chart-over-time", "chart-by-action", "chart-by-vault", "chart-by-user"]),
        ("audit", Feature.AUDITEVENTS, ["chart-over-time", "chart-by-actor", "chart-by-action", "chart-by-object"]),
    ],
)
def test_dashboards_chart_the_stored_activity(
    page: Page, console: Console, board: str, feature: Feature, charts: list[str]
) -> None:
    sign_in(page, console, console.owner_email)
    page.goto(console.url(f"/dashboards/{board}"))
    page.wait_for_selector("body[data-ready=true]")
    start, end = page.locator("body").get_attribute("data-start"), page.locator("body").get_attribute("data-end")
    assert start and end
    totals = _chart_totals(page)
    assert sorted(totals) == sorted(charts)
    stored = _facet_total(console, feature, start, end)
    assert stored > 0
    assert totals["chart-over-time"]["total"] == stored  # every event of the window is in a bucket
    assert totals["chart-over-time"]["data"] == stored
    for chart in charts:
        assert totals[chart]["total"] > 0, chart
        assert totals[chart]["painted"] > 1000, f"{chart} drew nothing"
    summary = page.locator("#dashboard-summary").inner_text()
    assert summary.startswith(f"{stored:,} events")
    screenshot(page, f"11-dashboard-{board}")

    if board == "signins":
        rows = page.locator("#country-table tbody tr")
        expect(rows.first).to_be_visible()
        top = console.live.store.facet_counts(
            console.account.id, feature, parse_ns(start), parse_ns(end), ["country"], limit=1
        )[0]
        assert rows.first.get_attribute("data-country") == (top[0] or "")
        assert rows.first.locator("td").nth(1).inner_text().replace(",", "") == str(top[1])
        failures = _facet_total(console, feature, start, end, kind="credentials_failed")
        assert totals["chart-fail-type"]["total"] >= failures > 0

    # Another time range redraws from the store.
    page.get_by_label("Time range", exact=True).select_option("24h")
    page.get_by_role("button", name="Apply").click()
    expect(page).to_have_url(re.compile(r"range=24h"))
    expect(page.locator("body")).not_to_have_attribute("data-start", start)
    page.wait_for_selector("body[data-ready=true]")
    start2, end2 = page.locator("body").get_attribute("data-start"), page.locator("body").get_attribute("data-end")
    assert start2 and end2
    assert _chart_totals(page)["chart-over-time"]["total"] == _facet_total(console, feature, start2, end2)


def test_dashboard_layout_works_on_a_phone(page: Page, console: Console) -> None:
    sign_in(page, console, console.owner_email)
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(console.url("/dashboards/items"))
    page.wait_for_selector("body[data-ready=true]")
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, f"the page scrolls sideways by {overflow}px"
    screenshot(page, "12-dashboard-phone")


# --- accessibility -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "tail", ["/integrations", "/integrations/new?type=datadog", "/events", "/dashboards/audit", "/alerts", "/members"]
)
def test_every_control_has_a_label_and_the_skip_link_comes_first(page: Page, console: Console, tail: str) -> None:
    sign_in(page, console, console.owner_email)
    page.goto(console.url(tail))
    page.wait_for_selector("body[data-loaded=true]")
    unlabeled = page.evaluate(
        """() => Array.from(document.querySelectorAll('input, select, textarea, button'))
              .filter(el => el.offsetParent !== null)
              .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label')
                            && !(el.tagName === 'BUTTON' && el.textContent.trim()))
              .map(el => el.outerHTML.slice(0, 80))"""
    )
    assert unlabeled == []
    first = page.evaluate(
        """() => document.querySelector('a[href], button, input, select, textarea, [tabindex]:not([tabindex="-1"])')
                   .textContent"""
    )
    assert first == "Skip to content"  # the first stop of the tab order
    page.get_by_role("link", name="Skip to content").focus()
    page.keyboard.press("Enter")
    expect(page.locator("main")).to_be_focused()
    assert page.evaluate("document.documentElement.lang") == "en"
    if tail == "/alerts":
        screenshot(page, "13-alerts")


def test_explorer_custom_time_range(page: Page, console: Console) -> None:
    sign_in(page, console, console.owner_email)
    page.goto(console.url("/events?feature=signinattempts"))
    expect(page.locator("#events-table")).to_have_attribute("aria-busy", "false")
    newest = page.locator("#events-table tbody time").first.get_attribute("datetime")
    assert newest
    end_ns = parse_ns(newest) - 3600 * 10**9  # a day-long window ending an hour before the newest event
    start_ns = end_ns - 86400 * 10**9
    # datetime-local inputs take the browser's local time (Europe/Berlin here); the page sends UTC.
    local = [
        datetime.fromtimestamp(ns // 10**9, ZoneInfo(TIMEZONE)).strftime("%Y-%m-%dT%H:%M:%S")
        for ns in (start_ns, end_ns)
    ]
    filters = page.get_by_role("search", name="Filter events")
    filters.get_by_label("Time range", exact=True).select_option("custom")
    filters.get_by_label("From").fill(local[0])
    filters.get_by_label("To").fill(local[1])
    filters.get_by_role("button", name="Apply").click()
    expect(page).to_have_url(re.compile(r"range=custom"))
    expect(page.locator("#events-table")).to_have_attribute("aria-busy", "false")
    stamps = [
        parse_ns(t)
        for t in page.locator("#events-table tbody time").evaluate_all("ts => ts.map(t => t.getAttribute('datetime'))")
    ]
    assert stamps, "the simulated history has sign-ins in that day"
    assert all(start_ns - 10**9 <= t <= end_ns + 10**9 for t in stamps)  # inputs are to the second
    total = int(page.locator("#result-summary").inner_text().split()[0].replace(",", ""))
    stored = console.live.store.facet_counts(
        console.account.id, Feature.SIGNINATTEMPTS, start_ns - 10**9, end_ns + 10**9, []
    )[0][0]
    assert 0 < total <= stored

    # An impossible range says what to fix and sends nothing.
    filters.get_by_label("From").fill(local[1])
    filters.get_by_label("To").fill(local[0])
    filters.get_by_role("button", name="Apply").click()
    expect(page.locator("#status")).to_have_text("The start of the time range must be before its end.")
