"""Per-account ingest quotas: events per minute (shared by every process through Redis) and events
stored. Over a quota the batch is refused whole with 429 and Retry-After; other accounts go on."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from siemgate.composition.wiring import open_services
from siemgate.config import load_settings
from siemgate.model.features import ALL_FEATURES, Feature
from siemgate.model.ids import new_id
from support.ports import free_port
from support.procs import Proc, cli_env, healthy
from support.stores import drop_pg_schema, new_pg_schema, pg_schema_url
from support.waiting import wait_for

from .bounds_support import failed_signin, live_server

SIGNIN = Feature.SIGNINATTEMPTS


def _batch(count: int, clock: int) -> list[dict[str, Any]]:
    return [failed_signin(clock - i * 1000) for i in range(count)]


def _retry_after(response: httpx.Response) -> int:
    assert response.status_code == 429, response.text
    value = response.headers["Retry-After"]
    assert value.isdigit() and int(value) >= 1, value
    return int(value)


def test_the_per_minute_quota_refuses_a_batch_whole_and_spares_other_accounts(tmp_path: Path) -> None:
    with live_server(tmp_path, ingest_quota_per_minute=100) as server:
        noisy, quiet = server.account(), server.account()
        noisy_key, quiet_key = server.ingest_key(noisy), server.ingest_key(quiet)
        now = server.clock()
        assert server.ingest(noisy_key, SIGNIN, _batch(60, now)).status_code == 200
        refused = server.ingest(noisy_key, SIGNIN, _batch(60, now))
        assert _retry_after(refused) <= 60
        assert "100 events per minute" in refused.json()["Error"]["Message"]
        assert server.store.count_events(noisy.id, SIGNIN) == 60  # nothing of the refused batch
        assert server.ingest(quiet_key, SIGNIN, _batch(100, now)).status_code == 200
        too_big = server.ingest(quiet_key, SIGNIN, _batch(101, now))
        assert too_big.status_code == 413 and "split it" in too_big.text


def test_the_stored_events_quota_refuses_what_would_pass_it(tmp_path: Path) -> None:
    with live_server(tmp_path, stored_events_quota=50, retention_interval_seconds=900) as server:
        account = server.account()
        key = server.ingest_key(account)
        now = server.clock()
        assert server.ingest(key, SIGNIN, _batch(40, now)).status_code == 200
        refused = server.ingest(key, Feature.ITEMUSAGES, b"{}\n" * 11)  # counted before validation
        assert _retry_after(refused) == 900
        assert "holds 40 events and may hold at most 50" in refused.json()["Error"]["Message"]
        assert server.ingest(key, SIGNIN, _batch(10, now)).status_code == 200
        assert _retry_after(server.ingest(key, SIGNIN, _batch(1, now))) == 900
        other = server.account()
        assert server.ingest(server.ingest_key(other), SIGNIN, _batch(50, now)).status_code == 200


@pytest.fixture
def two_servers(tmp_path: Path, pg_url: str, redis_url: str) -> Iterator[tuple[str, list[str], str]]:
    """(database URL, base URLs, a data directory for set-up) of two `siemgate serve` processes
    sharing one PostgreSQL schema and Redis, with quotas of 100 events per minute and 150 stored
    per account."""
    redis.Redis.from_url(redis_url).ping()
    schema = new_pg_schema()
    url = pg_schema_url(schema)
    shared = {
        "SIEMGATE_DATABASE_URL": url,
        "SIEMGATE_REDIS_URL": redis_url,
        "SIEMGATE_INGEST_QUOTA_PER_MINUTE": "100",
        "SIEMGATE_STORED_EVENTS_QUOTA": "150",
        "SIEMGATE_DATABASE_POOL_SIZE": "3",
    }
    procs: list[Proc] = []
    try:
        services = open_services(load_settings(data_dir=tmp_path / "setup", database_url=url))
        services.close()
        bases = []
        for name in ("one", "two"):
            port = free_port()
            proc = Proc(name, ["serve", "--port", str(port)], cli_env(tmp_path / name, **shared), tmp_path / "logs")
            procs.append(proc)
            bases.append(f"http://127.0.0.1:{port}")
        for proc, base in zip(procs, bases, strict=True):
            wait_for(f"{proc.name} to serve", functools.partial(healthy, base), 60, proc=proc)
        yield url, bases, str(tmp_path / "setup")
    finally:
        for proc in procs:
            proc.kill()
        drop_pg_schema(schema)


def test_quotas_hold_across_two_server_processes(two_servers: tuple[str, list[str], str]) -> None:
    url, (one, two), setup_dir = two_servers
    services = open_services(load_settings(data_dir=Path(setup_dir), database_url=url))
    try:
        keys = {}
        for name in ("minute", "stored"):
            account = services.store.create_account(new_id(), f"{name}-{new_id()[:6]}", services.clock())
            keys[name], _ = services.ingest_keys.create(account, "producer", ALL_FEATURES)
        now = services.clock()
    finally:
        services.close()

    def ingest(base: str, key: str, count: int) -> httpx.Response:
        headers = {"Authorization": f"Bearer {key}"}
        return httpx.post(f"{base}/api/ingest/v2/signinattempts", json=_batch(count, now), headers=headers)

    # The minute's quota is one window in Redis: 60 through one process leave 40 for the other.
    assert ingest(one, keys["minute"], 60).status_code == 200
    refused = ingest(two, keys["minute"], 60)
    _retry_after(refused)
    assert "per minute" in refused.json()["Error"]["Message"]
    assert ingest(two, keys["minute"], 40).status_code == 200
    # The stored quota is read from the shared database: what one process stored counts on the other.
    assert ingest(one, keys["stored"], 100).status_code == 200
    refused = ingest(two, keys["stored"], 60)
    _retry_after(refused)
    assert "holds 100 events and may hold at most 150" in refused.json()["Error"]["Message"]
