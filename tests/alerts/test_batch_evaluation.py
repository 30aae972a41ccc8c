"""Evaluation in batches (a pass per rule over the events its indexed value selects) gives exactly
what evaluating the same events one at a time gives: the same firings in the same order, with the
same events and summaries, and the same state — for every kind of rule, suppression, case
variants, values of every type in the indexed field, events without a timestamp, and events old
enough to only teach first-seen rules."""

from __future__ import annotations

import dataclasses
import random
from typing import Any

import orjson

from siemgate.alerts.builtin import starter_rules
from siemgate.alerts.engine import Evaluator, Firing, StateBook
from siemgate.alerts.model import CompiledRule, compile_rule, load_rule
from support.events import failed, signin

from .test_rules_engine import T0, S

EXTRA = [
    {"id": "x-match", "match": {"category": {"in": ["SUCCESS", "mfa_failed"], "nocase": True}, "country": "FR"}},
    {"id": "x-number", "match": {"category": "3"}},
    {"id": "x-any", "match": {"any": [{"category": "credentials_failed"}, {"country": "DE"}]},
     "threshold": {"count": 3, "window": "2m", "group_by": ["country"], "nocase": True}, "suppress": {"for": "5m"}},
    {"id": "x-not", "match": {"category": {"ne": "success"}}, "suppress": {"for": "1m", "by": ["country"]}},
    {"id": "x-first", "match": {"category": "mfa_failed"},
     "first_seen": {"key": ["client.ip_address"], "value": ["target_user.email"], "alert_on_first": True}},
]  # fmt: skip


def rules() -> list[CompiledRule]:
    starters = [compile_rule(r) for r in starter_rules().values() if r.source == "signinattempts"]
    return starters + [load_rule({"name": "X", "source": "signinattempts", **r}) for r in EXTRA]


def mixed_events(n: int, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    users = [signin(T0)["target_user"] | {"email": f"p{i}@example.com"} for i in range(6)]
    categories: list[Any] = (
        ["success"] * 6
        + ["credentials_failed"] * 4
        + ["SUCCESS", "mfa_failed", "mfa_failed", "firewall_failed", 3, "3", True, None]
    )
    events = []
    for i in range(n):
        user = dict(rng.choice(users))
        if rng.random() < 0.2:
            user["email"] = user["email"].upper()
        ts = T0 + i * 7 * S + rng.randrange(-30, 30) * S  # some arrive late
        event = failed(ts, user["email"]) if rng.random() < 0.3 else signin(ts, target_user=user)
        event["category"] = rng.choice(categories)
        event["country"] = rng.choice(["CA", "FR", "DE", "ca", None])
        event["client"]["ip_address"] = f"198.51.100.{rng.randrange(4)}"
        if event["category"] is None:
            del event["category"]
        if rng.random() < 0.02:
            event["timestamp"] = "not a time"
        events.append(event)
    return events


def _shape(firings: list[Firing]) -> list[tuple[Any, ...]]:
    return [(f.rule.id, f.event_ts, f.count, f.group, f.events, f.summary, f.event["uuid"]) for f in firings]


def test_a_batch_fires_and_learns_exactly_what_one_event_at_a_time_does() -> None:
    for seed in range(5):
        events = list(enumerate(mixed_events(400, seed), start=1))
        one, batch = StateBook(), StateBook()
        oldest = T0 + 100 * S  # the first events only teach
        singly = [f for pair in events for f in Evaluator(rules(), one).evaluate([pair], oldest=oldest)]
        together = []
        for start in range(0, len(events), 97):
            together += Evaluator(rules(), batch).evaluate(events[start : start + 97], oldest=oldest)
        assert _shape(together) == _shape(singly), seed
        assert len(singly) > 20 and {f.rule.id for f in singly} >= {"signin-new-country", "x-any", "x-first", "x-not"}
        assert sorted(batch.changes(), key=repr) == sorted(one.changes(), key=repr), seed


def test_the_batch_plan_selects_what_the_full_predicates_select() -> None:
    compiled = rules()
    events = mixed_events(300, 11)
    index = Evaluator(compiled, StateBook()).index
    assert index.field == "category"
    selected: dict[str, list[int]] = {r.id: [] for r in compiled}
    for p, test, positions in index.plan(events):
        selected[compiled[p].id] = [i for i in positions if test is None or test(events[i])]
        assert list(positions) == sorted(positions)
    for r in compiled:
        assert selected[r.id] == [i for i, e in enumerate(events) if r.predicate(e)], r.id


def _hostile(event: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    """The first-seen fields in shapes a producer may send: case variants, numbers, booleans,
    lists, null, absent, and the nested object replaced by JSON text or a scalar."""
    roll = rng.random()
    if roll < 0.1:
        event["country"] = rng.choice([7, 7.0, True, ["CA"], {"c": "CA"}, ""])
    elif roll < 0.15:
        event.pop("country", None)
    elif roll < 0.25:
        event["country"] = rng.choice(["Ca", "fR", "de"])
    roll = rng.random()
    user = event["target_user"]
    if roll < 0.05:
        event["target_user"] = orjson.dumps({"uuid": user["uuid"]}).decode()
    elif roll < 0.1:
        event["target_user"] = rng.choice([None, 5, "text", []])
    elif roll < 0.15:
        event["target_user"] = {**user, "uuid": rng.choice([1, None, user["uuid"].lower()])}
    elif roll < 0.2:
        event["target_user"] = {k: v for k, v in user.items() if k != "uuid"}
    return event


def test_first_seen_read_inline_learns_and_fires_what_the_full_reading_does() -> None:
    """The plain-path scan of a first-seen rule (fields read inline) skips exactly the events the
    full reading skips: same firings, same state, for every shape of key and value."""
    shapes = [
        {"key": ["target_user.uuid"], "value": ["country"], "nocase": True},
        {"key": ["target_user.uuid"], "value": ["country"]},
        {"key": ["country"], "value": ["client.ip_address"], "alert_on_first": True},
    ]
    for n, first_seen in enumerate(shapes):
        rule = load_rule({"id": f"fs{n}", "name": "F", "source": "signinattempts",
                          "match": {"country": {"exists": True}}, "first_seen": first_seen})  # fmt: skip
        assert rule.first_seen_plain is not None
        full = dataclasses.replace(rule, first_seen_plain=None)
        for seed in range(4):
            rng = random.Random(seed)
            events = list(enumerate((_hostile(e, rng) for e in mixed_events(600, seed)), start=1))
            inline, reference = StateBook(), StateBook()
            fired, expected = [], []
            for start in range(0, len(events), 89):
                fired += Evaluator([rule], inline).evaluate(events[start : start + 89])
                expected += Evaluator([full], reference).evaluate(events[start : start + 89])
            assert _shape(fired) == _shape(expected), (n, seed)
            assert len(expected) > 3, (n, seed)
            assert sorted(inline.changes(), key=repr) == sorted(reference.changes(), key=repr), (n, seed)
