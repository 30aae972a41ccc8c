"""An SQLite migration that finds rows referring to rows that do not exist (a store with a hostile
history: written with foreign keys off, or edited by hand) is not applied: it used to be committed
and only then refused, so the first start failed and the next started on the half-checked store
as if nothing had happened."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from siemgate.errors import StoreError
from siemgate.store.sqlite import SQLiteStore


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
        conn.execute("DELETE FROM schema_migrations WHERE version = 10")
    for _ in range(2):
        store = SQLiteStore(path)
        try:
            with pytest.raises(StoreError, match="broken references"):
                store.migrate()
        finally:
            store.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT count(*) FROM schema_migrations WHERE version = 10").fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM sqlite_master WHERE name = 'operations'").fetchone() == (0,)
