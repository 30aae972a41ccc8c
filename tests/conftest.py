"""Fixtures shared by every test folder: a real siemgate server on 127.0.0.1 (uvicorn in a thread,
real HTTP) and stores on real databases. The helpers behind them are in tests/support/."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from siemgate.config import load_settings
from siemgate.store.base import Store
from support.clocks import Clock
from support.loops import SESSION_LOOPS
from support.receivers import Rsyslog
from support.redisd import PrivateRedis
from support.servers import LiveServer, start_server, stop_server
from support.stores import PG_URL, REDIS_URL, STORE_BACKENDS, make_store

# support.services marks the tests that need PostgreSQL, Redis, Chromium or rsyslogd (skipped when
# the service is absent, and a failed run under CI=true); pytester tests that marking.
pytest_plugins = ["pytester", "support.services"]


@pytest.fixture(autouse=True)
def _no_asyncio_loop_left_running() -> Iterator[None]:
    """A test must not leave an asyncio loop marked running in the main thread: every later test of
    the worker that uses Playwright's sync API would fail at setup, far from the cause."""
    yield
    loop = asyncio._get_running_loop()
    if loop is not None and loop not in SESSION_LOOPS:
        asyncio._set_running_loop(None)  # contain it, and name the test that leaked it
        pytest.fail("this test left an asyncio event loop running in the main thread")


# The starter alert rules would record alerts in the streams that tests compare exactly; tests that
# are about alerting pass alerts_enabled=True.
os.environ.setdefault("SIEMGATE_ALERTS_ENABLED", "false")


@pytest.fixture(scope="session")
def pg_url() -> str:
    """The machine's PostgreSQL: a test using it is marked `postgres`."""
    return PG_URL


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The machine's Redis: a test using it is marked `redis`."""
    return REDIS_URL


@pytest.fixture
def private_redis(redis_url: str) -> Iterator[PrivateRedis]:
    """`redis_url` marks the test as needing Redis (the machine's redis-server binary)."""
    server = PrivateRedis()
    server.start()
    try:
        yield server
    finally:
        if server.proc is not None:
            os.kill(server.proc.pid, signal.SIGCONT)
        server.stop()


@pytest.fixture(scope="session")
def rsyslog(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rsyslog]:
    """A private rsyslogd for the session (a test using it is marked `rsyslog`); tests tell their
    messages apart by content or by `offset()`."""
    receiver = Rsyslog(tmp_path_factory.mktemp("rsyslog"))
    yield receiver
    receiver.close()


@pytest.fixture(scope="module")
def server_backend() -> str:
    """The store backend of a module's servers: SQLite, unless the module runs on every backend
    (`server_backend = BOTH_BACKENDS` in the module)."""
    return "sqlite"


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
        stop_server(live, server, thread)


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
