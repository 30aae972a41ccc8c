"""Upgrading a store made by the previous release (docs/upgrading.md): the 0.1.0 code, taken from
git history (the last commit whose version was 0.1.0), makes a store on each backend with an
owner, tokens, an ingest key, simulated events, retention settings and an archive; the current code
then migrates it (first killed with SIGKILL in the middle of a migration, then to the end) and
serves it: the same events in the same order through the Events API, the old cursors, token and
ingest key, the owner's console password, the 0.1.0 archive; and 0.1.0 then refuses the store.

The old store is made once per backend and every check runs on it in sequence (each backend is one
test): making it is most of the time."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import Any

import httpx
import orjson
import psycopg
import pytest

from forward.forward_support import write_config
from siemgate.store.migrations import APPLIED, GUARD, load_migrations
from siemgate.store.postgres import PostgresStore
from siemgate.tlog.page_items import split_page
from support.events import failed, signin
from support.pg_waits import waiting_for
from support.ports import free_port
from support.procs import Proc, healthy
from support.servers import bearer
from support.stores import PG_URL, drop_pg_schema, new_pg_schema, pg_schema_url, sqlite_contents
from support.waiting import wait_for
from tlog.tlog_kit import make_kit, secret_file, signer_process

ROOT = Path(__file__).resolve().parents[2]
PREVIOUS = "0.1.0"
PASSWORD = "an upgrade-proof owner password"
FEATURES = ("signinattempts", "itemusages", "auditevents")
EARLIEST = "2020-01-01T00:00:00Z"  # before every event made here
FORWARD = "FORWARD_TEST_TOKEN"  # the forwarder's token (forward.forward_support.write_config)


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


@dataclass
class Made:
    """What the previous release made and served, to be found again after the upgrade."""

    token: str
    ingest_key: str
    kept: dict[str, Any]
    served_before: dict[str, list[dict[str, Any]]]
    middle: dict[str, tuple[int, str]]
    end: dict[str, str]


# Run in a child process on a copy of the old SQLite store: the current code's migrations, in this
# process, as every start runs them; SQLite calls the progress handler every 100 virtual-machine
# steps of a migration's statements, and the child kills itself with SIGKILL at call `kill_at` of
# migration `version` (0: never). It prints, as JSON, the number of calls of each migration and the
# store's contents (support.stores.sqlite_contents) before each one and at the end.
_MIGRATE_AND_DIE = """
import json, os, signal, sys
from siemgate.store.sqlite.connection import SQLiteBase
from support.stores import sqlite_contents

path, version, kill_at = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
calls, contents = {}, {}
apply = SQLiteBase._apply

def watched(conn, v, name, sql):
    def step():
        calls[v] = calls.get(v, 0) + 1
        if v == version and calls[v] == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        return 0
    contents[v] = sqlite_contents(conn)
    conn.set_progress_handler(step, 100)
    try:
        apply(conn, v, name, sql)
    finally:
        conn.set_progress_handler(None, 0)

SQLiteBase._apply = staticmethod(watched)
base = SQLiteBase(path)
base.migrate()
contents["end"] = sqlite_contents(base._writer)
base.close()
print(json.dumps({"calls": calls, "contents": contents}))
"""


def _migrate_in_child(db: Path, version: int = 0, kill_at: int = 0) -> subprocess.CompletedProcess[str]:
    env = _env(ROOT / "src", {})
    env["PYTHONPATH"] = f"{ROOT / 'src'}{os.pathsep}{ROOT / 'tests'}"
    command = [sys.executable, "-c", _MIGRATE_AND_DIE, str(db), str(version), str(kill_at)]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)


def _sqlite_migrations_killed_midway(store: Path, work: Path) -> None:
    """On copies of the 0.1.0 SQLite store: each migration the upgrade applies, killed half-way
    through its transaction, leaves the store exactly as the migration before left it (nothing of
    the killed one, no record of it), and the next start applies the rest: the store then holds
    what an uninterrupted upgrade makes, row for row."""
    work.mkdir()
    whole = work / "whole.db"
    shutil.copyfile(store, whole)
    measured = _migrate_in_child(whole)
    assert measured.returncode == 0, measured.stderr
    report = orjson.loads(measured.stdout)
    steps, contents = report["calls"], report["contents"]
    versions = sorted(int(v) for v in contents if v != "end")
    assert len(versions) >= 9, versions  # 0.1.0 had 6 of the SQLite migrations
    killed = 0
    for version in versions:
        if steps.get(str(version), 0) < 2:
            continue  # too short to be caught half-way (CREATE INDEX on an empty table, ...)
        copy = work / f"killed-in-{version}.db"
        shutil.copyfile(store, copy)
        died = _migrate_in_child(copy, version, steps[str(version)] // 2)
        assert died.returncode == -signal.SIGKILL, f"migration {version} ran to its end:\n{died.stderr}"
        with contextlib.closing(sqlite3.connect(copy)) as conn:
            assert sqlite_contents(conn) == contents[str(version)], f"killed in {version}: a half-applied migration"
        resumed = _migrate_in_child(copy)
        assert resumed.returncode == 0, resumed.stderr
        with contextlib.closing(sqlite3.connect(copy)) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
            assert sqlite_contents(conn) == contents["end"], f"killed in {version}, then resumed"
        killed += 1
    assert killed >= 3, steps


def _pg_catalog(schema: str) -> list[tuple[str, ...]]:
    """The tables, columns, indexes and constraints of `schema` (not of the events' partitions, made
    as events come), named without the schema."""
    sql = """
        WITH parts AS (SELECT inhrelid AS oid, inhrelid::regclass::text AS name FROM pg_inherits)
        SELECT 'column', table_name::text, concat_ws(' ', column_name, data_type, is_nullable, column_default)
        FROM information_schema.columns WHERE table_schema = %(s)s
        AND table_name::text NOT IN (SELECT replace(name, %(s)s || '.', '') FROM parts)
        UNION ALL SELECT 'index', tablename::text, indexdef FROM pg_indexes WHERE schemaname = %(s)s
        AND tablename::text NOT IN (SELECT replace(name, %(s)s || '.', '') FROM parts)
        UNION ALL SELECT 'constraint', conrelid::regclass::text, conname || ' ' || pg_get_constraintdef(oid)
        FROM pg_constraint WHERE connamespace = %(s)s::regnamespace AND conrelid NOT IN (SELECT oid FROM parts)"""
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        rows = conn.execute(sql, {"s": schema}).fetchall()
    return sorted(tuple(str(v).replace(f"{schema}.", "") for v in row) for row in rows)


def _pg_applied(watch: psycopg.Connection[tuple[Any, ...]], schema: str) -> list[int]:
    return [row[0] for row in watch.execute(f'SELECT version FROM "{schema}".{APPLIED} ORDER BY version')]


def _postgres_migration_killed_midway(new: dict[str, str], work: Path, schema: str) -> None:
    """`siemgate db migrate` on the 0.1.0 PostgreSQL store, killed with SIGKILL in migration 0009's
    transaction: 0009 rebuilds the indexes of accounts and users, then waits for a lock on
    integrations that this test's own transaction holds (in the test's schema). Nothing of 0009
    stays, the migrations before it do; the next `db migrate` finishes, and the schema is then
    the one a new store gets."""
    url = new["SIEMGATE_DATABASE_URL"]
    with psycopg.connect(url) as blocker, psycopg.connect(PG_URL, autocommit=True) as watch:
        old_indexes = _pg_indexes(watch, schema)
        del old_indexes["schema_migrations_pkey"]  # 0.1.0's record, moved before the first migration
        blocker.execute("SELECT count(*) FROM integrations")  # ACCESS SHARE, held until the rollback
        proc = Proc("migrate-killed", ["db", "migrate"], new, work / "logs")
        try:
            wait_for("db migrate to wait for the test's lock", lambda: waiting_for(watch, blocker), 120, proc=proc)
            assert _pg_applied(watch, schema) == list(range(1, 9))  # 0003..0008 committed one by one
        finally:
            code, _ = proc.stop(signal.SIGKILL)
        assert code == -signal.SIGKILL, proc.output()
        waiting = watch.execute(
            "SELECT pid FROM pg_stat_activity WHERE %s = ANY(pg_blocking_pids(pid))", (blocker.info.backend_pid,)
        ).fetchall()
        blocker.rollback()
        # The killed client's backend gets the lock, runs the rest of 0009's statements, finds its
        # client gone and ends, rolling 0009 back.
        gone = "SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = ANY(%s)"
        pids = [pid for (pid,) in waiting]
        wait_for("the killed migration's backend to end", lambda: _value(watch, gone, pids), 60)
        assert _pg_applied(watch, schema) == list(range(1, 9))
        indexes = _pg_indexes(watch, schema)
        assert {name: indexes[name] for name in old_indexes} == old_indexes, "0009 half-applied"
    _run(new, work, "db", "migrate")
    with psycopg.connect(PG_URL, autocommit=True) as watch:
        assert _pg_indexes(watch, schema)["accounts_name"] != old_indexes["accounts_name"]  # 0009 applied now
        assert _pg_applied(watch, schema) == list(range(1, len(load_migrations("postgres")) + 1))
    fresh = new_pg_schema()
    try:
        PostgresStore(pg_schema_url(fresh)).migrate()
        assert _pg_catalog(schema) == _pg_catalog(fresh)
    finally:
        drop_pg_schema(fresh)


def _value(watch: psycopg.Connection[tuple[Any, ...]], sql: str, *params: object) -> Any:
    row = watch.execute(sql, params).fetchone()
    return None if row is None else row[0]


def _pg_indexes(watch: psycopg.Connection[tuple[Any, ...]], schema: str) -> dict[str, str]:
    rows = watch.execute("SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = %s", (schema,))
    return {name: definition for name, definition in rows}


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


def _make_with_the_previous_release(old: dict[str, str], work: Path) -> Made:
    """0.1.0 makes the store: an account with its owner, a token, an ingest key, events, a token of
    two streams that expires, stream retentions, an archive, a starter rule turned off; and a SIEM's
    cursors: one in the middle of each stream, one at its end."""
    (work / "owner.pw").write_text(PASSWORD + "\n")
    version = subprocess.run([sys.executable, "-m", "siemgate", "--version"], env=old, capture_output=True, text=True)
    assert version.stdout.strip() == PREVIOUS, version.stdout + version.stderr
    _run(old, work, "account", "create", "Acme", "--owner", "olive@acme.example", "--password-file", "owner.pw")
    _run(old, work, "integration", "create", "Reader", "--type", "elastic")
    token = _run(old, work, "token", "issue", "--name", "reader", "--integration", "Reader").strip()
    ingest_key = _run(old, work, "ingest-key", "create", "--name", "bridge").strip()
    _run(old, work, "simulate", "--users", "8", "--days", "7", "--seed", "3")  # a week: weekends are quiet
    _run(old, work, "token", "issue", "--name", "narrow", "--features", "signinattempts,itemusages", "--expires", "90d")
    _run(old, work, "retention", "set", "45", "--features", "itemusages", "--archive", "jsonl")
    # Sign-in attempts older than 3 days leave the store into an archive.
    _run(old, work, "retention", "set", "3", "--features", "signinattempts", "--archive", "jsonl")
    _run(old, work, "retention", "apply")
    _run(old, work, "alerts", "disable", "brute-force-signin")
    made = Made(token, ingest_key, _settings(old, work), {}, {}, {})
    with _serving(old, work, free_port(), "old") as http:
        for feature in FEATURES:
            made.served_before[feature], made.end[feature] = _all_events(http, token, feature)
            if len(made.served_before[feature]) > 1:
                page, cursor = _page(http, token, feature, len(made.served_before[feature]) // 2)
                made.middle[feature] = (len(page), cursor)
    assert all(made.served_before.values()), {f: len(v) for f, v in made.served_before.items()}
    return made


def _served_after_the_upgrade(new: dict[str, str], work: Path, made: Made) -> None:
    """The events of 0.1.0 get their log entries (docs/integrity.md, "Backfill"), every stream
    dense; the same events are served in the same order, the old cursors resume, the old token,
    ingest key and password work, the settings are kept."""
    integrated = _run(new, work, "log", "integrate")
    lines = integrated.splitlines()
    assert len(lines) == len(FEATURES) and all(", backfilled " in line for line in lines), integrated
    assert "INTEGRITY ERROR" not in integrated, integrated
    token = made.token
    with _serving(new, work, free_port(), "new") as http:
        assert http.get("/api/v2/auth/introspect", headers=bearer(token)).status_code == 200
        for feature in FEATURES:
            served, _ = _all_events(http, token, feature)
            before = made.served_before[feature]
            # The same events in the same order; audit events only gain siemgate's own newer ones
            # and the fields the new release adds to its own records.
            assert _uuids(served[: len(before)]) == _uuids(before), feature
            # A cursor of the old release resumes where it stopped: none skipped, none repeated.
            if feature in made.middle:
                taken, cursor = made.middle[feature]
                rest, _ = _all_events(http, token, feature, {"cursor": cursor})
                assert _uuids(rest[: len(before) - taken]) == _uuids(before[taken:]), feature
        event = signin(time.time_ns())  # within retention: the ingest API refuses older events
        key = bearer(made.ingest_key)
        stored = http.post("/api/ingest/v2/signinattempts", headers=key, content=orjson.dumps([event]))
        assert stored.status_code == 200 and stored.json()["stored"] == 1, stored.text
        after_end, _ = _all_events(http, token, "signinattempts", {"cursor": made.end["signinattempts"]})
        assert _uuids(after_end) == [event["uuid"]]
        session = http.post("/api/admin/v1/session", json={"email": "olive@acme.example", "password": PASSWORD})
        assert session.status_code == 200, session.text
        assert session.json()["user"]["accounts"][0]["role"] == "owner"
        assert http.get("/console/", follow_redirects=True).status_code == 200  # signed in: the console
    assert _settings(new, work) == made.kept
    rules = {rule["id"]: rule for rule in orjson.loads(_run(new, work, "alerts", "list", "--json"))}
    assert rules["brute-force-signin"]["enabled"] is False


def _the_archive_of_the_previous_release_verifies(new: dict[str, str], work: Path) -> None:
    """The current `archive verify` checks 0.1.0's archive (manifests, files, hashes, counts)."""
    verified = _siemgate(new, work, "archive", "verify")
    assert verified.returncode == 0, verified.stderr
    said = verified.stderr.strip().splitlines()[-1]
    assert said.startswith("ok: 1 stream(s), ") and not said.startswith("ok: 1 stream(s), 0 file(s)"), said
    assert ", 0 event(s)" not in said, said


def _the_previous_release_refuses_the_store(old: dict[str, str], new: dict[str, str], work: Path) -> None:
    """0.1.0 ignored migrations it did not know: started on a migrated store it served and stored
    events without their log entries, and the current release then found every stream's log with a
    hole (INTEGRITY ERROR, the log stopped). It now stops at start, before writing anything."""
    _run(new, work, "log", "integrate")  # what the current release stored last has its entries
    for args in (("simulate", "--users", "3", "--days", "1", "--seed", "6"), ("serve", "--port", str(free_port()))):
        refused = _siemgate(old, work, *args)
        assert refused.returncode != 0, f"0.1.0 {args[0]} ran on the migrated store:\n{refused.stderr}"
        said = refused.stderr.splitlines()[-1]
        assert GUARD in said or "RaiseException" in said, refused.stderr  # PostgreSQL: the server logs why
    integrated = _run(new, work, "log", "integrate")
    assert [line.endswith("up to date") for line in integrated.splitlines()] == [True] * len(FEATURES), integrated


@contextlib.contextmanager
def _store(tmp_path: Path, backend: str) -> Iterator[tuple[Path, dict[str, str], str | None]]:
    """(a working folder, the settings of a new store on `backend`, its PostgreSQL schema or
    None); the schema is dropped at the end."""
    work = tmp_path / "work"
    work.mkdir()
    settings = {"SIEMGATE_DATA_DIR": str(tmp_path / "data")}
    schema = new_pg_schema() if backend == "postgres" else None
    if schema is not None:
        settings["SIEMGATE_DATABASE_URL"] = pg_schema_url(schema)
    try:
        yield work, settings, schema
    finally:
        if schema is not None:
            drop_pg_schema(schema)


def _founded(old: dict[str, str], work: Path) -> str:
    """0.1.0 makes the account Acme with its owner and an ingest key; returns the key."""
    (work / "owner.pw").write_text(PASSWORD + "\n")
    _run(old, work, "account", "create", "Acme", "--owner", "olive@acme.example", "--password-file", "owner.pw")
    return _run(old, work, "ingest-key", "create", "--name", "bridge").strip()


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_a_store_made_by_the_previous_release_is_upgraded(old_source: Path, backend: str, tmp_path: Path) -> None:
    with _store(tmp_path, backend) as (work, settings, schema):
        old, new = _env(old_source, settings), _env(ROOT / "src", settings)
        made = _make_with_the_previous_release(old, work)
        # The current release migrates it (as every server does at start, and `siemgate db migrate`),
        # after a migration killed half-way.
        if schema is None:
            _sqlite_migrations_killed_midway(tmp_path / "data" / "siemgate.db", tmp_path / "killed")
            _run(new, work, "db", "migrate")
        else:
            _postgres_migration_killed_midway(new, work, schema)
        _served_after_the_upgrade(new, work, made)
        _the_archive_of_the_previous_release_verifies(new, work)
        _the_previous_release_refuses_the_store(old, new, work)


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


def _caught_up(settings: dict[str, str], data: Path) -> bool:
    """Whether rule evaluation has read every stored event (each stream's alert checkpoint at its head)."""
    sql = """SELECT count(*) FROM events e WHERE e.seq > coalesce((SELECT c.seq FROM alert_checkpoints c
             WHERE c.account_id = e.account_id AND c.feature = e.feature), 0)"""
    url = settings.get("SIEMGATE_DATABASE_URL")
    if url is None:
        with contextlib.closing(sqlite3.connect(data / "siemgate.db")) as conn:
            return bool(conn.execute(sql).fetchone()[0] == 0)
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(sql).fetchone()
        return row is not None and row[0] == 0


def _fired(env: dict[str, str], work: Path) -> dict[str, list[dict[str, Any]]]:
    """The fired alerts by rule."""
    by_rule: dict[str, list[dict[str, Any]]] = {}
    for alert in orjson.loads(_run(env, work, "alerts", "fired", "--json", "--limit", "1000")):
        by_rule.setdefault(alert["rule_id"], []).append(alert)
    return by_rule


def _ingest(http: httpx.Client, key: str, events: list[dict[str, Any]]) -> None:
    stored = http.post("/api/ingest/v2/signinattempts", headers=bearer(key), content=orjson.dumps(events))
    assert stored.status_code == 200 and stored.json()["stored"] == len(events), stored.text


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_alert_state_of_the_previous_release_carries_over(old_source: Path, backend: str, tmp_path: Path) -> None:
    """0.1.0 counts 6 of the 10 failed sign-ins `brute-force-signin` needs (an address with capitals)
    and learns two countries of a person, whose sign-ins its retention then deletes; after the
    upgrade 4 more failures fire the rule once, and sign-ins from those countries fire nothing."""
    with _store(tmp_path, backend) as (work, settings, _):
        data = tmp_path / "data"
        old, new = _env(old_source, settings), _env(ROOT / "src", settings)
        key = _founded(old, work)
        now = time.time_ns()
        person = signin(now)["target_user"]
        day, minute = 86_400 * 10**9, 60 * 10**9
        travels = [
            signin(now - 5 * day + i * minute, country=c, target_user=person) for i, c in enumerate(["DE", "FR"])
        ]
        attacker = "Mallory.Brute@Acme.example"
        with _serving(old, work, free_port(), "old-alerts") as http:
            _ingest(http, key, travels)
            _ingest(http, key, [failed(now - 60 * 10**9 + i, attacker) for i in range(6)])
            wait_for("0.1.0 to evaluate the rules", lambda: _caught_up(settings, data), 60)
        before = _fired(old, work)
        assert len(before.get("signin-new-country", [])) == 1 and "brute-force-signin" not in before, before
        _run(old, work, "retention", "set", "3", "--features", "signinattempts")
        _run(old, work, "retention", "apply")  # the person's sign-ins go; what 0.1.0 learnt from them stays
        with _serving(new, work, free_port(), "new-alerts") as http:
            _ingest(http, key, [failed(now + i, attacker.lower() if i % 2 else attacker) for i in range(4)])
            _ingest(
                http,
                key,
                [signin(time.time_ns() + i, country=c, target_user=person) for i, c in enumerate(("FR", "DE"))],
            )
            wait_for("the upgraded server to evaluate the rules", lambda: _caught_up(settings, data), 60)
        after = _fired(new, work)
        assert len(after.get("brute-force-signin", [])) == 1, after
        assert "signin-new-country" not in after, after  # (0.1.0's went with the sign-ins it named)


def _delivered(sink: Path, feature: str) -> list[str]:
    """The uuids of the events in the file sink's file of `feature`, in the order written."""
    path = sink / f"{feature}.jsonl"
    if not path.exists():
        return []
    return [orjson.loads(line)["uuid"] for line in path.read_bytes().splitlines() if line]


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_forwarder_and_log_of_the_previous_release_after_the_upgrade(
    old_source: Path, backend: str, tmp_path: Path
) -> None:
    """0.1.0's forwarder, stopped (SIGTERM) mid-way through the store 0.1.0 serves, leaves its
    checkpoints; the current forwarder, on them, against the upgraded server, delivers the rest
    and the events stored since: every event once (docs/forwarding.md, "The delivery contract").
    Then the backfilled log is signed and extended (_signed_after_the_upgrade)."""
    with _store(tmp_path, backend) as (work, settings, _):
        old, new = _env(old_source, settings), _env(ROOT / "src", settings)
        key = _founded(old, work)
        token = _run(old, work, "token", "issue", "--name", "fwd", "--features", "signinattempts,itemusages").strip()
        _run(old, work, "simulate", "--users", "4", "--days", "2", "--seed", "5")
        config, sink, state = work / "forward.toml", work / "sink", work / "forward-state"
        features = ("signinattempts", "itemusages")
        port = free_port()
        with _serving(old, work, port, "old-forward"):
            # pages of 2 events: stopped mid-way
            write_config(config, f"http://127.0.0.1:{port}", state, sink, limit=2, start_time=EARLIEST)
            forwarder = Proc(
                "forward-old", ["forward", "--config", str(config)], {**old, FORWARD: token}, work / "logs"
            )
            try:
                wait_for(
                    "0.1.0's forwarder to deliver",
                    lambda: len(_delivered(sink, "signinattempts")) >= 6,
                    60,
                    proc=forwarder,
                )
            finally:
                code, _ = forwarder.stop(signal.SIGTERM)
            assert code == 0, forwarder.output()
        before = {f: _delivered(sink, f) for f in features}
        port = free_port()
        with _serving(new, work, port, "new-forward") as http:
            _ingest(http, key, [signin(time.time_ns() + i) for i in range(3)])
            served = {f: _uuids(_all_events(http, token, f)[0]) for f in features}
            assert len(before["signinattempts"]) < len(served["signinattempts"]), (
                "0.1.0's forwarder was not stopped mid-way"
            )
            write_config(config, f"http://127.0.0.1:{port}", state, sink, start_time=EARLIEST)
            _run({**new, FORWARD: token}, work, "forward", "--config", str(config), "--once")
        for feature in features:
            assert _delivered(sink, feature) == served[feature], feature
        _signed_after_the_upgrade(new, work, token, key)


def _verify(*args: str) -> str:
    """`siemgate-verify ARGS` of the current code, as its own process; its output (it must succeed)."""
    env = _env(ROOT / "src", {})
    command = [sys.executable, "-m", "siemgate.tlog.verify_cli", *args]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "VALID" in done.stdout and "INVALID" not in done.stdout, done.stdout + done.stderr
    return done.stdout


def _signed_after_the_upgrade(new: dict[str, str], work: Path, token: str, key: str) -> None:
    """The sign-ins 0.1.0 stored get their log entries (`log integrate`), a signer then signs the
    log, more sign-ins come, and `siemgate-verify` checks the later checkpoint against the first:
    the consistency proof the server serves between them, the inclusion proof of the first event
    (0.1.0's) in the later one, and a bundle of every entry and event."""
    _run(new, work, "log", "integrate")
    kit = make_kit(work)
    secret = secret_file(work / "signer.secret")
    with signer_process(kit, secret) as url:
        signed = {**new, "SIEMGATE_INTEGRITY_SIGNER_URL": url, "SIEMGATE_INTEGRITY_SIGNER_SECRET_FILE": str(secret)}
        where = ("--account", "Acme", "--feature", "signinattempts")
        first = _run(signed, work, "log", "checkpoint", *where)
        with _serving(signed, work, free_port(), "new-signed") as http:
            _ingest(http, key, [signin(time.time_ns() + i) for i in range(5)])
            _run(signed, work, "log", "integrate")
            later = _run(signed, work, "log", "checkpoint", *where)
            old_size, new_size = int(first.splitlines()[1]), int(later.splitlines()[1])
            assert new_size == old_size + 5, (first, later)
            proof = http.get(
                "/api/siemgate/v1/log/signinattempts/consistency",
                params={"old": old_size, "new": new_size},
                headers=bearer(token),
            )
            assert proof.status_code == 200, proof.text
            # the first sign-in, stored by 0.1.0: its bytes as served, and its inclusion proof
            page = http.post(
                "/api/v2/signinattempts", headers=bearer(token), json={"limit": 1, "start_time": "2020-01-01T00:00:00Z"}
            )
            (work / "event.json").write_bytes(split_page(page.content).items[0])
            included = http.get("/api/siemgate/v1/log/signinattempts/proof", params={"idx": 0}, headers=bearer(token))
            assert included.status_code == 200, included.text
            (work / "event.proof").write_text(included.text)
        (work / "first.checkpoint").write_text(first)
        (work / "later.checkpoint").write_text(later)
        (work / "proof.txt").write_text(proof.text)
        checkpoints = [str(work / name) for name in ("first.checkpoint", "later.checkpoint", "proof.txt")]
        _verify("consistency", *checkpoints, "--key", str(kit.public_key))
        _verify("event", str(work / "event.json"), str(work / "event.proof"), "--key", str(kit.public_key))
        _run(signed, work, "log", "export", *where, "--out", str(work / "bundle"))
    _verify(
        "bundle", str(work / "bundle"), "--key", str(kit.public_key), "--checkpoint", str(work / "first.checkpoint")
    )
