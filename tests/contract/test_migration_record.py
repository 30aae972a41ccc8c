"""The store's record of applied migrations (docs/upgrading.md, "Older and newer releases"): a store
a newer release migrated is refused, naming its migration and what to do, before anything is read
or written; a release that still reads 0.1.0's `schema_migrations` is stopped by it; a store
recorded the 0.1.0 way has its record moved once."""

from __future__ import annotations

import sqlite3

import psycopg
import pytest

from siemgate.errors import StoreError
from siemgate.store.base import Store
from siemgate.store.migrations import APPLIED, GUARD, load_migrations
from siemgate.store.postgres import PostgresStore
from siemgate.store.sqlite import SQLiteStore


def _execute(store: Store, *statements: str) -> list[tuple[object, ...]]:
    """Run `statements` on the store's database outside siemgate, as another program (or release)
    would; the rows of the last."""
    rows: list[tuple[object, ...]] = []
    if isinstance(store, SQLiteStore):
        with sqlite3.connect(store.path, isolation_level=None) as lite:
            for sql in statements:
                rows = lite.execute(sql).fetchall()
        return rows
    assert isinstance(store, PostgresStore)
    with psycopg.connect(store.url, autocommit=True) as conn:
        for sql in statements:
            cursor = conn.execute(sql)
            rows = cursor.fetchall() if cursor.description else []
    return rows


def _dialect(store: Store) -> str:
    return "sqlite" if isinstance(store, SQLiteStore) else "postgres"


def test_a_store_a_newer_release_migrated_is_refused(store: Store) -> None:
    known = load_migrations(_dialect(store))
    _execute(store, f"INSERT INTO {APPLIED} VALUES ({len(known) + 1}, 'of_the_future', 0)")
    with pytest.raises(StoreError) as refused:
        store.migrate()
    message = str(refused.value)
    assert f"migration {len(known) + 1:04d}_of_the_future" in message, message
    assert f"up to {len(known):04d}_{known[-1].name}" in message, message
    assert "restore the backup taken before the upgrade" in message, message


def test_a_release_reading_the_old_record_is_stopped(store: Store) -> None:
    """What 0.1.0 runs first, on a store of this release: the table is there (a view), and reading
    it fails naming why; nothing is created beside it."""
    statements = (
        "CREATE TABLE IF NOT EXISTS schema_migrations (version bigint PRIMARY KEY, name text NOT NULL,"
        " applied_at bigint NOT NULL)",
        "SELECT version FROM schema_migrations",
    )
    with pytest.raises((sqlite3.OperationalError, psycopg.errors.RaiseException)) as stopped:
        _execute(store, *statements)
    text = str(stopped.value)
    assert GUARD in text or "migrated by siemgate 0.2.0 or later" in text, text
    assert store.migrate() == []


def test_a_record_kept_the_old_way_is_moved_once(store: Store) -> None:
    """A store whose applied migrations are in 0.1.0's `schema_migrations` table: they are moved,
    nothing is applied again, and the guard takes the old table's place."""
    applied = _execute(store, f"SELECT version, name, applied_at FROM {APPLIED} ORDER BY version")
    undo = ["DROP VIEW schema_migrations", f"ALTER TABLE {APPLIED} RENAME TO schema_migrations"]
    if isinstance(store, PostgresStore):
        undo.append(f"DROP FUNCTION {GUARD}()")
    _execute(store, *undo)
    assert store.migrate() == []
    assert _execute(store, f"SELECT version, name, applied_at FROM {APPLIED} ORDER BY version") == applied
    with pytest.raises((sqlite3.OperationalError, psycopg.errors.RaiseException)):
        _execute(store, "SELECT version FROM schema_migrations")
    assert store.migrate() == []


@pytest.mark.parametrize("schema", ["Siemgate_Upper", "siemgate-dash"])
def test_a_schema_named_with_capitals_or_a_dash_is_migrated(pg_url: str, schema: str) -> None:
    """A PostgreSQL schema whose name must be quoted ("Siemgate", first on the search path) holds a
    store as any other: its record is found there, and a record kept the 0.1.0 way is moved."""
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        conn.execute(f'CREATE SCHEMA "{schema}"')
    store = PostgresStore(f"{pg_url}?options=-csearch_path%3D%22{schema}%22", max_size=2)
    try:
        assert store.migrate()[0] == "0001_init"
        assert store.migrate() == []
        _execute(store, "DROP VIEW schema_migrations", f"DROP FUNCTION {GUARD}()")
        _execute(store, f"ALTER TABLE {APPLIED} RENAME TO schema_migrations")
        assert store.migrate() == []
        assert _execute(store, f"SELECT count(*) FROM {APPLIED}") == [(len(load_migrations("postgres")),)]
    finally:
        store.close()
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
