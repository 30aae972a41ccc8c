"""An alert's link to the event explorer (its `explorer` filter, what the console's Alerts page
opens with the explorer's forgiving match) finds every one of its triggering events, over real
HTTP on SQLite and PostgreSQL: when the events' actors differ (a rule grouped by address), differ in
the case of letters the explorer does not fold (É, the Kelvin sign), or are longer than a facet."""

from __future__ import annotations

import time
from typing import Any

import pytest

from siemgate.model.features import Feature
from support.admin import Site, ok
from support.events import failed
from support.stores import BOTH_BACKENDS

server_backend = BOTH_BACKENDS
S = 1_000_000_000


def _found(site: Site, alert: dict[str, Any]) -> set[str]:
    """The uuids the explorer shows for the alert's filter, as the console asks for them."""
    view = alert["explorer"]
    params = {"start": view["start"], "end": view["end"], "match": "forgiving", "limit": "200"}
    if "actor" in view:
        params["actor"] = view["actor"]
    items = ok(site.call(site.admin, "GET", site.path(f"/events/{view['feature']}"), params=params))["items"]
    return {e["uuid"] for e in items}


LONG = "a" * 250 + "@example.com"
CASES = {
    "non-ASCII case": ["ÉVE@example.com", "éve@example.com"],
    "Kelvin sign": ["kim@example.com", "\u212aim@example.com"],
    "longer than a facet": [LONG],
    "A to Z case": ["Ada@Example.com", "ada@example.com"],
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_explorer_link_finds_every_triggering_event(make_server: Any, case: str) -> None:
    site = Site(make_server(alerts_enabled=True, alerts_dispatch_seconds=0.05))
    emails = CASES[case]
    activity = time.time_ns() - 600 * S
    events = [failed(activity + i * S, emails[i % len(emails)]) for i in range(10)]
    site.services.writer.write(site.account.id, Feature.SIGNINATTEMPTS, events)
    listed = ok(site.call(site.member, "GET", site.path("/alerts")))["items"]
    [brute] = [a for a in listed if a["rule_id"] == "brute-force-signin"]
    assert {e["uuid"] for e in brute["events"]} == {e["uuid"] for e in events}
    assert _found(site, brute) >= {e["uuid"] for e in events}, brute["explorer"]
    narrowed = {"A to Z case": "ada@example.com", "Kelvin sign": "im@example.com", "longer than a facet": LONG[:200]}
    assert brute["explorer"].get("actor") == narrowed.get(case, "ve@example.com")  # still narrowed to the person


def test_the_link_of_an_alert_grouped_by_address_finds_every_persons_events(make_server: Any) -> None:
    site = Site(make_server(alerts_enabled=True, alerts_dispatch_seconds=0.05))
    activity = time.time_ns() - 600 * S
    events = [failed(activity + i * S, f"user{i}@example.com") for i in range(20)]
    for event in events:
        event["client"]["ip_address"] = "198.51.100.7"
    site.services.writer.write(site.account.id, Feature.SIGNINATTEMPTS, events)
    listed = ok(site.call(site.member, "GET", site.path("/alerts")))["items"]
    [by_address] = [a for a in listed if a["rule_id"] == "signin-failures-from-one-address"]
    triggering = {e["uuid"] for e in by_address["events"]}
    assert len(triggering) > 1
    assert _found(site, by_address) >= triggering, by_address["explorer"]
