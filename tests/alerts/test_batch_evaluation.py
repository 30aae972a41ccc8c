"""Evaluation in batches (a pass per rule over the events its indexed value selects) gives exactly
what evaluating the same events one at a time gives: the same firings in the same order, with the
same events and summaries, and the same state — for every kind of rule, suppression, case
variants, values of every type in the indexed field, events without a timestamp, and events old
enough to only teach first-seen rules."""

from __future__ import annotations

import random
from typing import Any

import pytest

from siemgate.alerts.builtin import starter_rules
from siemgate.alerts.engine import Evaluator, Firing, StateBook
from siemgate.alerts.fields import key_reader
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
    {"id": "x-forget", "match": {"category": "success"},  # values dropped within a batch, learnt again
     "first_seen": {"key": ["target_user.uuid"], "value": ["country"], "nocase": True, "max_values": 1}},
]  # fmt: skip


def rules() -> list[CompiledRule]:
    starters = [compile_rule(r) for r in starter_rules().values() if r.source == "signinattempts"]
    return starters + [load_rule({"name": "X", "source": "signinattempts", **r}) for r in EXTRA]


COUNTRIES = ("CA", "FR", "DE", "ca", None)


def mixed_events(n: int, seed: int, *, countries: tuple[Any, ...] = COUNTRIES) -> list[dict[str, Any]]:
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
        event["country"] = rng.choice(countries)
        event["client"]["ip_address"] = f"198.51.100.{rng.randrange(4)}"
        if event["category"] is None:
            del event["category"]
        if rng.random() < 0.02:
            event["timestamp"] = "not a time"
        events.append(event)
    return events


def _shape(firings: list[Firing]) -> list[tuple[Any, ...]]:
    return [(f.rule.id, f.event_ts, f.count, f.group, f.events, f.summary, f.event["uuid"]) for f in firings]


@pytest.mark.parametrize(
    "countries",
    [
        COUNTRIES,  # a value absent here and there: first-seen reads each event
        COUNTRIES[:-1],  # a string in every event: first-seen reads columns, and a batch
        # with new values takes the per-event path only for the keys that learn one
    ],
)
def test_a_batch_fires_and_learns_exactly_what_one_event_at_a_time_does(countries: tuple[Any, ...]) -> None:
    for seed in range(5):
        events = list(enumerate(mixed_events(400, seed, countries=countries), start=1))
        one, batch = StateBook(), StateBook()
        oldest = T0 + 100 * S  # the first events only teach
        singly = [f for pair in events for f in Evaluator(rules(), one).evaluate([pair], oldest=oldest)]
        together = []
        for start in range(0, len(events), 97):
            together += Evaluator(rules(), batch).evaluate(events[start : start + 97], oldest=oldest)
        assert _shape(together) == _shape(singly), seed
        assert len(singly) > 20 and {f.rule.id for f in singly} >= {
            "signin-new-country",
            "x-any",
            "x-first",
            "x-not",
            "x-forget",
        }
        saved = batch.changes()
        assert sorted(saved, key=repr) == sorted(one.changes(), key=repr), seed
        loaded = StateBook.load(entry for entry in saved if entry.value)
        for book in (one, batch, loaded):  # the count the bound on first-seen values reads
            assert book.values == sum(len(v) for by_key in book.seen.values() for v in by_key.values()) > 0


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


def test_a_key_reader_reads_a_batch_as_it_reads_each_event() -> None:
    """`KeyReader.many` (one pass over a batch, the common shapes without a call per event) gives
    the key `one` gives for every event, in order, whatever the batch mixes; `column` gives the
    same values without the tuples when one path is a string in every event, else None."""
    shapes: list[Any] = [
        {"country": "FR", "target_user": {"email": "Ada@Example.com"}},
        {"country": "de", "target_user": {"email": "bob@example.com"}},
        {"country": None, "target_user": None},
        {"target_user": "not an object"},
        {"country": 3, "target_user": {"email": 3.5}},
        {"country": True, "target_user": {"email": ["a", "b"]}},
        {"country": {"nested": 1}, "target_user": {}},
        {},
    ]
    for paths in (["country"], ["target_user.email"], ["country", "target_user.email"], ["aux_info.role"]):
        for nocase in (False, True):
            reader = key_reader(paths, nocase)
            for k in range(len(shapes)):
                batch = shapes[: k + 1]
                positions = list(range(len(batch)))
                assert reader.many(batch, positions) == [reader.one(e) for e in batch], (paths, nocase, k)
                assert reader.many(batch, positions[::2]) == [reader.one(batch[i]) for i in positions[::2]]
                column = reader.column(batch, positions)  # one path, a string in every event: its values
                strings = len(paths) == 1 and all(
                    len(key) == 1 and type(key[0]) is str for key in reader.many(batch, positions)
                )
                assert column == (
                    [key[0] for key in reader.many(batch, positions)]
                    if strings and "aux_info" not in paths[0]
                    else None
                ), (paths, nocase, k)
    assert key_reader(["target_user.email"], True).many(shapes, [0, 1]) == [("ada@example.com",), ("bob@example.com",)]
    assert key_reader(["target_user.email"], True).column(shapes, [0, 1]) == ["ada@example.com", "bob@example.com"]


def test_expiring_state_past_the_horizon_changes_no_firing() -> None:
    """StateBook.expire drops only what no event that can still fire could use: with the horizon
    (the oldest event time still evaluated) moving along a late-arriving workload, a book expired
    before every batch fires exactly what a book that keeps everything fires."""
    dropped = 0
    for seed in range(5):
        events = list(enumerate(mixed_events(600, seed), start=1))
        kept, expired = StateBook(), StateBook()
        fired_kept, fired_expired = [], []
        for start in range(0, len(events), 37):
            batch = events[start : start + 37]
            horizon = T0 + (start * 7 - 60) * S  # a minute behind the batch: windows and suppressions end
            dropped += expired.expire(horizon)
            fired_kept += Evaluator(rules(), kept).evaluate(batch, oldest=horizon)
            fired_expired += Evaluator(rules(), expired).evaluate(batch, oldest=horizon)
            assert expired.windows.keys() <= kept.windows.keys() and expired.suppress.keys() <= kept.suppress.keys()
        assert _shape(fired_expired) == _shape(fired_kept), seed
        assert len(fired_kept) > 20, seed
    assert dropped > 100  # the workload does expire state
