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

import contextlib
import functools
import random
import signal
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import httpx
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
from support.ports import free_port
from support.procs import Proc, cli_env, create_ingest_key, healthy, make_account, services_at
from support.servers import bearer
from support.stores import STORE_BACKENDS, drop_pg_schema, new_pg_schema, pg_schema_url
from support.waiting import wait_for

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


def workload_batch(
    rng: random.Random, now: int, users: list[dict[str, Any]], size: int = 30, net: str = "198.51.100"
) -> list[dict[str, Any]]:
    """1-`size` sign-ins around `now`: failures (the brute-force and one-address windows) and
    successes from a few countries (the first-seen rule), some late."""
    events = []
    for _ in range(rng.randint(1, size)):
        ts = now - rng.choice([0, 0, 0, rng.randrange(180)]) * S
        user = rng.choice(users)
        if rng.random() < 0.6:
            event = failed(ts, user["email"])
        else:
            event = signin(ts, target_user=user, country=rng.choice(["CA", "FR", "DE", "ca", "JP"]))
        event["client"]["ip_address"] = f"{net}.{rng.randrange(3)}"
        events.append(event)
    return events


Shape = tuple[str, int, tuple[str, ...]]


def alerts_and_model(services: Services, account_id: int, now: int) -> tuple[list[Shape], list[Shape]]:
    """The account's stored sign-in alerts, and what one evaluation of every stored sign-in in
    seq order fires: each as (rule, event time, the uuids of its events), sorted."""
    store = services.store
    rows = store.read_events(account_id, SIGNIN, 0, 0, None, 100_000)
    rules = services.alerts.rules.enabled(account_id, SIGNIN.value)
    model = Evaluator(rules, StateBook()).evaluate(
        [(seq, orjson.loads(body)) for seq, body, _ in rows], oldest=now - 7 * 86400 * S
    )
    stored = [
        (a.rule_id, a.event_ts, orjson.loads(a.payload)["events"])
        for a in store.list_alerts(account_id, limit=10_000)
        if a.source == SIGNIN.value
    ]
    return (
        sorted((rule, ts, tuple(sorted(r["uuid"] for r in refs))) for rule, ts, refs in stored),
        sorted((f.rule.id, f.event_ts, tuple(sorted(r["uuid"] for r in f.events))) for f in model),
    )


@pytest.mark.parametrize("backend", STORE_BACKENDS)
@pytest.mark.parametrize("seed", SEEDS)
def test_alerts_fire_exactly_once_whatever_happens_to_the_server(
    seed: int, backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = random.Random(seed)
    monkeypatch.setattr(evaluator, "STATE_SAVE_SECONDS", rng.choice([0.0, 3600.0]))
    site = BackendSite(tmp_path / "data", backend)
    second = site._open()  # another server process on the same store, evaluating too
    try:
        run_workload(site, second, rng, seed)
    finally:
        second.close()
        site.services.close()
        if site.schema is not None:
            drop_pg_schema(site.schema)


def run_workload(site: BackendSite, second: Services, rng: random.Random, seed: int) -> None:
    users = [signin(0)["target_user"] | {"email": f"p{i}@example.com"} for i in range(3)]
    site.write(SIGNIN, workload_batch(rng, site.clock(), users))  # the stream's first look: evaluated from here
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
        else:  # gone without saving anything: its connections close, new services on the same store
            site.services.alerts.dispatcher.close()
            site.services.store.close()
            site.services = site._open()
    site.services.alerts.evaluator.catch_up()

    got, expected = alerts_and_model(site.services, site.account.id, site.clock())
    assert got == expected, (seed, actions)
    assert len(expected) >= 3 and {e[0] for e in expected} >= {"brute-force-signin", "signin-new-country"}, actions


def test_alerts_fire_exactly_once_across_kill_9_of_a_real_server(tmp_path: Path) -> None:
    """`siemgate serve` killed with SIGKILL three times while sign-ins stream in over HTTP (a batch
    may be stored and not evaluated, or evaluated and its alerts not yet recorded), started again
    each time; once it has caught up, the stored alerts are exactly the model's."""
    data_dir = tmp_path / "data"
    account = make_account(data_dir)
    key = create_ingest_key(data_dir, account, "feeder")
    env = cli_env(data_dir, SIEMGATE_ALERTS_ENABLED="true", SIEMGATE_ALERTS_CHECK_SECONDS="0.5")
    rng = random.Random(20261206)
    for life in range(4):
        users = [signin(0)["target_user"] | {"email": f"p{life}.{i}@example.com"} for i in range(3)]
        port = free_port()
        proc = Proc("serve", ["serve", "--port", str(port)], env, tmp_path / "logs")
        try:
            url = f"http://127.0.0.1:{port}"
            wait_for("/healthz", functools.partial(healthy, url), 90, proc=proc)
            with httpx.Client(base_url=url, headers=bearer(key), timeout=30) as http:
                if life == 3:  # the last life stops cleanly once it has evaluated everything
                    wait_for("the catch-up", lambda: evaluated_up_to_head(data_dir), 60, proc=proc)
                    proc.stop(signal.SIGTERM)
                    break
                before = stored_count(data_dir)
                enough = before + rng.randint(500, 3000)  # events this life stores before it is killed mid-stream
                feeders = [  # each life's own people and addresses: new groups fire in every life
                    threading.Thread(target=feed, args=(http, rng.random(), users, f"198.51.{life}", proc))
                    for _ in range(2)
                ]
                for feeder in feeders:
                    feeder.start()
                wait_for("events", functools.partial(stored_at_least, data_dir, enough), 60, proc=proc)
                proc.stop(signal.SIGKILL)
                for feeder in feeders:
                    feeder.join(timeout=30)
        finally:
            proc.kill()
    with services_at(data_dir) as services:
        got, expected = alerts_and_model(services, services.store.get_account(account).id, time.time_ns())
    assert got == expected
    assert len(expected) >= 12 and {e[0] for e in expected} >= {"brute-force-signin", "signin-new-country"}


def feed(base: httpx.Client, seed: float, users: list[dict[str, Any]], net: str, proc: Proc) -> None:
    """Post batches of 1-400 sign-ins on a connection of its own until the server is gone."""
    rng = random.Random(seed)
    with httpx.Client(base_url=base.base_url, headers=base.headers, timeout=30) as http:
        while proc.popen.poll() is None:
            try:
                batch = workload_batch(rng, time.time_ns(), users, size=400, net=net)
                http.post("/api/ingest/v2/signinattempts", json=batch)
            except httpx.TransportError:
                return


def stored_at_least(data_dir: Path, n: int) -> bool:
    return stored_count(data_dir) >= n


def stored_count(data_dir: Path) -> int:
    with contextlib.closing(sqlite3.connect(data_dir / "siemgate.db", timeout=30)) as db:
        row = db.execute("SELECT coalesce(sum(head_seq), 0) FROM streams WHERE feature = ?", (SIGNIN.code,)).fetchone()
    return int(row[0])


def evaluated_up_to_head(data_dir: Path) -> bool:
    with contextlib.closing(sqlite3.connect(data_dir / "siemgate.db", timeout=30)) as db:
        row = db.execute(
            "SELECT s.head_seq, c.seq FROM streams s LEFT JOIN alert_checkpoints c"
            " ON c.account_id = s.account_id AND c.feature = s.feature WHERE s.feature = ?",
            (SIGNIN.code,),
        ).fetchone()
    return row is not None and row[1] == row[0]
