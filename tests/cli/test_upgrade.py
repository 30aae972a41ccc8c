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

from siemgate.store.migrations import GUARD
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


def _env(source: Path, settings: dict[str, str]) -> dict[str, str]:
    """The environment of a release whose code is `source` (ROOT / "src": the code under test; the
    environment's installed siemgate may be another checkout's)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIEMGATE_")}
    env.update(settings, SIEMGATE_LOG_FORMAT="text", SIEMGATE_DATABASE_POOL_SIZE="2", COLUMNS="300")
    env["PYTHONPATH"] = str(source)
    return env


def _siemgate(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "siemgate", *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=300
    )


def _run(env: dict[str, str], cwd: Path, *args: str) -> str:
    result = _siemgate(env, cwd, *args)
    assert result.returncode == 0, f"siemgate {' '.join(args)} ({env['PYTHONPATH']}):\n{result.stderr}"
    return result.stdout


def _all_events(
    http: httpx.Client, token: str, feature: str, first: dict[str, Any] | None = None
) -> tuple[list[dict[str, Any]], str]:
    """The events of the cursor chain starting with the request `first` (default: every event),
    and the chain's last cursor."""
    body = first or {"limit": 1000, "start_time": "2020-01-01T00:00:00Z"}
    items: list[dict[str, Any]] = []
    for _ in range(1000):
        reply = http.post(f"/api/v2/{feature}", headers=bearer(token), json=body)
        assert reply.status_code == 200, reply.text
        data = reply.json()
        items.extend(data["items"])
        if not data["has_more"]:
            return items, data["cursor"]
        body = {"cursor": data["cursor"]}
    raise AssertionError("the cursor chain never ended")


def _page(http: httpx.Client, token: str, feature: str, limit: int) -> tuple[list[dict[str, Any]], str]:
    """The first `limit` events and the cursor to the next."""
    reply = http.post(
        f"/api/v2/{feature}", headers=bearer(token), json={"limit": limit, "start_time": "2020-01-01T00:00:00Z"}
    )
    assert reply.status_code == 200 and reply.json()["has_more"], reply.text
    return reply.json()["items"], reply.json()["cursor"]


def _settings(env: dict[str, str], cwd: Path) -> dict[str, Any]:
    """The tokens (their features, expiry, integration...; not when last used) and the retention."""
    tokens = orjson.loads(_run(env, cwd, "token", "list", "--json"))
    return {
        "tokens": [{k: v for k, v in token.items() if k != "last_used_at"} for token in tokens],
        "retention": orjson.loads(_run(env, cwd, "retention", "show", "--json")),
    }


def _uuids(events: list[dict[str, Any]]) -> list[str]:
    return [e["uuid"] for e in events]


def test_a_store_made_by_the_previous_release_is_migrated_and_served(
    old_source: Path, database: dict[str, str], tmp_path: Path
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    (work / "owner.pw").write_text(PASSWORD + "\n")
    old = _env(old_source, database)
    version = subprocess.run([sys.executable, "-m", "siemgate", "--version"], env=old, capture_output=True, text=True)
    assert version.stdout.strip() == PREVIOUS, version.stdout + version.stderr

    # The previous release makes the store: an account with its owner, a token, an ingest key, events.
    _run(old, work, "account", "create", "Acme", "--owner", "olive@acme.example", "--password-file", "owner.pw")
    _run(old, work, "integration", "create", "Reader", "--type", "elastic")
    token = _run(old, work, "token", "issue", "--name", "reader", "--integration", "Reader").strip()
    ingest_key = _run(old, work, "ingest-key", "create", "--name", "bridge").strip()
    _run(old, work, "simulate", "--users", "8", "--days", "7", "--seed", "3")  # a week: weekends are quiet
    # ... a token of two streams that expires, a stream's own retention, a starter rule turned off
    _run(old, work, "token", "issue", "--name", "narrow", "--features", "signinattempts,itemusages", "--expires", "90d")
    _run(old, work, "retention", "set", "45", "--features", "itemusages", "--archive", "jsonl")
    _run(old, work, "alerts", "disable", "brute-force-signin")
    kept = _settings(old, work)
    # ... and a SIEM's cursors: one in the middle of each stream, one at its end.
    served_before: dict[str, list[dict[str, Any]]] = {}
    middle: dict[str, tuple[int, str]] = {}
    end: dict[str, str] = {}
    with _serving(old, work, free_port(), "old") as http:
        for feature in FEATURES:
            served_before[feature], end[feature] = _all_events(http, token, feature)
            if len(served_before[feature]) > 1:
                page, cursor = _page(http, token, feature, len(served_before[feature]) // 2)
                middle[feature] = (len(page), cursor)
    assert all(served_before.values()), {f: len(v) for f, v in served_before.items()}

    # The current release migrates it (as every server does at start, and `siemgate db migrate`).
    new = _env(ROOT / "src", database)
    _run(new, work, "db", "migrate")
    # The events of 0.1.0 get their log entries (docs/integrity.md, "Backfill"), every stream dense.
    integrated = _run(new, work, "log", "integrate")
    lines = integrated.splitlines()
    assert len(lines) == len(FEATURES) and all(", backfilled " in line for line in lines), integrated
    assert "INTEGRITY ERROR" not in integrated, integrated
    with _serving(new, work, free_port(), "new") as http:
        assert http.get("/api/v2/auth/introspect", headers=bearer(token)).status_code == 200
        for feature in FEATURES:
            served, _ = _all_events(http, token, feature)
            before = served_before[feature]
            # The same events in the same order; audit events only gain siemgate's own newer ones
            # and the fields the new release adds to its own records.
            assert _uuids(served[: len(before)]) == _uuids(before), feature
            # A cursor of the old release resumes where it stopped: none skipped, none repeated.
            if feature in middle:
                taken, cursor = middle[feature]
                rest, _ = _all_events(http, token, feature, {"cursor": cursor})
                assert _uuids(rest[: len(before) - taken]) == _uuids(before[taken:]), feature
        event = signin(time.time_ns())  # within retention: the ingest API refuses older events
        stored = http.post("/api/ingest/v2/signinattempts", headers=bearer(ingest_key), content=orjson.dumps([event]))
        assert stored.status_code == 200 and stored.json()["stored"] == 1, stored.text
        after_end, _ = _all_events(http, token, "signinattempts", {"cursor": end["signinattempts"]})
        assert _uuids(after_end) == [event["uuid"]]
        session = http.post("/api/admin/v1/session", json={"email": "olive@acme.example", "password": PASSWORD})
        assert session.status_code == 200, session.text
        assert session.json()["user"]["accounts"][0]["role"] == "owner"
        assert http.get("/console/", follow_redirects=True).status_code == 200  # signed in: the console
    assert _settings(new, work) == kept
    rules = {rule["id"]: rule for rule in orjson.loads(_run(new, work, "alerts", "list", "--json"))}
    assert rules["brute-force-signin"]["enabled"] is False


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


def test_the_previous_release_refuses_a_store_the_current_one_migrated(
    old_source: Path, database: dict[str, str], tmp_path: Path
) -> None:
    """0.1.0 ignored migrations it did not know: started on a migrated store it served and stored
    events without their log entries, and the current release then found every stream's log with a
    hole (INTEGRITY ERROR, the log stopped). It now stops at start, before writing anything."""
    work = tmp_path / "work"
    work.mkdir()
    (work / "owner.pw").write_text(PASSWORD + "\n")
    old, new = _env(old_source, database), _env(ROOT / "src", database)
    _run(old, work, "account", "create", "Acme", "--owner", "olive@acme.example", "--password-file", "owner.pw")
    _run(old, work, "simulate", "--users", "3", "--days", "2", "--seed", "5")
    _run(new, work, "db", "migrate")
    _run(new, work, "log", "integrate")

    for args in (("simulate", "--users", "3", "--days", "1", "--seed", "6"), ("serve", "--port", str(free_port()))):
        refused = _siemgate(old, work, *args)
        assert refused.returncode != 0, f"0.1.0 {args[0]} ran on the migrated store:\n{refused.stderr}"
        said = refused.stderr.splitlines()[-1]
        assert GUARD in said or "RaiseException" in said, refused.stderr  # PostgreSQL: the server logs why
    integrated = _run(new, work, "log", "integrate")
    assert [line.endswith("up to date") for line in integrated.splitlines()] == [True] * len(FEATURES), integrated
