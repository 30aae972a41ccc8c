"""The explorer as an activity log, in real Chromium: words for every code of the 1Password
catalogue (model/enums.py), a sentence per event with the names the events carry, the codes still
in the JSON, forgiving filters with suggestions, and a histogram of the matching events."""

from __future__ import annotations

import json
import time
from pathlib import Path

from playwright.sync_api import Page, expect

from siemgate.model import enums
from siemgate.model.features import Feature
from siemgate.model.ids import new_id
from support.events import auditevent, signin

from .conftest import Console, sign_in

S = 10**9
ALICE = {"uuid": new_id(), "name": "Alice Admin", "email": "Alice.Admin@Example-Corp.test", "user_type": "user"}


def _write(console: Console) -> None:
    now = time.time_ns()
    token = new_id()
    audits = [
        auditevent(
            now - 60 * S,
            actor_details=ALICE,
            action="trevoke",
            object_type="satoken",
            object_uuid=token,
            aux_info=json.dumps({"name": "splunk-hf1"}),
        ),
        auditevent(
            now - 50 * S,
            actor_details=ALICE,
            action="enblmfa",
            object_type="user",
            object_details={"uuid": new_id(), "name": "Bob Builder", "email": "bob@example-corp.test"},
        ),
        auditevent(now - 40 * S, actor_details=ALICE, action="create", object_type="uva"),
    ]
    console.live.services.writer.write(console.account.id, Feature.AUDITEVENTS, audits)
    failed = signin(now - 30 * S, category="credentials_failed", type="password_secret_bad", country="US")
    failed["target_user"] = {**ALICE, "user_account_uuid": new_id()}
    console.live.services.writer.write(console.account.id, Feature.SIGNINATTEMPTS, [failed])


def test_every_code_of_the_catalogue_has_words(page: Page, console: Console) -> None:
    sign_in(page, console, console.owner_email)
    catalogue = {
        ("signinattempts", "kind"): enums.SIGNIN_CATEGORIES,
        ("signinattempts", "detail"): enums.SIGNIN_TYPES,
        ("itemusages", "kind"): enums.ITEM_USAGE_ACTIONS,
        ("auditevents", "kind"): enums.AUDIT_ACTIONS,
        ("auditevents", "detail"): enums.AUDIT_OBJECT_TYPES,
    }
    labels = page.evaluate(
        """async (catalogue) => {
            const { facetLabel } = await import('/console/static/js/labels.js');
            return catalogue.map(([feature, facet, codes]) => codes.map((c) => [c, facetLabel(feature, facet, c)]));
        }""",
        [[feature, facet, list(codes)] for (feature, facet), codes in catalogue.items()],
    )
    missing = [code for group in labels for code, label in group if not label or label == code]
    assert missing == [], f"codes shown as codes: {missing}"
    assert dict(labels[3])["enblmfa"] == "Enable MFA" and dict(labels[4])["uva"] == "User vault access"


def test_the_explorer_reads_as_an_activity_log(page: Page, console: Console) -> None:
    _write(console)
    sign_in(page, console, console.owner_email)
    page.goto(console.url("/events?feature=auditevents&range=24h"))
    expect(page.locator("#events-table")).to_have_attribute("aria-busy", "false")
    rows = page.locator("#events-table tbody tr:not(.json-row)")
    revoked = rows.filter(has_text="splunk-hf1")
    expect(revoked.locator(".sentence")).to_have_text("Alice Admin revoked token “splunk-hf1”")
    expect(revoked.locator("td").nth(2)).to_have_text("Revoke token")
    expect(revoked.locator("td").nth(3)).to_have_text("Token")
    mfa = rows.filter(has_text="Bob Builder")
    expect(mfa.locator(".sentence")).to_have_text("Alice Admin turned on two-factor for user “Bob Builder”")
    expect(mfa.locator("td").nth(2)).to_have_text("Enable MFA")
    access = rows.filter(has=page.locator("td[data-code=uva]"))
    expect(access.locator("td").nth(3)).to_have_text("User vault access")
    # The codes are still there, in the event's JSON.
    revoked.get_by_role("button", name="Show the JSON", exact=False).click()
    shown = json.loads(page.locator("#events-table tr.json-row:not([hidden]) pre").inner_text())
    assert shown["action"] == "trevoke" and shown["object_type"] == "satoken"
    # The action filter offers words, sending the code.
    kinds = page.get_by_label("Action", exact=True).locator("option").all_inner_texts()
    assert "Revoke token (trevoke)" in kinds and "Enable MFA (enblmfa)" in kinds
    page.screenshot(
        path=str(Path(__file__).resolve().parents[2] / "test-artifacts" / "console" / "14-activity-log.png")
    )


def test_filters_forgive_case_and_partial_values_and_suggest(page: Page, console: Console) -> None:
    _write(console)
    sign_in(page, console, console.owner_email)
    page.goto(console.url("/events?feature=signinattempts&range=24h"))
    expect(page.locator("#events-table")).to_have_attribute("aria-busy", "false")
    filters = page.get_by_role("search", name="Filter events")
    expect(page.locator("#filter-hint")).to_contain_text("ignore case")
    suggested = page.locator("#actor-values option").evaluate_all("os => os.map(o => o.value)")
    assert ALICE["email"] in suggested
    filters.get_by_label("User").fill("alice.ADMIN")  # part of the address, another case
    filters.get_by_label("Country").fill("us")
    filters.get_by_role("button", name="Apply").click()
    expect(page.locator("#events-table")).to_have_attribute("aria-busy", "false")
    actors = page.locator("#events-table tbody tr:not(.json-row) .actor").all_inner_texts()
    assert actors and set(actors) == {ALICE["email"]}
    countries = page.locator("#events-table tbody tr:not(.json-row) td:nth-child(5)").evaluate_all(
        "tds => tds.map(t => t.dataset.code)"
    )
    assert set(countries) == {"US"}
    expect(page.locator("#events-table tbody tr:not(.json-row) .sentence").first).to_have_text(
        "Alice Admin: Wrong password or Secret Key"
    )


def test_the_histogram_counts_the_matching_events(page: Page, console: Console) -> None:
    sign_in(page, console, console.owner_email)
    page.goto(console.url("/events?feature=signinattempts&range=7d"))
    expect(page.locator("#events-table")).to_have_attribute("aria-busy", "false")
    box = page.locator("#histogram")
    expect(box).to_have_attribute(
        "data-total", str(int(page.locator("#result-summary").inner_text().split()[0].replace(",", "")))
    )
    bars = box.locator(".hist-bar")
    assert bars.count() > 24
    counts = [int(c) for c in bars.evaluate_all("bs => bs.map(b => b.dataset.count)")]
    assert sum(counts) == int(box.get_attribute("data-total") or 0) > 0
