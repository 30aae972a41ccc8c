"""Alerts fire exactly once across whatever happens to the server, checked against a model.

Random workloads of sign-ins (failures of a few people and addresses, successes from a few
countries, some events late by up to three minutes) are written in random batches through the
server's writer (evaluated as they are stored) or by another process that does not evaluate
(`siemgate ingest` with alerting off: evaluated by the next catch-up) or through a second server
process on the same store (two evaluators: the one whose commit loses reloads), with clean
restarts, crashes
(the process gone without saving anything: its unsaved state is lost) and catch-ups in between,
and state saved at every step or almost never, on SQLite and on PostgreSQL. Whatever the history,
the alerts stored at the end are exactly those one evaluation of every stored event in seq order
fires (`siemgate alerts test`'s engine): none twice, none missed, with the same events."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from siemgate.alerts import evaluator
from siemgate.alerts.engine import Evaluator, StateBook
from siemgate.composition.wiring import build_services
from siemgate.config import load_settings
from siemgate.services import Services
from siemgate.store.ingest import EventWriter
from siemgate.store.postgres import PostgresStore
from support.events import failed, signin
from support.stores import STORE_BACKENDS, drop_pg_schema, new_pg_schema, pg_schema_url

from .test_alerts_live import SIGNIN, Site

S = 1_000_000_000
SEEDS = range(8)


class BackendSite(Site):
    """A Site on SQLite or on a PostgreSQL schema of its own that outlives restarts and crashes."""

    def __init__(self, data_dir: Path, backend: str) -> None:
        self.schema = new_pg_schema() if backend == "postgres" else None
        super().__init__(data_dir)

    def _open(self) -> Services:
        if self.schema is None:
            return super()._open()
        store = PostgresStore(pg_schema_url(self.schema), max_size=4)
        store.migrate()
        return build_services(load_settings(data_dir=self.data_dir, **self.settings), store, self.clock)


@pytest.fixture
def services() -> Iterator[list[Services]]:
    """Every services object a test opened (crashed ones too), closed after it."""
    opened: list[Services] = []
    yield opened
    for each in opened:
        each.close()


def workload_batch(rng: random.Random, now: int, users: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """1-30 sign-ins around `now`: failures (the brute-force and one-address windows) and successes
    from a few countries (the first-seen rule), some late."""
    events = []
    for _ in range(rng.randint(1, 30)):
        ts = now - rng.choice([0, 0, 0, rng.randrange(180)]) * S
        user = rng.choice(users)
        if rng.random() < 0.6:
            event = failed(ts, user["email"])
        else:
            event = signin(ts, target_user=user, country=rng.choice(["CA", "FR", "DE", "ca", "JP"]))
        event["client"]["ip_address"] = f"198.51.100.{rng.randrange(3)}"
        events.append(event)
    return events


def stored_events(site: Site) -> list[tuple[int, dict[str, Any]]]:
    rows = site.services.store.read_events(site.account.id, SIGNIN, 0, 0, None, 100_000)
    return [(seq, orjson.loads(body)) for seq, body, _ in rows]


def shape(rule_id: str, event_ts: int, uuids: list[str]) -> tuple[str, int, tuple[str, ...]]:
    return rule_id, event_ts, tuple(sorted(uuids))


@pytest.mark.parametrize("backend", STORE_BACKENDS)
@pytest.mark.parametrize("seed", SEEDS)
def test_alerts_fire_exactly_once_whatever_happens_to_the_server(
    seed: int, backend: str, tmp_path: Path, services: list[Services], monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = random.Random(seed)
    monkeypatch.setattr(evaluator, "STATE_SAVE_SECONDS", rng.choice([0.0, 3600.0]))
    site = BackendSite(tmp_path / "data", backend)
    try:
        run_workload(site, rng, services, seed)
    finally:
        services.append(site.services)
        if site.schema is not None:
            for each in services:
                each.close()
            services.clear()
            drop_pg_schema(site.schema)


def run_workload(site: BackendSite, rng: random.Random, services: list[Services], seed: int) -> None:
    users = [signin(0)["target_user"] | {"email": f"p{i}@example.com"} for i in range(3)]
    site.write(SIGNIN, workload_batch(rng, site.clock(), users))  # the stream's first look: evaluated from here
    second = site._open()  # another server process on the same store, evaluating too
    services.append(second)
    actions = {"write": 0, "second server": 0, "other process": 0, "catch-up": 0, "restart": 0, "crash": 0}
    for _ in range(40):
        site.clock.advance(rng.randrange(1, 40))
        action = rng.choices(list(actions), weights=[10, 3, 4, 2, 1, 2])[0]
        actions[action] += 1
        if action == "write":
            site.write(SIGNIN, workload_batch(rng, site.clock(), users))
        elif action == "second server":
            second.writer.write(site.account.id, SIGNIN, workload_batch(rng, site.clock(), users))
            if rng.random() < 0.5:
                second.alerts.evaluator.catch_up()
        elif action == "other process":  # stored, not evaluated: the next catch-up evaluates it
            EventWriter(site.services.store, site.clock).write(
                site.account.id, SIGNIN, workload_batch(rng, site.clock(), users)
            )
        elif action == "catch-up":
            site.services.alerts.evaluator.catch_up()
        elif action == "restart":
            site.restart()
        else:  # gone without saving: new services on the same store (the old ones closed after the test)
            site.services.alerts.dispatcher.close()
            services.append(site.services)
            site.services = site._open()
    site.services.alerts.evaluator.catch_up()

    rules = site.services.alerts.rules.enabled(site.account.id, SIGNIN.value)
    model = Evaluator(rules, StateBook()).evaluate(stored_events(site), oldest=site.clock() - 7 * 86400 * S)
    expected = sorted(shape(f.rule.id, f.event_ts, [r["uuid"] for r in f.events]) for f in model)
    stored = site.services.store.list_alerts(site.account.id, limit=10_000)
    got = sorted(
        shape(a.rule_id, a.event_ts, [r["uuid"] for r in orjson.loads(a.payload)["events"]])
        for a in stored
        if a.source == SIGNIN.value
    )
    assert got == expected, (seed, actions)
    assert len(expected) >= 3 and {e[0] for e in expected} >= {"brute-force-signin", "signin-new-country"}, actions
