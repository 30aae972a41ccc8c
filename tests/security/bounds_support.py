"""Support for the bounds tests (tests/security/test_bounds_*.py): a live server on either store
backend, a stall detector, raw-socket requests, an admin with a personal API key, and events."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from siemgate.accounts.actor import CLI
from siemgate.config import load_settings
from siemgate.model.ids import new_id
from siemgate.model.timestamps import format_ns
from siemgate.store.base import Account
from support.clocks import Clock
from support.servers import LiveServer, start_server, stop_server
from support.stores import make_store

ADMIN = "/api/admin/v1"
STALL_BOUND = 2.0  # seconds; /healthz answers in a few milliseconds on this machine
POLL_TIMEOUT = 120.0
SECOND = 1_000_000_000


@contextlib.contextmanager
def live_server(tmp_path: Path, backend: str = "sqlite", **settings: Any) -> Iterator[LiveServer]:
    """A server on a fresh store of `backend` (sqlite or postgres), stopped afterwards."""
    data_dir = tmp_path / f"{backend}-{new_id()[:8].lower()}"
    store = make_store(backend, data_dir)
    live, server, thread = start_server(load_settings(data_dir=data_dir, **settings), store, Clock())
    try:
        yield live
    finally:
        stop_server(live, server, thread)


@dataclass
class Admin:
    """The owner of a new account, with a personal API key."""

    account: Account
    key: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


def admin(server: LiveServer) -> Admin:
    suffix = new_id()[:6].lower()
    account, owner = server.services.people.create_account(
        CLI, f"Acme-{suffix}", f"owner@{suffix}.example", "Olivia Owner", None
    )
    assert owner is not None
    key, _ = server.services.api_keys.create(owner, "tests")
    return Admin(account, key)


@dataclass
class StallDetector:
    """Polls /healthz on its own connection, from its own thread, while a hostile request runs:
    a stalled event loop shows as a poll that takes longer than STALL_BOUND (a bound ten times
    above its normal latency: a stall detector, not a speed target)."""

    base_url: str
    latencies: list[float] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _polling: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> StallDetector:
        with httpx.Client(base_url=self.base_url, timeout=30) as warm:
            assert warm.get("/healthz").status_code == 200
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()
        assert self._polling.wait(30), "the stall detector did not start"
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join(timeout=POLL_TIMEOUT + 10)  # the poll in flight ends: a stall is measured whole

    def _poll(self) -> None:
        with httpx.Client(base_url=self.base_url, timeout=POLL_TIMEOUT) as http:
            while not self._stop.is_set() or not self.latencies:  # at least one poll, begun before the request
                started = time.monotonic()
                self._polling.set()
                try:
                    status = http.get("/healthz").status_code
                except httpx.TimeoutException:
                    status = 200  # stalled for the whole timeout: the latency says so
                self.latencies.append(time.monotonic() - started)
                assert status == 200
                self._stop.wait(0.05)

    def assert_responsive(self) -> None:
        assert self.latencies, "the stall detector made no request"
        worst = max(self.latencies)
        assert worst < STALL_BOUND, (
            f"/healthz took {worst:.2f}s while the hostile request ran (bound {STALL_BOUND}s;"
            f" {len(self.latencies)} polls, median {sorted(self.latencies)[len(self.latencies) // 2]:.3f}s)"
        )


def raw_request(base_url: str, head: str) -> socket.socket:
    """A connection to the server with a request's head (request line and headers) sent."""
    host, port = base_url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=10)
    sock.sendall(head.replace("\n", "\r\n").encode() + b"\r\n")
    return sock


def read_reply(sock: socket.socket, timeout: float) -> tuple[int, bytes] | None:
    """(status, body) of the reply, or None when nothing came within `timeout` seconds."""
    sock.settimeout(timeout)
    data = b""
    try:
        while b"\r\n\r\n" not in data or len(data) < _reply_length(data):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    except (TimeoutError, ConnectionResetError):
        pass
    if not data.startswith(b"HTTP/1.1 "):
        return None
    return int(data[9:12]), data.partition(b"\r\n\r\n")[2]


def _reply_length(data: bytes) -> int:
    head, _, _ = data.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(head) + 4 + int(value)
    return len(data) + 1


def failed_signin(ts_ns: int, email: str = "ada@example.com", **extra: Any) -> dict[str, Any]:
    """A v2 sign-in attempt with a wrong password (what the starter brute-force rule counts)."""
    return {
        "uuid": new_id(),
        "session_uuid": new_id(),
        "timestamp": format_ns(ts_ns),
        "category": "credentials_failed",
        "type": "password_secret_bad",
        "country": "CA",
        "target_user": {"uuid": new_id(), "name": "Ada Lovelace", "email": email},
        "client": {"app_name": "1Password for Mac", "app_version": "81024002", "ip_address": "192.0.2.10"},
        "location": {"country": "CA", "city": "Toronto", "latitude": 43.64, "longitude": -79.433},
        **extra,
    }
