"""Fixtures of the forwarder tests: a source server with a token, and local vendor intakes (over
HTTP, or HTTPS with a test CA). The private rsyslogd is tests/conftest.py's `rsyslog`."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from siemgate.model.features import ALL_FEATURES
from support.ports import free_port
from support.receivers import make_certs

from .fake_intakes import Intake, build_app


@dataclass
class Source:
    live: Any
    token: str
    key: str
    url: str


@pytest.fixture
def source(server: Any, monkeypatch: pytest.MonkeyPatch) -> Source:
    """The real siemgate server, an account, a read token (in $FORWARD_TEST_TOKEN) and an ingest key."""
    account = server.account()
    token = server.token(account, ALL_FEATURES)
    monkeypatch.setenv("FORWARD_TEST_TOKEN", token)
    return Source(server, token, server.ingest_key(account), server.base_url)


class IntakeServer:
    """The fake intakes on 127.0.0.1; `stop()` and `start()` take them down and up on the same port."""

    def __init__(self, tls_dir: Path | None = None) -> None:
        self.intake = Intake()
        self.port = free_port()
        self.tls_dir = tls_dir
        self.url = f"{'https' if tls_dir else 'http'}://127.0.0.1:{self.port}"
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        tls: dict[str, Any] = {}
        if self.tls_dir is not None:
            tls = {
                "ssl_certfile": str(self.tls_dir / "server.pem"),
                "ssl_keyfile": str(self.tls_dir / "server-key.pem"),
            }
        app = build_app(self.intake)
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_config=None, access_log=False, **tls)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            assert self._thread.is_alive() and time.monotonic() < deadline, "fake intake did not start"
            time.sleep(0.01)

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=10)
            self._server = None


@pytest.fixture
def intakes() -> Iterator[IntakeServer]:
    server = IntakeServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def tls_intakes(tmp_path: Path) -> Iterator[IntakeServer]:
    """The fake intakes over HTTPS with a test CA (`tls_dir / "ca.pem"`)."""
    make_certs(tmp_path)
    server = IntakeServer(tmp_path)
    server.start()
    yield server
    server.stop()
