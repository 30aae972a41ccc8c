"""Support for the tests of the log in the store: events written through the real EventWriter,
and raw SQL on the store's database (what an attacker with database access does)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any

import psycopg

from siemgate.model.features import Feature
from siemgate.model.ids import new_id
from siemgate.store.base import Account, Store
from siemgate.store.ingest import EventWriter
from siemgate.store.sqlite import SQLiteStore
from siemgate.tlog.entry import body_timestamp_ns, entry_for
from siemgate.tlog.merkle import root_of
from support.events import auditevent

T0 = 1_767_225_600_000_000_000  # 2026-01-01T00:00:00Z
SECOND = 1_000_000_000


def write_events(store: Store, account: Account, count: int, *, start: int = T0, batch: int = 250) -> None:
    """`count` audit events one second apart from `start`, written in batches."""
    writer = EventWriter(store, lambda: start + 10**6 * SECOND)
    done = 0
    while done < count:
        n = min(batch, count - done)
        writer.write(account.id, Feature.AUDITEVENTS, [auditevent(start + (done + i) * SECOND) for i in range(n)])
        done += n


def new_account(store: Store) -> Account:
    return store.create_account(new_id(), f"acct-{new_id()[:8]}", T0)


def bodies(store: Store, account: Account) -> list[tuple[int, bytes]]:
    """(seq, stored v2 bytes) of every event of the account's audit stream."""
    out: list[tuple[int, bytes]] = []
    after = 0
    while True:
        rows = store.read_events(account.id, Feature.AUDITEVENTS, after, -(2**63), None, 1000)
        if not rows:
            return out
        out += [(seq, body) for seq, body, _ in rows]
        after = rows[-1][0]


def expected_root(store: Store, account: Account) -> bytes:
    """The root recomputed from the stored bodies alone (no log table involved)."""
    return root_of([entry_for(body_timestamp_ns(body), body).leaf() for _, body in bodies(store, account)])


def sql(store: Store, statement: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Run one statement on the store's database outside siemgate (`?` placeholders)."""
    return sql_together(store, [(statement, params)])[0]


def sql_together(store: Store, steps: list[tuple[str, tuple[Any, ...]]]) -> list[list[tuple[Any, ...]]]:
    """Run statements in one transaction on the store's database outside siemgate, so that a
    running server's writers (the log worker) see all of them or none; each step's rows."""
    if isinstance(store, SQLiteStore):
        conn = sqlite3.connect(store.path, isolation_level=None, timeout=30)
        try:
            conn.execute("BEGIN IMMEDIATE")
            out = [conn.execute(statement, params).fetchall() for statement, params in steps]
            conn.execute("COMMIT")
            return out
        finally:
            conn.close()  # uncommitted: rolled back
    url = store.url  # type: ignore[attr-defined]
    with psycopg.connect(url) as pg, pg.transaction():
        cursors = [pg.execute(statement.replace("?", "%s"), params) for statement, params in steps]
        return [cur.fetchall() if cur.description else [] for cur in cursors]


SNAPSHOT_TABLES = ("events", "streams", "log_entries", "log_hashes", "log_state", "log_checkpoints", "event_buckets")


def snapshot(store: Store, account_id: int) -> Callable[[], None]:
    """Back up the account's events and log rows now; the function returned restores them (a
    restore of the database from that backup, as far as this account is concerned)."""
    saved = {}
    for table in SNAPSHOT_TABLES:
        try:
            saved[table] = sql(store, f"SELECT * FROM {table} WHERE account_id = ?", (account_id,))
        except (sqlite3.Error, psycopg.Error):
            continue  # a table of the other backend

    def restore() -> None:  # in one transaction: a running server's log worker never sees half of it
        steps: list[tuple[str, tuple[Any, ...]]] = []
        for table, rows in saved.items():
            steps.append((f"DELETE FROM {table} WHERE account_id = ?", (account_id,)))
            steps += [(f"INSERT INTO {table} VALUES ({', '.join('?' * len(row))})", tuple(row)) for row in rows]
        sql_together(store, steps)

    return restore
