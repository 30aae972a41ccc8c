"""Both backends' migrations, each run from scratch, produce the same schema: the same tables, the
same columns with compatible types and nullability, the same primary keys, unique constraints
(unique indexes included, partial ones marked) and foreign keys (docs/architecture.md, "The store
contract"). What differs on purpose is listed, with the reason, in ONLY_ON (tables) and KNOWN
(each difference as the comparison reports it): anything else that differs fails.

Types compare by class: SQLite's INTEGER and PostgreSQL's bigint/integer/smallint are `int`,
TEXT/text `text`, BLOB/bytea `bytes`. A case-insensitive unique key is `name` folded by
`translate(name, 'A…Z', 'a…z')` on PostgreSQL and a NOCASE column on SQLite: both read as `name`.
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest

from siemgate.store.base import Store
from siemgate.store.postgres import PostgresStore
from siemgate.store.sqlite import SQLiteStore

# Tables only one backend has, and why: PostgreSQL keeps per-day bucket counts of its partitioned
# event log (purges drop whole days); day partitions themselves are not tables of the schema here.
ONLY_ON = {"postgres": {"event_buckets"}, "sqlite": set[str]()}
# A key of a partitioned PostgreSQL table must hold the partition key (feature, ts).
KNOWN = {
    "events primary key: SQLite ('account_id', 'feature', 'seq') PostgreSQL None": (
        "seq is unique per stream on PostgreSQL by the stream's row lock, which every writer holds; its"
        " index events_by_seq cannot be unique without ts"
    ),
    "facets primary key: SQLite ('account_id', 'feature', 'ts', 'seq') PostgreSQL None": (
        "the same key as the unique index below: SQLite's primary key, PostgreSQL's unique index"
    ),
    "facets unique keys (columns, partial): SQLite [] PostgreSQL [(('account_id', 'feature', 'ts', 'seq'), False)]": (
        "the same key as the primary key above"
    ),
}

_TYPE_CLASS = {
    "integer": "int",
    "bigint": "int",
    "smallint": "int",
    "int": "int",
    "text": "text",
    "blob": "bytes",
    "bytea": "bytes",
    "real": "float",
    "double precision": "float",
    "boolean": "bool",
}


@dataclass
class Schema:
    """A schema as compared: per table, its columns {name: (type class, not null)}, primary key,
    unique keys {(columns, partial)} and foreign keys {(columns, table, referenced columns)}."""

    columns: dict[str, dict[str, tuple[str, bool]]] = field(default_factory=dict)
    primary: dict[str, tuple[str, ...]] = field(default_factory=dict)
    unique: dict[str, set[tuple[tuple[str, ...], bool]]] = field(default_factory=dict)
    foreign: dict[str, set[tuple[tuple[str, ...], str, tuple[str, ...]]]] = field(default_factory=dict)
    led: dict[str, set[str]] = field(default_factory=dict)  # the first columns of its indexes and primary key

    def without(self, tables: set[str]) -> Schema:
        keep = {t for t in self.columns if t not in tables}
        return Schema(
            {t: self.columns[t] for t in keep},
            {t: self.primary[t] for t in keep if t in self.primary},
            {t: self.unique.get(t, set()) for t in keep},
            {t: self.foreign.get(t, set()) for t in keep},
        )


def _type_class(declared: str) -> str:
    name = declared.lower().split("(")[0].strip()
    if name not in _TYPE_CLASS:
        raise AssertionError(f"column type {declared!r} has no class in _TYPE_CLASS: add it")
    return _TYPE_CLASS[name]


def sqlite_schema(path: Path) -> Schema:
    """The schema of the SQLite file at `path`."""
    schema = Schema()
    with sqlite3.connect(path) as conn:
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name"
            )
        ]
        for table in tables:
            info = conn.execute(f"PRAGMA table_info({table})").fetchall()
            # A primary key column is NOT NULL on PostgreSQL whatever it says; so it is here too.
            schema.columns[table] = {r[1]: (_type_class(r[2]), bool(r[3]) or r[5] > 0) for r in info}
            pk = tuple(r[1] for r in sorted((r for r in info if r[5] > 0), key=lambda r: r[5]))
            if pk:
                schema.primary[table] = pk
            schema.unique[table] = set()
            schema.led[table] = set(pk[:1])
            for _, index, unique, origin, partial in conn.execute(f"PRAGMA index_list({table})"):
                cols = tuple(r[2] for r in conn.execute(f"PRAGMA index_info({index})"))
                schema.led[table].add(cols[0])
                if unique and origin != "pk":
                    schema.unique[table].add((cols, bool(partial)))
            keys: dict[int, list[tuple[str, str, str]]] = {}
            for row in conn.execute(f"PRAGMA foreign_key_list({table})"):
                keys.setdefault(row[0], []).append((row[3], row[2], row[4]))
            schema.foreign[table] = {
                (tuple(c[0] for c in cols), cols[0][1], tuple(c[2] for c in cols)) for cols in keys.values()
            }
    return schema


def _index_columns(definition: str) -> tuple[str, ...]:
    """The key of a unique index from its definition: `translate(name, 'A…Z', 'a…z')` reads as `name`."""
    definition = re.sub(r"translate\((\w+), '[A-Z]+'::text, '[a-z]+'::text\)", r"\1", definition)
    inside = re.search(r"\((.*?)\)(?: WHERE|$)", definition)
    assert inside is not None, definition
    return tuple(part.strip() for part in inside.group(1).split(","))


def postgres_schema(url: str) -> Schema:
    """The schema of the first schema on the search path of `url`, partitions left out."""
    schema = Schema()
    with psycopg.connect(url, autocommit=True) as conn:
        columns = conn.execute(
            "SELECT c.table_name, c.column_name, c.data_type, c.is_nullable FROM information_schema.columns c"
            " JOIN pg_class k ON k.relname = c.table_name AND k.relnamespace = current_schema()::regnamespace"
            " WHERE c.table_schema = current_schema() AND NOT k.relispartition AND k.relkind IN ('r', 'p')"
            " ORDER BY c.table_name, c.ordinal_position"
        ).fetchall()
        for table, column, data_type, nullable in columns:
            schema.columns.setdefault(table, {})[column] = (_type_class(data_type), nullable == "NO")
        constraints = conn.execute(
            "SELECT r.relname, c.contype, c.conname,"
            " array(SELECT a.attname FROM unnest(c.conkey) WITH ORDINALITY k(n, i)"
            "   JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.n ORDER BY k.i),"
            " f.relname,"
            " array(SELECT a.attname FROM unnest(c.confkey) WITH ORDINALITY k(n, i)"
            "   JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.n ORDER BY k.i)"
            " FROM pg_constraint c JOIN pg_class r ON r.oid = c.conrelid LEFT JOIN pg_class f ON f.oid = c.confrelid"
            " WHERE r.relnamespace = current_schema()::regnamespace AND NOT r.relispartition"
            " AND c.contype IN ('p', 'f') AND c.conparentid = 0"
        ).fetchall()
        for table, kind, _, cols, ref_table, ref_cols in constraints:
            if kind == "p":
                schema.primary[table] = tuple(cols)
            else:
                schema.foreign.setdefault(table, set()).add((tuple(cols), ref_table, tuple(ref_cols)))
        indexes = conn.execute(
            "SELECT t.relname, pg_get_indexdef(i.indexrelid), i.indpred IS NOT NULL FROM pg_index i"
            " JOIN pg_class t ON t.oid = i.indrelid"
            " WHERE t.relnamespace = current_schema()::regnamespace AND NOT t.relispartition"
            " AND i.indisunique AND NOT i.indisprimary"
        ).fetchall()
        for table, definition, partial in indexes:
            schema.unique.setdefault(table, set()).add((_index_columns(definition), bool(partial)))
        firsts = conn.execute(
            "SELECT t.relname, a.attname FROM pg_index i JOIN pg_class t ON t.oid = i.indrelid"
            " JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]"
            " WHERE t.relnamespace = current_schema()::regnamespace AND NOT t.relispartition"
        ).fetchall()
        for table, column in firsts:
            schema.led.setdefault(table, set()).add(column)
    for table in schema.columns:
        schema.unique.setdefault(table, set())
        schema.foreign.setdefault(table, set())
    return schema


def differences(sqlite: Schema, postgres: Schema) -> list[str]:
    """What differs between the two schemas, one line each (empty when they match)."""
    found = []
    for name, one, other in (("only on SQLite", sqlite, postgres), ("only on PostgreSQL", postgres, sqlite)):
        found += [f"table {t}: {name}" for t in sorted(set(one.columns) - set(other.columns))]
    for table in sorted(set(sqlite.columns) & set(postgres.columns)):
        lite, pg = sqlite.columns[table], postgres.columns[table]
        for column in sorted(set(lite) | set(pg)):
            if lite.get(column) != pg.get(column):
                found.append(
                    f"{table}.{column}: SQLite {lite.get(column, 'absent')} PostgreSQL {pg.get(column, 'absent')}"
                    " (type class, not null)"
                )
        for what, a, b in (
            ("primary key", sqlite.primary.get(table), postgres.primary.get(table)),
            ("unique keys (columns, partial)", sorted(sqlite.unique[table]), sorted(postgres.unique[table])),
            ("foreign keys", sorted(sqlite.foreign[table]), sorted(postgres.foreign[table])),
        ):
            if a != b:
                found.append(f"{table} {what}: SQLite {a} PostgreSQL {b}")
    return found


@pytest.fixture
def pg_url(store: Store) -> str:
    """The URL of a PostgreSQL schema migrated from scratch (the `store` fixture's)."""
    assert isinstance(store, PostgresStore)
    return store.url


@pytest.mark.parametrize("store", ["postgres"], indirect=True)
def test_both_backends_migrate_to_the_same_schema(pg_url: str, tmp_path: Path) -> None:
    lite = SQLiteStore(tmp_path / "parity.db")
    try:
        lite.migrate()
    finally:
        lite.close()
    sqlite, postgres = sqlite_schema(tmp_path / "parity.db"), postgres_schema(pg_url)
    assert len(sqlite.columns) > 30  # the whole schema was read
    assert differences(sqlite.without(ONLY_ON["sqlite"]), postgres.without(ONLY_ON["postgres"])) == list(KNOWN)
    assert ONLY_ON["postgres"] <= set(postgres.columns) and ONLY_ON["sqlite"] <= set(sqlite.columns)


@pytest.mark.parametrize("store", ["postgres"], indirect=True)
def test_a_schema_that_differs_is_reported(pg_url: str, tmp_path: Path) -> None:
    """The comparison can fail: one extra migration step on SQLite, of each kind, is each reported."""
    lite = SQLiteStore(tmp_path / "parity.db")
    try:
        lite.migrate()
    finally:
        lite.close()
    with sqlite3.connect(tmp_path / "parity.db") as conn:
        conn.executescript(
            "ALTER TABLE accounts ADD COLUMN region TEXT;"
            "CREATE UNIQUE INDEX sessions_csrf ON sessions (csrf_token);"
            "CREATE TABLE notes (id INTEGER PRIMARY KEY, account_id INTEGER REFERENCES accounts(id));"
            "DROP TABLE secrets;"
        )
    found = differences(sqlite_schema(tmp_path / "parity.db").without(ONLY_ON["sqlite"]), postgres_schema(pg_url))
    assert [line for line in found if line not in KNOWN] == [
        "table notes: only on SQLite",
        "table event_buckets: only on PostgreSQL",
        "table secrets: only on PostgreSQL",
        "accounts.region: SQLite ('text', False) PostgreSQL absent (type class, not null)",
        "sessions unique keys (columns, partial): SQLite [(('csrf_token',), False), (('token_sha256',), False)]"
        " PostgreSQL [(('token_sha256',), False)]",
    ]


@pytest.mark.parametrize("store", ["postgres"], indirect=True)
def test_types_keys_and_references_that_differ_are_reported(pg_url: str) -> None:
    """A column's type and nullability, a primary key and a foreign key that differ each show."""
    postgres = postgres_schema(pg_url)
    changed = postgres_schema(pg_url)
    changed.columns["tokens"]["features"] = ("bytes", True)
    changed.primary["memberships"] = ("user_id", "account_id")
    changed.foreign["api_keys"] = set()
    assert differences(changed, postgres) == [
        "api_keys foreign keys: SQLite [] PostgreSQL [(('user_id',), 'users', ('id',))]",
        "memberships primary key: SQLite ('user_id', 'account_id') PostgreSQL ('account_id', 'user_id')",
        "tokens.features: SQLite ('bytes', True) PostgreSQL ('text', True) (type class, not null)",
    ]


@pytest.mark.parametrize("store", ["postgres"], indirect=True)
def test_every_foreign_key_leads_an_index_on_both_backends(pg_url: str, tmp_path: Path) -> None:
    """Rows pointing at an account, a person or an integration are found through an index: a
    per-account listing, or deleting an account (its rows cascade or are checked), reads only the
    account's own rows, not every tenant's."""
    lite = SQLiteStore(tmp_path / "indexes.db")
    try:
        lite.migrate()
    finally:
        lite.close()
    for name, schema in (("SQLite", sqlite_schema(tmp_path / "indexes.db")), ("PostgreSQL", postgres_schema(pg_url))):
        unindexed = sorted(
            f"{table}.{columns[0]} (references {referenced})"
            for table, keys in schema.foreign.items()
            for columns, referenced, _ in keys
            if columns[0] not in schema.led.get(table, set())
        )
        assert not unindexed, f"{name}: no index leads with {unindexed}"
