"""Token expiry in real Chromium: 90 days chosen by default, a live preview of the date the choice
gives, and minutes and months that cannot be confused (`3m` is refused, `3mo` and `30min` are not)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from playwright.sync_api import Page, expect

from siemgate.model.timestamps import parse_ns

from .conftest import Console, allow_http_errors, sign_in

NS = 10**9


def _preview_date(page: Page) -> datetime:
    text = page.locator("#step-2 .expiry-preview").get_attribute("data-expires-at")
    assert text, "the preview shows no date"
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_expiry_defaults_to_90_days_previews_the_date_and_refuses_ambiguous_minutes(
    page: Page, console: Console
) -> None:
    sign_in(page, console, console.owner_email)
    page.goto(console.url("/integrations/new?type=splunk"))
    page.wait_for_selector("body[data-loaded=true]")
    page.get_by_label("Integration name").fill("Expiry Splunk")
    page.get_by_role("button", name="Continue").click()
    form = page.locator("#step-2")
    expect(form.get_by_label("90 days")).to_be_checked()
    preview = form.locator(".expiry-preview")
    expect(preview).to_contain_text(re.compile(r"^Expires .+\(in 90 d\)\.$"))
    now = datetime.now(UTC)
    assert abs(_preview_date(page) - (now + timedelta(days=90))) < timedelta(minutes=2)

    form.get_by_label("Never").check()
    expect(preview).to_have_text("Never expires: the token works until it is revoked.")

    form.get_by_label("Custom", exact=True).check()
    form.get_by_label("Custom expiry").fill("3m")
    expect(preview).to_have_text(re.compile("could be minutes or months: write 3min for minutes or 3mo for months"))
    allow_http_errors(page, 400)
    form.get_by_role("button", name="Issue token").click()
    expect(form.get_by_role("alert")).to_contain_text("write 3min for minutes or 3mo for months")
    assert "Expiry Splunk" not in [i.name for i in console.live.store.list_integrations(console.account.id)]

    form.get_by_label("Custom expiry").fill("30min")
    expect(preview).to_contain_text("(in 30 min)")
    assert abs(_preview_date(page) - (datetime.now(UTC) + timedelta(minutes=30))) < timedelta(minutes=2)
    form.get_by_label("Custom expiry").fill("3mo")
    expect(preview).to_contain_text("(in 90 d)")
    shown = _preview_date(page)
    form.get_by_role("button", name="Issue token").click()
    expect(page.locator("#step-3 textarea")).not_to_have_value("")
    [integration] = [i for i in console.live.store.list_integrations(console.account.id) if i.name == "Expiry Splunk"]
    [record] = console.live.store.list_tokens(console.account.id, integration.id)
    assert record.expires_at is not None
    assert record.expires_at - record.created_at == 90 * 86400 * NS  # three months of 30 days
    assert abs(record.expires_at - parse_ns(shown.strftime("%Y-%m-%dT%H:%M:%S.%fZ"))) < 120 * NS
