"""Shared fixtures: a real siemgate server on 127.0.0.1 (uvicorn in a thread, real HTTP), stores
on real SQLite files, and a controllable clock."""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import orjson
import psycopg
import pytest
import uvicorn

from siemgate.composition.web import create_app
from siemgate.composition.wiring import build_services
from siemgate.config import Settings, load_settings
from siemgate.model.features import ALL_FEATURES, Feature
from siemgate.model.ids import new_id
from siemgate.services import Services
from siemgate.store.base import Account, Store
from siemgate.store.postgres import PostgresStore
from siemgate.store.sqlite import SQLiteStore

# Loops kept running in the main thread on purpose for the whole session: Playwright's sync API
# (tests/console/conftest.py, the session's browser) runs its loop there while the browser is open.
SESSION_LOOPS: set[object] = set()


@pytest.fixture(autouse=True)
def _no_asyncio_loop_left_running() -> Iterator[None]:
    """A test must not leave an asyncio loop marked running in the main thread: every later test of
    the worker that uses Playwright's sync API would fail at setup, far from the cause."""
    yield
    loop = asyncio._get_running_loop()
    if loop is not None and loop not in SESSION_LOOPS:
        asyncio._set_running_loop(None)  # contain it, and name the test that leaked it
        pytest.fail("this test left an asyncio event loop running in the main thread")


# Copies of ../shared/golden (public SIEM-integration fixtures), so a clone alone can run the tests.
GOLDEN = Path(__file__).resolve().parent / "golden"
# The starter alert rules would record alerts in the streams that tests compare exactly; tests that
# are about alerting pass alerts_enabled=True.
os.environ.setdefault("SIEMGATE_ALERTS_ENABLED", "false")

STORE_BACKENDS = ["sqlite", "postgres"]
# The machine's PostgreSQL (.ci/run starts it when it is down); each test gets its own schema.
PG_URL = os.environ.get("SIEMGATE_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("SIEMGATE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


class Clock:
    """Real time plus an offset the test can move forward (token expiry, default windows)."""

    def __init__(self) -> None:
        self.offset = 0

    def __call__(self) -> int:
        return time.time_ns() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += int(seconds * 1_000_000_000)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pg_schema_url(schema: str) -> str:
    """PG_URL with `schema` first on the search path (created if missing)."""
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
    return f"{PG_URL}?options=-csearch_path%3D{schema}"


def drop_pg_schema(schema: str) -> None:
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def new_pg_schema() -> str:
    return f"t_{new_id().lower()[:16]}"


def make_store(kind: str, path: Path) -> Store:
    """A migrated store; on PostgreSQL in a fresh schema, dropped when the store is closed."""
    if kind == "sqlite":
        store: Store = SQLiteStore(path / "siemgate.db")
    elif kind == "postgres":
        schema = new_pg_schema()
        store = _DroppingPostgresStore(pg_schema_url(schema), schema)
    else:  # pragma: no cover - a new backend must be added here
        raise ValueError(kind)
    store.migrate()
    return store


class _DroppingPostgresStore(PostgresStore):
    """A test's PostgreSQL store: its schema goes when the store is closed."""

    def __init__(self, url: str, schema: str) -> None:
        super().__init__(url, max_size=4)
        self._schema_name = schema

    def close(self) -> None:
        super().close()
        drop_pg_schema(self._schema_name)


class LiveServer:
    """A running server plus helpers that set up accounts and credentials directly."""

    def __init__(self, services: Services, clock: Clock, base_url: str) -> None:
        self.services = services
        self.store = services.store
        self.clock = clock
        self.base_url = base_url
        self.http = httpx.Client(base_url=base_url, timeout=30)

    def account(self, name: str | None = None) -> Account:
        return self.store.create_account(new_id(), name or f"acct-{new_id()[:6]}", self.clock())

    def token(
        self,
        account: Account,
        features: Sequence[Feature] = ALL_FEATURES,
        *,
        expires_in_s: float | None = None,
        name: str = "test token",
    ) -> str:
        integration = self.store.create_integration(account.id, new_id(), "other", f"int-{new_id()[:8]}", "", 0)
        expires = None if expires_in_s is None else int(expires_in_s * 1_000_000_000)
        token, _ = self.services.tokens.issue(account, integration, name, list(features), expires)
        return token

    def ingest_key(self, account: Account, features: Sequence[Feature] = ALL_FEATURES) -> str:
        key, _ = self.services.ingest_keys.create(account, "test producer", list(features))
        return key

    def ingest(self, key: str, feature: Feature | str, events: Any, **kwargs: Any) -> httpx.Response:
        name = feature.value if isinstance(feature, Feature) else feature
        if isinstance(events, bytes | str):
            return self.http.post(f"/api/ingest/v2/{name}", content=events, headers=_bearer(key), **kwargs)
        return self.http.post(f"/api/ingest/v2/{name}", json=events, headers=_bearer(key), **kwargs)

    def page(
        self,
        token: str,
        feature: Feature | str,
        body: Any = None,
        *,
        version: int = 2,
        raw: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        name = feature.value if isinstance(feature, Feature) else feature
        all_headers = {**_bearer(token), **(headers or {})}
        content = raw if raw is not None else (b"" if body is None else orjson.dumps(body))
        return self.http.post(f"/api/v{version}/{name}", content=content, headers=all_headers)

    def drain(self, token: str, feature: Feature, cursor: str, *, version: int = 2) -> tuple[list[dict[str, Any]], str]:
        """Follow the cursor until has_more is false; returns (items, last cursor)."""
        items: list[dict[str, Any]] = []
        while True:
            response = self.page(token, feature, {"cursor": cursor}, version=version)
            assert response.status_code == 200, response.text
            data = response.json()
            items.extend(data["items"])
            cursor = data["cursor"]
            if not data["has_more"]:
                return items, cursor


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def start_server(settings: Settings, store: Store, clock: Clock) -> tuple[LiveServer, uvicorn.Server, threading.Thread]:
    services = build_services(settings, store, clock)
    port = free_port()
    config = uvicorn.Config(create_app(services), host="127.0.0.1", port=port, log_config=None, access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("test server did not start")
        time.sleep(0.01)
    return LiveServer(services, clock, f"http://127.0.0.1:{port}"), server, thread


@pytest.fixture(scope="module")
def server_backend() -> str:
    """The store backend of a module's servers: SQLite, unless the module runs on every backend
    (`server_backend = BOTH_BACKENDS` in the module)."""
    return "sqlite"


def _backend_param(request: pytest.FixtureRequest) -> str:
    return str(request.param)


# A module that assigns this to `server_backend` runs its server tests on SQLite and PostgreSQL.
BOTH_BACKENDS = pytest.fixture(scope="module", params=STORE_BACKENDS, name="server_backend")(_backend_param)


@pytest.fixture
def make_server(tmp_path: Path, server_backend: str) -> Iterator[Any]:
    """Factory: make_server(**settings) -> LiveServer on a fresh store of the module's backend
    (SQLite unless the module runs on both); stopped after the test."""
    running: list[tuple[LiveServer, uvicorn.Server, threading.Thread]] = []

    def factory(**overrides: Any) -> LiveServer:
        data_dir = tmp_path / f"server{len(running)}"
        settings = load_settings(data_dir=data_dir, **overrides)
        store = make_store(server_backend, data_dir)
        live, server, thread = start_server(settings, store, Clock())
        running.append((live, server, thread))
        return live

    yield factory
    for live, server, thread in running:
        live.http.close()
        server.should_exit = True
        thread.join(timeout=10)
        live.services.close()


@pytest.fixture
def server(make_server: Any) -> LiveServer:
    """A server with default settings."""
    result: LiveServer = make_server()
    return result


@pytest.fixture(params=STORE_BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """Every store backend, on a real database."""
    s = make_store(request.param, tmp_path)
    yield s
    s.close()
