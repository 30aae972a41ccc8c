"""The store's error boundary on every backend: a driver error leaves the store as one of
siemgate.errors (StoreError saying what to do, IntegrityConflict with its kind), never as the
driver's own exception, and never with SQL text (store/sqlite/errors.py, PgBase._conn)."""

from __future__ import annotations

import sqlite3

import psycopg
import pytest

from siemgate.errors import Conflict, StoreError
from siemgate.model.ids import new_id
from siemgate.store.base import Store
from siemgate.store.errors import IntegrityConflict
from siemgate.store.postgres import PostgresStore
from siemgate.store.sqlite import SQLiteStore
from siemgate.store.sqlite.errors import integrity_conflict, store_error


def _execute(store: Store, sql: str) -> None:
    """Run `sql` beside the store, on its database, as another program would."""
    if isinstance(store, SQLiteStore):
        with sqlite3.connect(store.path) as conn:
            conn.execute(sql)
    else:
        assert isinstance(store, PostgresStore)
        with psycopg.connect(store.url, autocommit=True) as conn:
            conn.execute(sql.encode())


def test_a_schema_the_store_does_not_expect_is_a_store_error_not_a_driver_error(store: Store) -> None:
    account = store.create_account(new_id(), f"acme-{new_id()[:6]}", 0)
    _execute(store, "ALTER TABLE integrations RENAME TO integrations_elsewhere")
    try:
        with pytest.raises(StoreError) as raised:
            store.list_integrations(account.id)
        assert "SELECT" not in raised.value.message and "integrations" not in raised.value.message
        assert raised.value.__cause__ is None and raised.value.__suppress_context__
    finally:
        _execute(store, "ALTER TABLE integrations_elsewhere RENAME TO integrations")
    assert store.list_integrations(account.id) == []


def test_a_reference_to_nothing_is_a_conflict_saying_so(store: Store) -> None:
    with pytest.raises(Conflict, match="what it refers to does not exist"):
        store.create_integration(987_654_321, new_id(), "other", "orphan", "", 0)


@pytest.mark.parametrize(
    ("sql", "kind"),
    [
        ("INSERT INTO t VALUES (1, 1); INSERT INTO t VALUES (1, 2)", "unique"),
        ("INSERT INTO t VALUES (2, NULL)", "check"),
        ("INSERT INTO t VALUES (3, -1)", "check"),
        ("INSERT INTO c VALUES (99)", "foreign_key"),
    ],
)
def test_sqlite_constraint_kinds_come_from_result_codes(sql: str, kind: str) -> None:
    conn = sqlite3.connect(":memory:")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.executescript(
        "CREATE TABLE t (id INTEGER PRIMARY KEY, n INTEGER NOT NULL CHECK (n >= 0));"
        " CREATE TABLE c (t_id INTEGER REFERENCES t (id));"
    )
    with pytest.raises(sqlite3.IntegrityError) as raised:
        conn.executescript(sql)
    conflict = integrity_conflict(raised.value)
    assert isinstance(conflict, IntegrityConflict) and conflict.kind == kind


def test_sqlite_errors_say_what_to_do_by_their_code() -> None:
    conn = sqlite3.connect(":memory:")
    with pytest.raises(sqlite3.OperationalError) as raised:
        conn.execute("SELECT * FROM nowhere")
    assert "siemgate db migrate" in store_error(raised.value).message
    busy = sqlite3.OperationalError("database is locked")
    busy.sqlite_errorcode = 5
    assert "locked by another process" in store_error(busy, "cannot store events").message
