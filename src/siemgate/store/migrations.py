"""Numbered SQL migrations shipped with the package: `store/<dialect>/migrations/NNNN_name.sql`."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from typing import Any


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def load_migrations(dialect: str) -> list[Migration]:
    """All migrations for `dialect` in version order."""
    folder = resources.files(f"siemgate.store.{dialect}") / "migrations"
    found = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            number, _, rest = entry.name.partition("_")
            found.append(Migration(int(number), rest.removesuffix(".sql"), entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if versions != list(range(1, len(found) + 1)):
        raise RuntimeError(f"{dialect} migrations are not numbered 1..n: {versions}")
    return found


# The table of applied migrations, in each dialect's types (0001 of each creates nothing else first).
_APPLIED = {
    "sqlite": "(version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)",
    "postgres": "(version bigint PRIMARY KEY, name text NOT NULL, applied_at bigint NOT NULL)",
}


def pending_migrations(conn: Any, dialect: str) -> list[Migration]:
    """The migrations of `dialect` that the database behind `conn` has not applied yet, in
    version order; creates the table of applied migrations when it is missing."""
    conn.execute(f"CREATE TABLE IF NOT EXISTS schema_migrations {_APPLIED[dialect]}")
    done = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
    return [m for m in load_migrations(dialect) if m.version not in done]
