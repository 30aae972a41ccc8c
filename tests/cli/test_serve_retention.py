"""A running `siemgate serve` and retention: a policy set with the CLI applies in every process at
its next request (two workers, each reached on a connection it holds); retention runs as soon as
the server starts, then on its schedule; a configured Redis that does not answer stops the start
with a message instead of failing every request."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from siemgate.model.features import Feature
from siemgate.model.timestamps import format_ns
from support.events import signin
from support.ports import free_port
from support.procs import (
    HAVE_PROC_NET,
    Proc,
    cli_env,
    client_ports_to,
    clients_on_every_worker,
    healthy,
    issue_token,
    make_account,
    run_cli,
    services_at,
    worker_pids,
)
from support.servers import bearer
from support.waiting import wait_for

DAY = 86400 * 1_000_000_000
SIGNIN = Feature.SIGNINATTEMPTS


def _write(data_dir: Path, account: str, *ages_in_days: float) -> list[str]:
    """Sign-in attempts this many days old (in this process); their uuids."""
    with services_at(data_dir) as services:
        now = time.time_ns()
        events = [signin(now - int(age * DAY)) for age in ages_in_days]
        services.writer.write(services.store.get_account(account).id, SIGNIN, events)
    return [str(e["uuid"]) for e in events]


def _count(data_dir: Path, account: str) -> int:
    with services_at(data_dir) as services:
        return services.store.count_events(services.store.get_account(account).id, SIGNIN)


def _reset_uuids(http: httpx.Client, token: str, days_back: int) -> list[str]:
    start = format_ns(time.time_ns() - days_back * DAY)
    response = http.post("/api/v2/signinattempts", json={"limit": 100, "start_time": start}, headers=bearer(token))
    assert response.status_code == 200, response.text
    return [item["uuid"] for item in response.json()["items"]]


@pytest.mark.skipif(not HAVE_PROC_NET, reason="needs Linux /proc to see which worker holds a connection")
def test_a_policy_set_with_the_cli_applies_in_every_worker_at_its_next_request(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    account = make_account(data_dir)
    token = issue_token(data_dir, account, "siem")
    old, recent = _write(data_dir, account, 100, 10)
    env = cli_env(data_dir)
    port = free_port()
    proc = Proc("serve", ["serve", "--port", str(port), "--workers", "2"], env, tmp_path / "logs")
    clients: list[httpx.Client] = []
    try:
        base = f"http://127.0.0.1:{port}"
        wait_for("the server", lambda: healthy(base), 60, proc=proc)
        workers = worker_pids(proc, 2)

        def serves_120_days(http: httpx.Client) -> None:  # each worker reads (and used to cache) the policy
            assert _reset_uuids(http, token, 110) == [old, recent]

        clients, owners = clients_on_every_worker(base, port, workers, serves_120_days)
        for http in clients:
            serves_120_days(http)
        run_cli(env, "retention", "set", "90", "--features", "signinattempts", "--archive", "none")
        for http in clients:  # the next request of every worker: 90 days
            assert _reset_uuids(http, token, 110) == [recent]
        done = run_cli(env, "retention", "set", "365", "--features", "signinattempts")
        assert done.returncode == 0
        for http in clients:
            assert _reset_uuids(http, token, 110) == [old, recent]
        assert set(client_ports_to(port)) == set(owners)  # the same connections: every worker answered
    finally:
        for http in clients:
            http.close()
        proc.kill()


def test_retention_runs_when_the_server_starts_and_then_on_schedule(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    account = make_account(data_dir)
    _write(data_dir, account, 200, 201, 1)  # two events past the default 120 days
    logs = tmp_path / "logs"
    hourly = Proc("serve", ["serve", "--port", str(free_port())], cli_env(data_dir), logs)
    try:  # an hourly schedule: only a run at start archives and purges within the test
        wait_for("the old events to be archived and purged", lambda: _count(data_dir, account) == 1, 60)
        assert list((data_dir / "archive" / account / "signinattempts").glob("*/*.jsonl.gz"))
    finally:
        hourly.stop()
    env = cli_env(data_dir, SIEMGATE_RETENTION_INTERVAL_SECONDS="1")
    port = free_port()
    frequent = Proc("serve", ["serve", "--port", str(port)], env, logs)
    try:
        wait_for("the server", lambda: healthy(f"http://127.0.0.1:{port}"), 60, proc=frequent)
        _write(data_dir, account, 300)  # arrives while the server runs: the next scheduled run takes it
        wait_for("the late old event to be purged", lambda: _count(data_dir, account) == 1, 60)
    finally:
        frequent.stop()


@pytest.mark.parametrize("workers", ["1", "2"])
def test_an_unreachable_redis_stops_the_start_with_a_message(tmp_path: Path, workers: str) -> None:
    data_dir = tmp_path / "data"
    make_account(data_dir)
    nobody = free_port()  # nothing listens there
    env = cli_env(data_dir, SIEMGATE_REDIS_URL=f"redis://:secret-password@127.0.0.1:{nobody}/0")
    proc = Proc("serve", ["serve", "--port", str(free_port()), "--workers", workers], env, tmp_path / "logs")
    try:
        code = proc.popen.wait(timeout=60)
    finally:
        proc.kill()
    stderr = proc.stderr()
    assert code == 2, proc.output()
    assert f"Redis at 127.0.0.1:{nobody}/0 is not reachable" in stderr, stderr
    assert "secret-password" not in stderr and "Traceback" not in stderr, stderr


def test_workers_without_redis_say_that_every_limit_is_that_many_times_as_loose(tmp_path: Path) -> None:
    """Without Redis each worker counts limits alone (with 3 workers, 15 of 30 wrong passwords for
    one address were checked, not 5: tests/security/test_identity_signin.py), and `serve --workers`
    said nothing: the operator learnt it from docs/security.md's settings table, if at all. It now
    warns at start."""
    data_dir = tmp_path / "data"
    make_account(data_dir)
    port = free_port()
    proc = Proc("serve", ["serve", "--port", str(port), "--workers", "2"], cli_env(data_dir), tmp_path / "logs")
    try:
        wait_for("the server", lambda: healthy(f"http://127.0.0.1:{port}"), 60, proc=proc)
        warnings = [line for line in proc.stderr().splitlines() if "WARNING" in line and "redis_url" in line]
        assert len(warnings) == 1, proc.output()
        assert "each of those limits is 2 times as loose" in warnings[0] and "SIEMGATE_REDIS_URL" in warnings[0]
    finally:
        proc.kill()
