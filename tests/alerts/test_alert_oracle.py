"""Alerts judged against the stored history by an independent oracle (not the engine): seeded
random histories of sign-in failures of a few people (e-mail addresses in random case), in
order or late and out of order, with duplicates of stored events, events exactly a window apart
and clean restarts in between, on SQLite and PostgreSQL. For a count-3-in-60-s rule grouped by
address (ignoring case), every alert names 3 stored events that match it, of its group, within
60 s of each other; no event is in two alerts; with a 5-minute suppression no two alerts of a
group are within 5 minutes of each other; and when events come in order, no 3 events of a group
within 60 s of each other are all left out of every alert (none missed)."""

from __future__ import annotations

import itertools
import random
from pathlib import Path
from typing import Any

import orjson
import pytest

from siemgate.model.timestamps import parse_ns
from support.events import failed
from support.stores import STORE_BACKENDS, drop_pg_schema

from .test_alerts_live import SIGNIN
from .test_exactly_once_model import BackendSite

S = 1_000_000_000
WINDOW = 60 * S
RULE = {"source": "signinattempts", "match": {"category": ["credentials_failed", "mfa_failed"]},
        "threshold": {"count": 3, "window": "60s", "group_by": ["target_user.email"], "nocase": True}}  # fmt: skip
PEOPLE = ["ada@example.com", "bob@example.com", "eve@example.com"]


def _history(rng: random.Random, start: int, ordered: bool) -> list[list[dict[str, Any]]]:
    """Batches of failures: bursts, lone events, events exactly WINDOW after another, in order or
    shuffled within a few minutes."""
    events, t = [], start
    for _ in range(120):
        t += rng.choice([0, S, 7 * S, 20 * S, WINDOW, 90 * S])
        person = rng.choice(PEOPLE)
        email = "".join(c.upper() if rng.random() < 0.3 else c for c in person)
        event = failed(t, email)
        event["category"] = rng.choice(["credentials_failed", "mfa_failed"])
        events.append(event)
    if not ordered:
        for i in range(0, len(events), 15):  # late by up to a few minutes within each stretch
            chunk = events[i : i + 15]
            rng.shuffle(chunk)
            events[i : i + 15] = chunk
    batches, i = [], 0
    while i < len(events):
        n = rng.randint(1, 9)
        batch = events[i : i + n]
        if rng.random() < 0.15 and i:  # a producer sending an event again
            batch = [*batch, rng.choice(events[:i])]
        batches.append(batch)
        i += n
    return batches


def _check(site: BackendSite, ordered: bool) -> int:
    rows = site.services.store.read_events(site.account.id, SIGNIN, 0, 0, None, 10_000)
    stored = {e["uuid"]: e for e in (orjson.loads(body) for _, body, _ in rows)}
    group_of = {u: e["target_user"]["email"].lower() for u, e in stored.items()}
    time_of = {u: parse_ns(e["timestamp"]) for u, e in stored.items()}
    alerts = 0
    for rule_id in ("three", "three-suppressed"):
        used: set[str] = set()
        fired: dict[str, list[int]] = {}
        for alert in site.alerts(rule_id):
            payload = orjson.loads(alert.payload)
            uuids = [ref["uuid"] for ref in payload["events"]]
            assert len(uuids) == 3 and all(u in stored for u in uuids), payload  # stored events
            assert all(stored[u]["category"] in ("credentials_failed", "mfa_failed") for u in uuids)
            assert len({group_of[u] for u in uuids}) == 1, payload  # one group
            times = [time_of[u] for u in uuids]
            assert max(times) - min(times) <= WINDOW, payload  # within the window, in event time
            assert not used & set(uuids), payload  # no event in two alerts
            used |= set(uuids)
            fired.setdefault(group_of[uuids[0]], []).append(alert.event_ts)
            alerts += 1
        if rule_id == "three-suppressed":
            for times in fired.values():
                times.sort()
                assert all(b - a >= 300 * S for a, b in itertools.pairwise(times)), times
            continue
        by_group: dict[str, list[int]] = {}
        for u in stored:
            if u not in used:
                by_group.setdefault(group_of[u], []).append(time_of[u])
        for times in by_group.values():  # the events no alert names
            times.sort()
            left_out = [(a, c) for a, c in zip(times, times[2:], strict=False) if c - a <= WINDOW]
            if ordered:
                assert not left_out, f"3 events within 60 s of each other fired nothing: {left_out}"
    return alerts


@pytest.mark.parametrize("backend", STORE_BACKENDS)
@pytest.mark.parametrize("ordered", [True, False], ids=["in-order", "late"])
@pytest.mark.parametrize("seed", range(3))
def test_alerts_hold_on_the_stored_history(tmp_path: Path, backend: str, ordered: bool, seed: int) -> None:
    rng = random.Random(seed * 2 + ordered)
    site = BackendSite(tmp_path / "data", backend)
    try:
        site.rule(id="three", name="Three", **RULE)
        site.rule(id="three-suppressed", name="Three, suppressed", suppress={"for": "5m"}, **RULE)
        start = site.clock() - 3600 * S
        for batch in _history(rng, start, ordered):
            site.write(SIGNIN, batch)
            if rng.random() < 0.1:
                site.restart()
        assert _check(site, ordered) > 5
    finally:
        site.services.close()
        if site.schema is not None:
            drop_pg_schema(site.schema)
