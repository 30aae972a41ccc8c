"""`siemgate serve` as a real process: start, serve CLI-issued credentials, stop cleanly on SIGTERM
and SIGINT with requests in flight finishing, flush token usage at shutdown, and run several
worker processes on one store."""

from __future__ import annotations

import contextlib
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import orjson
import pytest

from siemgate.model.timestamps import format_ns, parse_ns
from support.events import signin
from support.ports import free_port
from support.procs import (
    HAVE_PROC_NET,
    Proc,
    cli_env,
    client_ports_to,
    clients_on_every_worker,
    create_ingest_key,
    healthy,
    is_running,
    issue_token,
    listening,
    make_account,
    owner_of,
    run_cli,
    run_cli_json,
    server_side,
    services_at,
    worker_pids,
)
from support.servers import bearer
from support.waiting import wait_for

SECOND = 1_000_000_000
ALL = ["signinattempts", "itemusages", "auditevents"]
needs_proc = pytest.mark.skipif(not HAVE_PROC_NET, reason="needs Linux /proc to see the server's sockets")


@dataclass
class Site:
    """A data directory with one account. Set-up that is not under test is done in this process
    (each `siemgate` start costs about a second); the CLI is run where the test is about it."""

    data_dir: Path
    log_dir: Path
    env: dict[str, str]
    account: str

    def cli(self, *args: str, ok: bool = True) -> str:
        return run_cli(self.env, *args, ok=ok).stdout.strip()

    def json(self, *args: str) -> object:
        return run_cli_json(self.env, *args)

    def token(self, name: str) -> str:
        return issue_token(self.data_dir, self.account, name)

    def ingest_key(self, name: str) -> str:
        return create_ingest_key(self.data_dir, self.account, name)

    def start(self, *args: str, port: int | None = None) -> Server:
        """Start `siemgate serve` without waiting for it."""
        port = port or free_port()
        return Server(Proc("serve", ["serve", "--port", str(port), *args], self.env, self.log_dir), port)

    def serve(self, *args: str, port: int | None = None) -> Server:
        server = self.start(*args, port=port)
        try:
            server.wait_ready()
        except BaseException:
            server.proc.kill()
            raise
        return server


@dataclass
class Server:
    proc: Proc
    port: int

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, timeout=30)

    def wait_ready(self) -> None:
        wait_for("/healthz", lambda: healthy(self.base_url), 90, proc=self.proc)


@pytest.fixture
def site(tmp_path: Path) -> Site:
    data_dir = tmp_path / "data"
    return Site(data_dir, tmp_path / "logs", cli_env(data_dir), make_account(data_dir))


@contextlib.contextmanager
def serving(site: Site, *args: str, port: int | None = None) -> Iterator[Server]:
    server = site.serve(*args, port=port)
    try:
        yield server
    finally:
        server.proc.kill()


def _page(client: httpx.Client, token: str, feature: str, body: dict[str, object], version: int = 2) -> httpx.Response:
    return client.post(f"/api/v{version}/{feature}", content=orjson.dumps(body), headers=bearer(token))


def _read_all(client: httpx.Client, token: str, feature: str, start_ns: int) -> list[dict[str, object]]:
    """Every event of the stream from start_ns, following the cursor until has_more is false."""
    response = _page(client, token, feature, {"limit": 1000, "start_time": format_ns(start_ns)})
    items: list[dict[str, object]] = []
    for _ in range(1000):
        assert response.status_code == 200, response.text
        data = response.json()
        items.extend(data["items"])
        if not data["has_more"]:
            return items
        response = _page(client, token, feature, {"cursor": data["cursor"]})
    raise AssertionError("the cursor chain never ended")


# --- start and serve ------------------------------------------------------------------------------


def test_serve_answers_health_and_serves_a_token_issued_with_the_cli(site: Site) -> None:
    server = site.start()
    try:
        # Issued while the server starts (the keys already exist): same store, same keys.
        token = site.cli("token", "issue", "--name", "splunk")
        server.wait_ready()
        key = site.ingest_key("bridge")
        with server.client() as http:
            health = http.get("/healthz")
            assert health.status_code == 200
            assert health.json()["status"] == "ok"
            introspect = http.get("/api/v2/auth/introspect", headers=bearer(token))
            assert introspect.status_code == 200, introspect.text
            assert introspect.json()["features"] == ALL
            assert introspect.json()["account_uuid"] == site.account
            now = time.time_ns()
            events = [signin(now - (3 - n) * SECOND) for n in range(3)]
            ingest = http.post("/api/ingest/v2/signinattempts", content=orjson.dumps(events), headers=bearer(key))
            assert ingest.status_code == 200, ingest.text
            assert ingest.json() == {"received": 3, "stored": 3, "duplicates": 0}
            page = _page(http, token, "signinattempts", {"limit": 100, "start_time": format_ns(now - 3600 * SECOND)})
            assert page.status_code == 200, page.text
            assert [e["uuid"] for e in page.json()["items"]] == [e["uuid"] for e in events]
            assert page.json()["has_more"] is False
            v1 = _page(http, token, "signinattempts", {"limit": 100, "start_time": format_ns(now - 3600 * SECOND)}, 1)
            assert v1.status_code == 200
            assert [e["uuid"] for e in v1.json()["items"]] == [e["uuid"] for e in events]
            assert all("account_uuid" not in e for e in v1.json()["items"])
            unknown = http.get("/api/v2/auth/introspect", headers=bearer(token[:-4] + "AAAA"))
            assert unknown.status_code == 401
    finally:
        server.proc.kill()


# --- clean shutdown -------------------------------------------------------------------------------


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_serve_stops_cleanly_on_a_signal(site: Site, sig: signal.Signals) -> None:
    token = site.token("t")
    with serving(site) as server:
        with server.client() as http:
            assert http.get("/api/v2/auth/introspect", headers=bearer(token)).status_code == 200
        code, took = server.proc.stop(sig)
        stderr = server.proc.stderr()
        assert "Traceback" not in stderr, stderr
        assert "Aborted" not in stderr, stderr
        assert code == 0, f"`siemgate serve` exited {code} on {sig.name}, not 0\n{server.proc.output()}"
        assert took < 10
        assert not healthy(server.base_url)


@needs_proc
def test_an_ingest_in_flight_at_sigterm_finishes_and_nothing_is_lost(site: Site) -> None:
    """The upload is half sent when SIGTERM arrives; the server stops listening but finishes it.

    How the test knows the request is in flight without a fixed sleep: /proc shows the server's
    end of our connection. Once the server process holds that socket (it has accepted the
    connection) and the socket's receive queue is empty (it has read the request line, the headers
    and the first half of the body, so uvicorn has started the request and handed the body to the
    app), the request is being processed. That is a short bounded poll on the connection state;
    there is no other observable signal, since the app answers only after the whole body. Then the
    test waits, again through /proc, until the server has closed its listening socket (it is
    shutting down) before sending the rest: the request is then provably in flight across the start
    of the shutdown.
    """
    token = site.token("t")
    key = site.ingest_key("bridge")
    now = time.time_ns()
    events = [signin(now - (80 - n) * SECOND, name=f"Person {n}") for n in range(80)]
    ndjson = b"\n".join(orjson.dumps(e) for e in events) + b"\n"
    half = len(ndjson) // 2
    assert half < 60_000  # under uvicorn's read high-water mark: the server reads it all at once
    server = site.serve()
    steps: list[str] = []
    try:

        def body() -> Iterator[bytes]:
            yield ndjson[:half]

            def in_flight() -> bool:
                ports = client_ports_to(server.port)
                assert len(ports) == 1, ports  # this request's connection, and no other of ours
                sock = server_side(server.port, ports[0])
                return sock is not None and owner_of(sock, [server.proc.pid]) is not None and sock.rx_queue == 0

            wait_for("the server to accept the connection and read the first half", in_flight, 10, proc=server.proc)
            steps.append("first half read")
            server.proc.popen.send_signal(signal.SIGTERM)
            wait_for("the server to stop listening", lambda: not listening(server.port), 10)
            steps.append("listener closed")
            yield ndjson[half:]

        with httpx.Client(base_url=server.base_url, timeout=30) as http:
            response = http.post(
                "/api/ingest/v2/signinattempts",
                content=body(),
                headers={**bearer(key), "Content-Type": "application/x-ndjson"},
            )
        assert steps == ["first half read", "listener closed"]
        assert response.status_code == 200, response.text
        assert response.json() == {"received": 80, "stored": 80, "duplicates": 0}
        server.proc.popen.wait(timeout=20)
    finally:
        server.proc.kill()
    with serving(site) as again, again.client() as http:
        served = _read_all(http, token, "signinattempts", now - 3600 * SECOND)
        assert [e["uuid"] for e in served] == [e["uuid"] for e in events]
        assert served[7]["target_user"]["name"] == "Person 7"  # type: ignore[index]


def test_token_and_ingest_key_usage_is_flushed_at_shutdown(site: Site) -> None:
    """Usage is buffered and written every few seconds; what the last seconds recorded is written at
    shutdown. The request and SIGTERM are milliseconds apart, well inside the 2 s flush interval,
    so the time recorded for the last request can only have come from the shutdown flush."""
    token = site.token("t")
    key = site.ingest_key("bridge")
    with services_at(site.data_dir) as services:
        assert [t.last_used_at for t in services.store.list_tokens()] == [None]
    with serving(site) as server:
        with server.client() as http:
            assert http.get("/api/v2/auth/introspect", headers=bearer(token)).status_code == 200
            before = time.time_ns()
            event = signin(before - SECOND)
            ingest = http.post("/api/ingest/v2/signinattempts", content=orjson.dumps([event]), headers=bearer(key))
            assert ingest.status_code == 200
            page = _page(http, token, "signinattempts", {"limit": 10, "start_time": format_ns(before - 60 * SECOND)})
            assert page.status_code == 200
            assert len(page.json()["items"]) == 1
        server.proc.stop(signal.SIGTERM)
    tokens = site.json("token", "list")
    assert isinstance(tokens, list) and len(tokens) == 1
    assert tokens[0]["last_used_at"] is not None, tokens
    assert parse_ns(tokens[0]["last_used_at"]) >= before // SECOND * SECOND  # the last use, not an earlier one
    with services_at(site.data_dir) as services:
        (ingest_key,) = services.store.list_ingest_keys()
    assert ingest_key.last_used_at is not None
    assert ingest_key.last_used_at >= before


# --- several workers ------------------------------------------------------------------------------


@needs_proc
def test_two_workers_serve_the_same_store_see_revocations_and_stop_together(site: Site) -> None:
    """Each connection is served by the worker that accepted it, which /proc tells; the test opens
    connections until both workers hold some, then sends requests on every one of them."""
    revoked_token = site.token("to-revoke")
    kept_token = site.token("kept")
    with services_at(site.data_dir) as services:
        token_id = next(t.id for t in services.store.list_tokens() if t.name == "to-revoke")
    clients: list[httpx.Client] = []
    server = site.serve("--workers", "2")
    try:
        proc = server.proc
        workers = worker_pids(proc, 2)

        def introspect(http: httpx.Client) -> None:
            response = http.get("/api/v2/auth/introspect", headers=bearer(revoked_token))
            assert response.status_code == 200, response.text
            assert response.json()["account_uuid"] == site.account

        opened, owners = clients_on_every_worker(server.base_url, server.port, workers, introspect)
        clients += opened
        # Every open connection is pinned to one worker: all refuse the revoked token at once.
        run_cli(site.env, "token", "revoke", token_id)
        for http in clients:
            refused = http.get("/api/v2/auth/introspect", headers=bearer(revoked_token))
            assert refused.status_code == 401, refused.text
            assert "revoked" in refused.json()["Error"]["Message"]
            page = _page(http, revoked_token, "auditevents", {"limit": 5})
            assert page.status_code == 401
            assert http.get("/api/v2/auth/introspect", headers=bearer(kept_token)).status_code == 200
        # Still the same connections, so both workers answered the requests above.
        assert set(client_ports_to(server.port)) == set(owners)
        for http in clients:
            http.close()
        code, took = proc.stop(signal.SIGTERM, timeout=40)
        assert code == 0, proc.output()
        assert took < 30
        wait_for("every worker to exit", lambda: not any(is_running(pid) for pid in proc.descendants), 15)
        assert not healthy(server.base_url)
    finally:
        for http in clients:
            http.close()
        server.proc.kill()
