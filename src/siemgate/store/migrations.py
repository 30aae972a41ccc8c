"""Numbered SQL migrations shipped with the package: `store/<dialect>/migrations/NNNN_name.sql`,
and the store's record of those applied (docs/upgrading.md, "Older and newer releases")."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from typing import Any

from siemgate.errors import StoreError


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


# The table of applied migrations, in each dialect's types. 0.1.0 kept them in `schema_migrations`,
# which it reads before anything else and whose unknown versions it ignores; that name is now a
# view that fails to read, so a release that knows only `schema_migrations` stops at start instead
# of writing into a store whose schema it does not know.
APPLIED = "applied_migrations"
_APPLIED_COLUMNS = {
    "sqlite": "(version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)",
    "postgres": "(version bigint PRIMARY KEY, name text NOT NULL, applied_at bigint NOT NULL)",
}
GUARD = "this_store_was_migrated_by_a_newer_siemgate"  # what 0.1.0 says: the name of what fails
# The kind of the relation named {name}: SQLite's 'table' or 'view', PostgreSQL's 'r' or 'v'.
_KIND = {
    "sqlite": "SELECT type FROM sqlite_master WHERE name = '{name}'",
    # The schema by its name as it is, not parsed as an identifier (a ::regnamespace cast folds
    # "Siemgate" to siemgate and fails).
    "postgres": "SELECT relkind FROM pg_class WHERE relname = '{name}'"
    " AND relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = current_schema())",
}
_GUARD_SQL = {
    # SQLite resolves a view's functions when it is read: the function does not exist.
    "sqlite": (f"CREATE VIEW schema_migrations (version, name, applied_at) AS SELECT {GUARD}(), '', 0",),
    "postgres": (
        f"CREATE OR REPLACE FUNCTION {GUARD}() RETURNS bigint LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION"
        " 'this store was migrated by siemgate 0.2.0 or later: run that release, or restore the backup"
        " taken before the upgrade'; END $$",
        f"CREATE VIEW schema_migrations (version, name, applied_at) AS SELECT {GUARD}(), ''::text, 0::bigint",
    ),
}


def recorded(conn: Any, dialect: str) -> bool:
    """Whether the database behind `conn` has the table of applied migrations (a read)."""
    return conn.execute(_KIND[dialect].format(name=APPLIED)).fetchone() is not None


def pending_migrations(conn: Any, dialect: str) -> list[Migration]:
    """The migrations of `dialect` that the database behind `conn` has not applied yet, in version
    order. Run it in a write transaction: it creates the table of applied migrations when it is
    missing, moving 0.1.0's `schema_migrations` rows into it, and puts the guard view in place.
    Raises StoreError when the store has applied a migration this code does not know (a newer
    release migrated it: going back needs the backup taken before the upgrade). Once the table
    exists it only reads."""
    known = load_migrations(dialect)
    if not recorded(conn, dialect):
        conn.execute(f"CREATE TABLE {APPLIED} {_APPLIED_COLUMNS[dialect]}")
        if conn.execute(_KIND[dialect].format(name="schema_migrations")).fetchone() is not None:
            conn.execute(f"INSERT INTO {APPLIED} SELECT version, name, applied_at FROM schema_migrations")
            conn.execute("DROP TABLE schema_migrations")
        for statement in _GUARD_SQL[dialect]:
            conn.execute(statement)
    done = {row[0]: row[1] for row in conn.execute(f"SELECT version, name FROM {APPLIED}")}
    unknown = sorted(v for v in done if v > len(known))
    if unknown:
        newest = f"{unknown[-1]:04d}_{done[unknown[-1]]}"
        raise StoreError(
            f"this store was migrated by a newer siemgate (it has migration {newest}; this release knows"
            f" {dialect} migrations up to {len(known):04d}_{known[-1].name}): run that release or a later"
            " one, or restore the backup taken before the upgrade"
        )
    return [m for m in known if m.version not in done]
