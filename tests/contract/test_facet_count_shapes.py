"""`Store.facet_counts` in the shapes the console asks for, on every backend, against counts done
here over the same events: per time bucket (unfiltered and filtered), per facet (events without
the facet count under None), per bucket and facet, windows not aligned to buckets, the most first
under a limit, empty windows, and buckets at the very end of the timestamp range (2**63 - 1)."""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

import pytest

from siemgate.model.encoding import encode_event
from siemgate.model.facets import Facets, extract_facets
from siemgate.model.features import Feature
from siemgate.model.ids import new_id
from siemgate.model.timestamps import format_ns
from siemgate.store.base import Account, NewEvent, Store

SIGNIN = Feature.SIGNINATTEMPTS
T0 = 1_700_000_000_000_000_000
HOUR = 3600 * 1_000_000_000
DAY = 24 * HOUR
LAST = 2**63 - 1
FACETS = ("actor", "kind", "detail", "country", "app", "ip")


def _signin(rng: random.Random, ts: int) -> dict[str, Any]:
    category, type_ = rng.choice(
        [("success", "credentials_ok"), ("credentials_failed", "password_secret_bad"), ("mfa_failed", "mfa_bad")]
    )
    event: dict[str, Any] = {
        "uuid": new_id(),
        "timestamp": format_ns(ts),
        "category": category,
        "type": type_,
        "target_user": {"uuid": new_id(), "name": "x", "email": rng.choice(["ada@x.example", "bob@x.example"])},
    }
    if rng.random() < 0.7:  # else no client: app and ip are None
        event["client"] = {"app_name": rng.choice(["1Password for Mac", "1Password CLI"]), "ip_address": "192.0.2.1"}
    if rng.random() < 0.6:
        event["location"] = {"country": rng.choice(["DE", "CA"])}
    return event


def _store(store: Store, account: Account, stamps: list[int], seed: int) -> list[tuple[int, Facets]]:
    rng = random.Random(seed)
    new, stored = [], []
    for ts in stamps:
        event = _signin(rng, ts)
        body, cut = encode_event(SIGNIN, event)
        facets = extract_facets(SIGNIN, event)
        new.append(NewEvent(event["uuid"], ts, body, cut, facets=facets))
        stored.append((ts, facets))
    store.insert_events(account.id, SIGNIN, new)
    return stored


@pytest.fixture
def filled(store: Store) -> tuple[Store, Account, list[tuple[int, Facets]]]:
    rng = random.Random(11)
    account = store.create_account(new_id(), f"plans-{new_id()}", T0)
    other = store.create_account(new_id(), f"other-{new_id()}", T0)
    events = _store(store, account, sorted(T0 + rng.randrange(5 * DAY) for _ in range(400)), 1)
    _store(store, other, [T0 + i * HOUR for i in range(30)], 2)  # never counted
    return store, account, events


def _expected(
    events: list[tuple[int, Facets]],
    start: int,
    end: int,
    group: list[str],
    bucket: int | None,
    filters: dict[str, str],
) -> Counter[tuple[Any, ...]]:
    counts: Counter[tuple[Any, ...]] = Counter()
    for ts, facets in events:
        values = dict(zip(FACETS, facets, strict=True))
        if start <= ts <= end and all(values[k] == v for k, v in filters.items()):
            when = () if bucket is None else ((ts // bucket) * bucket,)
            counts[when + tuple(values[g] for g in group)] += 1
    return counts


WINDOWS = [(T0, T0 + 5 * DAY), (T0 + 7 * HOUR + 123, T0 + 2 * DAY + 5 * HOUR - 17), (T0 + DAY, T0 + DAY)]


@pytest.mark.parametrize("window", WINDOWS)
@pytest.mark.parametrize(
    ("group", "bucket", "filters"),
    [
        ([], 6 * HOUR, {}),
        ([], HOUR, {"kind": "credentials_failed"}),
        ([], DAY, {"app": "1Password CLI"}),
        ([], 6 * HOUR, {"country": "DE"}),
        (["kind"], None, {}),
        (["detail"], None, {}),
        (["app"], None, {}),
        (["kind"], 6 * HOUR, {}),
        (["kind"], HOUR, {}),
        (["app"], 6 * HOUR, {}),
    ],
)
def test_counts_match_the_events(
    filled: tuple[Store, Account, list[tuple[int, Facets]]],
    window: tuple[int, int],
    group: list[str],
    bucket: int | None,
    filters: dict[str, str],
) -> None:
    store, account, events = filled
    start, end = window
    rows = store.facet_counts(account.id, SIGNIN, start, end, group, bucket_ns=bucket, filters=filters, limit=5000)
    assert Counter({tuple(r[:-1]): r[-1] for r in rows}) == _expected(events, start, end, group, bucket, filters)
    assert len(rows) == len({tuple(r[:-1]) for r in rows})
    if bucket is None:
        assert [r[-1] for r in rows] == sorted((r[-1] for r in rows), reverse=True)
    else:
        assert [r[0] for r in rows] == sorted(r[0] for r in rows)


def test_a_limit_keeps_the_most_first(filled: tuple[Store, Account, list[tuple[int, Facets]]]) -> None:
    store, account, events = filled
    expected = _expected(events, T0, T0 + 5 * DAY, ["app"], None, {})
    rows = store.facet_counts(account.id, SIGNIN, T0, T0 + 5 * DAY, ["app"], limit=2)
    assert [r[1] for r in rows] == sorted(expected.values(), reverse=True)[:2]
    assert all(expected[(r[0],)] == r[1] for r in rows)
    by_time = store.facet_counts(account.id, SIGNIN, T0, T0 + 5 * DAY, ["kind"], bucket_ns=HOUR, limit=7)
    everything = store.facet_counts(account.id, SIGNIN, T0, T0 + 5 * DAY, ["kind"], bucket_ns=HOUR, limit=5000)
    assert [r[0] for r in by_time] == [r[0] for r in everything][:7]


def test_values_that_never_occur_in_the_window_are_not_rows(
    filled: tuple[Store, Account, list[tuple[int, Facets]]],
) -> None:
    store, account, _ = filled
    assert store.facet_counts(account.id, SIGNIN, T0 - 2 * DAY, T0 - DAY, ["kind"]) == []
    assert store.facet_counts(account.id, SIGNIN, T0 - 2 * DAY, T0 - DAY, ["kind"], bucket_ns=HOUR) == []
    assert store.facet_counts(account.id, SIGNIN, T0 - 2 * DAY, T0 - DAY, [], bucket_ns=HOUR) == []
    assert store.facet_counts(account.id, SIGNIN, T0 - 2 * DAY, T0 - DAY, []) == [(0,)]


def test_buckets_at_the_end_of_the_timestamp_range(store: Store) -> None:
    account = store.create_account(new_id(), f"late-{new_id()}", T0)
    events = _store(store, account, [LAST - 3 * DAY, LAST - DAY - 5, LAST - 7, LAST], 3)
    for group in ([], ["kind"]):
        rows = store.facet_counts(account.id, SIGNIN, LAST - 4 * DAY, LAST, group, bucket_ns=DAY)
        assert Counter({tuple(r[:-1]): r[-1] for r in rows}) == _expected(events, LAST - 4 * DAY, LAST, group, DAY, {})
