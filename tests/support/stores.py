"""The machine's PostgreSQL and Redis, and migrated stores of each backend on real databases."""

from __future__ import annotations

import hashlib
import os
import sqlite3
from pathlib import Path

import psycopg
import pytest

from siemgate.model.ids import new_id
from siemgate.store.base import Store
from siemgate.store.migrations import APPLIED
from siemgate.store.postgres import PostgresStore
from siemgate.store.sqlite import SQLiteStore

STORE_BACKENDS = ["sqlite", "postgres"]
# The machine's PostgreSQL (.ci/run starts it when it is down); each test gets its own schema.
PG_URL = os.environ.get("SIEMGATE_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("SIEMGATE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def pg_schema_url(schema: str) -> str:
    """PG_URL with `schema` first on the search path (created if missing)."""
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
    return f"{PG_URL}?options=-csearch_path%3D{schema}"


def drop_pg_schema(schema: str) -> None:
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def new_pg_schema() -> str:
    return f"t_{new_id().lower()[:16]}"


def make_store(kind: str, path: Path) -> Store:
    """A migrated store; on PostgreSQL in a fresh schema, dropped when the store is closed."""
    if kind == "sqlite":
        store: Store = SQLiteStore(path / "siemgate.db")
    elif kind == "postgres":
        schema = new_pg_schema()
        store = _DroppingPostgresStore(pg_schema_url(schema), schema)
    else:  # pragma: no cover - a new backend must be added here
        raise ValueError(kind)
    store.migrate()
    return store


class _DroppingPostgresStore(PostgresStore):
    """A test's PostgreSQL store: its schema goes when the store is closed."""

    def __init__(self, url: str, schema: str) -> None:
        super().__init__(url, max_size=4)
        self._schema_name = schema

    def close(self) -> None:
        super().close()
        drop_pg_schema(self._schema_name)


def _backend_param(request: pytest.FixtureRequest) -> str:
    return str(request.param)


# A module that assigns this to `server_backend` runs its server tests on SQLite and PostgreSQL.
BOTH_BACKENDS = pytest.fixture(scope="module", params=STORE_BACKENDS, name="server_backend")(_backend_param)


def sqlite_contents(conn: sqlite3.Connection) -> str:
    """A digest of everything an SQLite database holds, equal for equal databases: its schema and
    every table's rows (of the record of applied migrations, not when each was applied)."""
    lines = sorted(
        f"{kind} {name} {sql}" for kind, name, sql in conn.execute("SELECT type, name, sql FROM sqlite_master")
    )
    for (table,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").fetchall():
        columns = "version, name" if table == APPLIED else "*"
        lines += sorted(f"{table} {row!r}" for row in conn.execute(f'SELECT {columns} FROM "{table}"'))
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()
