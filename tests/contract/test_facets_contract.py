"""`Store.facet_counts` and `Store.search_events` against every backend: counts grouped by facets
and by time buckets agree with a count done in Python over the same events; searches return the
filtered events newest first and page without gaps or repeats."""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

import orjson
import pytest

from siemgate.model.encoding import encode_event
from siemgate.model.facets import extract_facets
from siemgate.model.features import Feature
from siemgate.model.ids import new_id
from siemgate.model.timestamps import format_ns
from siemgate.store.base import Account, NewEvent, Store

SIGNIN, AUDIT = Feature.SIGNINATTEMPTS, Feature.AUDITEVENTS
T0 = 1_700_000_000_000_000_000
HOUR = 3600 * 1_000_000_000
EMAILS = ["ada@example.com", "bob@example.com", "chen@example.com"]
CATEGORIES = ["success", "credentials_failed", "mfa_failed"]
COUNTRIES = ["DE", "US", "JP", None]
APPS = ["1Password Browser Extension", "1Password for Mac"]


def _signin(rng: random.Random, ts: int) -> dict[str, Any]:
    event: dict[str, Any] = {
        "uuid": new_id(),
        "timestamp": format_ns(ts),
        "category": rng.choice(CATEGORIES),
        "type": "credentials_ok",
        "target_user": {"uuid": new_id(), "name": "x", "email": rng.choice(EMAILS)},
        "client": {
            "app_name": rng.choice(["1Password Browser Extension", "1Password for Mac"]),
            "ip_address": "10.0.0.1",
        },
    }
    country = rng.choice(COUNTRIES)
    if country:
        event["location"] = {"country": country}
    return event


def _store_events(store: Store, account: Account, events: list[dict[str, Any]]) -> None:
    new = []
    for event in events:
        ts = int(event["_ts"])
        clean = {k: v for k, v in event.items() if k != "_ts"}
        body, cut = encode_event(SIGNIN, clean)
        new.append(NewEvent(clean["uuid"], ts, body, cut, facets=extract_facets(SIGNIN, clean)))
    store.insert_events(account.id, SIGNIN, new)


@pytest.fixture
def filled(store: Store) -> tuple[Store, Account, list[dict[str, Any]]]:
    rng = random.Random(7)
    account = store.create_account(new_id(), f"acct-{new_id()}", T0)
    other = store.create_account(new_id(), f"other-{new_id()}", T0)
    events = []
    for _ in range(300):
        ts = T0 + rng.randrange(48 * HOUR)
        event = _signin(rng, ts)
        event["_ts"] = ts
        events.append(event)
    _store_events(store, account, events)
    _store_events(store, other, [dict(_signin(rng, T0 + i), _ts=T0 + i) for i in range(20)])  # never counted
    return store, account, events


def test_counts_grouped_by_facets_match_the_events(filled: tuple[Store, Account, list[dict[str, Any]]]) -> None:
    store, account, events = filled
    rows = store.facet_counts(account.id, SIGNIN, T0, T0 + 48 * HOUR, ["kind", "country"])
    expected = Counter((e["category"], e.get("location", {}).get("country")) for e in events)
    assert {(r[0], r[1]): r[2] for r in rows} == dict(expected)
    assert [r[2] for r in rows] == sorted((r[2] for r in rows), reverse=True)


def test_counts_with_filters_and_a_window(filled: tuple[Store, Account, list[dict[str, Any]]]) -> None:
    store, account, events = filled
    start, end = T0 + 10 * HOUR, T0 + 20 * HOUR
    rows = store.facet_counts(
        account.id, SIGNIN, start, end, ["actor"], filters={"kind": "credentials_failed", "country": "DE"}, limit=2
    )
    expected = Counter(
        e["target_user"]["email"]
        for e in events
        if start <= e["_ts"] <= end
        and e["category"] == "credentials_failed"
        and e.get("location", {}).get("country") == "DE"
    )
    assert len(rows) == min(2, len(expected))
    for actor, count in rows:
        assert expected[actor] == count
    assert rows[0][1] == max(expected.values())


def test_counts_in_time_buckets(filled: tuple[Store, Account, list[dict[str, Any]]]) -> None:
    store, account, events = filled
    rows = store.facet_counts(account.id, SIGNIN, T0, T0 + 48 * HOUR, ["kind"], bucket_ns=6 * HOUR)
    expected = Counter(((e["_ts"] // (6 * HOUR)) * 6 * HOUR, e["category"]) for e in events)
    assert {(r[0], r[1]): r[2] for r in rows} == dict(expected)
    assert [r[0] for r in rows] == sorted(r[0] for r in rows)
    total = store.facet_counts(account.id, SIGNIN, T0, T0 + 48 * HOUR, [])
    assert total == [(len(events),)]


def test_unknown_facet_is_refused(filled: tuple[Store, Account, list[dict[str, Any]]]) -> None:
    store, account, _ = filled
    with pytest.raises(ValueError, match="unknown facet 'body; DROP'"):
        store.facet_counts(account.id, SIGNIN, T0, T0 + HOUR, ["body; DROP"])
    with pytest.raises(ValueError, match="unknown facet"):
        store.search_events(account.id, SIGNIN, T0, T0 + HOUR, {"uuid": "x"}, None, 10)


def test_search_pages_newest_first_without_gaps(filled: tuple[Store, Account, list[dict[str, Any]]]) -> None:
    store, account, events = filled
    wanted = [e for e in events if e["target_user"]["email"] == "bob@example.com"]
    seen: list[tuple[int, int]] = []
    uuids: list[str] = []
    before = None
    while True:
        page = store.search_events(account.id, SIGNIN, T0, T0 + 48 * HOUR, {"actor": "bob@example.com"}, before, 17)
        if not page:
            break
        for ts, seq, body in page:
            seen.append((ts, seq))
            uuids.append(orjson.loads(body)["uuid"])
        before = (page[-1][0], page[-1][1])
    assert seen == sorted(seen, reverse=True)
    assert sorted(uuids) == sorted(e["uuid"] for e in wanted)
    assert store.search_events(account.id, AUDIT, T0, T0 + 48 * HOUR, None, None, 10) == []
