"""Dashboards people use, in real Chromium: headline numbers with the change against the period
before, checked against counts made here from the stored events themselves (not with the server's
stats code); every bar labelled; the keys past the top ten summed in a note, not an "other" bar;
a bar opens the explorer filtered to it."""

from __future__ import annotations

import json
import re
import time
from typing import Any
from urllib.parse import parse_qs, urlparse

from playwright.sync_api import Page, expect

from siemgate.model.features import Feature
from siemgate.model.timestamps import parse_ns
from support.events import signin

from .conftest import Console, screenshot, sign_in


def _stored(console: Console, feature: Feature, start: int, end: int) -> list[dict[str, Any]]:
    """Every stored event of the stream with start <= timestamp <= end, read as the Events API does."""
    events: list[dict[str, Any]] = []
    after = 0
    while True:
        rows = console.live.store.read_events(console.account.id, feature, after, start, end, 1000)
        if not rows:
            return events
        events += [json.loads(body) for _, body, _ in rows]
        after = rows[-1][0]


def _figures(events: list[dict[str, Any]]) -> dict[str, float]:
    failures = sum(1 for e in events if e["category"].endswith("_failed"))
    users = {(e.get("target_user") or {}).get("email") for e in events} - {None}
    return {
        "events": len(events),
        "failures": failures,
        "failure_rate": failures / len(events) if events else 0,
        "users": len(users),
    }


def test_headline_numbers_against_independent_counts(page: Page, console: Console) -> None:
    now_ns = time.time_ns()
    failed = [
        signin(now_ns - i * 60 * 10**9, category="credentials_failed", type="password_secret_bad") for i in range(3)
    ]
    console.live.services.writer.write(console.account.id, Feature.SIGNINATTEMPTS, failed)  # some failures today
    sign_in(page, console, console.owner_email)
    page.goto(console.url("/dashboards/signins?range=24h"))
    page.wait_for_selector("body[data-ready=true]")
    body, headline = page.locator("body"), page.locator("#headline")
    start, end = parse_ns(body.get_attribute("data-start") or ""), parse_ns(body.get_attribute("data-end") or "")
    before = (
        parse_ns(headline.get_attribute("data-previous-start") or ""),
        parse_ns(headline.get_attribute("data-previous-end") or ""),
    )
    assert before[1] < start and start - before[0] == end - start  # the same length, just before
    now = _figures(_stored(console, Feature.SIGNINATTEMPTS, start, end))
    then = _figures(_stored(console, Feature.SIGNINATTEMPTS, *before))
    assert now["events"] > 0 and then["events"] > 0 and now["failures"] > 0
    for metric in ("events", "failures", "failure_rate", "users"):
        tile = headline.locator(f"[data-metric={metric}]")
        assert float(tile.get_attribute("data-value") or "nan") == now[metric], metric
        assert float(tile.get_attribute("data-previous") or "nan") == then[metric], metric
    expect(headline.locator("[data-metric=events] .headline-value")).to_have_text(f"{now['events']:,}")
    change = round((now["events"] - then["events"]) / then["events"] * 100, 1)
    arrow = "▲" if change > 0 else "▼"
    expect(headline.locator("[data-metric=events] .headline-change")).to_contain_text(
        "no change" if change == 0 else f"{arrow} {abs(change):g}% vs the previous period"
    )
    screenshot(page, "16-dashboard-headline")


def test_every_bar_is_labelled_other_is_a_note_and_a_bar_opens_the_explorer(page: Page, console: Console) -> None:
    sign_in(page, console, console.owner_email)
    page.goto(console.url("/dashboards/signins?range=7d"))
    page.wait_for_selector("body[data-ready=true]")
    charts = page.evaluate(
        """() => Object.fromEntries(['chart-fail-type', 'chart-fail-country', 'chart-fail-user'].map((id) => {
            const c = window.siemgateCharts[id].chart;
            return [id, {labels: c.data.labels, ticks: c.scales.y.ticks.length}];
        }))"""
    )
    for chart_id, chart in charts.items():
        assert chart["labels"] and chart["ticks"] == len(chart["labels"]), f"{chart_id}: labels skipped"
        assert "other" not in chart["labels"], chart_id
    users = page.locator("#chart-fail-user").locator("xpath=../..")
    if len(charts["chart-fail-user"]["labels"]) == 10:
        expect(users.locator(".chart-note")).to_contain_text(re.compile(r"Not shown: [\d,]+ more with [\d,]+ events"))
    bar = page.evaluate(
        """() => { const c = window.siemgateCharts['chart-fail-user'].chart, b = c.getDatasetMeta(0).data[0];
                   return {x: (b.x + b.base) / 2, y: b.y, label: c.data.labels[0]}; }"""
    )
    page.locator("#chart-fail-user").click(position={"x": bar["x"], "y": bar["y"]})
    expect(page).to_have_url(re.compile(r"/events\?"))
    query = parse_qs(urlparse(page.url).query)
    assert query["feature"] == ["signinattempts"] and query["actor"] == [bar["label"]] and query["range"] == ["7d"]
    expect(page.locator("#events-table")).to_have_attribute("aria-busy", "false")
    actors = page.locator("#events-table tbody tr:not(.json-row) .actor").all_inner_texts()
    assert actors and set(actors) == {bar["label"]}
