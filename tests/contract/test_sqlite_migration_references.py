"""An SQLite migration that finds rows referring to rows that do not exist (a store with a hostile
history: written with foreign keys off, or edited by hand) is not applied: it used to be committed
and only then refused, so the first start failed and the next started on the half-checked store
as if nothing had happened."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from siemgate.errors import StoreError
from siemgate.store.migrations import Migration
from siemgate.store.sqlite import SQLiteStore, connection


def test_a_migration_meeting_broken_references_is_not_applied_and_fails_again(tmp_path: Path) -> None:
    path = tmp_path / "siemgate.db"
    SQLiteStore(path).close()
    store = SQLiteStore(path)
    store.migrate()
    store.close()
    with sqlite3.connect(path) as conn:  # a membership of a person who does not exist; 0010 pending again
        conn.execute("PRAGMA foreign_keys=OFF")
        conn.execute("INSERT INTO accounts (id, uuid, name, created_at) VALUES (1, 'A', 'Acme', 0)")
        conn.execute("INSERT INTO memberships (account_id, user_id, role, created_at) VALUES (1, 999, 'owner', 0)")
        conn.execute("DROP TABLE operations")
        conn.execute("DELETE FROM applied_migrations WHERE version = 10")
    for _ in range(2):
        store = SQLiteStore(path)
        try:
            with pytest.raises(StoreError, match="broken references"):
                store.migrate()
        finally:
            store.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT count(*) FROM applied_migrations WHERE version = 10").fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM sqlite_master WHERE name = 'operations'").fetchone() == (0,)


def test_two_processes_migrating_at_once_both_start(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A server and a CLI command started together after an upgrade read the pending migrations
    before either applied them; the second then applied a migration the first had just applied,
    and failed to start ('table users already exists'). PostgreSQL takes an advisory lock."""
    path = tmp_path / "siemgate.db"
    first, second = SQLiteStore(path), SQLiteStore(path)
    read = connection.SQLiteBase._pending

    def read_then_the_other_migrates(conn: sqlite3.Connection) -> list[Migration]:
        pending = read(conn)
        monkeypatch.setattr(connection.SQLiteBase, "_pending", staticmethod(read))
        assert len(second.migrate()) == len(pending)  # the other process, in between
        return pending

    monkeypatch.setattr(connection.SQLiteBase, "_pending", staticmethod(read_then_the_other_migrates))
    try:
        assert first.migrate() == []  # all applied by the other: nothing left, and no error
        assert first.list_accounts() == []
    finally:
        first.close()
        second.close()
