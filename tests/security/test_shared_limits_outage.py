"""The limits shared through Redis when Redis stops answering: requests they count are refused
(fail closed), quickly, without telling the client where Redis is; the operator reads it in the
log; and the server serves again by itself once Redis answers. A private redis-server of the
test's own is paused, stopped and started again (the machine's Redis is shared by every test)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import httpx

from siemgate.accounts.actor import CLI
from support.ports import free_port
from support.procs import Proc, cli_env, healthy, issue_token, running, services_at
from support.redisd import PrivateRedis
from support.servers import bearer
from support.waiting import wait_for

from .identity_support import PASSWORD, client, password_hash, source_ip


def test_requests_are_refused_quickly_while_redis_does_not_answer_and_served_once_it_does(
    tmp_path: Path, private_redis: PrivateRedis
) -> None:
    """Before: a paused Redis (or a network dropping its packets) held every Events API request
    and sign-in with no end (a page still waited after 20 s, holding a server thread: 40 such
    requests and nothing else was served); a stopped one answered 500 naming Redis's address and
    port to anyone signing in, and nothing was logged. Now: 503 with Retry-After within Redis's
    2-second timeout, no address in the reply, one ERROR line naming it, and the server serves
    again, with a WARNING, as soon as Redis is back."""
    data_dir = tmp_path / "data"
    with services_at(data_dir) as services:
        account, owner = services.people.create_account(CLI, "Acme", "owner@acme.example", "Owner", None)
        assert owner is not None
        services.store.set_password(owner.id, password_hash())
    token = issue_token(data_dir, account.uuid, "siem")
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = cli_env(data_dir, SIEMGATE_REDIS_URL=private_redis.url, SIEMGATE_ALERTS_ENABLED="false")
    with running(Proc("serve", ["serve", "--port", str(port)], env, tmp_path / "logs")) as proc:
        wait_for("the server", lambda: healthy(base_url), 60, proc=proc)
        ip = source_ip()
        with client(base_url, ip) as http:

            def page() -> httpx.Response:
                return http.post("/api/v2/signinattempts", json={"limit": 10}, headers=bearer(token), timeout=15)

            def sign_in(password: str) -> httpx.Response:
                body = {"email": "owner@acme.example", "password": password}
                return http.post("/api/admin/v1/session", json=body, timeout=15)

            assert page().status_code == 200
            assert private_redis.proc is not None
            os.kill(private_redis.proc.pid, signal.SIGSTOP)  # paused: connections open, nothing answers
            started = time.monotonic()
            paused = page()
            assert paused.status_code == 503 and time.monotonic() - started < 5, paused.text
            private_redis.stop()  # gone: connections refused
            refused = [page(), sign_in("a wrong password"), sign_in(PASSWORD)]
            assert [r.status_code for r in refused] == [503] * 3, [r.text for r in refused]
            for reply in [paused, *refused]:
                assert int(reply.headers["Retry-After"]) >= 1
                assert str(private_redis.port) not in reply.text and "127.0.0.1" not in reply.text, reply.text
            private_redis.start()
            assert page().status_code == 200
            assert sign_in("a wrong password").status_code == 401
            assert sign_in(PASSWORD).status_code == 200
        proc.stop()
    log = proc.stderr()
    down = [line for line in log.splitlines() if " ERROR siemgate.limits:" in line]
    assert len(down) == 1 and f"Redis at {private_redis.location} is not reachable" in down[0], log[-3000:]
    assert f"WARNING siemgate.limits: rate limits: Redis at {private_redis.location} answers again" in log, log[-3000:]
