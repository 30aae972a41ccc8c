"""`siemgate db copy --from sqlite:///... --to postgresql://...`: a whole deployment moves, the copy
is interrupted (killed) and resumed, checked at the end, and the PostgreSQL deployment then serves
the same tokens, cursors and events."""

from __future__ import annotations

import json
import re
import signal
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from siemgate.model.features import ALL_FEATURES, Feature
from siemgate.model.ids import new_id
from siemgate.store.base import ApiKey, RetentionPolicy
from siemgate.store.shared.identity import Withdrawal
from support.events import signin
from support.ports import free_port
from support.procs import SIEMGATE, Proc, cli_env, healthy, run_cli, services_at
from support.servers import bearer
from support.stores import drop_pg_schema, new_pg_schema, pg_schema_url
from support.waiting import wait_for

SECOND = 1_000_000_000
EVENTS = 6000  # per stream, in two streams


@pytest.fixture
def pg_url() -> Iterator[str]:
    schema = new_pg_schema()
    yield pg_schema_url(schema)
    drop_pg_schema(schema)


def _pg_events(url: str) -> int:
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            row = conn.execute("SELECT count(*) FROM events").fetchone()
            return int(row[0]) if row else 0
    except psycopg.errors.UndefinedTable:
        return 0


def _page_all(base: str, token: str, feature: str) -> tuple[list[str], str]:
    """Every event uuid of the stream through one cursor chain, and the last cursor."""
    uuids: list[str] = []
    with httpx.Client(base_url=base, timeout=30) as http:
        body: dict[str, object] = {"limit": 1000, "start_time": "2020-01-01T00:00:00Z"}
        while True:
            page = http.post(f"/api/v2/{feature}", json=body, headers=bearer(token)).json()
            uuids += [item["uuid"] for item in page["items"]]
            body = {"cursor": page["cursor"]}
            if not page["has_more"]:
                return uuids, page["cursor"]


def test_copy_is_resumable_checked_and_the_copy_serves_the_same_data(tmp_path: Path, pg_url: str) -> None:
    data_dir = tmp_path / "sqlite-site"
    with services_at(data_dir) as s:
        now = s.clock()
        account = s.store.create_account(new_id(), "Acme", now)
        owner = s.store.create_user(new_id(), "ada@example.com", "Ada", "hash", account.id, now)
        s.store.add_member(account.id, owner.id, "owner", now)
        s.store.create_api_key(ApiKey(new_id(), owner.id, "laptop", "a" * 64, "sgk_abc", now))
        s.store.set_retention_policy(RetentionPolicy(account.id, Feature.ITEMUSAGES, 30, "none", now))
        integration = s.store.create_integration(account.id, new_id(), "splunk", "Splunk", "", now)
        token, record = s.tokens.issue(account, integration, "splunk", ALL_FEATURES, None)
        s.store.revoke_token(s.tokens.issue(account, integration, "old", ALL_FEATURES, None)[1].id, now)
        key, _ = s.ingest_keys.create(account, "producer", ALL_FEATURES)
        for start in range(0, EVENTS, 1000):
            batch = [signin(now - (EVENTS - start - i) * SECOND) for i in range(1000)]
            s.writer.write(account.id, Feature.SIGNINATTEMPTS, batch)
            s.writer.write(account.id, Feature.AUDITEVENTS, [])  # an empty batch stores nothing
    sqlite_url = f"sqlite:///{data_dir / 'siemgate.db'}"

    # A server on the SQLite deployment: what the copy must serve the same way.
    env_sqlite = cli_env(data_dir)
    port = free_port()
    server = Proc("serve-sqlite", ["serve", "--port", str(port)], env_sqlite, tmp_path / "logs")
    try:
        wait_for("the SQLite server", lambda: healthy(f"http://127.0.0.1:{port}"), 60, proc=server)
        want, sqlite_cursor = _page_all(f"http://127.0.0.1:{port}", token, "signinattempts")
        assert len(want) >= EVENTS
    finally:
        server.stop()

    # Interrupted: killed as soon as some events are in PostgreSQL.
    args = ["db", "copy", "--from", sqlite_url, "--to", pg_url, "--chunk", "100"]
    copy = Proc("copy", args, cli_env(tmp_path / "elsewhere"), tmp_path / "logs")
    try:
        wait_for("the first events to be copied", lambda: _pg_events(pg_url) > 0, 60, proc=copy)
        copy.popen.send_signal(signal.SIGKILL)
        copy.popen.wait(10)
    finally:
        copy.kill()
    partial = _pg_events(pg_url)
    assert 0 < partial < len(want), "the copy should have been interrupted part-way"

    env_pg = cli_env(tmp_path / "pg-site", SIEMGATE_DATABASE_URL=pg_url)
    resumed = run_cli(env_pg, *args, timeout=300)
    assert "copied and checked" in resumed.stderr and "resumed 1 stream" in resumed.stderr, resumed.stderr
    assert _pg_events(pg_url) == len(want)
    again = run_cli(env_pg, *args, timeout=300)  # nothing left to do, still checked
    assert "0 copied by this run" in again.stderr, again.stderr

    # The PostgreSQL deployment: same people, tokens (revoked ones too), keys, cursor secret, events.
    accounts = run_cli(env_pg, "account", "list", "--json").stdout
    assert account.uuid in accounts
    port = free_port()
    server = Proc("serve-pg", ["serve", "--port", str(port)], env_pg, tmp_path / "logs")
    try:
        base = f"http://127.0.0.1:{port}"
        wait_for("the PostgreSQL server", lambda: healthy(base), 60, proc=server)
        got, _ = _page_all(base, token, "signinattempts")
        assert got == want  # same events, same order
        with httpx.Client(base_url=base, timeout=30) as http:
            # A cursor the SQLite deployment handed out goes on working.
            page = http.post("/api/v2/signinattempts", json={"cursor": sqlite_cursor}, headers=bearer(token))
            assert page.status_code == 200 and page.json()["items"] == []
            fresh = signin(now)
            stored = http.post("/api/ingest/v2/signinattempts", json=[fresh], headers=bearer(key)).json()
            assert stored["stored"] == 1
            page = http.post("/api/v2/signinattempts", json={"cursor": sqlite_cursor}, headers=bearer(token)).json()
            assert [i["uuid"] for i in page["items"]] == [fresh["uuid"]]
            assert http.get("/api/v2/auth/introspect", headers=bearer(token)).status_code == 200
    finally:
        server.stop()
    tokens = {t["id"]: t for t in json.loads(run_cli(env_pg, "token", "list", "--json").stdout)}
    assert record.id in tokens and len(tokens) == 2
    assert sorted(t["status"] for t in tokens.values()) == ["active", "revoked"]


def _small_source(data_dir: Path, events: int = 30) -> str:
    """A deployment with one account and `events` sign-in attempts; the account uuid."""
    with services_at(data_dir) as s:
        now = s.clock()
        account = s.store.create_account(new_id(), "Acme", now)
        batch = [signin(now - (events - i) * SECOND) for i in range(events)]
        s.writer.write(account.id, Feature.SIGNINATTEMPTS, batch)
        return account.uuid


def _copy(env: dict[str, str], source: str, target: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*SIEMGATE, "db", "copy", "--from", source, "--to", target],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )


def test_copy_refuses_a_source_that_is_missing_empty_or_holds_nothing_and_creates_no_file(tmp_path: Path) -> None:
    env = cli_env(tmp_path / "elsewhere")
    never_used = "postgresql://postgres@127.0.0.1:5432/not-reached"  # refused before any connection
    missing = tmp_path / "gone" / "siemgate.db"
    empty = tmp_path / "empty.db"
    empty.touch()
    no_accounts = tmp_path / "fresh"
    services_at(no_accounts).__enter__().close()  # a migrated store with no account
    for source, said in (
        (f"sqlite://{missing}", f"{missing} does not exist"),  # the README's form: sqlite:///srv/...
        (f"sqlite:///{missing}", f"{missing} does not exist"),
        (str(missing), f"{missing} does not exist"),
        (f"sqlite://{empty}", f"{empty} is empty"),
        (f"sqlite://{no_accounts / 'siemgate.db'}", "holds no accounts"),
    ):
        done = _copy(env, source, never_used, cwd=tmp_path)
        assert done.returncode == 2, (source, done.stderr)
        assert said in done.stderr and "Traceback" not in done.stderr, (source, done.stderr)
    assert not missing.exists() and not missing.parent.exists()
    assert [p.name for p in tmp_path.iterdir() if p.is_file()] == ["empty.db"]  # nothing made under the cwd
    assert empty.stat().st_size == 0


def test_copy_takes_the_readmes_url_form_and_a_relative_path(tmp_path: Path, pg_url: str) -> None:
    site = tmp_path / "site"
    _small_source(site, events=30)
    env = cli_env(tmp_path / "elsewhere")
    done = _copy(env, f"sqlite://{site / 'siemgate.db'}", pg_url)  # sqlite:///tmp/.../siemgate.db
    assert done.returncode == 0, done.stderr
    assert "30 events in 1 streams" in done.stderr, done.stderr
    # the check's progress bar ends complete (it counted the table rows too, which it does not go through: "30/36")
    assert re.search(r"^checking\b.*\b30/30\b", done.stderr, re.M), done.stderr
    other = new_pg_schema()
    try:
        done = _copy(env, "site/siemgate.db", pg_schema_url(other), cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        assert "30 events in 1 streams" in done.stderr, done.stderr
    finally:
        drop_pg_schema(other)


def test_copy_refuses_a_target_that_a_server_already_used(tmp_path: Path, pg_url: str) -> None:
    site = tmp_path / "site"
    _small_source(site)
    served = cli_env(tmp_path / "pg-site", SIEMGATE_DATABASE_URL=pg_url)
    run_cli(served, "account", "create", "Other")  # the target now has its own keys, secret and account
    before = _pg_events(pg_url)  # the new account's own audit event
    done = _copy(cli_env(tmp_path / "elsewhere"), f"sqlite://{site / 'siemgate.db'}", pg_url)
    assert done.returncode == 2, done.stderr
    assert "already used by a siemgate server" in done.stderr, done.stderr
    assert "signing keys of its own" in done.stderr and "secrets of its own" in done.stderr
    assert "accounts of its own" in done.stderr
    assert _pg_events(pg_url) == before  # nothing copied


def test_copying_again_brings_changed_rows_up_to_date(tmp_path: Path, pg_url: str) -> None:
    """A copy run again after the source changed (the old server ran between two runs, as an
    operator does when the first attempt was a rehearsal or was interrupted) carries the changes:
    a token revoked since, a demoted owner and a renamed account are not left as they were."""
    site = tmp_path / "site"
    _small_source(site)
    with services_at(site) as s:
        now = s.clock()
        account = s.store.get_account("Acme")
        integration = s.store.create_integration(account.id, new_id(), "splunk", "SIEM", "", now)
        _, record = s.tokens.issue(account, integration, "reader", list(ALL_FEATURES), None)
        first = s.store.create_user(new_id(), "first@example.com", "First", None, account.id, now)
        s.store.add_member(account.id, first.id, "owner", now)
        second = s.store.create_user(new_id(), "second@example.com", "Second", None, account.id, now)
        s.store.add_member(account.id, second.id, "owner", now)
    env = cli_env(tmp_path / "elsewhere")
    source = f"sqlite://{site / 'siemgate.db'}"
    done = _copy(env, source, pg_url)
    assert done.returncode == 0, done.stderr
    with services_at(site) as s:  # the old deployment keeps running for a while
        now = s.clock()
        s.store.revoke_token(record.id, now)
        s.store.set_role(account.id, first.id, "member", Withdrawal((), now, None))
        s.store.rename_account(account.id, "Acme Renamed")
    done = _copy(env, source, pg_url)
    assert done.returncode == 0, done.stderr
    with psycopg.connect(pg_url, autocommit=True) as conn:
        revoked = conn.execute("SELECT revoked_at FROM tokens WHERE id = %s", (record.id,)).fetchone()
        role = conn.execute(
            "SELECT role FROM memberships WHERE account_id = %s AND user_id = %s", (account.id, first.id)
        ).fetchone()
        name = conn.execute("SELECT name FROM accounts WHERE id = %s", (account.id,)).fetchone()
    assert revoked is not None and revoked[0] is not None, "a token revoked on SQLite is live again on PostgreSQL"
    assert role == ("member",)
    assert name == ("Acme Renamed",)


def test_copying_again_removes_what_the_source_removed(tmp_path: Path, pg_url: str) -> None:
    """A member removed on the source between two runs is removed from the target too, and the
    second run completes (it used to stop on a row-count mismatch, leaving only a new target)."""
    site = tmp_path / "site"
    _small_source(site)
    with services_at(site) as s:
        now = s.clock()
        account = s.store.get_account("Acme")
        owner = s.store.create_user(new_id(), "owner@example.com", "Owner", None, account.id, now)
        s.store.add_member(account.id, owner.id, "owner", now)
        leaver = s.store.create_user(new_id(), "leaver@example.com", "Leaver", None, account.id, now)
        s.store.add_member(account.id, leaver.id, "administrator", now)
        joiner = s.store.create_user(new_id(), "joiner@example.com", "Joiner", None, account.id, now)
    env = cli_env(tmp_path / "elsewhere")
    source = f"sqlite://{site / 'siemgate.db'}"
    assert (done := _copy(env, source, pg_url)).returncode == 0, done.stderr
    with services_at(site) as s:
        now = s.clock()
        s.store.remove_member(account.id, leaver.id, Withdrawal((), now, None))
        s.store.add_member(account.id, joiner.id, "member", now)
    assert (done := _copy(env, source, pg_url)).returncode == 0, done.stderr
    with psycopg.connect(pg_url, autocommit=True) as conn:
        members = conn.execute("SELECT user_id FROM memberships WHERE account_id = %s", (account.id,)).fetchall()
    assert sorted(m[0] for m in members) == sorted([owner.id, joiner.id]), "a removed member is still one"


def test_copy_lists_names_postgresql_cannot_hold_and_copies_nothing(tmp_path: Path, pg_url: str) -> None:
    """A 0.1.0 SQLite store may hold the NUL character in a person's name or an integration's
    description (it was refused at the door only later): the copy names each such value and
    copies nothing, with or without --skip-unstorable (such a row cannot be left out); changed on
    the source, the copy goes through."""
    site = tmp_path / "site"
    _small_source(site)
    with services_at(site) as s:
        now = s.clock()
        account = s.store.get_account("Acme")
        person = s.store.create_user(new_id(), "nul@example.com", "Nul", None, account.id, now)
        integration = s.store.create_integration(account.id, new_id(), "splunk", "SIEM", "", now)
    with sqlite3.connect(site / "siemgate.db") as conn:  # as 0.1.0 stored them
        conn.execute("UPDATE users SET name = 'a' || char(0) || 'b' WHERE id = ?", (person.id,))
        conn.execute("UPDATE integrations SET description = char(0) WHERE id = ?", (integration.id,))
    env = cli_env(tmp_path / "elsewhere")
    source = f"sqlite://{site / 'siemgate.db'}"
    for extra in ([], ["--skip-unstorable"]):
        done = subprocess.run(
            [*SIEMGATE, "db", "copy", "--from", source, "--to", pg_url, *extra],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
            stdin=subprocess.DEVNULL,
        )
        assert done.returncode == 1, done.stderr
        assert "Traceback" not in done.stderr and "nothing was copied" in done.stderr, done.stderr
        assert f"users (id {person.id}): name contains the NUL character" in done.stderr, done.stderr
        assert f"integrations (id {integration.id}): description contains the NUL" in done.stderr, done.stderr
        with psycopg.connect(pg_url, autocommit=True) as conn:
            tables = conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()").fetchone()
        assert tables == (0,)  # not even migrated
    with sqlite3.connect(site / "siemgate.db") as conn:
        conn.execute("UPDATE users SET name = 'ab' WHERE id = ?", (person.id,))
        conn.execute("UPDATE integrations SET description = '' WHERE id = ?", (integration.id,))
    assert (done := _copy(env, source, pg_url)).returncode == 0, done.stderr


def test_a_source_written_to_during_the_copy_is_reported(tmp_path: Path, pg_url: str) -> None:
    """A server still running on the source changes it while it is copied (here: renames its
    account again and again, which no row count shows): the copy says so and exits 1 rather than
    'copied and checked'; run again once nothing writes, it completes."""
    site = tmp_path / "site"
    _small_source(site)
    env = cli_env(tmp_path / "elsewhere")
    source = f"sqlite://{site / 'siemgate.db'}"
    copying = subprocess.Popen(
        [*SIEMGATE, "db", "copy", "--from", source, "--to", pg_url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        stdin=subprocess.DEVNULL,
    )
    renames = 0
    with services_at(site) as s:  # the "server": writes until the copy has finished
        account = s.store.get_account("Acme")
        while copying.poll() is None and renames < 100_000:
            renames += 1
            s.store.rename_account(account.id, f"Acme {renames}")
        s.store.rename_account(account.id, "Acme")
    _, stderr = copying.communicate(timeout=60)
    assert copying.returncode == 1, stderr
    assert "the source changed while it was copied" in stderr and "Traceback" not in stderr, stderr
    assert (done := _copy(env, source, pg_url)).returncode == 0, done.stderr
    with psycopg.connect(pg_url, autocommit=True) as conn:
        assert conn.execute("SELECT name FROM accounts WHERE id = %s", (account.id,)).fetchone() == ("Acme",)
