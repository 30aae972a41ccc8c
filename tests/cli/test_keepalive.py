"""Idle HTTP connections stay open for `http_keepalive_seconds` (default 75, as load balancers
expect), not uvicorn's 5 s: a connector that polls every few seconds over one connection never
has a request meet the server closing it. The test configures a short timeout (8 s) and polls
one raw connection after an idle period past uvicorn's old 5 s, then sees the server close it
once idle for longer than configured."""

from __future__ import annotations

import socket
import time
from pathlib import Path

from siemgate.config import load_settings
from support.ports import free_port
from support.procs import Proc, cli_env, healthy, make_account
from support.waiting import wait_for

KEEPALIVE = 8
REQUEST = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\n\r\n"


def _get(sock: socket.socket) -> bytes:
    """One request on the connection; the whole response (Content-Length bodies)."""
    sock.sendall(REQUEST)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"the server closed the connection instead of answering (got {data!r})"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lengths = [line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")]
    length = int(lengths[0])
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk, "the server closed the connection mid-response"
        body += chunk
    return head.split(b"\r\n")[0]


def test_the_default_keeps_idle_connections_as_long_as_load_balancers() -> None:
    assert load_settings().http_keepalive_seconds >= 75


def test_a_connection_polled_every_few_seconds_stays_open_until_idle_past_the_setting(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    make_account(data_dir)
    port = free_port()
    env = cli_env(data_dir, SIEMGATE_HTTP_KEEPALIVE_SECONDS=str(KEEPALIVE))
    proc = Proc("serve", ["serve", "--port", str(port)], env, tmp_path / "logs")
    try:
        wait_for("the server", lambda: healthy(f"http://127.0.0.1:{port}"), 60, proc=proc)
        with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
            assert _get(sock) == b"HTTP/1.1 200 OK"
            time.sleep(6)  # idle past uvicorn's former 5 s: the idle period is what is tested
            assert _get(sock) == b"HTTP/1.1 200 OK", "closed after 6 s idle"
            idle_from = time.monotonic()
            sock.settimeout(KEEPALIVE + 60)
            assert sock.recv(1) == b""  # the server closes it: idle past the setting
            assert time.monotonic() - idle_from >= KEEPALIVE - 1
    finally:
        proc.kill()
