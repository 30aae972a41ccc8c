"""A client that hangs up before sending its whole body gets nothing done and is not a server
error: the request is 499 (nginx's "client closed request") in the access log and the request
metrics, never a 500 with a traceback, on every kind of route (the Events API, the ingest API,
the admin API whose bodies the guard receives)."""

from __future__ import annotations

import re
import socket

import pytest

from support.servers import LiveServer
from support.waiting import wait_for

ROUTES = {
    "events": "/api/v2/itemusages",
    "ingest": "/api/ingest/v2/signinattempts",
    "admin": "/api/admin/v1/accounts/x/integrations",
}


def _hang_up(server: LiveServer, path: str, token: str) -> None:
    """POST `path` declaring 100 bytes of body, send 5 of them, and close the connection."""
    host, port = server.base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as conn:
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n"
            "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n"
        )
        conn.sendall(head.encode() + b'[{"ca')


def _statuses(server: LiveServer) -> dict[str, float]:
    """Requests counted so far by status, over every route."""
    found: dict[str, float] = {}
    for line in server.http.get("/metrics").text.splitlines():
        if m := re.fullmatch(r'siemgate_http_requests_total{.*status="(\d+)"} (\S+)', line):
            found[m[1]] = found.get(m[1], 0) + float(m[2])
    return found


@pytest.mark.parametrize("kind", list(ROUTES))
def test_a_client_that_hangs_up_mid_body_is_a_499_not_a_500(server: LiveServer, kind: str) -> None:
    account = server.account()
    token = server.ingest_key(account) if kind == "ingest" else server.token(account)
    _hang_up(server, ROUTES[kind], token)
    counted = wait_for("the request to be counted", lambda: {"499", "500"} & set(_statuses(server)), 10)
    assert counted == {"499"}
