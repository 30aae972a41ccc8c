"""`siemgate simulate` (history and live) and `siemgate demo`, as real processes on temporary data
directories: what they store, what they print, that the printed commands work, and how they stop."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import string
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from siemgate.model.features import ALL_FEATURES, Feature
from siemgate.model.timestamps import format_ns, parse_ns
from siemgate.store.sqlite import SQLiteStore
from support.ports import free_port
from support.procs import Proc, cli_env, healthy, make_account, run_cli, running
from support.servers import bearer
from support.waiting import wait_for

SECOND = 1_000_000_000
HOUR = 3600 * SECOND
DAY = 24 * HOUR
ALL = [f.value for f in ALL_FEATURES]
CURL = shutil.which("curl")


@contextlib.contextmanager
def open_store(data_dir: Path) -> Iterator[SQLiteStore]:
    store = SQLiteStore(data_dir / "siemgate.db")
    try:
        yield store
    finally:
        store.close()


def event_counts(data_dir: Path, account: str) -> dict[Feature, int]:
    with open_store(data_dir) as store:
        account_id = store.get_account(account).id
        return {f: store.count_events(account_id, f) for f in ALL_FEATURES}


# --- simulate -------------------------------------------------------------------------------------

SUMMARY = re.compile(
    r"stored (\d+) days of activity for (\d+) people: signinattempts (\d+), itemusages (\d+), auditevents (\d+)"
)


def _summary(stderr: str) -> dict[Feature, int]:
    match = SUMMARY.search(stderr)
    assert match, f"no summary line in:\n{stderr}"
    return dict(zip(ALL_FEATURES, (int(g) for g in match.groups()[2:]), strict=True))


def test_simulate_stores_every_feature_and_a_second_run_with_the_seed_stores_nothing(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    env = cli_env(data_dir)
    make_account(data_dir, "A")
    args = (
        "simulate",
        "--account",
        "A",
        "--users",
        "20",
        "--days",
        "2",
        "--seed",
        "7",
        "--end",
        "2026-11-01T12:00:00Z",
    )
    first = run_cli(env, *args)
    stored = _summary(first.stderr)
    assert all(n > 0 for n in stored.values()), stored
    assert event_counts(data_dir, "A") == stored
    # Same seed, same arguments and end: the same events, so nothing new (every event is a duplicate).
    second = run_cli(env, *args)
    assert _summary(second.stderr) == dict.fromkeys(ALL_FEATURES, 0), (
        f"a second `siemgate {' '.join(args)}` stored new events:\n{second.stderr}"
    )
    assert event_counts(data_dir, "A") == stored


def test_simulate_live_produces_events_until_sigint_and_reports_them(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    make_account(data_dir, "A")
    proc = Proc(
        "simulate",
        ["simulate", "--account", "A", "--live", "--rate", "50", "--days", "0"],
        cli_env(data_dir),
        tmp_path / "logs",
    )
    try:
        wait_for("the live mode to start", lambda: "producing live activity" in proc.stderr(), 30, proc=proc)
        with open_store(data_dir) as store:
            account_id = store.get_account("A").id

            def stored() -> int:
                return sum(store.count_events(account_id, f) for f in ALL_FEATURES)

            wait_for("live events in the store", stored, 20, proc=proc)
        code, took = proc.stop(signal.SIGINT)
        assert code == 0, proc.output()
        assert took < 5
        match = re.search(r"stopped after (\d+) live events", proc.stderr())
        assert match, proc.output()
        assert "Traceback" not in proc.stderr()
        written = int(match.group(1))
        assert written > 0
        assert sum(event_counts(data_dir, "A").values()) == written  # --days 0: every event is live
    finally:
        proc.kill()


# --- demo -----------------------------------------------------------------------------------------


class Demo:
    """A running `siemgate demo` and what it printed."""

    def __init__(self, data_dir: Path, log_dir: Path, *extra: str) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        args = ["--data-dir", str(data_dir), "demo", "--port", str(self.port), *extra]
        self.proc = Proc("demo", args, cli_env(data_dir), log_dir)
        self.token = ""
        self.ingest_key = ""
        self.commands: list[str] = []

    def wait_ready(self) -> None:
        def printed() -> str | None:
            out = self.proc.stdout()
            return out if "Stop with Ctrl-C" in out else None

        text = wait_for("the instructions", printed, 60, proc=self.proc)
        token = re.search(r"^\s*export SIEMGATE_TOKEN='([^']+)'$", text, re.MULTILINE)
        key = re.search(r"^\s*export SIEMGATE_INGEST_KEY='([^']+)'$", text, re.MULTILINE)
        assert token and key, text
        self.token, self.ingest_key = token.group(1), key.group(1)
        self.commands = _commands(text)
        assert self.base_url in text
        wait_for("the demo server", lambda: healthy(self.base_url), 30, proc=self.proc)

    def run(self, command: str) -> Any:
        """Run a printed curl command (with curl when there is one) and return its JSON reply."""
        variables = {"SIEMGATE_TOKEN": self.token, "SIEMGATE_INGEST_KEY": self.ingest_key}
        if CURL:
            env = {"PATH": f"{Path(CURL).parent}{os.pathsep}{os.defpath}", **variables}
            result = subprocess.run(["/bin/sh", "-c", command], capture_output=True, env=env, timeout=30, check=False)
            assert result.returncode == 0, (command, result.stderr)
            return orjson.loads(result.stdout)
        method, url, headers, body = _as_request(command, variables)
        response = httpx.request(method, url, headers=headers, content=body, timeout=30)
        return response.json()

    def http(self) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, timeout=30, headers=bearer(self.token))


def _commands(text: str) -> list[str]:
    """The curl commands in the instructions, continuation lines joined."""
    commands: list[str] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i].strip()
        if line.startswith("curl "):
            while line.endswith("\\") and i + 1 < len(lines):
                i += 1
                line = line[:-1].rstrip() + " " + lines[i].strip()
            commands.append(line)
        i += 1
    return commands


def _as_request(command: str, variables: dict[str, str]) -> tuple[str, str, dict[str, str], bytes | None]:
    """What a printed curl command does, for when curl is not installed."""
    url = re.search(r"(https?://\S+)", command)
    assert url, command
    headers = {}
    for header in re.findall(r'-H "([^"]*)"', command):
        name, _, value = string.Template(header).substitute(variables).partition(":")
        headers[name.strip()] = value.strip()
    data = re.search(r"(?:-d|--data-binary) '([^']*)'", command)
    method = "POST" if "-X POST" in command or data else "GET"
    return method, url.group(1), headers, data.group(1).encode() if data else None


@contextlib.contextmanager
def demo_running(data_dir: Path, log_dir: Path, *extra: str) -> Iterator[Demo]:
    demo = Demo(data_dir, log_dir, "--users", "20", "--days", "1", "--rate", "20", *extra)
    try:
        demo.wait_ready()
        yield demo
    finally:
        demo.proc.kill()


def _find(commands: list[str], fragment: str) -> str:
    found = [c for c in commands if fragment in c]
    assert len(found) == 1, (fragment, commands)
    return found[0]


def _follow(http: httpx.Client, path: str, cursor: str) -> tuple[list[dict[str, Any]], str]:
    """Follow a cursor until has_more is false."""
    items: list[dict[str, Any]] = []
    for _ in range(1000):
        response = http.post(path, content=orjson.dumps({"cursor": cursor}))
        assert response.status_code == 200, response.text
        data = response.json()
        items.extend(data["items"])
        cursor = data["cursor"]
        if not data["has_more"]:
            return items, cursor
    raise AssertionError("the cursor chain never ended")


def test_demo_prints_working_commands_keeps_producing_activity_and_stops_on_sigterm(tmp_path: Path) -> None:
    data_dir = tmp_path / "demo"
    with demo_running(data_dir, tmp_path / "logs") as demo:
        commands = demo.commands
        assert len(commands) == 6, commands

        who = demo.run(_find(commands, "/api/v2/auth/introspect"))
        assert who["features"] == ALL, who
        with open_store(data_dir) as store:
            (account,) = store.list_accounts()
        assert who["account_uuid"] == account.uuid

        # The last hour of sign-ins, 5 per page: live activity fills it if the history's last hour is quiet.
        signins = _find(commands, "/api/v2/signinattempts")

        def last_hour() -> list[dict[str, Any]]:
            data = demo.run(signins)
            assert "items" in data, data
            items: list[dict[str, Any]] = data["items"]
            return items

        items = wait_for("sign-ins in the last hour", last_hour, 30, proc=demo.proc)
        assert 1 <= len(items) <= 5
        assert all(parse_ns(e["timestamp"]) >= time.time_ns() - HOUR - 60 * SECOND for e in items)

        # Item usages from the printed start, 1000 per page, then the printed cursor command.
        reset = _find(commands, '"start_time"')
        start = re.search(r'"start_time": "([^"]+)"', reset)
        assert start, reset
        start_ns = parse_ns(start.group(1))
        assert start_ns <= time.time_ns() - DAY  # the reset covers the whole simulated history
        assert "All 1 day of item usages" in demo.proc.stdout()  # what --days 1 simulated, not "30 days"
        with open_store(data_dir) as store:
            stored_before = store.count_events(account.id, Feature.ITEMUSAGES)
        assert stored_before > 0
        first = demo.run(reset)
        assert "items" in first, first
        page = first["items"]
        if first["has_more"]:
            assert len(page) == 1000
        else:
            assert min(1000, stored_before) <= len(page) < 1000
        follow = _find(commands, "<cursor from the previous reply>")
        second = demo.run(follow.replace("<cursor from the previous reply>", first["cursor"]))
        assert "items" in second, second
        with demo.http() as http:
            rest, _ = _follow(http, "/api/v2/itemusages", second["cursor"]) if second["has_more"] else ([], "")
        delivered = page + second["items"] + rest
        with open_store(data_dir) as store:
            stored_after = store.count_events(account.id, Feature.ITEMUSAGES)
        assert stored_before <= len(delivered) <= stored_after
        assert len({e["uuid"] for e in delivered}) == len(delivered)
        stamps = [parse_ns(e["timestamp"]) for e in delivered]
        assert min(stamps) >= start_ns
        assert min(stamps) < time.time_ns() - 12 * HOUR  # the history is there, not only live events

        # The printed console sign-in works, and the console then serves the owner's pages.
        console = re.search(r"^Web console: (\S+)\s+sign in as (\S+) with password (\S+)$", demo.proc.stdout(), re.M)
        assert console, demo.proc.stdout()
        assert console.group(1) == f"{demo.base_url}/console"
        with httpx.Client(base_url=demo.base_url, timeout=30) as browser:
            signed_in = browser.post(
                "/api/admin/v1/session", json={"email": console.group(2), "password": console.group(3)}
            )
            assert signed_in.status_code == 200, signed_in.text
            assert signed_in.json()["user"]["accounts"][0]["role"] == "owner"
            home = browser.get("/console/", follow_redirects=True)
            assert home.status_code == 200 and "Integrations" in home.text
        assert console.group(3) not in (demo.data_dir / "siemgate.db").read_bytes().decode("latin-1")

        audit = demo.run(_find(commands, "/api/v1/auditevents"))
        assert set(audit) >= {"items", "cursor", "has_more"}, audit
        assert all("account_uuid" not in e and "actor_type" not in e for e in audit["items"])  # the v1 shape

        # The printed ingest command stores an event, which the Events API then serves.
        with demo.http() as http:
            since = time.time_ns() - 5 * SECOND
            watch = http.post("/api/v2/auditevents", content=orjson.dumps({"start_time": format_ns(since)}))
            assert watch.status_code == 200, watch.text
            cursor = watch.json()["cursor"]
            _, cursor = _follow(http, "/api/v2/auditevents", cursor)
            result = demo.run(_find(commands, "/api/ingest/v2/auditevents"))
            assert result == {"received": 1, "stored": 1, "duplicates": 0}
            added, _ = _follow(http, "/api/v2/auditevents", cursor)
            assert [e for e in added if e["action"] == "suspend" and e["object_type"] == "user"], added

            # Live activity continues: new sign-ins and item usages keep arriving.
            cursors = {}
            for feature in ("signinattempts", "itemusages"):
                response = http.post(
                    f"/api/v2/{feature}", content=orjson.dumps({"start_time": format_ns(time.time_ns())})
                )
                assert response.status_code == 200, response.text
                cursors[feature] = response.json()["cursor"]
            arrived: dict[str, int] = dict.fromkeys(cursors, 0)

            def grown() -> bool:
                for feature, cursor in cursors.items():
                    items, cursors[feature] = _follow(http, f"/api/v2/{feature}", cursor)
                    arrived[feature] += len(items)
                return all(arrived.values())

            wait_for("new live sign-ins and item usages", grown, 30, proc=demo.proc)

        code, took = demo.proc.stop(signal.SIGTERM)
        assert code == 0, f"`siemgate demo` exited {code} on SIGTERM, not 0\n{demo.proc.output()}"
        assert took < 15
        assert "Traceback" not in demo.proc.stderr()


def test_demo_again_on_the_same_data_dir_starts_fresh_and_stops_on_sigint(tmp_path: Path) -> None:
    data_dir = tmp_path / "demo"
    with demo_running(data_dir, tmp_path / "logs") as first:
        old_token = first.token
        with first.http() as http:
            old_account = http.get("/api/v2/auth/introspect").json()["account_uuid"]
        code, took = first.proc.stop(signal.SIGINT)
        output = first.proc.output()
        assert took < 15
    with demo_running(data_dir, tmp_path / "logs") as second:
        assert second.token != old_token
        with httpx.Client(base_url=second.base_url, timeout=30) as http:
            assert http.get("/api/v2/auth/introspect", headers=bearer(old_token)).status_code == 401
            who = http.get("/api/v2/auth/introspect", headers=bearer(second.token))
            assert who.status_code == 200
            assert who.json()["account_uuid"] != old_account
        with open_store(data_dir) as store:
            assert [a.uuid for a in store.list_accounts()] == [who.json()["account_uuid"]]
        second.proc.stop(signal.SIGTERM)
    assert code == 0, f"`siemgate demo` exited {code} on SIGINT, not 0\n{output}"
    assert "Traceback" not in output


@pytest.mark.parametrize(
    "contents",
    [["notes.txt"], ["notes.txt", "keys/"]],
    ids=["unrelated-files", "unrelated-files-and-a-keys-folder"],
)
def test_demo_refuses_a_data_dir_that_is_not_siemgates(tmp_path: Path, contents: list[str]) -> None:
    data_dir = tmp_path / "precious"
    data_dir.mkdir()
    for name in contents:
        if name.endswith("/"):
            (data_dir / name).mkdir()
        else:
            (data_dir / name).write_text("do not delete\n")
    port = free_port()
    # Small options, so that if the demo wrongly goes ahead it is cheap; stopped as soon as it serves.
    args = ["--data-dir", str(data_dir), "demo", "--port", str(port), "--users", "2", "--days", "1", "--rate", "0"]
    proc = Proc("demo", args, cli_env(data_dir), tmp_path / "logs")
    try:
        base_url = f"http://127.0.0.1:{port}"
        wait_for("the demo to exit", lambda: proc.popen.poll() is not None or healthy(base_url), 30)
        served = proc.popen.poll() is None
    finally:
        proc.kill()
    assert not served, f"the demo deleted {sorted(contents)} and started\n{proc.output()}"
    assert (data_dir / "notes.txt").exists(), f"the demo deleted {sorted(contents)}\n{proc.output()}"
    assert proc.popen.returncode == 2, proc.output()
    stderr = proc.stderr()
    assert "was not made by `siemgate demo`" in stderr
    assert "--data-dir" in stderr
    assert "Traceback" not in stderr
    assert (data_dir / "notes.txt").read_text() == "do not delete\n"
    assert sorted(p.name for p in data_dir.iterdir()) == sorted(c.rstrip("/") for c in contents)


def test_demo_on_a_busy_port_fails_before_any_work_and_prints_no_credentials(tmp_path: Path) -> None:
    data_dir = tmp_path / "demo"
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        args = ["--data-dir", str(data_dir), "demo", "--port", str(port), "--users", "2", "--days", "1", "--rate", "0"]
        proc = Proc("demo", args, cli_env(data_dir), tmp_path / "logs")
        try:
            code = proc.popen.wait(timeout=60)
        finally:
            proc.kill()
    assert code == 2, proc.output()
    stderr = proc.stderr()
    assert f"port {port} on 127.0.0.1 is already in use" in stderr and "--port" in stderr, stderr
    assert "Traceback" not in stderr and "simulating" not in stderr, stderr
    assert proc.stdout() == "", "the demo printed instructions although it could not serve"
    assert not data_dir.exists(), "the demo did work (made its store) before finding the port busy"


def test_demo_uses_its_own_store_whatever_database_is_configured(tmp_path: Path) -> None:
    production = tmp_path / "production"
    make_account(production, "Production")
    prod_db = production / "siemgate.db"
    before = prod_db.read_bytes()
    data_dir = tmp_path / "demo"
    env = {
        **cli_env(data_dir),
        "SIEMGATE_DATABASE_URL": f"sqlite:///{prod_db}",
        "SIEMGATE_PUBLIC_HOST": "siem.example.com",
    }
    port = free_port()
    args = ["--data-dir", str(data_dir), "demo", "--port", str(port), "--users", "5", "--days", "1", "--rate", "0"]
    with running(Proc("demo", args, env, tmp_path / "logs")) as proc:
        wait_for("the instructions", lambda: "Stop with Ctrl-C" in proc.stdout(), 60, proc=proc)
        token = re.search(r"export SIEMGATE_TOKEN='([^']+)'", proc.stdout())
        assert token, proc.output()
        who = httpx.get(f"http://127.0.0.1:{port}/api/v2/auth/introspect", headers=bearer(token.group(1)), timeout=10)
        assert who.status_code == 200, who.text  # the token's audience is the demo's own address
        assert "the demo ignores SIEMGATE_DATABASE_URL, SIEMGATE_PUBLIC_HOST" in proc.stderr(), proc.output()
        proc.stop(signal.SIGTERM)
    assert prod_db.read_bytes() == before, "the demo wrote into the configured database"
    with open_store(production) as store:
        assert [a.name for a in store.list_accounts()] == ["Production"]
    with open_store(data_dir) as store:
        assert [a.name for a in store.list_accounts()] == ["Demo Org"]


def test_make_demo_installs_only_the_runtime_and_takes_a_port(tmp_path: Path) -> None:
    repo = Path(__file__).resolve().parents[2]
    venv = tmp_path / "venv"  # absent: make prints how it would create and fill it

    def planned(*goals: str) -> str:
        result = subprocess.run(
            ["make", "-n", "-C", str(repo), f"VENV={venv}", *goals], capture_output=True, text=True, check=True
        )
        return result.stdout

    demo = planned("demo", "PORT=8181")
    installs = [line for line in demo.splitlines() if "pip install" in line and "--upgrade pip" not in line]
    assert installs and all("[dev]" not in line for line in installs), demo
    assert any(line.rstrip().endswith("-e .") for line in installs), demo
    assert f"{venv}/bin/siemgate demo --port 8181" in demo
    assert "[dev]" in planned("test")
