"""Deleting an account (docs/setup.md, "Deleting an account"), on both backends: after its owner
confirms, nothing of the account is left in any table that holds an account's rows — found by
looking at the database, so a table added later is covered too — nor in its archives; the people
who belonged to it alone are gone with their keys and sessions, a person who also belongs to
another account stays there; the other account is exactly as it was; the server's log of
operations records it; and the command line does the same after asking."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from siemgate.accounts.actor import CLI
from siemgate.config import load_settings
from siemgate.errors import NotFound
from siemgate.model.features import ALL_FEATURES, Feature
from siemgate.model.ids import new_id
from siemgate.simulate.runner import simulate_history
from siemgate.simulate.world import build_world
from siemgate.store.base import Account, RetentionPolicy, Store
from siemgate.store.shared.identity import Invitation
from support.clocks import Clock
from support.servers import LiveServer, bearer, start_server

PASSWORD = "a long enough password for the tests"
RULE = "id: suspensions\nname: Suspensions\nsource: auditevents\nmatch:\n  action: suspend\n"
DAY = 86_400 * 10**9


@pytest.fixture
def live(store: Store, tmp_path: Path) -> Iterator[LiveServer]:
    settings = load_settings(
        data_dir=tmp_path / "data", archive_dir=tmp_path / "archive", alerts_enabled=True, alerts_check_seconds=3600
    )
    server, uv, thread = start_server(settings, store, Clock())
    try:
        yield server
    finally:
        server.http.close()
        uv.should_exit = True
        thread.join(timeout=10)


def _tables_with_accounts(store: Store) -> list[str]:
    """Every table with an account_id column, as the database says."""
    if store.__class__.__name__.endswith("SQLiteStore"):
        names = [r[0] for r in store._rows("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return sorted(n for n in names if any(c[1] == "account_id" for c in store._rows(f"PRAGMA table_info({n})")))
    rows = store._rows(
        "SELECT c.table_name FROM information_schema.columns c JOIN pg_class k ON k.relname = c.table_name"
        " JOIN pg_namespace n ON n.oid = k.relnamespace AND n.nspname = c.table_schema"
        " WHERE c.column_name = 'account_id' AND c.table_schema = current_schema() AND NOT k.relispartition"
    )
    return sorted({r[0] for r in rows})


def store_rows(store: Store, table: str, account_id: int) -> list[Any]:
    return list(store._rows(f"SELECT * FROM {table} WHERE account_id = {int(account_id)}"))


# Written by the server's log worker on its own schedule (integration, heartbeat checkpoints): they
# must be emptied by a deletion like every other table, but may change while a test compares.
LOG_WORKER_TABLES = {"log_state", "log_hashes", "log_checkpoints"}


def _steady(snapshot: dict[str, list[Any]]) -> dict[str, list[Any]]:
    return {t: rows for t, rows in snapshot.items() if t not in LOG_WORKER_TABLES}


def _snapshot(store: Store, account_id: int, tables: list[str]) -> dict[str, list[Any]]:
    rows: dict[str, list[Any]] = {}
    for table in tables:
        found = store._rows(f"SELECT * FROM {table} WHERE account_id = {int(account_id)}")
        rows[table] = sorted(tuple(bytes(v) if isinstance(v, memoryview) else v for v in r) for r in found)
    return rows


def _populate(live: LiveServer, name: str, owner: str, archive: Path) -> tuple[Account, str, str]:
    """An account with everything an account can have; returns (account, SIEM token, owner's API key)."""
    services = live.services
    account, person = services.people.create_account(CLI, name, owner, "Owner", PASSWORD)
    assert person is not None
    services.people.add_member(CLI, account, f"admin-{owner}", "Admin", "administrator", PASSWORD)
    now = live.clock()
    simulate_history(services.writer, account.id, build_world(account.uuid, name, 6, 2), days=2, end_ns=now, seed=2,
                     progress=False)  # fmt: skip
    token = live.token(account)
    key = live.ingest_key(account)
    services.alerts.load_text(CLI, account, RULE)
    services.store.set_requires_two_factor(account.id, False)
    reply = live.ingest(key, Feature.AUDITEVENTS, [{"action": "suspend", "object_type": "user"}])
    assert reply.status_code == 200, reply.text  # fires the starter rule user-suspended, and ours
    services.tlog.integrate_all()
    deadline = time.monotonic() + 30
    while not (
        store_rows(services.store, "alerts", account.id) and store_rows(services.store, "alert_deliveries", account.id)
    ):
        assert time.monotonic() < deadline, "no alert was fired and delivered"
        time.sleep(0.05)
    api_key, _ = services.api_keys.create(person, "tests")
    services.store.set_retention_policy(RetentionPolicy(account.id, Feature.SIGNINATTEMPTS, 30, "jsonl", now))
    services.store.create_invitation(
        Invitation(new_id(), account.id, f"guest-{owner}", "member", new_id(), person.id, now, now + DAY),
        max_pending=100,
        now=now,
    )
    signed_in = live.http.post("/api/admin/v1/session", json={"email": owner, "password": PASSWORD})
    assert signed_in.status_code == 200, signed_in.text
    live.http.cookies.clear()
    day = archive / account.uuid / "signinattempts" / "2026"
    day.mkdir(parents=True)
    (day / "2026-01-01.jsonl.gz").write_bytes(b"archived")
    (archive / account.uuid / "signinattempts" / "manifest.json").write_text("{}")
    return account, token, api_key


def _read_all(live: LiveServer, token: str) -> dict[str, list[str]]:
    seen = {}
    for feature in ALL_FEATURES:
        first = live.page(token, feature, {"limit": 1000, "start_time": "2020-01-01T00:00:00Z"})
        assert first.status_code == 200, first.text
        rest, _ = live.drain(token, feature, first.json()["cursor"]) if first.json()["has_more"] else ([], "")
        seen[feature.value] = [e["uuid"] for e in first.json()["items"] + rest]
    return seen


def test_deleting_an_account_leaves_nothing_of_it_and_the_other_untouched(live: LiveServer, tmp_path: Path) -> None:
    store, services = live.store, live.services
    archive = tmp_path / "archive"
    tag = new_id()[:6].lower()
    a, a_token, a_key = _populate(live, f"Gone {tag}", f"alice-{tag}@a.example", archive)
    b, b_token, b_key = _populate(live, f"Kept {tag}", f"bea-{tag}@b.example", archive)
    # Sam's home is A, and Sam also belongs to B: Sam stays, in B only.
    sam = services.people.add_member(CLI, a, f"sam-{tag}@a.example", "Sam", "member", PASSWORD).user
    store.add_member(b.id, sam.id, "member", live.clock())
    alice = store.get_user(f"alice-{tag}@a.example")

    tables = _tables_with_accounts(store)
    assert {"events", "tokens", "alert_rules", "memberships", "log_entries"} <= set(tables), tables
    # the alerts fired while populating, recorded as audit events now rather than up to a
    # dispatcher tick later (a busy machine let that land between B's two snapshots)
    services.alerts.evaluator.record_pending(force=True)
    services.usage.flush()  # the keys' and tokens' last uses so far, recorded before the snapshots
    before_a = _snapshot(store, a.id, tables)
    held = sorted(t for t, rows in before_a.items() if rows)
    assert len(held) >= 17, f"the account under test holds too little to prove much: {held}"
    b_read = _read_all(live, b_token)
    services.usage.flush()  # the token's last use, recorded before the snapshot
    before_b = _snapshot(store, b.id, tables)

    url = f"/api/admin/v1/accounts/{a.uuid}"
    admin_key, _ = services.api_keys.create(store.get_user(f"admin-alice-{tag}@a.example"), "t")
    refused = live.http.delete(url, params={"confirm": a.name}, headers=bearer(admin_key))
    assert refused.status_code == 403, refused.text  # administrators may not
    outsider = live.http.delete(url, params={"confirm": a.name}, headers=bearer(b_key))
    assert outsider.status_code == 404, outsider.text
    unconfirmed = live.http.delete(url, params={"confirm": a.name.upper()}, headers=bearer(a_key))
    assert unconfirmed.status_code == 400 and "confirm with its name" in unconfirmed.text
    assert _steady(_snapshot(store, a.id, tables)) == _steady(before_a), "a refused deletion changed something"

    deleted = live.http.delete(url, params={"confirm": a.name}, headers=bearer(a_key))
    assert deleted.status_code == 200, deleted.text
    assert deleted.json()["deleted"] == a.uuid and deleted.json()["removed"]["events"] > 0

    left = {t: rows for t, rows in _snapshot(store, a.id, tables).items() if rows}
    assert not left, f"rows of the deleted account remain: {sorted(left)}"
    assert not (archive / a.uuid).exists()
    assert (archive / b.uuid / "signinattempts" / "manifest.json").exists()
    assert a.uuid not in {x.uuid for x in store.list_accounts()}
    with pytest.raises(NotFound):
        store.get_user(alice.email)
    assert not store._rows(store._q("SELECT * FROM api_keys WHERE user_id = ?"), (alice.id,))
    assert not store._rows(store._q("SELECT * FROM sessions WHERE user_id = ?"), (alice.id,))
    kept = store.get_user(sam.email)
    assert kept.home_account_id is None and [m.account_id for m in store.list_memberships(kept.id)] == [b.id]

    # The credentials of the deleted account are refused; the other account is exactly as it was.
    assert live.http.get("/api/v2/auth/introspect", headers=bearer(a_token)).status_code == 401
    assert live.http.get("/api/admin/v1/me", headers=bearer(a_key)).status_code == 401
    services.usage.flush()
    after_b, before_b = _steady(_snapshot(store, b.id, tables)), _steady(before_b)
    assert after_b == before_b, [t for t in after_b if after_b[t] != before_b[t]]
    assert _read_all(live, b_token) == b_read

    (op,) = [o for o in store.list_operations() if o.account_uuid == a.uuid]
    assert (op.action, op.actor, op.account_name) == ("delete account", alice.email, a.name)
    assert '"events signinattempts"' in op.detail
    # The name is free again.
    assert services.people.create_account(CLI, a.name, None, None, None)[0].uuid != a.uuid


def test_account_delete_on_the_command_line_asks_then_deletes(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIEMGATE_")}
    env.update(SIEMGATE_DATA_DIR=str(tmp_path / "data"), COLUMNS="200")

    def cli(*args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [sys.executable, "-m", "siemgate", *args], env=env, capture_output=True, text=True, timeout=120, check=False
        )
        assert (result.returncode == 0) == ok, result.stderr
        return result

    (tmp_path / "pw").write_text(PASSWORD + "\n")
    cli("account", "create", "Gone", "--owner", "olive@gone.example", "--password-file", str(tmp_path / "pw"))
    cli("account", "create", "Kept")
    cli("simulate", "--account", "Gone", "--users", "4", "--days", "1")
    refused = cli("account", "delete", "Gone", ok=False)  # no terminal to ask on, no --yes
    assert refused.returncode == 2 and "pass --yes" in refused.stderr and "events signinattempts" in refused.stderr
    assert "Gone" in cli("account", "list").stdout
    done = cli("account", "delete", "Gone", "--yes")
    assert "deleted account 'Gone'" in done.stderr
    assert "Gone" not in cli("account", "list").stdout and "Kept" in cli("account", "list").stdout
    log = cli("account", "deletions", "--json").stdout
    assert '"name": "Gone"' in log and "command line (" in log
    assert cli("account", "delete", "Gone", "--yes", ok=False).returncode == 1  # no such account now
