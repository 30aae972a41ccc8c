"""Upgrading a store made by the previous release (docs/upgrading.md): the 0.1.0 code, taken from
git history (the last commit whose version was 0.1.0), makes a store on each backend with an
owner, a token, an ingest key and simulated events; the current code then migrates it and serves
it: the same events in the same order through the Events API, the old token and ingest key, and
the owner's console password."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from io import BytesIO
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from support.events import signin
from support.ports import free_port
from support.procs import Proc, healthy
from support.servers import bearer
from support.stores import drop_pg_schema, new_pg_schema, pg_schema_url
from support.waiting import wait_for

ROOT = Path(__file__).resolve().parents[2]
PREVIOUS = "0.1.0"
PASSWORD = "an upgrade-proof owner password"
FEATURES = ("signinattempts", "itemusages", "auditevents")


def _git(*args: str) -> bytes:
    return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, check=True).stdout


def previous_release_commit() -> str | None:
    """The last commit whose pyproject.toml says version = PREVIOUS; None without git history."""
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        return None
    first_next = _git("log", "--reverse", "--format=%H", "-G", r'^version = "0\.2\.0"', "--", "pyproject.toml")
    commits = first_next.decode().split()
    if not commits:
        return None
    parent = _git("rev-parse", f"{commits[0]}^").decode().strip()
    assert f'version = "{PREVIOUS}"' in _git("show", f"{parent}:pyproject.toml").decode()
    return parent


COMMIT = previous_release_commit()
pytestmark = pytest.mark.skipif(COMMIT is None, reason="needs the git history of the checkout (a full clone)")


@pytest.fixture(scope="module")
def old_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The previous release's src/ tree, extracted from git."""
    where = tmp_path_factory.mktemp("release-0.1.0")
    archive = _git("archive", "--format=tar", str(COMMIT), "src")
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(where, filter="data")
    assert (where / "src" / "siemgate" / "store" / "migrations").is_dir()
    return where / "src"


@pytest.fixture(params=["sqlite", "postgres"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, str]]:
    """The store's settings for both releases."""
    env = {"SIEMGATE_DATA_DIR": str(tmp_path / "data")}
    if request.param == "sqlite":
        yield env
        return
    schema = new_pg_schema()
    env["SIEMGATE_DATABASE_URL"] = pg_schema_url(schema)
    try:
        yield env
    finally:
        drop_pg_schema(schema)


def _env(pythonpath: str | None, settings: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIEMGATE_") and k != "PYTHONPATH"}
    env.update(settings, SIEMGATE_LOG_FORMAT="text", SIEMGATE_DATABASE_POOL_SIZE="2", COLUMNS="300")
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    return env


def _run(env: dict[str, str], cwd: Path, *args: str, stdin: str | None = None) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "siemgate", *args],
        env=env,
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, f"siemgate {' '.join(args)} ({env.get('PYTHONPATH', 'current')}):\n{result.stderr}"
    return result.stdout


def _all_events(http: httpx.Client, token: str, feature: str) -> list[dict[str, Any]]:
    reply = http.post(
        f"/api/v2/{feature}", headers=bearer(token), json={"limit": 1000, "start_time": "2020-01-01T00:00:00Z"}
    )
    items: list[dict[str, Any]] = []
    for _ in range(1000):
        assert reply.status_code == 200, reply.text
        data = reply.json()
        items.extend(data["items"])
        if not data["has_more"]:
            return items
        reply = http.post(f"/api/v2/{feature}", headers=bearer(token), json={"cursor": data["cursor"]})
    raise AssertionError("the cursor chain never ended")


def test_a_store_made_by_the_previous_release_is_migrated_and_served(
    old_source: Path, database: dict[str, str], tmp_path: Path
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    (work / "owner.pw").write_text(PASSWORD + "\n")
    old = _env(str(old_source), database)
    version = subprocess.run([sys.executable, "-m", "siemgate", "--version"], env=old, capture_output=True, text=True)
    assert version.stdout.strip() == PREVIOUS, version.stdout + version.stderr

    # The previous release makes the store: an account with its owner, a token, an ingest key, events.
    _run(old, work, "account", "create", "Acme", "--owner", "olive@acme.example", "--password-file", "owner.pw")
    _run(old, work, "integration", "create", "Reader", "--type", "elastic")
    token = _run(old, work, "token", "issue", "--name", "reader", "--integration", "Reader").strip()
    ingest_key = _run(old, work, "ingest-key", "create", "--name", "bridge").strip()
    _run(old, work, "simulate", "--users", "8", "--days", "7", "--seed", "3")  # a week: weekends are quiet
    served_before: dict[str, list[dict[str, Any]]] = {}
    port = free_port()
    with _serving(old, work, port, "old") as http:
        for feature in FEATURES:
            served_before[feature] = _all_events(http, token, feature)
    assert all(served_before.values()), {f: len(v) for f, v in served_before.items()}

    # The current release migrates it (as every server does at start, and `siemgate db migrate`).
    new = _env(None, database)
    _run(new, work, "db", "migrate")
    # The events of 0.1.0 get their log entries (docs/integrity.md, "Backfill"), every stream dense.
    integrated = _run(new, work, "log", "integrate")
    lines = integrated.splitlines()
    assert len(lines) == len(FEATURES) and all(", backfilled " in line for line in lines), integrated
    assert "INTEGRITY ERROR" not in integrated, integrated
    with _serving(new, work, free_port(), "new") as http:
        assert http.get("/api/v2/auth/introspect", headers=bearer(token)).status_code == 200
        for feature in FEATURES:
            served = _all_events(http, token, feature)
            before = served_before[feature]
            # The same events in the same order; audit events only gain siemgate's own newer ones
            # and the fields the new release adds to its own records.
            assert [e["uuid"] for e in served[: len(before)]] == [e["uuid"] for e in before], feature
        event = signin(time.time_ns())  # within retention: the ingest API refuses older events
        stored = http.post("/api/ingest/v2/signinattempts", headers=bearer(ingest_key), content=orjson.dumps([event]))
        assert stored.status_code == 200 and stored.json()["stored"] == 1, stored.text
        session = http.post("/api/admin/v1/session", json={"email": "olive@acme.example", "password": PASSWORD})
        assert session.status_code == 200, session.text
        assert session.json()["user"]["accounts"][0]["role"] == "owner"
        assert http.get("/console/", follow_redirects=True).status_code == 200  # signed in: the console


class _serving:
    """`siemgate serve` of either release on the store, as a context manager yielding a client."""

    def __init__(self, env: dict[str, str], cwd: Path, port: int, name: str) -> None:
        self.base_url = f"http://127.0.0.1:{port}"
        args = ["serve", "--port", str(port)]
        self.proc = Proc(f"serve-{name}", args, env, cwd / "logs")

    def __enter__(self) -> httpx.Client:
        wait_for("the server", lambda: healthy(self.base_url), 60, proc=self.proc)
        self.http = httpx.Client(base_url=self.base_url, timeout=30)
        return self.http

    def __exit__(self, *exc: object) -> None:
        self.http.close()
        self.proc.stop()
        self.proc.kill()
